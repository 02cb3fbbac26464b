r"""The ideal (Bayes) membership classifier: densities convolved with each star's errors.

Where the generating model is known (the simulated sky), the best classifier
any method can reach is the posterior

.. math::

    P(c \mid x_i, S_i) = \frac{\pi f_c(x_i \mid S_i)}{\pi f_c(x_i \mid S_i) + (1 - \pi) f_f(x_i \mid S_i)},

with :math:`\pi` the proportion of members among the candidates and
:math:`f_c`, :math:`f_f` the densities of the cluster and of the field in the
observed space at the star's measured values :math:`x_i`, both convolved
with the star's own error covariance :math:`S_i`. Each density is a kernel
density estimate from a noise-free draw :math:`\{y_j\}` of the population
(the draws are made by :mod:`ocmembers.sim.ideal`):

.. math::

    f(x_i \mid S_i) \approx \frac{1}{W}\sum_j w_j\,\mathcal N(x_i - y_j;\ S_i + H),

:math:`H` a diagonal bandwidth, :math:`W` the normalisation (the caller's:
the number of the draw's noisy observations inside the candidates' region,
so that :math:`f` is a density over the candidates). The sum is
:func:`kernel_sum`: a KD-tree (:class:`scipy.spatial.cKDTree`) finds the draw
points inside :math:`k` marginal standard deviations of each star, in
groups of stars of similar kernel size; where a group would pair with more
than ``pair_budget`` points on average, the draw is thinned at random and
the kept points weighted up (unbiased, and the cost bounded). Coordinates a
star lacks (NaN, e.g. a colour without BP/RP) are marginalised: the kernel
leaves them out, which cancels in the ratio.

:func:`calibration_table`: the fraction of true members per bin of a
method's p against the mean p (a calibrated p lies on the diagonal).

Pure functions: no configuration, no paths.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

__all__ = ["kernel_sum", "density_ratio", "posterior", "calibration_table", "scott_bandwidth", "CALIBRATION_EDGES"]

#: Draw points the support of a group of stars is counted on (every k-th point beyond).
COUNT_POINTS = 20_000
#: Bins of p of the calibration table.
CALIBRATION_EDGES: tuple[float, ...] = tuple(np.round(np.linspace(0.0, 1.0, 11), 10))


def _groups(log_size: np.ndarray, n_groups: int) -> np.ndarray:
    """Group labels of stars by quantiles of their (log) kernel size."""
    if log_size.size == 0:
        return np.zeros(0, int)
    qs = np.unique(np.quantile(log_size, np.linspace(0, 1, n_groups + 1)[1:-1]))
    return np.searchsorted(qs, log_size, side="right")


def kernel_sum(points: np.ndarray, query: np.ndarray, cov: np.ndarray, bandwidth: Sequence[float], *,
               weights: np.ndarray | None = None, k_sigma: float = 4.0, pair_budget: int = 3000,
               n_groups: int = 8, seed: int = 0, chunk: int = 500_000,
               max_pairs: int = 20_000_000) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\sum_j w_j \mathcal N(x_i - y_j; S_i + H)` for every query star :math:`i`.

    Parameters
    ----------
    points : (N, d) array
        The noise-free draw :math:`y_j` (finite).
    query : (M, d) array
        The stars' measured values; NaN marks a coordinate the star lacks (marginalised).
    cov : (M, d, d) array
        Each star's error covariance :math:`S_i` (zeros where a coordinate has no error).
    bandwidth : (d,) sequence
        Standard deviations of the diagonal bandwidth :math:`H` (> 0).
    weights : (N,) array, optional
        Weights :math:`w_j` (1).
    k_sigma : float
        Draw points farther than ``k_sigma`` marginal standard deviations (in any coordinate)
        from a star are left out (a relative contribution below :math:`e^{-k^2/2}`).
    pair_budget : int
        Mean number of draw points per star above which a group's draw is thinned.
    n_groups : int
        Groups of stars by kernel size (each its own scaled tree).
    seed : int
        The thinning's random stream.
    chunk : int
        Pairs evaluated at a time.
    max_pairs : int
        Pairs found at a time: the stars of a group are taken in runs whose
        expected pairs (their support counts times the thinning) stay below it,
        which bounds the memory on crowded cones (a group of 60,000 stars at
        the pair budget is 180 million pairs, 6 GB and more at once). The sums
        are the same up to the order of the additions.

    Returns
    -------
    total : (M,) array
        The kernel sums.
    n_near : (M,) array
        The number of draw points within the ``k_sigma`` box of each star (before thinning;
        counted on every k-th point of draws larger than ``COUNT_POINTS``, times k):
        a measure of the estimate's support.
    """
    y = np.asarray(points, dtype=float)
    x = np.asarray(query, dtype=float)
    s = np.asarray(cov, dtype=float)
    h = np.asarray(bandwidth, dtype=float)
    m, d = x.shape
    if y.ndim != 2 or y.shape[1] != d or s.shape != (m, d, d) or h.shape != (d,):
        raise ValueError(f"kernel_sum: shapes points {y.shape}, query {x.shape}, cov {s.shape}, "
                         f"bandwidth {h.shape} do not agree")
    if np.any(h <= 0):
        raise ValueError("kernel_sum: every bandwidth must be > 0")
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    total = np.zeros(m)
    n_near = np.zeros(m, dtype=np.int64)
    if m == 0 or len(y) == 0:
        return total, n_near
    rng = np.random.default_rng(seed)
    c = s + np.diag(h ** 2)[None, :, :]
    finite = np.isfinite(x)
    patterns, pattern_of = np.unique(finite, axis=0, return_inverse=True)
    pattern_of = np.asarray(pattern_of).reshape(-1)
    for p_idx, pattern in enumerate(patterns):
        dims = np.flatnonzero(pattern)
        stars = np.flatnonzero(pattern_of == p_idx)
        if dims.size == 0:
            total[stars] = w.sum()    # nothing observed: the kernel is 1 everywhere
            n_near[stars] = len(y)
            continue
        cs = c[np.ix_(stars, dims, dims)]
        std = np.sqrt(np.einsum("ikk->ik", cs))
        inv = np.linalg.inv(cs)
        _, logdet = np.linalg.slogdet(cs)
        log_norm = -0.5 * (dims.size * np.log(2 * np.pi) + logdet)
        groups = _groups(np.log(std / h[dims]).sum(axis=1), n_groups)
        yd = y[:, dims]
        xd = x[:, dims]
        # the terms of the quadratic form that are not 0 for every star (block covariances)
        kk, ll = np.triu_indices(dims.size)
        used = np.any(inv[:, kk, ll] != 0, axis=0)
        terms = [(int(k), int(l), inv[:, k, l] * (1.0 if k == l else 2.0)) for k, l in zip(kk[used], ll[used])]
        for g in np.unique(groups):
            local = np.flatnonzero(groups == g)
            idx = stars[local]
            scale = std[local].max(axis=0)
            xs = x[np.ix_(idx, dims)] / scale
            # the support, counted on every stride-th point (exact below COUNT_POINTS points)
            stride = max(1, len(yd) // COUNT_POINTS)
            counts = cKDTree(yd[::stride] / scale).query_ball_point(xs, r=k_sigma, p=np.inf, return_length=True)
            counts = np.asarray(counts, dtype=np.int64) * stride
            n_near[idx] = counts
            frac = min(1.0, pair_budget * len(idx) / max(float(np.sum(counts)), 1.0))
            if frac < 1.0:
                sub = np.flatnonzero(rng.random(len(yd)) < frac)
                wsub = w[sub] / frac
            else:
                sub = np.arange(len(yd))
                wsub = w
            tree = cKDTree(yd[sub] / scale)
            # runs of stars whose expected pairs stay below max_pairs (at least one star a run)
            expected = np.cumsum(counts * frac)
            cuts = np.searchsorted(expected, np.arange(max_pairs, expected[-1], max_pairs), side="right")
            bounds = np.unique(np.concatenate([[0], cuts, [len(idx)]]))
            for r0, r1 in zip(bounds[:-1], bounds[1:]):
                pairs = cKDTree(xs[r0:r1]).sparse_distance_matrix(tree, k_sigma, p=np.inf, output_type="ndarray")
                qi, pj = pairs["i"].astype(np.int64) + r0, pairs["j"].astype(np.int64)
                del pairs
                for start in range(0, qi.size, chunk):
                    a, b = qi[start:start + chunk], pj[start:start + chunk]
                    la, sb = local[a], sub[b]
                    delta = xd[idx[a]] - yd[sb]
                    maha = np.zeros(a.size)
                    for k, l, coef in terms:
                        maha += coef[la] * delta[:, k] * delta[:, l]
                    val = wsub[b] * np.exp(log_norm[la] - 0.5 * maha)
                    total[idx] += np.bincount(a, weights=val, minlength=len(idx))
    return total, n_near


def density_ratio(f_c: np.ndarray, f_f: np.ndarray) -> np.ndarray:
    """:math:`f_c / f_f`; ``inf`` where only the field density is 0, NaN where both are."""
    f_c, f_f = np.asarray(f_c, dtype=float), np.asarray(f_f, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f_f > 0, f_c / np.where(f_f > 0, f_f, 1.0), np.where(f_c > 0, np.inf, np.nan))


def posterior(pi: float | np.ndarray, f_c: np.ndarray, f_f: np.ndarray) -> np.ndarray:
    r""":math:`\pi f_c / (\pi f_c + (1-\pi) f_f)`; 0 where both densities are 0 (no draw point of
    either population near the star: the compact cluster's density there is the smaller)."""
    pi = np.asarray(pi, dtype=float)
    if np.any((pi < 0) | (pi > 1)):
        raise ValueError("posterior: the proportion pi must lie in [0, 1]")
    f_c, f_f = np.asarray(f_c, dtype=float), np.asarray(f_f, dtype=float)
    num = pi * f_c
    den = num + (1 - pi) * f_f
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def calibration_table(probability: np.ndarray, is_member: np.ndarray,
                      edges: Sequence[float] = CALIBRATION_EDGES) -> pd.DataFrame:
    """The fraction of true members per bin of p, against the mean p of the bin.

    Bins are ``[lo, hi)``, the last one closed (p = 1 falls in it).

    Returns
    -------
    DataFrame
        ``lo, hi, n, mean_p, frac_true, frac_err`` (binomial standard error
        :math:`\\sqrt{f(1-f)/n}`), ``gap`` (``frac_true - mean_p``); NaN in empty bins.
    """
    p = np.asarray(probability, dtype=float)
    t = np.asarray(is_member, dtype=bool)
    if p.shape != t.shape:
        raise ValueError("calibration_table: probability and is_member differ in length")
    e = np.asarray(edges, dtype=float)
    b = np.clip(np.searchsorted(e, p, side="right") - 1, 0, e.size - 2)
    ok = np.isfinite(p)
    n = np.bincount(b[ok], minlength=e.size - 1).astype(float)
    sp = np.bincount(b[ok], weights=p[ok], minlength=e.size - 1)
    st = np.bincount(b[ok], weights=t[ok].astype(float), minlength=e.size - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(n > 0, sp / np.where(n > 0, n, 1), np.nan)
        frac = np.where(n > 0, st / np.where(n > 0, n, 1), np.nan)
        err = np.where(n > 0, np.sqrt(frac * (1 - frac) / np.where(n > 0, n, 1)), np.nan)
    return pd.DataFrame({"lo": e[:-1], "hi": e[1:], "n": n.astype(int), "mean_p": mean_p, "frac_true": frac,
                         "frac_err": err, "gap": frac - mean_p})


def scott_bandwidth(points: np.ndarray, factor: float = 1.0, floor: float = 1e-6) -> np.ndarray:
    r"""Per-coordinate bandwidth ``factor`` :math:`\times\,n^{-1/(d+4)}\,\hat\sigma` (Scott's rule with a
    robust :math:`\hat\sigma = 1.4826\,{\rm MAD}`), at least ``floor``."""
    y = np.asarray(points, dtype=float)
    n, d = y.shape
    if n < 2:
        return np.full(d, 1.0)
    mad = np.median(np.abs(y - np.median(y, axis=0)), axis=0)
    return np.maximum(factor * n ** (-1.0 / (d + 4)) * 1.4826 * mad, floor)
