r"""Cluster parameters and the candidate selection (Sects. 2.3-2.4 of van Groeningen et al. 2023).

Cluster parameters from the training members (:func:`cluster_parameters`)
-------------------------------------------------------------------------
* Centre: the direction of the mean unit vector of the members (the authors
  average ra and dec, which fails across ra = 0).
* Mean proper motion and parallax: weighted means with weights
  :math:`1/\sigma_j^2` (the authors' ``most_likely_value``).
* Errors of the means (Eq. 7). The paper prints
  :math:`\sigma_{\mu_i,c} = 1/\sqrt{\sum_j 1/\sigma_{\mu_i,j}}`, which is not
  even dimensionally right; the error of a weighted mean with weights
  :math:`1/\sigma_j^2` is :math:`\sigma_c = 1/\sqrt{\sum_j 1/\sigma_j^2}`, and
  that is what the authors' code computes
  (``np.sqrt(1 / np.sum(1 / members['pmra_error'] ** 2))``) and what we use.
* Member dispersions :math:`\sigma_m`: the standard deviation of the members
  (``ddof = 0``, as ``np.std`` in the authors' code).
* Eq. 6: :math:`\Delta_\mu = \sqrt{(3\sigma_{\mu_{\alpha*},m} + 3\sigma_{\mu_{\alpha*},c})^2 + (3\sigma_{\mu_\delta,m} + 3\sigma_{\mu_\delta,c})^2}`.
* :math:`R_{90}`: the smallest projected radius (Eq. 13, about the centre)
  that encloses 90% of the members, i.e. the :math:`\lceil 0.9 N\rceil`-th
  smallest radius (exact; the authors shrink a radius in steps of 5% of the
  largest one). :math:`R_{\max} = R_{90} + 15` pc (Eq. 10).
* Eqs. 8-9: :math:`\Delta_\varpi^\pm = |\varpi_c - 1000/(1000/\varpi_c \pm R_{\max})| + 3\sigma_{\varpi_c} + 3\sigma_{\varpi_0}`,
  :math:`\sigma_{\varpi_0} = 0.015` mas; :math:`\Delta_\varpi^+` (a source
  farther away, smaller parallax) applies when :math:`\varpi < \varpi_c`,
  :math:`\Delta_\varpi^-` when :math:`\varpi \ge \varpi_c`. When the cluster is
  nearer than :math:`R_{\max}` (:math:`1000/\varpi_c \le R_{\max}`) the nearer
  boundary does not exist and :math:`\Delta_\varpi^- = \infty` (the formula
  would give a meaningless finite number).
* Eqs. 11-12: :math:`\Delta_C = \Delta_{C,90} + 0.1`,
  :math:`\Delta_G = \Delta_{G,90} + 0.8`, with :math:`\Delta_{G,90} = 8\Delta_{C,90}`
  and :math:`\Delta_{C,90}` the smallest value for which 90% of the members
  pass Eq. 5. Solved exactly and vectorised: for each member and each point of
  the densified curve, the scale :math:`x` at which the point enters the
  member's Eq. 5 ellipse solves the monotone equation
  :math:`(\delta C/(3\sigma_C + x))^2 + (\delta G/(3\sigma_G + 8x))^2 = 1`
  (bisection on all pairs at once, after discarding points whose lower bound
  :math:`\max(|\delta C| - 3\sigma_C, (|\delta G| - 3\sigma_G)/8)` exceeds
  the member's best upper bound); each member's minimum over the points,
  lowered by a second bisection onto the two segments joined to its best
  point, is its required scale, and :math:`\Delta_{C,90}` is the 90% order
  statistic (:math:`\lceil 0.9 N\rceil`-th smallest). A scale found this
  way is always sufficient (a point of the curve lies in the ellipse), so at
  least 90% of the members pass Eq. 5 with :math:`\Delta_{C,90}`. The
  authors instead step :math:`\Delta_C` by 0.005 from 0.1 until the pass
  fraction crosses 90%.

Candidate conditions (:func:`candidate_conditions`)
---------------------------------------------------
Eq. 3 (proper motion), Eq. 4 (parallax, with the asymmetric
:math:`\Delta_\varpi`) and Eq. 5 (isochrone; see
:func:`ocmembers.method.features.isochrone_condition` for the nearest point in the
per-star metric), each with the star's own 3 sigma; a candidate passes all
three.

References
----------
van Groeningen et al. 2023, A&A 675, A68; Lindegren et al. 2021, A&A 649, A4
(sigma_plx0).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.exceptions import TooFewMembersError
from ocmembers.method.features import _neighbours, _project, angular_separation, isochrone_condition
from ocmembers.method.isochrones import IsochroneCurve
from ocmembers.method.columns import require_columns

__all__ = [
    "MEMBER_REQUIRED", "ClusterParams", "weighted_mean", "sky_centre", "radius_fraction",
    "parallax_deltas", "required_isochrone_scale", "isochrone_deltas", "cluster_parameters",
    "candidate_conditions", "outlying_members",
]

#: Columns of the training members needed for the cluster parameters.
MEMBER_REQUIRED: tuple[str, ...] = (
    "ra", "dec", "pmra", "pmra_error", "pmdec", "pmdec_error", "parallax", "parallax_error",
    "g_rp", "g_rp_error", "phot_g_mean_mag", "phot_g_mean_mag_error",
)


@dataclass(frozen=True)
class ClusterParams:
    """Everything the candidate selection and the features need about one cluster.

    Angles in degrees, proper motions in mas/yr, parallaxes in mas, distances
    in pc, magnitudes in mag. ``*_error`` are errors of the weighted means
    (Eq. 7), ``*_std`` dispersions of the members.
    """

    name: str
    ra: float
    dec: float
    dist_pc: float
    pmra: float
    pmdec: float
    parallax: float
    pmra_error: float
    pmdec_error: float
    parallax_error: float
    pmra_std: float
    pmdec_std: float
    parallax_std: float
    r_90: float
    r_max: float
    delta_pm: float
    delta_plx_plus: float
    delta_plx_minus: float
    delta_c_90: float
    delta_g_90: float
    delta_c: float
    delta_g: float
    a0: float
    log_age: float
    dist_mod: float
    n_members: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (an infinite Delta becomes ``None``)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClusterParams":
        """Inverse of :meth:`to_dict` (``None`` Deltas become infinite)."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        missing = [n for n in names if n not in d]
        if missing:
            raise ValueError(f"cluster parameters: missing key(s) {', '.join(missing)}")
        kw: dict[str, Any] = {}
        for n in names:
            v = d[n]
            if n == "name":
                kw[n] = str(v)
            elif n == "n_members":
                kw[n] = int(v)
            else:
                kw[n] = math.inf if v is None else float(v)
        return cls(**kw)

    def cluster_features(self) -> np.ndarray:
        """The cluster features (a0, log_age, parallax), ``features.CLUSTER_FEATURES`` order."""
        return np.array([self.a0, self.log_age, self.parallax], dtype=float)


