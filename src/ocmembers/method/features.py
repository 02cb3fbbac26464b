r"""Training features of a source (Sect. 3.1 of van Groeningen et al. 2023).

Five source features and three cluster features:

* :math:`f_R = D\,\theta` (Eq. 13), the projected radius, with :math:`D` the
  cluster distance (pc) and :math:`\theta` the angular separation from the
  cluster centre. The paper's Eq. 14 prints
  :math:`\cos\theta = \sin\delta\sin\delta_c - \cos\delta\cos\delta_c\cos(\alpha-\alpha_c)`;
  the minus sign is a typo (the spherical law of cosines has a plus). We do not
  use the arccos form at all: it loses precision at small separations, so
  :math:`\theta` comes from the Vincenty formula (``atan2``), exact at every
  separation.
* :math:`f_\mu = \sqrt{(\mu_{\alpha^*}-\mu_{\alpha^*,c})^2 + (\mu_\delta-\mu_{\delta,c})^2}` (Eq. 15).
* :math:`f_\varpi = \varpi - \varpi_c` (Eq. 16, signed).
* :math:`(f_C, f_G) = (C - C_{ic}, G - G_{ic})` (Eq. 17), where
  :math:`(C_{ic}, G_{ic})` is the point of the isochrone *curve* (the straight
  segments between the densified points of :func:`ocmembers.method.isochrones.shift_isochrone`)
  that minimises :math:`d_{ic} = \sqrt{(f_C/\Delta_C)^2 + (f_G/\Delta_G)^2}`.
* Cluster features ``a0``, ``log_age`` (CG20) and ``parallax`` (the weighted
  mean parallax of the training members), the same for all sources of a cluster.

Nearest point on the curve
--------------------------
In the space scaled by :math:`(1/\Delta_C, 1/\Delta_G)` the distance is
Euclidean. A ``scipy.spatial.cKDTree`` of the scaled curve points gives each
star's nearest vertex at distance :math:`d_v`. The closest point of the curve
lies on a segment of scaled length :math:`\le h` (the longest segment) at
distance :math:`d^* \le d_v`; if it is the foot of the perpendicular, the
nearer end of that segment is within :math:`\sqrt{d^{*2} + h^2/4} \le
\sqrt{d_v^2 + h^2/4}` of the star (and if it is an end, within :math:`d_v`).
The search therefore takes the :math:`k` nearest vertices, increasing
:math:`k` for the stars whose :math:`k`-th vertex is not beyond that radius, and projects
the star exactly onto the (at most two) segments at each of these vertices
(one compiled pass over the stars, :func:`_best_on_segments`).
The result is exact (not limited to the vertices) and costs
:math:`O(N \log n)`; nothing is computed star by point. It accepts flat
arrays of any length (the Monte Carlo stage passes all samples at once) and
works in chunks to bound memory.

Eq. 5 (candidate condition) uses per-star denominators
:math:`s_C = 3\sigma_C + \Delta_C`, :math:`s_G = 3\sigma_G + \Delta_G`. The
condition is whether the isochrone passes through the star's ellipse of
semi-axes :math:`(s_C, s_G)`, i.e. whether the minimum over the curve of the
*per-star* scaled distance is below 1 — the nearest point is taken in that
per-star metric, as the authors' tool does (its ``isochrone_features_function``
with ``use_source_errors=True`` scales the curve by each star's
:math:`3\sigma + \Delta` before taking the nearest point).
:func:`isochrone_condition` decides it exactly: with
:math:`a = s_C/\Delta_C \ge 1`, :math:`b = s_G/\Delta_G \ge 1` the per-star
distance lies between :math:`d_\Delta/\max(a,b)` and :math:`d_\Delta`, so stars
whose Eq. 17 nearest point already lies inside the ellipse pass, stars with
:math:`d_\Delta \ge \max(a, b)` fail, and only the remaining stars are checked
against every segment with a vertex within :math:`\max(a,b) + h/2` (a KD-tree
ball query).

References
----------
van Groeningen et al. 2023, A&A 675, A68, Eqs. 5 and 13-17.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ocmembers.method.isochrones import IsochroneCurve

__all__ = [
    "FEATURES", "CLUSTER_FEATURES", "angular_separation", "projected_radius", "pm_separation",
    "parallax_separation", "nearest_on_curve", "isochrone_separation", "isochrone_condition",
    "source_features", "add_features",
]

FEATURES: tuple[str, ...] = ("f_r", "f_pm", "f_plx", "f_c", "f_g")
CLUSTER_FEATURES: tuple[str, ...] = ("a0", "log_age", "parallax")

_CHUNK = 1 << 17
_MAX_TREES = 16
#: KD-tree queries of at least this many points use every CPU (``cKDTree.query(workers=-1)``,
#: the same answers); smaller ones are not worth the threads.
_PARALLEL_QUERY = 1 << 14
#: Points per KD-tree leaf: for curves of ~2000 vertices and 10^6 queries of k = 4, 64 is 25%
#: faster than scipy's default 16 (the same neighbours: the search is exact).
_LEAF_SIZE = 64


def angular_separation(ra: np.ndarray, dec: np.ndarray, ra_c: float, dec_c: float) -> np.ndarray:
    """Angular separation (radians) by the Vincenty formula; inputs in degrees."""
    ra = np.deg2rad(np.asarray(ra, dtype=float))
    dec = np.deg2rad(np.asarray(dec, dtype=float))
    ra_c, dec_c = np.deg2rad(ra_c), np.deg2rad(dec_c)
    dra = ra - ra_c
    sd, cd = np.sin(dec), np.cos(dec)
    sdc, cdc = np.sin(dec_c), np.cos(dec_c)
    num = np.hypot(cd * np.sin(dra), cdc * sd - sdc * cd * np.cos(dra))
    den = sdc * sd + cdc * cd * np.cos(dra)
    return np.arctan2(num, den)


def projected_radius(ra: np.ndarray, dec: np.ndarray, params: Any) -> np.ndarray:
    """:math:`f_R = D\\,\\theta` (Eqs. 13-14), pc; ``params`` has ``ra, dec, dist_pc``."""
    return params.dist_pc * angular_separation(ra, dec, params.ra, params.dec)


def pm_separation(pmra: np.ndarray, pmdec: np.ndarray, params: Any) -> np.ndarray:
    """:math:`f_\\mu` (Eq. 15), mas/yr; ``params`` has ``pmra, pmdec``."""
    return np.hypot(np.asarray(pmra, float) - params.pmra, np.asarray(pmdec, float) - params.pmdec)


def parallax_separation(parallax: np.ndarray, params: Any) -> np.ndarray:
    """:math:`f_\\varpi = \\varpi - \\varpi_c` (Eq. 16), mas; ``params`` has ``parallax``."""
    return np.asarray(parallax, float) - params.parallax


# ---------------------------------------------------------------------------
# Geometry of the curve
# ---------------------------------------------------------------------------
def _subdivide(pts: np.ndarray, connected: np.ndarray, max_len: float) -> tuple[np.ndarray, np.ndarray]:
    """Split joined segments longer than ``max_len`` (the polyline itself is unchanged)."""
    n = len(pts)
    if n < 2:
        return pts, connected
    length = np.hypot(np.diff(pts[:, 0]), np.diff(pts[:, 1]))
    n_sub = np.where(connected, np.maximum(1, np.ceil(length / max_len)).astype(int), 1)
    counts = np.append(n_sub, 1)
    start = np.repeat(np.arange(n), counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    frac = (step / np.repeat(counts, counts))[:, None]
    end = np.minimum(start + 1, n - 1)
    new = pts[start] + frac * (pts[end] - pts[start])
    # A new point is joined to the next one unless it is the last point of an unjoined gap.
    conn = np.ones(len(new) - 1, dtype=bool)
    last_of = np.cumsum(counts)[:-1] - 1          # index of the last point before original point i+1
    conn[last_of] = connected
    return new, conn


def _scaled(curve: IsochroneCurve, sc: float, sg: float) -> tuple[cKDTree, np.ndarray, np.ndarray, float]:
    """KD-tree of the curve in the metric scaled by (1/sc, 1/sg), with segments of similar length.

    Joined segments are split to at most the median segment length, so that
    the vertex spacing is nearly uniform and few neighbours bound the search.
    """
    key = ("tree", float(sc), float(sg))
    hit = curve._cache.get(key)
    if hit is None:
        pts = np.column_stack([curve.colour / sc, curve.g / sg])
        connected = curve.connected
        seg = np.hypot(np.diff(pts[:, 0]), np.diff(pts[:, 1]))
        if connected.any():
            target = float(np.median(seg[connected]))
            if target > 0:
                pts, connected = _subdivide(pts, connected, target)
            seg = np.hypot(np.diff(pts[:, 0]), np.diff(pts[:, 1]))
            h = float(seg[connected].max())
        else:
            h = 0.0
        if len(curve._cache) >= _MAX_TREES:
            curve._cache.clear()
        hit = (cKDTree(pts, leafsize=_LEAF_SIZE), pts, connected, h)
        curve._cache[key] = hit
    return hit


def _project(px, py, ax, ay, bx, by):
    """Closest point of segments a-b to p (broadcast), and the squared distance."""
    ux, uy = bx - ax, by - ay
    len2 = ux * ux + uy * uy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(len2 > 0, ((px - ax) * ux + (py - ay) * uy) / np.where(len2 > 0, len2, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    qx, qy = ax + t * ux, ay + t * uy
    return qx, qy, (px - qx) ** 2 + (py - qy) ** 2


def _neighbours(idx: np.ndarray, connected: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Other ends of the segments before and after each vertex (the vertex itself if none)."""
    prev_ok = idx > 0
    prev_ok &= connected[np.clip(idx - 1, 0, max(n - 2, 0))] if n > 1 else False
    next_ok = idx < n - 1
    next_ok &= connected[np.clip(idx, 0, max(n - 2, 0))] if n > 1 else False
    return np.where(prev_ok, idx - 1, idx), np.where(next_ok, idx + 1, idx)


