"""The baseline: the naive LlamaIndex pipeline with the same models, as its tutorials build it.

`VectorStoreIndex.from_documents` (default splitter, default in-memory vector store,
persisted to disk), `as_retriever` for search and `as_query_engine(streaming=True)` for
answers, with the same encoder (all-MiniLM-L6-v2) and the same GGUF model on llama.cpp.
There is no incremental re-ingest: a changed corpus is indexed again from scratch.
Served over HTTP by a minimal FastAPI app, so search is measured the same way as cardrag's.
Run: .venv/bin/python -m bench.naive serve --index DIR --port P
"""

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.llms import (
    CompletionResponse,
    CompletionResponseGen,
    CustomLLM,
    LLMMetadata,
)
from llama_index.core.schema import Document

from rag.cards import Card


def documents(cards: Sequence[Card]) -> list[Document]:
    """One document per card with the text cardrag embeds and a little metadata, which
    LlamaIndex's defaults put into the embedded text as well."""
    return [
        Document(
            id_=card.id,
            text=card.embedding_text(),
            metadata={"card_id": card.id, "topic": card.topic, "deck": card.deck,
                      "difficulty": card.difficulty},
        )  # fmt: skip
        for card in cards
    ]


def build(cards: Sequence[Card], embedder: BaseEmbedding, persist_dir: Path) -> VectorStoreIndex:
    index = VectorStoreIndex.from_documents(documents(cards), embed_model=embedder)
    index.storage_context.persist(persist_dir=str(persist_dir))
    return index


def load(persist_dir: Path, embedder: BaseEmbedding) -> VectorStoreIndex:
    storage = StorageContext.from_defaults(persist_dir=str(persist_dir))
    return load_index_from_storage(storage, embed_model=embedder)  # type: ignore[return-value]


class LlamaCppLLM(CustomLLM):
    """The same GGUF through llama-cpp-python, as a LlamaIndex LLM. What a naive pipeline
    would get from llama-index-llms-llama-cpp, which no longer imports (it needs
    pkg_resources); the prompt goes through the model's own chat template as one user turn."""

    model: Any = None
    max_tokens: int = 256
    temperature: float = 0.1

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=4096, num_output=self.max_tokens,
                           model_name="llama.cpp")  # fmt: skip

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        text = "".join(r.delta or "" for r in self.stream_complete(prompt))
        return CompletionResponse(text=text)

    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        chunks = self.model.create_chat_completion(
            messages=[{"role": "user", "content": prompt}], max_tokens=self.max_tokens,
            temperature=self.temperature, top_p=0.9, repeat_penalty=1.05, stream=True,
        )  # fmt: skip
        text = ""
        for chunk in chunks:
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                text += piece
                yield CompletionResponse(text=text, delta=piece)


def serve(persist_dir: Path, port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    from rag.embedding import build_embedder
    from rag.settings import Settings

    settings = Settings()
    index = load(persist_dir, build_embedder(settings.embedder, settings.models_dir))
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/search")
    def search(q: str, k: int = 5) -> dict[str, list[dict[str, object]]]:
        hits = index.as_retriever(similarity_top_k=k).retrieve(q)
        return {"results": [{"card_id": h.node.metadata.get("card_id"), "score": h.score,
                             "text": h.node.get_content()} for h in hits]}  # fmt: skip

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.index, args.port)


if __name__ == "__main__":
    main()
