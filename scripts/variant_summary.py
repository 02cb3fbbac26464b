"""The calibrated variant against the paper's p per G bin, on the test clusters of a truthbench run
with VARIANT=calibrated (faint.toml), split into forecast.toml's eight and the six fresh ones:

    PYTHONPATH=src .venv/bin/python scripts/variant_summary.py data/variant/sim/truthbench

Prints recall and precision at p >= 0.5 of deep_sets (the variant), deep_sets_paper (the paper's p
of the same model) and the ideal classifier, and the largest calibration gap of each over p bins
(0.1 wide, at least 20 sources), in all G and per G range.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

FRESH = ("NGC_2506", "NGC_2204", "Berkeley_39", "NGC_2355", "NGC_2539", "NGC_6939")
RANGES = ((3.0, 18.0), (18.0, 19.0), (19.0, 20.0), (20.0, 21.0))
METHODS = ("deep_sets", "deep_sets_paper", "ideal")


def pr(t: pd.DataFrame, clusters, method: str, lo: float, hi: float) -> tuple[float, float, int]:
    s = t.loc[t["cluster"].isin(clusters) & (t["method"] == method) & (t["variable"] == "g")
              & np.isclose(t["threshold"], 0.5) & (t["lo"] >= lo - 1e-9) & (t["hi"] <= hi + 1e-9)]
    tp, fp, fn = (float(s[c].sum()) for c in ("tp", "fp", "fn"))
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), int(tp + fn)


def main() -> None:
    d = Path(sys.argv[1])
    t = pd.read_csv(d / "truthbench.csv")
    names = sorted(t["cluster"].unique())
    sets = {"forecast.toml's 8": [n for n in names if n not in FRESH], "the 6 fresh": [n for n in names if n in FRESH],
            "all 14": names}
    for label, cl in sets.items():
        print(f"\n{label} test clusters, p >= 0.5:\n")
        print("| G | true | " + " | ".join(f"{m} R | {m} P" for m in METHODS) + " |")
        print("|---|---|" + "---|---|" * len(METHODS))
        for lo, hi in (*RANGES, (3.0, 21.0)):
            cells = []
            for m in METHODS:
                p, r, n = pr(t, cl, m, lo, hi)
                cells += [f"{r:.3f}", f"{p:.3f}"]
            print(f"| {lo:g}-{hi:g} | {n} | " + " | ".join(cells) + " |")
    cal = pd.read_csv(d / "truthbench_calibration.csv")
    print("\nlargest |fraction of true members - mean p| over p bins with >= 20 sources (pooled over all 14):\n")
    print("| method | all G | " + " | ".join(f"G {lo:g}-{hi:g}" for lo, hi in RANGES) + " |")
    print("|---|---|" + "---|" * len(RANGES))
    for m in METHODS:
        c = cal.loc[(cal["method"] == m) & (cal["n"] >= 20)]
        cells = []
        for lo in (-np.inf, *(r[0] for r in RANGES)):
            q = c.loc[np.isclose(c["g_lo"], lo) if np.isfinite(lo) else ~np.isfinite(c["g_lo"])]
            cells.append(f"{q['gap'].abs().max():.3f}" if len(q) else "-")
        print(f"| {m} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
