"""Benchmark of the Monte Carlo membership probabilities (Sect. 3.4).

For synthetic candidate sets of 1427 stars (the size of a rich cluster's
candidate list) and 10,000 stars, each with ``n_samples`` = 100 samples:
wall time of the three parts of :func:`ocmembers.method.membership.membership_probabilities`
(sampling + feature recomputation incl. the isochrone search, support-set
drawing, the network), samples per second, and peak memory (Python/NumPy
allocations by ``tracemalloc``; the process's peak resident set by
``resource``; each case runs in a fresh subprocess so peaks do not mix).
It also measures the machine's float32 matmul rate with torch (a large
square GEMM, and the network's own shape, (batch*set, 64) @ (64, 64)) and
compares the network's achieved rate with it (``flops_per_set`` = 0.387
MFLOP per set evaluation).

Usage::

    python benchmarks/bench_membership.py [--samples 100] [--sizes 1427 10000] [--threads 0] [--batch N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch


def synthetic(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Candidates with DR3-like errors and correlations around a cluster at 1 mas."""
    g = rng.uniform(10, 20.5, n)
    sig_plx = 0.02 * 10 ** (0.2 * np.clip(g - 15, 0, None))
    df = pd.DataFrame({
        "source_id": np.arange(n, dtype=np.int64),
        "parallax": rng.normal(1.0, 0.3, n), "pmra": rng.normal(-5, 1, n), "pmdec": rng.normal(2, 1, n),
        "parallax_error": sig_plx, "pmra_error": 1.2 * sig_plx, "pmdec_error": 1.1 * sig_plx,
        "parallax_pmra_corr": rng.uniform(-0.5, 0.5, n), "parallax_pmdec_corr": rng.uniform(-0.3, 0.3, n),
        "pmra_pmdec_corr": rng.uniform(-0.4, 0.4, n),
        "phot_g_mean_mag": g, "phot_g_mean_mag_error": 0.0003 * 10 ** (0.2 * np.clip(g - 13, 0, None)),
        "g_rp": 0.3 + 0.06 * (g - 10) + rng.normal(0, 0.05, n),
    })
    df["g_rp_error"] = 3 * df["phot_g_mean_mag_error"] + 0.002
    return df


def curve():
    from ocmembers.method.isochrones import IsochroneCurve
    g = np.linspace(5, 22, 1500)                    # a main sequence with a bend, 1500 points
    c = 0.3 + 0.06 * (g - 10) + 0.1 * np.tanh(g - 13)
    return IsochroneCurve(colour=c, g=g, connected=np.ones(g.size - 1, bool))


def model():
    from ocmembers.method.classifier import DeepSetsClassifier
    from ocmembers.method.network import DeepSetsNet
    try:
        from ocmembers.sources.vg23 import load_vg23
        return load_vg23(), "vg23 DS10_v02"
    except Exception:  # noqa: BLE001 - the timing is the same with random weights
        torch.manual_seed(0)
        return DeepSetsClassifier.from_network(DeepSetsNet(), np.zeros(8), np.ones(8)), "random weights"


def run_case(n: int, n_samples: int, threads: int, batch: int) -> dict:
    from ocmembers.method.membership import feature_function, membership_probabilities
    from ocmembers.method.network import flops_per_set
    rng = np.random.default_rng(1)
    df = synthetic(n, rng)
    params = SimpleNamespace(pmra=-5.0, pmdec=2.0, parallax=1.0, delta_c=0.15, delta_g=1.2)
    fn = feature_function(params, curve())
    base = fn({k: df[k].to_numpy() for k in ("parallax", "pmra", "pmdec", "phot_g_mean_mag", "g_rp")})
    for k, v in base.items():
        df[k] = v
    df["f_r"] = rng.uniform(0, 50, n)
    members = np.column_stack([rng.uniform(0, 5, 120), rng.uniform(0, 0.3, 120), rng.normal(0, 0.05, 120),
                               rng.normal(0, 0.02, 120), rng.normal(0, 0.1, 120)])
    clf, which = model()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    p = membership_probabilities(df, members, np.array([0.5, 8.5, 1.0]), clf, fn, n_samples=n_samples,
                                 seed=2023, threads=threads or None, timings=t,
                                 batch_size=batch)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    _, peak_py = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n_sets = n * n_samples
    return {"n": n, "n_samples": n_samples, "model": which, "wall_s": wall, "cpu_s": cpu, **t,
            "samples_per_s": n_sets / wall, "network_gflops": n_sets * flops_per_set() / t["network"] / 1e9,
            "peak_numpy_mb": peak_py / 2 ** 20, "peak_rss_mb": rss / 1024, "rss_before_mb": rss0 / 1024,
            "mean_p": float(np.nanmean(p)), "threads": torch.get_num_threads() if not threads else threads}


def matmul_rate(threads: int) -> dict:
    if threads:
        torch.set_num_threads(threads)
    out = {}
    for label, (m, k, n) in {"square 1024": (1024, 1024, 1024),
                             "network (655360x64)@(64x64)": (655360, 64, 64)}.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        torch.mm(a, b)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 1.0:
            torch.mm(a, b)
            reps += 1
        out[label] = 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1427, 10000])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--batch", type=int, default=None,
                    help="sets per network call (default: [membership] batch_size)")
    ap.add_argument("--case", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.batch is None:
        from ocmembers import load_config
        args.batch = load_config().membership.batch_size
    if args.case is not None:
        print(json.dumps(run_case(args.case, args.samples, args.threads, args.batch)))
        return
    rows = []
    for n in args.sizes:
        res = subprocess.run([sys.executable, __file__, "--case", str(n), "--samples", str(args.samples),
                              "--threads", str(args.threads), "--batch", str(args.batch)], capture_output=True, text=True, check=True,
                             env=os.environ | {"PYTHONWARNINGS": "ignore"})
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    rates = matmul_rate(args.threads)
    from ocmembers.method.network import flops_per_set
    print(f"load average {os.getloadavg()[0]:.1f}; machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {rows[0]['threads']} torch thread(s), "
          f"{args.batch} sets per network call; "
          f"model: {rows[0]['model']}; {flops_per_set() / 1e6:.3f} MFLOP per set evaluation")
    print("matmul rate (float32): " + ", ".join(f"{k}: {v:.1f} GFLOP/s" for k, v in rates.items()))
    hdr = (f"{'candidates':>10} {'samples':>8} {'sampling+features s':>20} {'support sets s':>15} "
           f"{'network s':>10} {'total s':>8} {'CPU s':>7} {'samples/s':>10} {'net GFLOP/s':>11} {'of GEMM':>8} "
           f"{'peak NumPy MB':>13} {'peak RSS MB':>11}")
    print(hdr)
    print("-" * len(hdr))
    peak = max(rates.values())
    for r in rows:
        print(f"{r['n']:>10} {r['n'] * r['n_samples']:>8} {r['sampling_features']:>20.2f} "
              f"{r['support_sets']:>15.2f} {r['network']:>10.2f} {r['wall_s']:>8.2f} {r['cpu_s']:>7.1f} "
              f"{r['samples_per_s']:>10.0f} {r['network_gflops']:>11.1f} {r['network_gflops'] / peak:>8.0%} "
              f"{r['peak_numpy_mb']:>13.0f} {r['peak_rss_mb']:>11.0f}")


if __name__ == "__main__":
    main()
