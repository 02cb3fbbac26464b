"""Speed of the simulated sky and of the T22-like HDBSCAN lists, before and after issue 14, side by side.

Rows (each with its input size, wall and CPU time, and the peak resident set
of the process that ran it):

- ``sim``: :func:`ocmembers.sim.cluster.simulate_cone` on the cones of the
  full run (default NGC 2682, NGC 7789, NGC 2099, NGC 6705: 2e3-5e5
  sources), through the code of ``--before-rev`` (default ``cc9839e~1``, the
  simulator before issue 14: its ``src/`` from ``git archive``) and through
  this checkout, in separate processes, alternately, ``--repeats`` times
  (the least CPU time kept: on a shared machine the least disturbed). The
  cone, truth and bright-field hashes of both are printed: they must be
  equal (the change is byte for byte).
- ``t22``: the T22-like list of a simulated cone (what the catalogues stage
  runs for each cluster of the sky: :func:`ocmembers.sim.catalogues.t22_like_members`,
  the HDBSCAN step on the five-dimensional window of the field), with
  ``[methods] hdbscan_backend = "hdbscan"`` and ``"fast_hdbscan"`` in one
  process on the same input (default NGC 7789, NGC 2099, NGC 6705: 4e4-3.2e5
  sources clustered), with the agreement of the two: the adjusted Rand
  index of all labels, the members of each, the identical-members fraction
  (common / union of the two lists) and the largest difference of p over the
  common members. fast-hdbscan's import and JIT warm-up are timed apart.

The 1-minute load average is printed with each row: on a shared machine the
CPU times are the least disturbed figures.

Usage::

    python benchmarks/bench_sim_speed.py [--sim NGC_2682 NGC_6705] [--t22 NGC_2099] [--repeats 1]
                                         [--before-rev REV] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import peak_mb, reset_peak  # noqa: E402

SIM_DEFAULT = ("NGC_2682", "NGC_7789", "NGC_2099", "NGC_6705")
T22_DEFAULT = ("NGC_7789", "NGC_2099", "NGC_6705")


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def frame_sha(df) -> str:
    """Hash of a frame's columns, dtypes and values (object columns by their repr)."""
    h = hashlib.sha256(repr((list(df.columns), [str(t) for t in df.dtypes], len(df))).encode())
    for c in df.columns:
        a = df[c].to_numpy()
        h.update(a.tobytes() if a.dtype != object else "\x00".join(map(repr, a)).encode())
    return h.hexdigest()[:16]


def _setup(data_dir: str):
    from ocmembers.config import load_config
    from ocmembers.sim.source import embedded_cluster_table
    from ocmembers.sources.local import read_cluster_table

    cfg = load_config(source="sim", local_dir=data_dir) if data_dir else load_config(source="sim")
    cg20 = cfg.local_dir / "catalogues" / "cg20_table1.csv"
    table = read_cluster_table(cg20) if cg20.is_file() else embedded_cluster_table()
    return cfg, table


# ---------------------------------------------------------------------------
# workers (run in a child process, print one JSON line per measurement)
# ---------------------------------------------------------------------------
def worker_sim(names: list[str], data_dir: str) -> None:
    from ocmembers.method.columns import cluster_row
    from ocmembers.sim.cluster import simulate_cone

    cfg, table = _setup(data_dir)
    simulate_cone(cluster_row(table, "NGC_188"), cfg)  # warm-up: imports, isochrones, zero-point tables
    for name in names:
        row = cluster_row(table, name)
        reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        s = simulate_cone(row, cfg)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps({"name": name, "n": len(s.cone), "n_bright": len(s.bright), "wall": wall, "cpu": cpu,
                          "peak_mb": peak_mb(), "load": _load(),
                          "sha": [frame_sha(s.cone), frame_sha(s.truth), frame_sha(s.bright)]}), flush=True)


def worker_t22(names: list[str], data_dir: str) -> None:
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    from ocmembers.method.columns import cluster_row
    from ocmembers.method.hdbscan_t22 import t22_members
    from ocmembers.sim.catalogues import _t22_window
    from ocmembers.sim.cluster import simulate_cone

    cfg, table = _setup(data_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    import fast_hdbscan
    fast_hdbscan.HDBSCAN(min_cluster_size=40, min_samples=20).fit(np.random.default_rng(0).normal(size=(2000, 5)))
    print(json.dumps({"warmup": "fast_hdbscan import + JIT", "wall": time.perf_counter() - t0,
                      "cpu": time.process_time() - c0}), flush=True)
    for name in names:
        row = cluster_row(table, name)
        sim = simulate_cone(row, cfg)
        field = _t22_window(sim.bright if len(sim.bright) else sim.cone, row, cfg)
        out = {}
        for backend in ("hdbscan", "fast_hdbscan"):
            c = cfg.replace(methods={"hdbscan_backend": backend})
            reset_peak()
            t0, c0 = time.perf_counter(), time.process_time()
            res = t22_members(field, row, c, sky=cfg.sim.t22_sky)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            lab = res["hdbscan_label"].to_numpy() if "hdbscan_label" in res else np.full(len(res), -1)
            out[backend] = (res["probability"].to_numpy(float), lab)
            print(json.dumps({"name": name, "backend": backend, "n": int((lab > -2).sum()), "wall": wall, "cpu": cpu, "peak_mb": peak_mb(),
                              "load": _load(), "members": int((out[backend][0] > 0).sum())}), flush=True)
        (p, a), (q, b) = out["hdbscan"], out["fast_hdbscan"]
        both, either = (p > 0) & (q > 0), (p > 0) | (q > 0)
        print(json.dumps({"name": name, "agreement": True, "ari": adjusted_rand_score(a, b),
                          "labels_identical": bool(np.array_equal(a, b)),
                          "identical_members_fraction": float(both.sum() / max(either.sum(), 1)),
                          "only_hdbscan": int(((p > 0) & ~(q > 0)).sum()), "only_fast": int(((q > 0) & ~(p > 0)).sum()),
                          "p_of_differing": [round(float(v), 3) for v in np.maximum(p, q)[either & ~both]],
                          "max_dp_common": float(np.max(np.abs(p - q)[both])) if both.any() else 0.0}), flush=True)


# ---------------------------------------------------------------------------
def _run(pythonpath: str, mode: str, names: list[str], data_dir: str) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=pythonpath, TQDM_DISABLE="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--data-dir", data_dir, *names]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def _before_tree(rev: str, tmp: str) -> str | None:
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"(no 'before' rows: git archive {rev} failed: {exc})")
        return None
    subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
    return str(Path(tmp) / "src")


