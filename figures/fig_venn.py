"""Fig. 3: Venn diagrams of our members and T22's for the test clusters.

Top: all members at p >= 0.1; bottom: p >= 0.5, projected radius < 20 pc and
G < 18 (thresholds read from the statistics file).

Usage: python figures/fig_venn.py STATISTICS_JSON OUT.pdf [LABEL_OURS LABEL_OTHER KEY_PREFIX]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib_venn import venn2  # noqa: E402


def plot(stats: dict, out: Path, ours: str = "this work", other: str = "T22", prefix: str = "venn") -> None:
    th = stats["thresholds"]
    panels = ((f"{prefix}_all", f"$p \\geq {th['p_all']}$"),
              (f"{prefix}_strict", f"$p \\geq {th['p_strict']}$, $f_r < {th['radius_pc']:g}$ pc, $G < {th['g_max']:g}$"))
    fig, axes = plt.subplots(2, 1, figsize=(5, 7))
    for ax, (key, title) in zip(axes, panels):
        v = stats[key]
        d = venn2(subsets=(v["t22_only"], v["ours_only"], v["both"]), set_labels=(other, ours), ax=ax)
        for pid, colour in (("10", "tab:red"), ("01", "tab:green"), ("11", "tab:orange")):
            patch = d.get_patch_by_id(pid)
            if patch is not None:
                patch.set_color(colour)
                patch.set_alpha(0.5)
        ax.set_title(title, fontsize=10)
    fig.suptitle(f"{stats['n_clusters']} test clusters")
    from ocmembers.stages.plots import save_pdf_png
    save_pdf_png(fig, out)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (2, 5):
        raise SystemExit(__doc__)
    extra = argv[2:] if len(argv) == 5 else []
    plot(json.loads(Path(argv[0]).read_text()), Path(argv[1]), *extra)


if __name__ == "__main__":
    main()
