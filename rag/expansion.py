"""HyDE query expansion for answers: the LLM writes a passage that answers the question,
and retrieval searches with the mean of the question's and the passage's embeddings.

Why: most questions the retriever misses share no word with their card and the encoder
places them on a neighbouring card ("silencing an arbitrary subset of nodes" is dropout).
A passage the LLM writes names the concept in the cards' vocabulary. Measured on the
retrieval eval's dev split with the bundled 1.5B model (docs/EVALS.md): MRR 0.839 -> 0.859.

The embedding is what LlamaIndex's HyDEQueryTransform(include_original=True) gives a
vector retriever: the mean of the embeddings of [passage, question]
(BaseEmbedding.get_agg_embedding_from_queries). The transform itself is not used because
it calls a LlamaIndex LLM with no deadline, while the passage here is one more call under
the answer's single LLM deadline (rag.answer), so a stuck LLM still degrades in time.

Answers only: the passage costs an LLM call (~8 s on 2 cores), far beyond a search's budget.
"""

from llama_index.core.base.embeddings.base import BaseEmbedding

from rag.llm import Message
from rag.prompts import build_hyde_messages


class HypotheticalAnswer:
    """What an answer needs for HyDE: the prompt for the passage and the search vector."""

    def __init__(self, embedder: BaseEmbedding, max_tokens: int):
        self.embedder = embedder
        self.max_tokens = max_tokens

    def messages(self, question: str) -> list[Message]:
        return build_hyde_messages(question)

    def embedding(self, question: str, passage: str) -> list[float]:
        """The mean of the passage's and the question's embeddings: the question keeps the
        search on its subject when the passage wanders."""
        return self.embedder.get_agg_embedding_from_queries([passage, question])