def bench_sim(names: list[str], repeats: int, rev: str, data_dir: str) -> None:
    print(f"\n== simulator: simulate_cone, before ({rev}) and after (this checkout); least CPU of {repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        before = _before_tree(rev, tmp)
        best: dict[tuple[str, str], dict] = {}
        for _ in range(repeats):
            for side, path in (("before", before), ("after", str(ROOT / "src"))):
                if path is None:
                    continue
                for r in _run(path, "sim", names, data_dir):
                    key = (side, r["name"])
                    if key not in best or r["cpu"] < best[key]["cpu"]:
                        best[key] = r
    print(f"{'cluster':<10s} {'sources':>8s} {'bright':>7s} | {'before wall':>11s} {'cpu':>6s} {'peak MB':>7s} | "
          f"{'after wall':>10s} {'cpu':>6s} {'peak MB':>7s} | {'cpu ratio':>9s} {'wall ratio':>10s} {'same bytes':>10s} load")
    tot = {"before": 0.0, "after": 0.0}
    for name in names:
        a, b = best.get(("before", name)), best[("after", name)]
        if a:
            tot["before"] += a["cpu"]
        tot["after"] += b["cpu"]
        fa = f"{a['wall']:11.2f} {a['cpu']:6.2f} {a['peak_mb']:7.0f}" if a else f"{'n/a':>11s} {'':6s} {'':7s}"
        ratio = f"{a['cpu'] / b['cpu']:9.2f} {a['wall'] / b['wall']:10.2f}" if a else f"{'':9s} {'':10s}"
        same = ("yes" if a["sha"] == b["sha"] else "NO") if a else "n/a"
        print(f"{name:<10s} {b['n']:8d} {b['n_bright']:7d} | {fa} | {b['wall']:10.2f} {b['cpu']:6.2f} "
              f"{b['peak_mb']:7.0f} | {ratio} {same:>10s} {b['load']}")
    if tot["before"]:
        print(f"{'all':<10s} CPU before {tot['before']:.2f} s, after {tot['after']:.2f} s: "
              f"{tot['before'] / tot['after']:.2f} times less")


def bench_t22(names: list[str], data_dir: str) -> None:
    print("\n== T22-like lists: t22_members on the simulated field window, hdbscan vs fast_hdbscan (one process)")
    rows = _run(str(ROOT / "src"), "t22", names, data_dir)
    print(f"{'cluster':<10s} {'sources':>8s} | {'hdbscan wall':>12s} {'cpu':>6s} {'peak MB':>7s} {'members':>7s} | "
          f"{'fast wall':>9s} {'cpu':>6s} {'peak MB':>7s} {'members':>7s} | {'cpu ratio':>9s} {'wall ratio':>10s} "
          f"{'ARI':>9s} {'ident.':>7s} {'max|dp|':>8s} load")
    by = {(r.get("name"), r.get("backend", "agree" if r.get("agreement") else "warm")): r for r in rows}
    for r in rows:
        if "warmup" in r:
            print(f"({r['warmup']}: {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, once per process)")
    for name in names:
        h, f, g = by[(name, "hdbscan")], by[(name, "fast_hdbscan")], by[(name, "agree")]
        print(f"{name:<10s} {h['n']:8d} | {h['wall']:12.2f} {h['cpu']:6.2f} {h['peak_mb']:7.0f} {h['members']:7d} | "
              f"{f['wall']:9.2f} {f['cpu']:6.2f} {f['peak_mb']:7.0f} {f['members']:7d} | {h['cpu'] / f['cpu']:9.2f} "
              f"{h['wall'] / f['wall']:10.2f} {g['ari']:9.6f} {g['identical_members_fraction']:7.4f} "
              f"{g['max_dp_common']:8.1e} {f['load']}")
        if g["p_of_differing"]:
            print(f"{'':<10s} members in one list only: {g['only_hdbscan']} hdbscan, {g['only_fast']} fast_hdbscan, "
                  f"p = {g['p_of_differing']}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", nargs="*", default=list(SIM_DEFAULT))
    ap.add_argument("--t22", nargs="*", default=list(T22_DEFAULT))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--before-rev", default="cc9839e~1")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--worker", choices=("sim", "t22"))
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    data_dir = args.data_dir if Path(args.data_dir).is_dir() else ""
    if args.worker == "sim":
        return worker_sim(args.names, data_dir)
    if args.worker == "t22":
        return worker_t22(args.names, data_dir)
    print(f"load {_load()} at start; {os.cpu_count()} CPUs")
    if args.sim:
        bench_sim(args.sim, args.repeats, args.before_rev, data_dir)
    if args.t22:
        bench_t22(args.t22, data_dir)


if __name__ == "__main__":
    main()
