"""Extreme deconvolution (PR22's XDGMM, issue 12 item 4), ours against astroML's, side by side.

PR22 fit ten Gaussians with full covariances in (pmra, pmdec, parallax) to every source of a
field and re-assign each star in 200 bootstrap draws. The reference is astroML's
``XDGMM`` (1.0.2; Holoien et al.'s ``xdgmm`` wraps it), the implementation in use for
this method. Rows, on the same input in one process, each with the input size, wall and
CPU time and the peak resident set so far:

- ``em step``: one EM step from the same parameters: ours
  (:meth:`ocmembers.method.xdgmm.XDGMM._e_step` + ``_m_step``: the sums of Bovy et al.'s
  Eqs. 16-18, the fused d = 3 kernel) against astroML's ``_EMstep``; the updated weights and
  means are the same equations in both, and their largest relative difference is printed
  (the covariances differ by Bovy et al.'s regularisation, which astroML leaves out);
- ``bootstrap``: the 200 re-assignments: ours (:meth:`XDGMM.bootstrap_membership`) against
  redrawing every measurement and taking the argmax of astroML's ``logprob_a``, timed on
  ``--ref-boot`` draws and scaled to 200 (printed as such);
- ``fit``: our whole fit (200 iterations at most, PR22's settings) for scale.

The input is a PR22-like field: a broad field population (four components) and a compact
cluster (0.5 % of the stars), with per-star errors of 0.02-1 mas (yr^-1) and correlations.

Usage::

    python benchmarks/bench_xdgmm.py [--n 20000 100000] [--ref-boot 1] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def field(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` stars in (pmra, pmdec, parallax) with per-star covariances (module docstring)."""
    rng = np.random.default_rng(seed)
    means = np.array([[-3.0, -4.0, 0.3], [-5.0, -2.0, 0.15], [-1.0, -6.0, 0.5], [-4.0, -3.0, 0.25],
                      [-2.0, -3.5, 0.45]])
    sds = np.array([[3.0, 3.0, 0.4], [5.0, 4.0, 0.3], [2.0, 2.5, 0.5], [6.0, 6.0, 0.6], [0.08, 0.08, 0.03]])
    frac = np.array([0.4, 0.25, 0.2, 0.145, 0.005])
    comp = rng.choice(len(frac), n, p=frac)
    x = means[comp] + sds[comp] * rng.standard_normal((n, 3))
    err = rng.uniform(0.02, 1.0, (n, 1)) * np.array([[1.0, 1.0, 0.8]])
    rho = rng.uniform(-0.3, 0.3, (n, 3))
    s = np.einsum("ni,nj->nij", err, err)
    for k, (a, b) in enumerate(((0, 1), (0, 2), (1, 2))):
        s[:, a, b] *= rho[:, k]
        s[:, b, a] = s[:, a, b]
    x = x + np.einsum("nij,nj->ni", np.linalg.cholesky(s), rng.standard_normal((n, 3)))
    return x, s


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def row(what: str, n: int, who: str, wall: float, cpu: float, note: str = "") -> None:
    print(f"{what:10s} n={n:>7d}  {who:8s} wall {wall:9.2f} s  cpu {cpu:9.2f} s  peak {_peak_mb():7.0f} MB  {note}",
          flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[20000, 100000])
    ap.add_argument("--ref-boot", type=int, default=1, help="astroML bootstrap draws timed (scaled to 200)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    from astroML.density_estimation import XDGMM as AstroXD

    from ocmembers.method.xdgmm import XDGMM, compact_component

    print(f"# bench_xdgmm: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; K = 10, d = 3")
    for n in args.n:
        x, s = field(n, args.seed)
        ours = XDGMM(n_components=10, random_state=args.seed)
        w0, m0, v0 = ours._init(x, np.random.default_rng(args.seed))
        ours._e_step(x, s, w0, m0, v0)      # compile the kernel outside the timing
        (res, wall, cpu) = timed(lambda: ours._m_step(n, *ours._e_step(x, s, w0, m0, v0)[1:], m0, v0))
        row("em step", n, "ours", wall, cpu)
        ref = AstroXD(n_components=10)
        ref.mu, ref.V, ref.alpha = m0.copy(), v0.copy(), w0.copy()
        (_, rwall, rcpu) = timed(lambda: ref._EMstep(x, s))
        dw = np.max(np.abs(ref.alpha - res[0]) / res[0])
        dm = np.max(np.abs(ref.mu - res[1]) / np.maximum(np.abs(res[1]), 1e-3))
        row("em step", n, "astroML", rwall, rcpu, f"ours {rwall / wall:.0f}x faster; weights, means agree "
            f"to {max(dw, dm):.1e} (relative)")
        (fit, wall, cpu) = timed(lambda: XDGMM(n_components=10, max_iter=200, tol=1e-6,
                                               random_state=args.seed).fit(x, s))
        row("fit", n, "ours", wall, cpu, f"{fit.n_iter_} iterations, converged={fit.converged_}")
        comp = compact_component(fit, n)
        (p, wall, cpu) = timed(lambda: fit.bootstrap_membership(x, s, comp, n_boot=200, seed=args.seed))
        row("bootstrap", n, "ours", wall, cpu, f"200 draws; {int((p >= 0.9).sum())} stars at p >= 0.9")
        ref.mu, ref.V, ref.alpha = fit.means_, fit.covariances_, fit.weights_
        chol = np.linalg.cholesky(s)
        rng = np.random.default_rng(args.seed)

        def ref_boot():
            hits = np.zeros(n)
            for _ in range(args.ref_boot):
                xb = x + np.einsum("nij,nj->ni", chol, rng.standard_normal((n, 3)))
                hits += np.argmax(ref.logprob_a(xb, s), axis=1) == comp
            return hits
        (_, rwall, rcpu) = timed(ref_boot)
        scale = 200 / args.ref_boot
        row("bootstrap", n, "astroML", rwall * scale, rcpu * scale,
            f"{args.ref_boot} draws timed, scaled to 200; ours {rwall * scale / wall:.0f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
