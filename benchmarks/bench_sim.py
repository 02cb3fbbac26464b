"""Time the simulated sky: one Gaia DR3 cone per cluster, from scratch (no cache).

Usage: ``python benchmarks/bench_sim.py [CLUSTER ...]`` (default: clusters
whose cones hold from 2e3 to 1e6 sources). Prints, per cluster, the sources
in the cone (after the Eq. 1-2 cuts), the field stars generated, the wall time
and the sources per second. Uses the embedded CG20 parameters; PARSEC
isochrones when ``../shared/data/isochrones`` exists.
"""

from __future__ import annotations

import sys
import time

from ocmembers.config import load_config
from ocmembers.sim.cluster import simulate_cone
from ocmembers.method.columns import cluster_row
from ocmembers.sim.source import embedded_cluster_table

DEFAULT = ("NGC_2682", "NGC_2099", "NGC_7789", "NGC_6705")


def main(names: list[str]) -> None:
    cfg = load_config(source="sim")
    # the full CG20 table when the shared data is at hand (any catalogued cluster), else the embedded rows
    from ocmembers.sources.local import read_cluster_table
    cg20 = cfg.local_dir / "catalogues" / "cg20_table1.csv"
    table = read_cluster_table(cg20) if cg20.is_file() else embedded_cluster_table()
    simulate_cone(cluster_row(table, "NGC_188"), cfg)  # warm-up: imports, isochrone grids, zero-point tables
    print(f"{'cluster':<12s} {'sources':>9s} {'members':>8s} {'field gen.':>11s} {'time/s':>7s} {'sources/s':>10s}")
    for name in names or DEFAULT:
        t0 = time.perf_counter()
        sim = simulate_cone(cluster_row(table, name), cfg)
        dt = time.perf_counter() - t0
        print(f"{name:<12s} {len(sim.cone):9d} {int(sim.truth['is_member'].sum()):8d} "
              f"{sim.meta['n_field_generated']:11d} {dt:7.2f} {len(sim.cone) / dt:10.0f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
