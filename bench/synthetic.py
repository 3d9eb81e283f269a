"""Deterministic synthetic decks for the scale benchmarks (1k, 10k, 100k cards).

The words come from the shipped corpus and a list of ML terms, and the field lengths follow
real interview cards (question about 11 words, short answer about 14, long answer a
paragraph of 20-150 words, median about 60): what costs time in encoding, Chroma and BM25
is the number and length of texts, not their meaning. The same size and seed always give
the same cards, so runs are comparable. Questions for the load come from the cards
themselves, shortened and reordered, so every search has real matches.
"""

import random
import re

from rag.cards import Card, all_cards, load_corpus
from rag.settings import REPO_ROOT

TOPICS = (
    "neural-network-fundamentals", "regularization", "optimization", "transformers",
    "retrieval", "evaluation", "probability", "linear-algebra", "classical-ml", "nlp",
    "computer-vision", "reinforcement-learning", "mlops", "llm-inference", "fine-tuning",
    "embeddings", "tokenization", "statistics", "data-engineering", "ethics",
)  # fmt: skip
TERMS = (
    "gradient", "descent", "attention", "softmax", "embedding", "tokenizer", "layernorm",
    "batchnorm", "dropout", "overfitting", "regularization", "variance", "bias", "entropy",
    "cross-entropy", "logits", "sampling", "temperature", "beam", "retrieval", "reranker",
    "quantization", "distillation", "pruning", "LoRA", "adapter", "RLHF", "reward", "policy",
    "convolution", "pooling", "residual", "transformer", "encoder", "decoder", "KV-cache",
    "perplexity", "precision", "recall", "F1", "AUC", "calibration", "Bayes", "posterior",
    "likelihood", "eigenvalue", "SVD", "PCA", "k-means", "XGBoost", "random-forest",
    "momentum", "Adam", "warmup", "schedule", "checkpoint", "sharding", "throughput",
    "latency", "vector", "cosine", "BM25", "hallucination", "grounding", "RoPE", "GQA",
)  # fmt: skip
DIFFICULTIES = ("easy", "medium", "hard")
CARDS_PER_DECK = 1000


def vocabulary() -> list[str]:
    text = " ".join(c.embedding_text() for c in all_cards(load_corpus(REPO_ROOT / "corpus")))
    words = sorted(set(re.findall(r"[A-Za-z][A-Za-z-]{2,}", text)))
    return words + list(TERMS) * 3  # terms recur more often, like a deck's key words


def _sentence(rng: random.Random, words: list[str], length: int) -> str:
    chosen = [rng.choice(words) for _ in range(max(1, length))]
    return " ".join(chosen).capitalize()


def _paragraph(rng: random.Random, words: list[str], length: int) -> str:
    sentences, left = [], length
    while left > 0:
        size = min(left, rng.randint(8, 22))
        sentences.append(_sentence(rng, words, size) + ".")
        left -= size
    return " ".join(sentences)


def synthetic_cards(count: int, seed: int = 0) -> list[Card]:
    rng = random.Random(seed)
    words = vocabulary()
    cards = []
    for i in range(count):
        question_words = min(20, max(4, round(rng.gauss(11, 3))))
        long_words = min(150, max(20, round(rng.lognormvariate(4.1, 0.45))))
        topic = TOPICS[rng.randrange(len(TOPICS))]
        cards.append(Card(
            id=f"synthetic-{i:06d}",
            question=_sentence(rng, words, question_words) + "?",
            difficulty=DIFFICULTIES[rng.randrange(3)],
            topic=topic,
            short_answer=_sentence(rng, words, rng.randint(8, 22)) + ".",
            long_answer=_paragraph(rng, words, long_words),
            tags=tuple(rng.sample(TERMS, 2)),
            deck=f"synthetic-deck-{i // CARDS_PER_DECK:03d}",
        ))  # fmt: skip
    return cards


def queries(cards: list[Card], count: int, seed: int = 1) -> list[str]:
    """Questions a user might type: a card's question, shortened and shuffled a little."""
    rng = random.Random(seed)
    picked = [cards[rng.randrange(len(cards))] for _ in range(count)]
    out = []
    for card in picked:
        words = card.question.rstrip("?").split()
        keep = sorted(rng.sample(range(len(words)), max(3, len(words) * 2 // 3)))
        out.append(" ".join(words[i] for i in keep).lower() + "?")
    return out
