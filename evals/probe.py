"""Train the instruction probe (rag/probe.py) and write rag/data/instruction-probe/probe.json.

    python -m evals.probe            # train, cross-validate, write the weights, print a report

Positives: rag/data/instruction-probe/instructions.txt (sentences addressed to the reader of a
card). Negatives: every sentence of the shipped corpus, of the external theory.md deck when
../shared is present, and content.txt (imperative study advice, sentences about prompts and
system prompts). No injection eval card is used: those sets measure the probe.

The threshold is fixed on training data alone: the out-of-fold score above which only 0.1 %
of content sentences fall, raised if needed above every shipped corpus sentence, so the
probe changes no prompt built from the shipped cards.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from evals.external import THEORY_MD
from rag.cards import all_cards, load_corpus
from rag.embedding import build_embedder, embedder_name
from rag.grounding import card_sentences
from rag.importers import parse_file
from rag.importers.common import to_cards
from rag.probe import PROBE_DIR, PROBE_FILE, ProbeWeights
from rag.settings import Settings

CONTENT_RATE = 0.001  # out-of-fold share of content sentences allowed above the threshold
CHOICES_OF_C = (1.0, 10.0, 100.0)
FOLDS = 5


def read_lines(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def content_sentences(shipped: list[str]) -> list[str]:
    external: list[str] = []
    if THEORY_MD.is_file():
        parsed = parse_file(THEORY_MD.read_bytes(), "theory.md")
        external = card_sentences(to_cards("ds-theory", parsed))
    return list(dict.fromkeys(shipped + external + read_lines(PROBE_DIR / "content.txt")))


def _classifier(c: float) -> LogisticRegression:
    # Balanced: the instruction sentences are a tenth of the content ones.
    return LogisticRegression(C=c, class_weight="balanced", max_iter=2000)


def out_of_fold(x: np.ndarray, y: np.ndarray, c: float) -> np.ndarray:
    scores = np.zeros(len(y))
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(x, y):
        model = _classifier(c).fit(x[train], y[train])
        scores[test] = model.predict_proba(x[test])[:, 1]
    return scores


def threshold_for(content_scores: np.ndarray) -> float:
    return float(np.quantile(content_scores, 1 - CONTENT_RATE))


def main() -> int:
    settings = Settings()
    embedder = build_embedder(settings.embedder, settings.models_dir)
    shipped = list(dict.fromkeys(card_sentences(all_cards(load_corpus(settings.corpus_dir)))))
    positives = read_lines(PROBE_DIR / "instructions.txt")
    negatives = content_sentences(shipped)
    texts = positives + negatives
    x = np.asarray(embedder.get_text_embedding_batch(texts), dtype=np.float32)
    y = np.array([1] * len(positives) + [0] * len(negatives))

    trials = {}
    for c in CHOICES_OF_C:
        oof = out_of_fold(x, y, c)
        cut = threshold_for(oof[y == 0])
        trials[c] = (float((oof[y == 1] >= cut).mean()), cut, oof)
    c = max(trials, key=lambda k: trials[k][0])
    _, cut, oof = trials[c]

    model = _classifier(c).fit(x, y)
    weights = ProbeWeights(embedder_name(settings.embedder), model.coef_[0].astype(np.float32),
                           float(model.intercept_[0]), cut)  # fmt: skip
    shipped_top = float(weights.scores(x[len(positives) : len(positives) + len(shipped)]).max())
    threshold = max(cut, math.ceil(shipped_top * 1000 + 1e-9) / 1000)
    weights = ProbeWeights(weights.encoder, weights.weights, weights.bias, threshold)
    report = {
        "instruction_sentences": len(positives),
        "content_sentences": len(negatives),
        "shipped_sentences": len(shipped),
        "C_tried": {str(k): round(v[0], 3) for k, v in trials.items()},
        "C": c,
        "cv_threshold": round(cut, 4),
        "highest_shipped_score": round(shipped_top, 4),
        "threshold": threshold,
        "cv_instruction_recall_at_threshold": round(float((oof[y == 1] >= threshold).mean()), 3),
        "cv_content_flagged_at_threshold": int((oof[y == 0] >= threshold).sum()),
    }
    weights.save(PROBE_FILE, **report)
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