@numba.njit(cache=True, fastmath=False, nogil=True)
def _best_on_segments_kernel(x, y, idx, pts, connected, qx_out, qy_out, dd_out):  # pragma: no cover
    n = pts.shape[0]
    k = idx.shape[1]
    for r in range(x.shape[0]):
        px, py = x[r], y[r]
        best, bx_best, by_best = np.inf, np.nan, np.nan
        first = True
        for side in range(2):          # the segments before, then after, every vertex
            for j in range(k):
                i = idx[r, j]
                # the other end of the segment, or the vertex itself (as _neighbours)
                if side == 0:
                    e = i - 1 if i > 0 and connected[i - 1] else i
                else:
                    e = i + 1 if i < n - 1 and connected[i] else i
                ax, ay = pts[i, 0], pts[i, 1]
                ux, uy = pts[e, 0] - ax, pts[e, 1] - ay
                len2 = ux * ux + uy * uy
                t = ((px - ax) * ux + (py - ay) * uy) / len2 if len2 > 0 else 0.0
                t = min(max(t, 0.0), 1.0)
                qx, qy = ax + t * ux, ay + t * uy
                d = (px - qx) * (px - qx) + (py - qy) * (py - qy)
                if first or d < best:     # the first minimum, as numpy's argmin
                    best, bx_best, by_best, first = d, qx, qy, False
        qx_out[r], qy_out[r], dd_out[r] = bx_best, by_best, best


