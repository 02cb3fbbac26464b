"""Radial profiles of the real T22 lists, the simulated T22-like lists and the simulated truth.

For every test cluster of a simulated run that has a real Tarricq et al. (2022) list, the
fraction of each list in 5 pc annuli of projected radius out to the 50 pc field, and the ratio
of the surface densities Sigma(40-50 pc) / Sigma(20-30 pc) (a tail of constant counts per
radius gives about 0.56, a uniform background 1); printed as medians over the clusters.
The truth: the true members with G < 18 of each simulated cone (issue 16, item 2).

Usage::

    python scripts/t22_radial_profile.py [--run data/sim] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from ocmembers.method.realism import projected_radius_pc

EDGES = np.arange(0.0, 55.0, 5.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("data/sim"), help="the simulated run's output directory")
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    args = ap.parse_args()
    real_all = pd.read_csv(args.data_dir / "catalogues" / "t22_members_edr3.csv.gz")
    sim_all = pd.read_parquet(args.run / "raw" / "catalogues" / "t22_members.parquet")
    clusters = pd.read_parquet(args.run / "raw" / "catalogues" / "clusters.parquet").set_index("name")
    fractions: dict[str, list[np.ndarray]] = {"real T22": [], "sim T22-like": [], "sim truth": []}
    for name, sim in sim_all.groupby("cluster"):
        real = real_all.loc[real_all["cluster"] == name]
        if not len(real) or name not in clusters.index:
            continue
        row = clusters.loc[name]
        truth = pd.read_parquet(args.run / "raw" / "sim" / f"{name}.truth.parquet")
        truth = truth.loc[truth["is_member"].astype(bool) & (truth["g_true"] < 18.0)]
        radii = {"real T22": projected_radius_pc(real["ra"].to_numpy(float), real["dec"].to_numpy(float), row),
                 "sim T22-like": projected_radius_pc(sim["ra"].to_numpy(float), sim["dec"].to_numpy(float), row),
                 "sim truth": truth["r_proj_pc"].to_numpy(float)}
        for key, r in radii.items():
            fractions[key].append(np.histogram(r, EDGES)[0] / max(len(r), 1))
    area = np.pi * (EDGES[1:] ** 2 - EDGES[:-1] ** 2)
    outer, inner = slice(8, 10), slice(4, 6)
    print(f"{len(fractions['real T22'])} clusters; annuli (pc): "
          + " ".join(f"{a:g}-{b:g}" for a, b in zip(EDGES[:-1], EDGES[1:])))
    for key, rows in fractions.items():
        h = np.array(rows)
        sigma_outer = h[:, outer].sum(1) / area[outer].sum()
        flat = sigma_outer / np.maximum(h[:, inner].sum(1) / area[inner].sum(), 1e-12)
        print(f"{key:13s} median fraction per annulus {np.round(np.median(h, 0), 3).tolist()}; "
              f"Sigma(40-50)/Sigma(20-30) {np.median(flat):.2f}")


if __name__ == "__main__":
    main()
