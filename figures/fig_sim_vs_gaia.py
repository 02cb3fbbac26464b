"""The simulated sky against real Gaia DR3: a plain field and M67.

Usage::

    python figures/fig_sim_vs_gaia.py FIELD.parquet M67.csv OUT.(png|pdf) [--seed N]

``FIELD.parquet`` is a complete DR3 cone (``gaia/fields/ra45_dec0_r0.5deg.parquet``
of the shared data, radius 0.5 deg at (45, 0)); ``M67.csv`` the DR3 extract
around NGC 2682 (``gaia/cones/NGC_2682.csv``: a box in RA/Dec pre-cut in proper
motion). The field is simulated in the same cone; M67 is simulated with its
CG20 parameters and both it and the real extract are cut to the extract's box
and proper-motion range and to the parallax cut of Eq. 2. Top row: the field
(counts against G, parallax, proper motions). Bottom row: M67 (counts against
G, CMD, parallax).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ocmembers.config import load_config  # noqa: E402
from ocmembers.sim.cluster import simulate_cone  # noqa: E402
from ocmembers.sim.errors import ScanLaw, detection_probability, observe  # noqa: E402
from ocmembers.sim.galaxy import simulate_field  # noqa: E402
from ocmembers.method.columns import cluster_row  # noqa: E402
from ocmembers.sim.source import embedded_cluster_table  # noqa: E402

M67_BOX = {"ra": (130.9, 134.6), "dec": (10.0, 13.7), "pmra": (-11.5, -10.5), "pmdec": (-3.5, -2.5)}


def _box(t: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    keep = np.ones(len(t), bool)
    for col, (lo, hi) in M67_BOX.items():
        keep &= (t[col] > lo) & (t[col] < hi)
    keep &= np.abs(t["parallax"] - row["parallax"]) <= 10 * row["parallax_std"]
    return t.loc[keep]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("field")
    ap.add_argument("m67")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    cfg = load_config(source="sim")
    if args.seed is not None:
        cfg = cfg.replace(sim={"seed": args.seed})
    real_f = pd.read_parquet(args.field)
    real_m = pd.read_csv(args.m67)
    rng = np.random.default_rng(cfg.sim.seed)
    true = simulate_field(45.0, 0.0, 0.5, rng, density=cfg.sim.field_density, g_limit=cfg.sim.g_limit)
    true = true.loc[rng.random(len(true)) < detection_probability(true["g"].to_numpy(), cfg.sim.g_limit)]
    sim_f, _, _ = observe(true.reset_index(drop=True), ScanLaw.draw(rng), rng)
    row = cluster_row(embedded_cluster_table(), "NGC_2682")
    sim = simulate_cone(row, cfg)
    sim_m = _box(sim.cone, row)
    is_mem = sim.truth.set_index("source_id").loc[sim_m["source_id"], "is_member"].to_numpy()
    real_mb = _box(real_m, row)

    fig, ax = plt.subplots(2, 3, figsize=(12, 7.5), constrained_layout=True)
    kw_r = {"histtype": "step", "color": "k", "lw": 1.5, "label": "Gaia DR3"}
    kw_s = {"histtype": "step", "color": "C3", "lw": 1.2, "label": "simulated"}
    gb = np.arange(8, 22.01, 0.5)
    ax[0, 0].hist(real_f["phot_g_mean_mag"].dropna(), gb, **kw_r)
    ax[0, 0].hist(sim_f["phot_g_mean_mag"].dropna(), gb, **kw_s)
    ax[0, 0].set(yscale="log", xlabel="G (mag)", ylabel="sources per 0.5 mag",
                 title="field (45, 0), r = 0.5 deg")
    ax[0, 0].legend(loc="upper left")
    pb = np.linspace(-3, 8, 56)
    ax[0, 1].hist(real_f["parallax"].dropna(), pb, **kw_r)
    ax[0, 1].hist(sim_f["parallax"].dropna(), pb, **kw_s)
    ax[0, 1].set(xlabel="parallax (mas)", title="field: parallax")
    mb = np.linspace(-30, 40, 71)
    for col, ls in (("pmra", "-"), ("pmdec", ":")):
        ax[0, 2].hist(real_f[col].dropna(), mb, histtype="step", color="k", ls=ls, label=f"DR3 {col}")
        ax[0, 2].hist(sim_f[col].dropna(), mb, histtype="step", color="C3", ls=ls, label=f"sim {col}")
    ax[0, 2].set(xlabel="proper motion (mas/yr)", title="field: proper motions")
    ax[0, 2].legend(fontsize=8)
    ax[1, 0].hist(real_mb["phot_g_mean_mag"].dropna(), gb, **kw_r)
    ax[1, 0].hist(sim_m["phot_g_mean_mag"].dropna(), gb, **kw_s)
    ax[1, 0].hist(sim_m["phot_g_mean_mag"][is_mem], gb, histtype="step", color="C0", ls="--",
                  label="simulated members")
    ax[1, 0].set(yscale="log", xlabel="G (mag)", ylabel="sources per 0.5 mag", title="M67 extract (box, pm, Eq. 2)")
    ax[1, 0].legend(loc="upper left", fontsize=8)
    for t, c, lab in ((real_mb, "k", "Gaia DR3"), (sim_m, "C3", "simulated")):
        ax[1, 1].scatter(t["phot_bp_mean_mag"] - t["phot_rp_mean_mag"], t["phot_g_mean_mag"], s=2, c=c,
                         alpha=0.6, label=lab)
    ax[1, 1].set(xlabel="BP - RP (mag)", ylabel="G (mag)", title="M67: CMD", xlim=(-0.2, 3.5))
    ax[1, 1].invert_yaxis()
    ax[1, 1].legend(markerscale=4, fontsize=8)
    pb = np.linspace(row["parallax"] - 0.6, row["parallax"] + 0.6, 49)
    ax[1, 2].hist(real_mb["parallax"].dropna(), pb, **kw_r)
    ax[1, 2].hist(sim_m["parallax"].dropna(), pb, **kw_s)
    ax[1, 2].set(xlabel="parallax (mas)", title="M67: parallax")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    fig.savefig(tmp, dpi=120)
    tmp.replace(out)
    plt.close(fig)


if __name__ == "__main__":
    main()