def outlying_members(members: pd.DataFrame, n_sigma: float) -> np.ndarray:
    r"""True for the training members that are far from the others in proper motion or parallax.

    The weighted means of Eq. 7 give a star with a small error a large weight, so
    one wrong star in a member list (a mis-matched id, a user's typo) can move
    the cluster, and with it every candidate condition. A member is an outlier
    when, in ``pmra``, ``pmdec`` or ``parallax``,

    .. math:: |x_j - 	ilde x| > n \sqrt{s^2 + \sigma_{x,j}^2},

    with :math:`	ilde x` the members' median, :math:`s = 1.4826\,\mathrm{MAD}`
    their robust dispersion and :math:`\sigma_{x,j}` the star's own error: a
    test that neither the outlier nor a few of them can fool (the median and the
    MAD break down only at half the sample). ``n_sigma`` is ``[selection]
    member_clip_sigma``; 0 (or fewer than 3 members) keeps every member. The
    paper's pipeline route already keeps only sources within 10 member
    dispersions of the catalogued cluster (Eqs. 1-2), so at the default 10 this
    removes nothing there; it protects a user's own list.
    """
    n = len(members)
    out = np.zeros(n, bool)
    if n_sigma <= 0 or n < 3:
        return out
    for col in ("pmra", "pmdec", "parallax"):
        x = members[col].to_numpy(float)
        e = members[f"{col}_error"].to_numpy(float)
        med = np.median(x)
        s = 1.4826 * np.median(np.abs(x - med))
        out |= np.abs(x - med) > n_sigma * np.sqrt(s * s + e * e)
    return out


def weighted_mean(values: np.ndarray, errors: np.ndarray) -> tuple[float, float]:
    """Weighted mean with weights 1/sigma^2 and its error :math:`1/\\sqrt{\\sum 1/\\sigma^2}` (Eq. 7)."""
    v = np.asarray(values, float)
    w = 1.0 / np.asarray(errors, float) ** 2
    return float(np.sum(w * v) / np.sum(w)), float(1.0 / np.sqrt(np.sum(w)))


