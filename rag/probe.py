"""The instruction probe: a linear classifier on the encoder's sentence embeddings that tells
card sentences addressed to the reader (instructions about the reply, its rules, its role)
from card content.

Why, beside rag.guard's patterns: the patterns were written against one set of poisoned
cards and missed payloads in other forms (a grading rule, a polite request, "to confirm you
have read this card": 4 of 16 answers carried the canary on a second set). A probe learns the
*meaning* "this sentence tells its reader what to write" from examples, using the encoder
that is loaded anyway, so it costs one embedding batch per answer and no new model.

It is trained offline (`python -m evals.probe`, rag/data/instruction-probe) and shipped as a
weight vector, a bias and a threshold, with the name of the encoder it was trained on: with
any other encoder (the hashing fake, a custom model) the vectors mean something else and the
probe is not used.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.similarity import SentenceVectors

PROBE_DIR = Path(__file__).resolve().parent / "data" / "instruction-probe"
PROBE_FILE = PROBE_DIR / "probe.json"


@dataclass(frozen=True)
class ProbeWeights:
    encoder: str
    weights: np.ndarray
    bias: float
    threshold: float

    @classmethod
    def load(cls, path: Path = PROBE_FILE) -> "ProbeWeights":
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["encoder"], np.asarray(data["weights"], dtype=np.float32),
                   float(data["bias"]), float(data["threshold"]))  # fmt: skip

    def save(self, path: Path, **about: object) -> None:
        data = {"encoder": self.encoder, "threshold": self.threshold, "bias": self.bias,
                "about": about, "weights": [round(float(w), 6) for w in self.weights]}  # fmt: skip
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """The probability that each embedded sentence is an instruction to its reader."""
        return 1.0 / (1.0 + np.exp(-(vectors @ self.weights + self.bias)))


@dataclass
class InstructionProbe:
    weights: ProbeWeights
    # Shared with grounding, which reads the same cards' sentences after generation.
    vectors: SentenceVectors

    def scores(self, sentences: Sequence[str]) -> list[float]:
        if not sentences:
            return []
        return self.weights.scores(self.vectors(sentences)).tolist()

    def flagged(self, sentences: Sequence[str]) -> set[str]:
        """The sentences the probe takes for instructions to the reader."""
        threshold = self.weights.threshold
        return {s for s, p in zip(sentences, self.scores(sentences), strict=True) if p >= threshold}


def load_probe(
    vectors: SentenceVectors, encoder: str, path: Path = PROBE_FILE
) -> InstructionProbe | None:
    """The shipped probe, or None when it was trained on another encoder than this one."""
    weights = ProbeWeights.load(path)
    return InstructionProbe(weights, vectors) if weights.encoder == encoder else None
