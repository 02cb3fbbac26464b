"""Members beyond the Jacobi radius: Hunt & Reffert (2024) against the simulated sky.

An independent measure of how much of a cluster lies outside its bound part. Hunt & Reffert
(2024, A&A 686, A42; ``hunt2024_table.csv`` of the shared data) list for every cluster its
Jacobi radius ``rJpc``, its members ``N`` (HDBSCAN in five dimensions, no magnitude cut) and
those within the Jacobi radius ``NJ``. For every test cluster of a simulated run that has a
real Tarricq et al. (2022) list and a Hunt 2024 row, this prints the medians over the clusters
and the 16-84 percentiles of the fraction of each list beyond Hunt's r_J in projected radius at
the catalogued distance:

* Hunt's own members, ``1 - NJ / N``;
* the real T22 list;
* the simulated T22-like list;
* the simulated truth with G < 18 (T22's limit) and with G < 20, and the share of the
  truth's members that the sky made as escaped stars (corona and tails).

Hunt's count is the share of an HDBSCAN list, like T22's, so the comparable simulated figure
is the T22-like one; the truth shows what the sky holds. Nothing here tunes the sky.

Usage::

    python scripts/hunt24_jacobi.py [--run data/sim] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from ocmembers.method.realism import beyond_jacobi, spread
from ocmembers.sources.cluster_tables import read_jacobi_table


def _spread(x: list[float]) -> str:
    v = spread(x)
    return f"{v['median']:.3f} [{v['p16']:.3f}-{v['p84']:.3f}]" if v["n_clusters"] else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("data/sim"), help="the simulated run's output directory")
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    args = ap.parse_args()
    hunt = read_jacobi_table(args.data_dir / "catalogues" / "hunt2024_table.csv").set_index("name")
    real_all = pd.read_csv(args.data_dir / "catalogues" / "t22_members_edr3.csv.gz")
    sim_all = pd.read_parquet(args.run / "raw" / "catalogues" / "t22_members.parquet")
    clusters = pd.read_parquet(args.run / "raw" / "catalogues" / "clusters.parquet").set_index("name")
    keys = ("Hunt 2024 members", "real T22", "sim T22-like", "sim truth G < 18", "sim truth G < 20",
            "sim truth G < 18: escaped stars")
    out: dict[str, list[float]] = {k: [] for k in keys}
    ratio: list[float] = []
    skipped: list[str] = []
    for name, sim in sim_all.groupby("cluster"):
        real = real_all.loc[real_all["cluster"] == name]
        if not len(real) or name not in clusters.index or name not in hunt.index:
            skipped.append(str(name))
            continue
        h = hunt.loc[name]
        r_j = float(h["r_jacobi_pc"])
        row = clusters.loc[name]
        truth = pd.read_parquet(args.run / "raw" / "sim" / f"{name}.truth.parquet")
        members = truth.loc[truth["is_member"].astype(bool)]
        t18, t20 = members.loc[members["g_true"] < 18.0], members.loc[members["g_true"] < 20.0]

        out["Hunt 2024 members"].append(1.0 - float(h["n_within_jacobi"]) / float(h["n_members"]))
        out["real T22"].append(beyond_jacobi(real, row, r_j))
        out["sim T22-like"].append(beyond_jacobi(sim, row, r_j))
        out["sim truth G < 18"].append(float(np.mean(t18["r_proj_pc"] > r_j)) if len(t18) else np.nan)
        out["sim truth G < 20"].append(float(np.mean(t20["r_proj_pc"] > r_j)) if len(t20) else np.nan)
        out["sim truth G < 18: escaped stars"].append(
            float(np.mean(t18["population"] == "escaped")) if len(t18) else np.nan)
        if out["real T22"][-1] > 0:
            ratio.append(out["sim T22-like"][-1] / out["real T22"][-1])
    print(f"{len(out['real T22'])} test clusters with a real T22 list and a Hunt 2024 r_J "
          f"({len(skipped)} without); Hunt's r_J: median "
          f"{np.median([float(hunt.loc[n, 'r_jacobi_pc']) for n in sim_all['cluster'].unique() if n in hunt.index]):.1f} pc")
    print("fraction beyond Hunt & Reffert's (2024) Jacobi radius, median [16-84 %] over the clusters:")
    for key in keys:
        print(f"  {key:34s} {_spread(out[key])}")
    print(f"  {'sim T22-like / real T22':34s} {_spread(ratio)}")


if __name__ == "__main__":
    main()
