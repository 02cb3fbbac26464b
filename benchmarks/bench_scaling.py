"""Scaling of the per-cluster work: one 40-cluster simulated run with 1 and then 2 workers.

Usage: ``python benchmarks/bench_scaling.py [--data-dir ../shared/data] [--clusters 40]
[--jobs 1,2] [--seed 13] [--json FILE]`` (``make bench-scaling``; ``make bench`` runs it too).

The run is the simulation of the Gaia cones (the work of the ``cones`` stage on
``SOURCE=sim``: the simulated sky, Eq. 1-2 cuts, cached under ``raw/sim``) for
``--clusters`` clusters drawn (seeded) from the CG20 table of ``DATA_DIR``, through
:func:`ocmembers.stages.runner.for_each_cluster`, i.e. the executor every stage uses
(``JOBS=1`` in-process, ``JOBS=N`` an embedded Dask ``LocalCluster``), each ``JOBS``
into a fresh temporary output directory. The draw keeps clusters beyond 1.5 kpc and
off the plane (|b| > 2 deg): the 50 pc cones of nearby low-latitude clusters hold
tens of millions of field stars and take minutes each (``benchmarks/bench_sim.py``),
which would make this a benchmark of three clusters. Every task records its own wall
and CPU time; the benchmark prints the wall time of each ``JOBS``, the ratio, and the
per-cluster distribution (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ocmembers.config import load_config
from ocmembers.sources.local import read_cluster_table

REPO = Path(__file__).resolve().parents[1]


def simulate_one(cfg, name: str) -> bool:
    """The task: simulate ``name``'s cone (and cache it), timing itself into ``bench_times/``."""
    from ocmembers.sources import get_source
    start, t0, c0 = time.time(), time.perf_counter(), time.process_time()
    sim = get_source(cfg).simulated(name)
    rec = {"cluster": name, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
           "sources": int(len(sim.cone)), "pid": os.getpid(), "start": start}
    out = cfg.out_dir / "bench_times" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec))
    return True


def pick(data_dir: Path, n: int, seed: int) -> list[str]:
    table = read_cluster_table(data_dir / "catalogues" / "cg20_table1.csv")
    ok = table[(table["dist_pc"] > 1500) & (table["b"].abs() > 2)]
    rng = np.random.default_rng(seed)
    return sorted(ok["name"].astype(str).iloc[rng.choice(len(ok), size=min(n, len(ok)), replace=False)])


def run(data_dir: Path, names: list[str], jobs: int) -> dict:
    from ocmembers.stages.runner import for_each_cluster
    with tempfile.TemporaryDirectory(prefix=f"bench_scaling_j{jobs}_") as tmp:
        cfg = load_config(source="sim", local_dir=str(data_dir), output_dir=tmp, jobs=jobs,
                          clusters=",".join(names)).replace(sim={"demo_clusters": []})
        t0 = time.perf_counter()
        report = for_each_cluster(cfg, names, simulate_one, f"bench_scaling_j{jobs}")
        wall = time.perf_counter() - t0
        times = [json.loads(p.read_text()) for p in sorted((cfg.out_dir / "bench_times").glob("*.json"))]
    return {"jobs": jobs, "wall_s": wall, "failed": report.failed, "tasks": times}


def describe(times: list[float]) -> str:
    q = np.percentile(times, [0, 25, 50, 75, 90, 100])
    return (f"min {q[0]:.2f}  p25 {q[1]:.2f}  median {q[2]:.2f}  p75 {q[3]:.2f}  p90 {q[4]:.2f}  "
            f"max {q[5]:.2f}  mean {statistics.fmean(times):.2f}  sum {sum(times):.1f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--clusters", type=int, default=40)
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args(argv)
    data = Path(a.data_dir)
    if not (data / "catalogues" / "cg20_table1.csv").is_file():
        print(f"bench_scaling: no CG20 table under {data}; skipped", file=sys.stderr)
        return 0
    names = pick(data, a.clusters, a.seed)
    print(f"{len(names)} clusters (seed {a.seed}): {' '.join(names)}", flush=True)
    results = []
    for jobs in (int(j) for j in a.jobs.split(",")):
        r = run(data, names, jobs)
        results.append(r)
        wall = [t["wall_s"] for t in r["tasks"]]
        print(f"JOBS={jobs}: wall {r['wall_s']:.1f} s for {len(r['tasks'])} clusters "
              f"({len(r['failed'])} failed); per-cluster task wall: {describe(wall)}", flush=True)
        # the first task of each worker process pays its imports and table loads (cold)
        first = {}
        for t in sorted(r["tasks"], key=lambda t: t["start"]):
            first.setdefault(t["pid"], t)
        cold = [t["wall_s"] for t in first.values()]
        warm = [t["wall_s"] for t in r["tasks"] if first[t["pid"]] is not t]
        span = max(t["start"] + t["wall_s"] for t in r["tasks"]) - min(t["start"] for t in r["tasks"])
        print(f"  {len(first)} worker process(es); first task per worker (cold) {statistics.fmean(cold):.2f} s "
              f"mean; the others (warm) {describe(warm) if warm else '-'}; first task start to last task end "
              f"{span:.1f} s (so {r['wall_s'] - span:.1f} s outside the tasks: cluster start-up, "
              f"submission, the report)", flush=True)
    base = results[0]
    for r in results[1:]:
        print(f"ratio wall(JOBS={base['jobs']}) / wall(JOBS={r['jobs']}) = {base['wall_s'] / r['wall_s']:.2f} "
              f"(ideal {r['jobs'] / base['jobs']:.0f}; {os.cpu_count()} CPUs)", flush=True)
    tasks = sorted(base["tasks"], key=lambda t: -t["wall_s"])
    print(f"{'cluster':<22s} {'sources':>9s} {'wall/s':>7s} {'cpu/s':>7s}   (JOBS={base['jobs']}, slowest first)")
    for t in tasks:
        print(f"{t['cluster']:<22s} {t['sources']:9d} {t['wall_s']:7.2f} {t['cpu_s']:7.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"clusters": names, "cpus": os.cpu_count(), "results": results},
                                           indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