def sky_centre(ra: np.ndarray, dec: np.ndarray) -> tuple[float, float]:
    """Direction (ra, dec), degrees, of the mean unit vector of the finite positions (NaN if none)."""
    r, d = np.deg2rad(np.asarray(ra, float)), np.deg2rad(np.asarray(dec, float))
    ok = np.isfinite(r) & np.isfinite(d)
    if not ok.all():
        if not ok.any():
            return math.nan, math.nan
        r, d = r[ok], d[ok]
    x, y, z = np.mean(np.cos(d) * np.cos(r)), np.mean(np.cos(d) * np.sin(r)), np.mean(np.sin(d))
    return float(np.rad2deg(np.arctan2(y, x)) % 360.0), float(np.rad2deg(np.arctan2(z, np.hypot(x, y))))


def radius_fraction(radii: np.ndarray, fraction: float) -> float:
    """Smallest radius enclosing ``fraction`` of the points (the ceil(f N)-th smallest)."""
    return float(np.quantile(np.asarray(radii, float), fraction, method="inverted_cdf"))


def parallax_deltas(parallax: float, r_max_pc: float, parallax_error: float,
                    sigma_plx0: float) -> tuple[float, float]:
    """(Delta_plx^+, Delta_plx^-) of Eq. 9 (mas); Delta^- is infinite if 1000/plx <= R_max."""
    d = 1000.0 / parallax
    extra = 3.0 * parallax_error + 3.0 * sigma_plx0
    plus = abs(parallax - 1000.0 / (d + r_max_pc)) + extra
    minus = abs(parallax - 1000.0 / (d - r_max_pc)) + extra if d > r_max_pc else math.inf
    return plus, minus


