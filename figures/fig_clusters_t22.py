"""Fig. 4: our p >= 0.1 members (blue) and T22 members (orange) of a few clusters
in sky position, parallax, proper motion and the CMD.

Usage: python figures/fig_clusters_t22.py OUT_DIR(data/<source>) OUT.pdf CLUSTER [CLUSTER ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def draw(tables: dict, p_min: float = 0.1):
    """The figure: one row of four panels per cluster."""
    n = len(tables)
    fig, axes = plt.subplots(n, 4, figsize=(13, 3.0 * n), squeeze=False)
    for row, (name, t) in zip(axes, tables.items()):
        ours = t[t["probability"] >= p_min]
        t22 = t[t["t22"]]
        for sel, colour, label, z in ((ours, "tab:blue", "this work", 1), (t22, "tab:orange", "T22", 2)):
            kw = dict(s=3, c=colour, label=label, zorder=z, alpha=0.7, lw=0)
            row[0].scatter(sel["ra"], sel["dec"], **kw)
            row[1].scatter(sel["parallax"], sel["phot_g_mean_mag"], **kw)
            row[2].scatter(sel["pmra"], sel["pmdec"], **kw)
            if "g_rp" in sel:
                row[3].scatter(sel["g_rp"], sel["phot_g_mean_mag"], **kw)
        row[0].set_title(name.replace("_", " "))
        row[0].set_xlabel("ra [deg]"); row[0].set_ylabel("dec [deg]"); row[0].invert_xaxis()
        row[1].set_xlabel("parallax [mas]"); row[1].set_ylabel("$G$ [mag]"); row[1].invert_yaxis()
        row[2].set_xlabel(r"$\mu_{\alpha*}$ [mas/yr]"); row[2].set_ylabel(r"$\mu_\delta$ [mas/yr]")
        row[3].set_xlabel(r"$G - G_{RP}$ [mag]"); row[3].set_ylabel("$G$ [mag]"); row[3].invert_yaxis()
        row[0].legend(markerscale=4, fontsize=7)
    return fig


def plot(tables: dict, out: Path, p_min: float = 0.1) -> None:
    from ocmembers.stages.plots import save_pdf_png
    save_pdf_png(draw(tables, p_min), out, dpi=120)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3:
        raise SystemExit(__doc__)
    from ocmembers.sources.cache import read_table
    from ocmembers.config import load_config
    from ocmembers.stages.validate import cluster_comparison
    out_dir = Path(argv[0])
    cfg = load_config(source=out_dir.name, output_dir=str(out_dir.parent))
    t22 = read_table(cfg.raw_dir / "catalogues" / "t22_members.parquet")
    tables = {name: cluster_comparison(cfg, name, t22)["table"] for name in argv[2:]}
    plot(tables, Path(argv[1]))


if __name__ == "__main__":
    main()
