"""Fig. 3: Venn diagrams of our members and T22's for the test clusters.

Top: all members at p >= 0.1; bottom: p >= 0.5, projected radius < 20 pc and
G < 18 (thresholds read from the statistics file).

The counts are in a legend beside each diagram, not inside its regions: with two
nearly equal lists (ours against the simulated truth) the regions of the
differences are slivers, and labels placed in them (and the set names placed
under the circles) lay on top of each other.

Usage: python figures/fig_venn.py STATISTICS_JSON OUT.pdf [LABEL_OURS LABEL_OTHER KEY_PREFIX]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib_venn import venn2  # noqa: E402


def draw(stats: dict, ours: str = "this work", other: str = "T22", prefix: str = "venn"):
    """The two diagrams as a Figure; the counts in a legend beside each."""
    th = stats["thresholds"]
    panels = ((f"{prefix}_all", f"$p \\geq {th['p_all']}$"),
              (f"{prefix}_strict", f"$p \\geq {th['p_strict']}$, $f_r < {th['radius_pc']:g}$ pc, $G < {th['g_max']:g}$"))
    fig, axes = plt.subplots(2, 1, figsize=(6.5, 7))
    for ax, (key, title) in zip(axes, panels):
        v = stats[key]
        d = venn2(subsets=(v["t22_only"], v["ours_only"], v["both"]), set_labels=(other, ours), ax=ax)
        for text in [*(d.set_labels or ()), *(d.subset_labels or ())]:
            if text is not None:
                text.set_visible(False)
        handles = []
        for pid, colour, label in (("10", "tab:red", f"{other} only: {v['t22_only']:,}"),
                                   ("01", "tab:green", f"{ours} only: {v['ours_only']:,}"),
                                   ("11", "tab:orange", f"both: {v['both']:,}")):
            patch = d.get_patch_by_id(pid)
            if patch is not None:
                patch.set_color(colour)
                patch.set_alpha(0.5)
            handles.append(Patch(facecolor=colour, alpha=0.5, label=label))
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=9,
                  title=f"{other}: {v['t22']:,}\n{ours}: {v['ours']:,}", title_fontsize=9)
        ax.set_title(title, fontsize=10)
    n = stats["n_clusters"]
    fig.suptitle(f"{n} test cluster{'' if n == 1 else 's'}")
    return fig


def plot(stats: dict, out: Path, ours: str = "this work", other: str = "T22", prefix: str = "venn") -> None:
    from ocmembers.stages.plots import save_pdf_png
    save_pdf_png(draw(stats, ours, other, prefix), out)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (2, 5):
        raise SystemExit(__doc__)
    extra = argv[2:] if len(argv) == 5 else []
    plot(json.loads(Path(argv[0]).read_text()), Path(argv[1]), *extra)


if __name__ == "__main__":
    main()
