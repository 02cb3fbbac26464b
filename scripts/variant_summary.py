"""The calibrated variant against the paper's p per G bin, on the test clusters of a truthbench run
with VARIANT=calibrated (faint.toml), all together and, with --subset, a subset apart:

    PYTHONPATH=src .venv/bin/python scripts/variant_summary.py data/variant/sim/truthbench

Prints recall and precision at p >= 0.5 of deep_sets (the variant), deep_sets_paper (the paper's p
of the same model) and the ideal classifier, and the largest calibration gap of each over p bins
(0.1 wide, at least 20 sources), in all G and per G range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

RANGES = ((3.0, 18.0), (18.0, 19.0), (19.0, 20.0), (20.0, 21.0))
METHODS = ("deep_sets", "deep_sets_paper", "ideal")


def pr(t: pd.DataFrame, clusters, method: str, lo: float, hi: float, thr: float) -> tuple[float, float, int]:
    s = t.loc[t["cluster"].isin(clusters) & (t["method"] == method) & (t["variable"] == "g")
              & np.isclose(t["threshold"], thr) & (t["lo"] >= lo - 1e-9) & (t["hi"] <= hi + 1e-9)]
    tp, fp, fn = (float(s[c].sum()) for c in ("tp", "fp", "fn"))
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), int(tp + fn)


def main() -> None:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("truthbench_dir")
    ap.add_argument("--subset", nargs="*", default=[], help="clusters also summed apart (and the rest apart)")
    a = ap.parse_args()
    d = Path(a.truthbench_dir)
    t = pd.read_csv(d / "truthbench.csv")
    names = sorted(t["cluster"].unique())
    sets = {f"all {len(names)}": names}
    if a.subset:
        sets = {"the subset": [n for n in names if n in a.subset], "the others": [n for n in names if n not in a.subset],
                **sets}
    for thr in (0.5, 0.9):
        for label, cl in sets.items():
            print(f"\n{label} test clusters ({', '.join(cl)}), p >= {thr:g}:\n")
            print("| G | true | " + " | ".join(f"{m} R | {m} P" for m in METHODS) + " |")
            print("|---|---|" + "---|---|" * len(METHODS))
            for lo, hi in (*RANGES, (3.0, 21.0)):
                cells = []
                for m in METHODS:
                    p, r, n = pr(t, cl, m, lo, hi, thr)
                    cells += [f"{r:.3f}", f"{p:.3f}"]
                print(f"| {lo:g}-{hi:g} | {n} | " + " | ".join(cells) + " |")
    cal = pd.read_csv(d / "truthbench_calibration.csv")
    print(f"\nlargest |fraction of true members - mean p| over p bins with >= 20 sources (pooled over all "
          f"{len(names)}):\n")
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