def required_isochrone_scale(colour: np.ndarray, g: np.ndarray, sigma_c: np.ndarray, sigma_g: np.ndarray,
                             curve: IsochroneCurve, ratio: float = 8.0, n_sigma: float = 3.0,
                             *, n_iter: int = 48, max_pairs: int = 4_000_000) -> np.ndarray:
    """Each star's smallest Delta_C (with Delta_G = ratio Delta_C) for which some curve point
    lies inside its Eq. 5 ellipse (see the module docstring). NaN for non-finite input."""
    colour = np.asarray(colour, float).ravel()
    g = np.asarray(g, float).ravel()
    sc = n_sigma * np.asarray(sigma_c, float).ravel()
    sg = n_sigma * np.asarray(sigma_g, float).ravel()
    pc, pg = curve.colour, curve.g
    out = np.full(colour.size, np.nan)
    ok = np.flatnonzero(np.isfinite(colour) & np.isfinite(g) & np.isfinite(sc) & np.isfinite(sg))
    step = max(1, max_pairs // max(len(pc), 1))
    for start in range(0, ok.size, step):
        rows = ok[start:start + step]
        dc = np.abs(colour[rows, None] - pc[None, :])
        dg = np.abs(g[rows, None] - pg[None, :])
        hi = np.hypot(dc, dg / ratio)                       # f(hi) <= 0
        lo = np.maximum(0.0, np.maximum(dc - sc[rows, None], (dg - sg[rows, None]) / ratio))
        best_hi = hi.min(axis=1)
        keep = lo <= best_hi[:, None]
        r_i, v_i = np.nonzero(keep)
        a_c, a_g = dc[r_i, v_i], dg[r_i, v_i]
        s_c, s_g = sc[rows][r_i], sg[rows][r_i]
        lo_k, hi_k = lo[r_i, v_i], hi[r_i, v_i]

        def f(x: np.ndarray) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                t1 = np.where(a_c > 0, a_c / (s_c + x), 0.0)
                t2 = np.where(a_g > 0, a_g / (s_g + ratio * x), 0.0)
            return t1 * t1 + t2 * t2 - 1.0

        inside0 = f(np.zeros_like(lo_k)) < 0
        a, b = lo_k.copy(), hi_k.copy()
        for _ in range(n_iter):
            mid = 0.5 * (a + b)
            pos = f(mid) >= 0
            a = np.where(pos, mid, a)
            b = np.where(pos, b, mid)
        root = np.where(inside0, 0.0, b)
        best = np.full(rows.size, np.inf)
        np.minimum.at(best, r_i, root)
        # The best vertex of each star, then the segments on either side of it.
        order = np.lexsort((root, r_i))
        first = order[np.r_[0, np.flatnonzero(np.diff(r_i[order])) + 1]]
        vbest = np.full(rows.size, -1)
        vbest[r_i[first]] = v_i[first]
        out[rows] = _refine_on_segments(colour[rows], g[rows], sc[rows], sg[rows], best, vbest, curve,
                                        ratio, n_iter)
    return out


def _refine_on_segments(colour: np.ndarray, g: np.ndarray, sc: np.ndarray, sg: np.ndarray,
                        x_vertex: np.ndarray, vbest: np.ndarray, curve: IsochroneCurve, ratio: float,
                        n_iter: int) -> np.ndarray:
    """Lower each star's scale from its best vertex to the segments joined to that vertex (bisection)."""
    n = len(curve.g)
    ok = (vbest >= 0) & (x_vertex > 0) & np.isfinite(x_vertex)
    if not ok.any():
        return x_vertex
    i = np.flatnonzero(ok)
    v = vbest[i]
    b1, b2 = _neighbours(v, curve.connected, n)
    pc, pg = curve.colour, curve.g

    def passes(x: np.ndarray) -> np.ndarray:
        a, b = sc[i] + x, sg[i] + ratio * x
        with np.errstate(divide="ignore", invalid="ignore"):   # a zero-size ellipse passes nothing
            px, py = colour[i] / a, g[i] / b
            _, _, d1 = _project(px, py, pc[v] / a, pg[v] / b, pc[b1] / a, pg[b1] / b)
            _, _, d2 = _project(px, py, pc[v] / a, pg[v] / b, pc[b2] / a, pg[b2] / b)
            return np.minimum(d1, d2) < 1.0

    lo, hi = np.zeros(i.size), x_vertex[i].copy()
    inside0 = passes(lo)
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        p = passes(mid)
        hi = np.where(p, mid, hi)
        lo = np.where(p, lo, mid)
    out = x_vertex.copy()
    out[i] = np.where(inside0, 0.0, hi)
    return out


def isochrone_deltas(members: pd.DataFrame, curve: IsochroneCurve, cfg: Any) -> tuple[float, float, float, float]:
    """(Delta_C,90, Delta_G,90, Delta_C, Delta_G) of Eqs. 11-12."""
    sel = cfg.selection
    x = required_isochrone_scale(members["g_rp"].to_numpy(float), members["phot_g_mean_mag"].to_numpy(float),
                                 members["g_rp_error"].to_numpy(float),
                                 members["phot_g_mean_mag_error"].to_numpy(float), curve,
                                 ratio=sel.delta_ratio_g_c, n_sigma=sel.n_sigma_source)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise TooFewMembersError("no member has a finite colour and G magnitude")
    dc90 = float(np.quantile(x, sel.member_fraction, method="inverted_cdf"))
    dg90 = sel.delta_ratio_g_c * dc90
    return dc90, dg90, dc90 + sel.delta_c_extra, dg90 + sel.delta_g_extra


def cluster_parameters(members: pd.DataFrame, cluster: pd.Series, isochrone_curve: IsochroneCurve,
                       cfg: Any) -> ClusterParams:
    """The :class:`ClusterParams` of a cluster from its training members (module docstring).

    Parameters
    ----------
    members : DataFrame
        Preprocessed training members (:data:`MEMBER_REQUIRED`).
    cluster : Series
        The cluster's row of the canonical cluster table (``name, a0,
        log_age, dist_mod, dist_pc``).
    isochrone_curve : IsochroneCurve
        The shifted, densified isochrone.
    cfg : Config
        ``[selection]``.

    Raises
    ------
    TooFewMembersError
        Fewer than ``[selection] min_members`` members with full astrometry.
    """
    name = str(cluster.get("name", "?"))
    require_columns(members, MEMBER_REQUIRED, f"training members of cluster {name}")
    sel = cfg.selection
    astro = ["ra", "dec", "pmra", "pmdec", "parallax", "pmra_error", "pmdec_error", "parallax_error"]
    good = members[astro].notna().all(axis=1).to_numpy() & (members[["pmra_error", "pmdec_error",
                                                                       "parallax_error"]] > 0).all(axis=1).to_numpy()
    m = members.loc[good]
    if len(m) < sel.min_members:
        raise TooFewMembersError(f"cluster {name}: {len(m)} training member(s) with full astrometry, "
                                 f"fewer than [selection] min_members = {sel.min_members}")
    ra_c, dec_c = sky_centre(m["ra"].to_numpy(), m["dec"].to_numpy())
    pmra, pmra_e = weighted_mean(m["pmra"].to_numpy(), m["pmra_error"].to_numpy())
    pmdec, pmdec_e = weighted_mean(m["pmdec"].to_numpy(), m["pmdec_error"].to_numpy())
    plx, plx_e = weighted_mean(m["parallax"].to_numpy(), m["parallax_error"].to_numpy())
    pmra_s, pmdec_s, plx_s = (float(np.std(m[c].to_numpy(float))) for c in ("pmra", "pmdec", "parallax"))

    dist = float(cluster.get("dist_pc", np.nan))
    if not (np.isfinite(dist) and dist > 0):
        dist = 1000.0 / plx
    radii = dist * angular_separation(m["ra"].to_numpy(), m["dec"].to_numpy(), ra_c, dec_c)
    r90 = radius_fraction(radii, sel.member_fraction)
    r_max = r90 + sel.r_max_extra_pc
    d_plus, d_minus = parallax_deltas(plx, r_max, plx_e, sel.sigma_plx0_mas)
    n = sel.n_sigma_source
    delta_pm = float(np.hypot(n * pmra_s + n * pmra_e, n * pmdec_s + n * pmdec_e))
    dc90, dg90, dc, dg = isochrone_deltas(m, isochrone_curve, cfg)
    return ClusterParams(
        name=name, ra=ra_c, dec=dec_c, dist_pc=dist, pmra=pmra, pmdec=pmdec, parallax=plx,
        pmra_error=pmra_e, pmdec_error=pmdec_e, parallax_error=plx_e,
        pmra_std=pmra_s, pmdec_std=pmdec_s, parallax_std=plx_s, r_90=r90, r_max=r_max,
        delta_pm=delta_pm, delta_plx_plus=d_plus, delta_plx_minus=d_minus,
        delta_c_90=dc90, delta_g_90=dg90, delta_c=dc, delta_g=dg,
        a0=float(cluster.get("a0", np.nan)), log_age=float(cluster.get("log_age", np.nan)),
        dist_mod=float(cluster.get("dist_mod", np.nan)), n_members=int(len(m)),
    )


def candidate_conditions(sources: pd.DataFrame, params: ClusterParams, curve: IsochroneCurve,
                         cfg: Any) -> pd.DataFrame:
    """Eqs. 3-5 for every source: booleans ``pass_pm, pass_plx, pass_iso, candidate``.

    ``sources`` are preprocessed (``pmra(_error), pmdec(_error),
    parallax(_error), g_rp(_error), phot_g_mean_mag(_error)``); the result has
    the same index. NaN inputs fail.
    """
    n = cfg.selection.n_sigma_source
    require_columns(sources, ["pmra", "pmra_error", "pmdec", "pmdec_error", "parallax", "parallax_error",
                              "g_rp", "g_rp_error", "phot_g_mean_mag", "phot_g_mean_mag_error"],
                    f"sources of cluster {params.name}")
    pmra = sources["pmra"].to_numpy(float)
    pmdec = sources["pmdec"].to_numpy(float)
    plx = sources["parallax"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        eq3 = np.hypot((pmra - params.pmra) / (n * sources["pmra_error"].to_numpy(float) + params.delta_pm),
                       (pmdec - params.pmdec) / (n * sources["pmdec_error"].to_numpy(float) + params.delta_pm))
        delta_plx = np.where(plx < params.parallax, params.delta_plx_plus, params.delta_plx_minus)
        eq4 = np.abs(plx - params.parallax) / (n * sources["parallax_error"].to_numpy(float) + delta_plx)
        pass_pm = eq3 < 1.0
        pass_plx = eq4 < 1.0
    pass_iso = isochrone_condition(sources["g_rp"].to_numpy(float), sources["phot_g_mean_mag"].to_numpy(float),
                                   sources["g_rp_error"].to_numpy(float),
                                   sources["phot_g_mean_mag_error"].to_numpy(float), curve,
                                   params.delta_c, params.delta_g, n)
    out = pd.DataFrame({"pass_pm": pass_pm, "pass_plx": pass_plx, "pass_iso": pass_iso}, index=sources.index)
    out["candidate"] = out["pass_pm"] & out["pass_plx"] & out["pass_iso"]
    return out
