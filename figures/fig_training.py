"""Fig. 2: loss and the six classification metrics against epoch (train and validation).

Usage: python figures/fig_training.py HISTORY_CSV OUT.pdf   (a PNG is written beside it)
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

METRICS = ("precision", "recall", "selectivity", "accuracy", "balanced_accuracy", "f1")


def _col(h: pd.DataFrame, split: str, metric: str) -> str | None:
    for c in (f"{split}_{metric}", f"{metric}_{split}"):
        if c in h.columns:
            return c
    return None


def plot(history: pd.DataFrame, out: Path) -> None:
    epoch = history["epoch"] if "epoch" in history else history.index + 1
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(6.5, 7), sharex=True)
    for split, ls in (("train", "-"), ("val", "--"), ("validation", "--")):
        c = _col(history, split, "loss")
        if c:
            ax1.plot(epoch, history[c], ls, label=f"{split} loss")
    ax1.set_ylabel("loss (Eq. 19)")
    ax1.legend()
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, m in enumerate(METRICS):
        for split, ls in (("train", "-"), ("val", "--"), ("validation", "--")):
            c = _col(history, split, m)
            if c:
                ax2.plot(epoch, history[c], ls, color=colours[i % len(colours)],
                         label=f"{m.replace('_', ' ')} ({split})")
    best = _col(history, "val", "f1") or _col(history, "validation", "f1")
    if best:
        ax2.axvline(epoch[history[best].idxmax()], color="k", lw=0.8, ls=":")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("metric")
    ax2.legend(fontsize=7, ncol=2)
    from ocmembers.stages.plots import save_pdf_png
    save_pdf_png(fig, out)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit(__doc__)
    plot(pd.read_csv(argv[0]), Path(argv[1]))


if __name__ == "__main__":
    main()
