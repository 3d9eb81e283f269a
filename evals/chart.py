"""Bar chart of the systems in a `cardrag eval --json` report (docs/img/eval_systems.png).

Run: cardrag eval --json > eval.json && python -m evals.chart eval.json docs/img/eval_systems.png
"""

import json
import sys
from pathlib import Path

METRICS = ("hit@1", "hit@5", "mrr", "ndcg@10")


def main(report_path: str, png_path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    report = json.loads(Path(report_path).read_text())
    systems = report["systems"]
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (name, metrics) in enumerate(systems.items()):
        xs = [m + i * width for m in range(len(METRICS))]
        bars = ax.bar(xs, [metrics[m] for m in METRICS], width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks([m + width * (len(systems) - 1) / 2 for m in range(len(METRICS))], METRICS)
    ax.set_ylim(0.5, 1.02)
    ax.set_ylabel("score")
    ax.set_title(f"Retrieval on {report['queries']} eval questions (all splits)")
    ax.legend(loc="upper left", ncol=2, fontsize=8)
    fig.tight_layout()
    Path(png_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