def _best_on_segments(x: np.ndarray, y: np.ndarray, idx: np.ndarray, pts: np.ndarray,
                      connected: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closest point to each (x, y) of the (at most two) segments at each of its vertices
    ``idx`` (m, k), and its squared distance: one compiled pass (no (m, 2k) temporaries)."""
    m = len(x)
    qx, qy, dd = np.empty(m), np.empty(m), np.empty(m)
    _best_on_segments_kernel(np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64),
                             np.ascontiguousarray(idx, dtype=np.int64), np.ascontiguousarray(pts, dtype=np.float64),
                             np.ascontiguousarray(connected, dtype=np.bool_), qx, qy, dd)
    return qx, qy, dd


def nearest_on_curve(colour: np.ndarray, g: np.ndarray, curve: IsochroneCurve, scale_c: float,
                     scale_g: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point of ``curve`` nearest to each (colour, g) in the metric scaled by (1/scale_c, 1/scale_g).

    Parameters
    ----------
    colour, g : array_like
        Flat arrays of any (equal) length; NaN inputs give NaN outputs.
    curve : IsochroneCurve
    scale_c, scale_g : float
        Positive scales (:math:`\\Delta_C`, :math:`\\Delta_G` for Eq. 17).

    Returns
    -------
    c_ic, g_ic, d : ndarray
        The nearest point (unscaled) and the scaled distance :math:`d_{ic}`.
    """
    if not (scale_c > 0 and scale_g > 0):
        raise ValueError(f"curve distance scales must be positive, got {scale_c}, {scale_g}")
    colour = np.asarray(colour, dtype=float).ravel()
    g = np.asarray(g, dtype=float).ravel()
    if colour.shape != g.shape:
        raise ValueError(f"colour and g differ in length ({colour.size} and {g.size})")
    tree, pts, connected, h = _scaled(curve, scale_c, scale_g)
    n_pts = len(pts)
    c_ic = np.full(colour.size, np.nan)
    g_ic = np.full(colour.size, np.nan)
    dist = np.full(colour.size, np.nan)
    ok = np.flatnonzero(np.isfinite(colour) & np.isfinite(g))
    for start in range(0, ok.size, _CHUNK):
        sel = ok[start:start + _CHUNK]
        x, y = colour[sel] / scale_c, g[sel] / scale_g
        todo = np.arange(sel.size)
        k = min(4, n_pts)
        while todo.size:
            d, idx = tree.query(np.column_stack([x[todo], y[todo]]), k=k,
                                workers=-1 if todo.size >= _PARALLEL_QUERY else 1)
            d, idx = d.reshape(todo.size, -1), idx.reshape(todo.size, -1)
            need = (d[:, -1] <= np.sqrt(d[:, 0] ** 2 + 0.25 * h * h)) & (k < n_pts)
            done = ~need
            if done.any():
                rows = todo[done]
                qx, qy, dd = _best_on_segments(x[rows], y[rows], idx[done], pts, connected)
                c_ic[sel[rows]] = qx * scale_c
                g_ic[sel[rows]] = qy * scale_g
                dist[sel[rows]] = np.sqrt(dd)
            todo = todo[need]
            k = min(4 * k, n_pts)
    return c_ic, g_ic, dist


def isochrone_separation(colour: np.ndarray, g: np.ndarray, curve: IsochroneCurve, delta_c: float,
                         delta_g: float) -> tuple[np.ndarray, np.ndarray]:
    """:math:`(f_C, f_G) = (C - C_{ic}, G - G_{ic})` of Eq. 17 (mag).

    ``colour`` and ``g`` are arrays of any (equal) shape, e.g. (candidates,
    samples) in the Monte Carlo stage; the results have that shape.
    """
    colour = np.asarray(colour, float)
    g = np.asarray(g, float)
    c_ic, g_ic, _ = nearest_on_curve(colour, g, curve, delta_c, delta_g)
    return colour - c_ic.reshape(colour.shape), g - g_ic.reshape(g.shape)


def isochrone_condition(colour: np.ndarray, g: np.ndarray, colour_error: np.ndarray, g_error: np.ndarray,
                        curve: IsochroneCurve, delta_c: float, delta_g: float, n_sigma: float = 3.0,
                        *, chunk: int = 2048) -> np.ndarray:
    """Eq. 5: does the curve pass within the star's ellipse of semi-axes (n σ_C + Δ_C, n σ_G + Δ_G)?

    Exact (see the module docstring for the per-star metric and the bounds
    that keep the search small). NaN inputs give ``False``.
    """
    colour = np.asarray(colour, dtype=float).ravel()
    g = np.asarray(g, dtype=float).ravel()
    sc = n_sigma * np.asarray(colour_error, float).ravel() + delta_c
    sg = n_sigma * np.asarray(g_error, float).ravel() + delta_g
    c_ic, g_ic, d0 = nearest_on_curve(colour, g, curve, delta_c, delta_g)
    with np.errstate(invalid="ignore"):
        d_star = np.hypot((colour - c_ic) / sc, (g - g_ic) / sg)
    passed = d_star < 1.0          # False for NaN (missing magnitudes or errors)
    a, b = sc / delta_c, sg / delta_g
    big = np.maximum(a, b)
    ambiguous = np.flatnonzero(~passed & np.isfinite(d0) & (d0 < big) & np.isfinite(big))
    if ambiguous.size == 0:
        return passed
    tree, pts, connected, h = _scaled(curve, delta_c, delta_g)
    n = len(pts)
    for start in range(0, ambiguous.size, chunk):
        rows = ambiguous[start:start + chunk]
        x, y = colour[rows] / delta_c, g[rows] / delta_g
        lists = tree.query_ball_point(np.column_stack([x, y]), big[rows] + 0.5 * h + 1e-12)
        counts = np.fromiter((len(v) for v in lists), dtype=np.int64, count=len(lists))
        if counts.sum() == 0:
            continue
        owner = np.repeat(np.arange(rows.size), counts)
        idx = np.concatenate([np.asarray(v, dtype=np.int64) for v in lists if len(v)])
        b1, b2 = _neighbours(idx, connected, n)
        ai, bi = a[rows][owner], b[rows][owner]
        px, py = x[owner] / ai, y[owner] / bi
        ax, ay = pts[idx, 0] / ai, pts[idx, 1] / bi
        _, _, d1 = _project(px, py, ax, ay, pts[b1, 0] / ai, pts[b1, 1] / bi)
        _, _, d2 = _project(px, py, ax, ay, pts[b2, 0] / ai, pts[b2, 1] / bi)
        best = np.full(rows.size, np.inf)
        np.minimum.at(best, owner, np.minimum(d1, d2))
        passed[rows] = best < 1.0
    return passed


# ---------------------------------------------------------------------------
# All five features
# ---------------------------------------------------------------------------
def source_features(table: pd.DataFrame, params: Any, curve: IsochroneCurve) -> np.ndarray:
    """The five source features (:data:`FEATURES` order), shape ``(n, 5)``.

    ``table`` has ``ra, dec, pmra, pmdec, parallax, g_rp, phot_g_mean_mag``;
    ``params`` is a :class:`ocmembers.method.selection.ClusterParams`.
    """
    f_r = projected_radius(table["ra"].to_numpy(float), table["dec"].to_numpy(float), params)
    f_pm = pm_separation(table["pmra"].to_numpy(float), table["pmdec"].to_numpy(float), params)
    f_plx = parallax_separation(table["parallax"].to_numpy(float), params)
    f_c, f_g = isochrone_separation(table["g_rp"].to_numpy(float), table["phot_g_mean_mag"].to_numpy(float),
                                    curve, params.delta_c, params.delta_g)
    return np.column_stack([f_r, f_pm, f_plx, f_c, f_g])


def add_features(table: pd.DataFrame, params: Any, curve: IsochroneCurve) -> pd.DataFrame:
    """A copy of ``table`` with the :data:`FEATURES` columns."""
    out = table.copy()
    values = source_features(table, params, curve) if len(table) else np.empty((0, len(FEATURES)))
    for i, name in enumerate(FEATURES):
        out[name] = values[:, i]
    return out
