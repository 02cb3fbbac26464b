r"""XDGMM + UPMASK membership and total mass, as Peña Ramírez et al. (2022).

Peña Ramírez, González-Fernández, Chené & Ramírez Alegría (2022, MNRAS,
"The VVV open cluster project II"; "PR22"), Sect. 3, find members in two
coarse-to-fine steps:

1. **Astrometric tagging.** Remove sources more than 10 sigma from the
   cluster proper motion in :math:`\mu_{\alpha*}` or :math:`\mu_\delta` (sigma:
   the cluster's proper-motion dispersion, ``pmra_std``/``pmdec_std`` of the
   catalogue), and sources with photometric errors above 0.5 mag in J or Ks
   (when those bands are given). Fit an extreme-deconvolution Gaussian
   mixture with ten components and full per-star covariances in
   :math:`(\mu_{\alpha*}, \mu_\delta, \varpi)` (:mod:`.xdgmm`); the cluster is
   the component of lowest differential entropy; each star's probability
   is the fraction of 200 bootstrap re-assignments (measurements redrawn
   from their errors) that fall in that component.
2. **Refinement.** Stars with :math:`p \ge 0.9` go through UPMASK
   (:mod:`.upmask`): k-means in photometry (Gaia G, BP, RP and any of J, H,
   Ks present; at least 25 stars per group) and the MST-length test on sky
   positions against uniform fields over the whole studied area, 100
   iterations. The UPMASK score is the final membership probability.

Total mass (their Sect. 4.2, following Peña Ramírez et al. 2021): the
members' radial density profile is integrated to count the stars the field
misses, the masses of the members brighter than the completeness magnitude
come from the isochrone (initial mass vs G), and the main sequence is
extended with the Kroupa (2001) mass function down to
:math:`0.08\,M_\odot`; masses are weighted by membership probability, and the
uncertainty is the difference between the weighted and unweighted totals.
:func:`total_mass` works on plain arrays, so it applies to any member list
(Deep Sets included).

References
----------
Peña Ramírez, K., et al. 2022, MNRAS, The VVV open cluster project II.
Bovy, J., Hogg, D. W., Roweis, S. T. 2011, Ann. Appl. Stat. 5, 1657.
Krone-Martins, A., Moitinho, A. 2014, A&A 561, A57.
Kroupa, P. 2001, MNRAS 322, 231.
King, I. 1962, AJ 67, 471.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.method.columns import require_columns
from ocmembers.method.member_table import MethodError, empty_result, member_table, source_ids
from ocmembers.method.settings import methods_config
from ocmembers.method.upmask import UPMASK, features_for, magnitude_errors, sky_window, tangent_plane
from ocmembers.method.xdgmm import XDGMM, compact_component, covariance_from_gaia

__all__ = [
    "penaramirez22_members", "select_components_bic", "total_mass", "MassEstimate", "kroupa_integral",
    "completeness_magnitude", "king_number", "total_mass_from_members", "A_G_OVER_A0",
]

METHOD = "xdgmm_upmask"
XD_COLUMNS = ("pmra", "pmdec", "parallax")


def _cluster_value(cluster: pd.Series, key: str, name: str) -> float:
    try:
        v = float(cluster[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise MethodError(f"cluster {name}: catalogue value {key!r} missing") from exc
    if not np.isfinite(v):
        raise MethodError(f"cluster {name}: catalogue value {key!r} is not finite")
    return v


def penaramirez22_members(cone: pd.DataFrame, cluster: pd.Series, cfg: Any = None) -> pd.DataFrame:
    """Members by XDGMM + UPMASK (Sect. 3 of Peña Ramírez et al. 2022).

    Parameters
    ----------
    cone : DataFrame
        Gaia archive columns (``source_id, ra, dec, pmra, pmdec, parallax``,
        their ``*_error`` and correlations, ``phot_*_mean_mag`` and fluxes);
        optional ``j_m, h_m, ks_m`` (2MASS) or ``Jmag, Hmag, Ksmag`` with their errors.
    cluster : Series
        Canonical cluster row (``name, pmra, pmra_std, pmdec, pmdec_std``).
    cfg : Config, optional
        ``[methods]``: ``xd_*``, ``pr22_*``, ``upmask_*`` (group size, random fields, alpha).

    Returns
    -------
    DataFrame
        The common member table plus ``p_xd`` (XD bootstrap probability).
        Probability = UPMASK score of the ``p_xd >= xd_p_min`` stars, 0 elsewhere.
        Labelled empty result when fewer stars pass XD than UPMASK needs.
    """
    mc = methods_config(cfg)
    name = str(cluster.get("name", "<cluster>"))
    require_columns(cone, ["ra", "dec", *XD_COLUMNS, *(f"{c}_error" for c in XD_COLUMNS)],
                    f"cone of {name} (xdgmm_upmask)")
    ids = source_ids(cone)
    n_all = len(cone)
    t0 = time.perf_counter()
    params: dict[str, Any] = {"cluster": name, "n_components": mc.xd_components,
                              "outlier_sigma": mc.xd_outlier_sigma, "n_bootstrap": mc.xd_bootstrap,
                              "p_min": mc.xd_p_min, "upmask_iterations": mc.pr22_upmask_iterations,
                              "stars_per_group": mc.upmask_stars_per_group, "seed": mc.seed}

    # -- pre-processing: finite astrometry, 10 sigma proper-motion outliers, bad NIR photometry
    x = cone[list(XD_COLUMNS)].to_numpy(dtype=float)
    s = covariance_from_gaia(cone, XD_COLUMNS)
    ok = np.all(np.isfinite(x), axis=1) & np.all(np.isfinite(s.reshape(n_all, -1)), axis=1)
    ok &= np.isfinite(cone["ra"].to_numpy(dtype=float)) & np.isfinite(cone["dec"].to_numpy(dtype=float))
    if mc.pr22_g_max and "phot_g_mean_mag" in cone.columns:
        ok &= cone["phot_g_mean_mag"].to_numpy(dtype=float) < mc.pr22_g_max
    pm0 = np.array([_cluster_value(cluster, "pmra", name), _cluster_value(cluster, "pmdec", name)])
    pm_sd = np.array([_cluster_value(cluster, "pmra_std", name), _cluster_value(cluster, "pmdec_std", name)])
    if np.any(pm_sd <= 0):
        raise MethodError(f"cluster {name}: proper-motion dispersion must be > 0, got {pm_sd.tolist()}")
    with np.errstate(invalid="ignore"):
        ok &= np.all(np.abs(x[:, :2] - pm0) <= mc.xd_outlier_sigma * pm_sd, axis=1)
    for band in ("J", "Ks"):
        cols = [c for c in {"J": ("j_m", "Jmag"), "Ks": ("ks_m", "Ksmag", "Kmag")}[band] if c in cone.columns]
        if cols:
            err = magnitude_errors(cone, cols[0])
            ok &= ~(err > 0.5)
    params["n_after_cuts"] = int(ok.sum())

    # -- XDGMM in (pmra, pmdec, parallax), entropy choice, bootstrap membership
    try:
        if mc.xd_components_select == "bic":
            xd, bics = select_components_bic(x[ok], s[ok], range(2, mc.xd_components + 1), mc)
            params["xd_bic"] = bics
        elif mc.xd_components_select == "fixed":
            xd = XDGMM(n_components=mc.xd_components, max_iter=mc.xd_max_iter, tol=mc.xd_tol,
                       n_init=mc.xd_n_init, random_state=mc.seed).fit(x[ok], s[ok])
        else:
            raise MethodError(f"[methods] xd_components_select must be 'fixed' or 'bic', "
                              f"got {mc.xd_components_select!r}")
        comp = compact_component(xd, int(ok.sum()), mc.xd_min_component_stars)
    except MethodError as exc:
        raise MethodError(f"cluster {name}: {exc}") from exc
    params["xd_components_used"] = xd.n_components
    p_xd = np.zeros(n_all)
    p_xd[ok] = xd.bootstrap_membership(x[ok], s[ok], comp, mc.xd_bootstrap, seed=mc.seed)
    params.update({"xd_component": comp, "xd_converged": bool(xd.converged_), "xd_n_iter": xd.n_iter_,
                   "xd_mean": xd.means_[comp].tolist(), "xd_covariance": xd.covariances_[comp].tolist(),
                   "xd_weight": float(xd.weights_[comp]), "xd_entropies": xd.entropies().tolist()})

    # -- UPMASK on positions + photometry of the p_xd >= p_min stars
    sel = p_xd >= mc.xd_p_min
    params["n_xd_members"] = int(sel.sum())
    feats, ferr, cols = features_for(cone, "photometry")
    sel &= np.all(np.isfinite(feats), axis=1)
    params["photometry"] = cols
    ra0 = float(cluster["ra"]) if np.isfinite(float(cluster.get("ra", np.nan))) else float(np.nanmedian(cone["ra"]))
    dec0 = float(cluster["dec"]) if np.isfinite(float(cluster.get("dec", np.nan))) else float(np.nanmedian(cone["dec"]))
    xy = tangent_plane(cone["ra"].to_numpy(dtype=float), cone["dec"].to_numpy(dtype=float), ra0, dec0)
    window = sky_window(xy[ok])                       # the whole studied area, not just the XD members
    up = UPMASK(stars_per_group=mc.upmask_stars_per_group, n_iterations=mc.pr22_upmask_iterations,
                n_random=mc.upmask_random_fields, alpha=mc.upmask_alpha, max_inner=mc.upmask_max_outer,
                random_state=mc.seed)
    if sel.sum() < 2 * up.stars_per_group:
        params["wall_s"] = round(time.perf_counter() - t0, 3)
        res = empty_result(ids, METHOD, f"cluster {name}: {int(sel.sum())} stars with p_xd >= "
                           f"{mc.xd_p_min}, too few for UPMASK groups of {up.stars_per_group}", params)
        res["p_xd"] = p_xd
        return res
    prob = np.zeros(n_all)
    prob[sel] = up.fit_predict(feats[sel], ferr[sel], xy[sel], window=window)
    params["wall_s"] = round(time.perf_counter() - t0, 3)
    return member_table(ids, prob, METHOD, params, extra={"p_xd": p_xd})


def select_components_bic(x: np.ndarray, s: np.ndarray, ks, mc: Any) -> tuple[XDGMM, dict[int, float]]:
    r"""The XD mixture of lowest BIC over the component numbers ``ks``.

    :math:`\mathrm{BIC} = -2\ln L + k_p \ln n` with
    :math:`k_p = (K-1) + K d + K d(d+1)/2` free parameters. Not part of PR22
    (who fix K = 10 for fields dominated by the background); for cones cut
    around the cluster in astrometry, where ten Gaussians split the cluster.
    """
    n, d = x.shape
    best, bics = None, {}
    for k in ks:  # a handful of fits
        try:
            m = XDGMM(n_components=int(k), max_iter=mc.xd_max_iter, tol=mc.xd_tol,
                      n_init=mc.xd_n_init, random_state=mc.seed).fit(x, s)
        except MethodError:
            continue
        n_par = (k - 1) + k * d + k * d * (d + 1) // 2
        bics[int(k)] = float(-2 * m.log_likelihood_ * n + n_par * np.log(n))
        if best is None or bics[int(k)] < bics[best.n_components]:
            best = m
    if best is None:
        raise MethodError(f"XDGMM: no fit succeeded for K in {list(ks)}")
    return best, bics


# ---------------------------------------------------------------------------
# Total mass (Sect. 4.2)
# ---------------------------------------------------------------------------

#: Kroupa (2001) mass-function breaks (Msun) and slopes alpha of xi(m) ~ m^-alpha (their Eq. 2).
KROUPA_BREAKS = (0.01, 0.08, 0.5, np.inf)
KROUPA_ALPHA = (0.3, 1.3, 2.3)


def kroupa_integral(a: float, b: float, moment: int = 0) -> float:
    r"""\int_a^b m^moment xi(m) dm for the Kroupa (2001) IMF (continuous, xi(0.08)... unnormalised)."""
    if b <= a:
        return 0.0
    total = 0.0
    coef = 1.0                                    # continuity constant of each segment
    for i, alpha in enumerate(KROUPA_ALPHA):
        lo, hi = KROUPA_BREAKS[i], KROUPA_BREAKS[i + 1]
        if i > 0:
            coef *= lo ** (KROUPA_ALPHA[i] - KROUPA_ALPHA[i - 1])
        x0, x1 = max(a, lo), min(b, hi)
        if x1 <= x0:
            continue
        k = moment - alpha + 1.0
        total += coef * ((np.log(x1 / x0)) if abs(k) < 1e-12 else (x1 ** k - x0 ** k) / k)
    return float(total)


def completeness_magnitude(g: np.ndarray, weights: np.ndarray | None = None, bin_width: float = 0.5,
                           drop: float = 0.5) -> float:
    """Faintest magnitude before the counts per magnitude bin fall off (PR22, Sect. 4.2).

    PR22 take the faintest magnitude at which the counts per magnitude
    interval do not deviate from an increasing distribution. Counts of a
    cluster-dominated sample need not increase (an old cluster's luminosity
    function turns over well above the survey limit), so the deviation is
    taken as a *fall*: scanning from bright to faint, the completeness limit
    is the lower edge of the first bin holding fewer than ``drop`` times the
    largest count of the brighter bins (the bright end of a rising count
    distribution never triggers it).
    """
    g = np.asarray(g, dtype=float)
    g = g[np.isfinite(g)]
    if g.size == 0:
        raise MethodError("completeness_magnitude: no stars")
    edges = np.arange(np.floor(g.min()), np.ceil(g.max()) + bin_width, bin_width)
    if edges.size < 2:
        return float(g.max())
    counts, _ = np.histogram(g, bins=edges, weights=weights)
    running = np.maximum.accumulate(counts)
    fall = np.flatnonzero(counts[1:] < drop * running[:-1]) + 1
    return float(edges[fall[0]]) if fall.size else float(edges[-1])


def king_number(r: np.ndarray, k: float, rc: float, rt: float) -> np.ndarray:
    r"""Number of stars inside radius r of a King (1962) profile (his Eq. 18 integrated).

    :math:`N(<r) = \pi r_c^2 k\,[\ln(1+x^2) - 4(\sqrt{1+x^2}-1)/\sqrt{1+x_t^2} + x^2/(1+x_t^2)]`,
    :math:`x = \min(r, r_t)/r_c`.
    """
    x = np.minimum(np.asarray(r, dtype=float), rt) / rc
    xt2 = (rt / rc) ** 2
    return np.pi * rc ** 2 * k * (np.log1p(x ** 2) - 4 * (np.sqrt(1 + x ** 2) - 1) / np.sqrt(1 + xt2)
                                  + x ** 2 / (1 + xt2))


def _king_profile_factor(r: np.ndarray, w: np.ndarray, r_max: float) -> tuple[float, float, float]:
    """Fit a King profile to the members' cumulative counts; return (N(<r_t)/N(<r_max), r_c, r_t)."""
    from scipy.optimize import least_squares

    order = np.argsort(r)
    rs, cum = r[order], np.cumsum(w[order])
    n_tot = cum[-1]
    half = float(np.interp(0.5 * n_tot, cum, rs))

    def resid(theta):
        lrc, lrt_over = theta
        rc = np.exp(lrc)
        rt = rc * (1 + np.exp(lrt_over))
        model = king_number(rs, 1.0, rc, rt)
        norm = n_tot / max(king_number(np.array([r_max]), 1.0, rc, rt)[0], 1e-300)
        return (norm * model - cum) / np.sqrt(n_tot)

    theta0 = np.array([np.log(max(half / 2, 1e-3)), np.log(5.0)])
    fit = least_squares(resid, theta0, bounds=([np.log(1e-4), np.log(1e-3)], [np.log(1e4), np.log(1e3)]))
    rc = float(np.exp(fit.x[0]))
    rt = float(rc * (1 + np.exp(fit.x[1])))
    inside = king_number(np.array([r_max]), 1.0, rc, rt)[0]
    total = king_number(np.array([rt]), 1.0, rc, rt)[0]
    return float(max(total / inside, 1.0)), rc, rt


@dataclass(frozen=True)
class MassEstimate:
    """Total mass of a cluster (PR22 Sect. 4.2); masses in Msun, magnitudes in G."""

    total: float                 # probability-weighted total mass
    uncertainty: float           # |weighted - unweighted|, as PR22
    total_unweighted: float
    observed: float              # weighted mass of the members brighter than g_complete
    below_completeness: float    # Kroupa extrapolation from m_complete down to m_min
    profile_factor: float        # N(<r_t) / N(<r_max) of the fitted King profile
    g_complete: float
    m_complete: float
    m_turnoff: float
    r_core: float
    r_tidal: float
    n_members: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _masses(g: np.ndarray, iso_mini: np.ndarray, iso_g: np.ndarray,
            colour: np.ndarray | None, iso_colour: np.ndarray | None) -> tuple[np.ndarray, float, float]:
    """Initial masses from the isochrone: MS by Mini(G); brighter than the turn-off by the
    nearest isochrone point in (colour, G) when colours are given, else the turn-off mass."""
    order = np.argsort(iso_mini)
    m, gi = np.asarray(iso_mini, float)[order], np.asarray(iso_g, float)[order]
    # main sequence: G decreases with mass up to the turn-off (first local minimum of G)
    inc = np.flatnonzero(np.diff(gi) > 0)
    to = int(inc[0]) if inc.size else gi.size - 1
    m_ms, g_ms = m[: to + 1], gi[: to + 1]
    m_to, g_to = float(m_ms[-1]), float(g_ms[-1])
    mass = np.interp(-g, -g_ms, m_ms)              # -G increases along the MS; clipped at both ends
    evolved = g < g_to
    if colour is not None:
        colour = np.asarray(colour, float)
    mass[evolved] = m_to
    if colour is not None and iso_colour is not None:
        evolved &= np.isfinite(colour)             # no colour: keep the turn-off mass
    if np.any(evolved):
        if colour is not None and iso_colour is not None:
            from scipy.spatial import cKDTree

            ic = np.asarray(iso_colour, float)[order]
            tree = cKDTree(np.stack([ic, gi], axis=1))
            _, j = tree.query(np.stack([np.asarray(colour, float)[evolved], g[evolved]], axis=1))
            mass[evolved] = m[j]
    return mass, m_to, g_to


def total_mass(r: np.ndarray, g: np.ndarray, probability: np.ndarray,
               iso_mini: np.ndarray, iso_g: np.ndarray, *,
               colour: np.ndarray | None = None, iso_colour: np.ndarray | None = None,
               g_complete: float | None = None, r_max: float | None = None,
               p_min: float = 0.5, m_min: float = 0.08) -> MassEstimate:
    r"""Total cluster mass from a member list and an isochrone (PR22, Sect. 4.2).

    Parameters
    ----------
    r : array
        Projected distance of each member from the centre (any unit; pc or deg).
    g : array
        Apparent G magnitude.
    probability : array
        Membership probability; members are ``probability >= p_min``.
    iso_mini, iso_g : arrays
        Isochrone initial masses (Msun) and *apparent* G (absolute + distance
        modulus + A_G) of the cluster.
    colour, iso_colour : arrays, optional
        Member and isochrone colour (e.g. BP-RP) to place evolved stars.
    g_complete : float, optional
        Completeness magnitude; default :func:`completeness_magnitude` of the members.
    r_max : float, optional
        Radius of the observed field (default: the largest member radius).
    m_min : float
        Lower mass limit of the Kroupa extension (the hydrogen-burning limit).

    Returns
    -------
    MassEstimate
        ``total = profile_factor * (observed + below_completeness)``; the
        uncertainty is the difference between the probability-weighted and the
        unweighted totals (as PR22).
    """
    r = np.asarray(r, dtype=float)
    g = np.asarray(g, dtype=float)
    p = np.nan_to_num(np.asarray(probability, dtype=float))
    if not (r.shape == g.shape == p.shape):
        raise MethodError(f"total_mass: r, g and probability differ in shape ({r.shape}, {g.shape}, {p.shape})")
    mem = (p >= p_min) & np.isfinite(r) & np.isfinite(g)
    if colour is not None:
        colour = np.asarray(colour, dtype=float)[mem]
    r, g, p = r[mem], g[mem], p[mem]
    if r.size < 10:
        raise MethodError(f"total_mass: {r.size} members with p >= {p_min}; need at least 10")
    iso_mini = np.asarray(iso_mini, dtype=float)
    iso_g = np.asarray(iso_g, dtype=float)
    good = np.isfinite(iso_mini) & np.isfinite(iso_g)
    if good.sum() < 2:
        raise MethodError("total_mass: the isochrone has fewer than two valid points")
    iso_c = None if iso_colour is None else np.asarray(iso_colour, dtype=float)[good]
    mass, m_to, g_to = _masses(g, iso_mini[good], iso_g[good], colour, iso_c)
    g_c = float(g_complete) if g_complete is not None else completeness_magnitude(g, p)
    # the MS mass at g_c, from the same relation as the members
    m_c = float(_masses(np.array([g_c]), iso_mini[good], iso_g[good], None, None)[0][0])
    r_max = float(r_max) if r_max is not None else float(r.max())
    bright = g <= g_c

    def one(w: np.ndarray) -> tuple[float, ...]:
        observed = float(np.sum(w[bright] * mass[bright]))
        ms = bright & (g >= g_to)                               # complete main-sequence members
        n_ms = float(np.sum(w[ms]))
        denom = kroupa_integral(m_c, m_to, 0)
        below = n_ms * kroupa_integral(m_min, m_c, 1) / denom if (denom > 0 and m_c > m_min) else 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            factor, rc, rt = _king_profile_factor(r[bright], w[bright], r_max)
        return factor * (observed + below), observed, below, factor, rc, rt

    tw, obs, below, factor, rc, rt = one(p)
    tu = one(np.ones_like(p))[0]
    return MassEstimate(total=tw, uncertainty=abs(tw - tu), total_unweighted=tu, observed=obs,
                        below_completeness=below, profile_factor=factor, g_complete=g_c, m_complete=m_c,
                        m_turnoff=m_to, r_core=rc, r_tidal=rt, n_members=int(r.size))


#: A_G / A_0 used when only the cluster's A_0 (CG20 ``a0``) is known: the Gaia G
#: extinction coefficient of a solar-type star (Riello et al. 2021, Table 3, first term).
A_G_OVER_A0 = 0.9761 - 0.1704 * 0.8     # k_G at BP-RP ~ 0.8 (first-order term only)
#: E(BP-RP) / A_0 = k_BP - k_RP at BP-RP ~ 0.8 (same table, first-order terms).
E_BPRP_OVER_A0 = (1.1517 - 0.0871 * 0.8) - (0.6104 - 0.0170 * 0.8)


def total_mass_from_members(members: pd.DataFrame, cone: pd.DataFrame, isochrone: pd.DataFrame,
                            cluster: pd.Series, **kwargs: Any) -> MassEstimate:
    """:func:`total_mass` for a member table (any method, Deep Sets included) and a CMD isochrone.

    Parameters
    ----------
    members : DataFrame
        ``source_id, probability`` (the common member table or a ``members/<cluster>.parquet``).
    cone : DataFrame
        The cone with ``source_id, ra, dec, phot_g_mean_mag`` (and BP/RP for colours).
    isochrone : DataFrame
        CMD columns ``Mini, Gmag`` (absolute), optionally ``G_BPmag, G_RPmag``.
    cluster : Series
        ``ra, dec, dist_pc, dist_mod, a0``; the isochrone is shifted by
        ``dist_mod + A_G`` with ``A_G = A_G_OVER_A0 * a0``.
    **kwargs
        Passed to :func:`total_mass` (``g_complete``, ``p_min``, ``r_max`` ...).
        Default ``g_complete``: the turnover of the counts of *all* cone
        sources (the completeness of the data, PR22 Sect. 4.2), or the faintest
        member when the list stops brighter (e.g. T22 at G = 18).
    """
    require_columns(members, ["source_id", "probability"], "member table (total mass)")
    require_columns(isochrone, ["Mini", "Gmag"], "isochrone (total mass)")
    p = members.groupby("source_id")["probability"].max()
    ids = cone["source_id"].to_numpy(dtype=np.int64)
    prob = p.reindex(ids).fillna(0.0).to_numpy(dtype=float)
    ra, dec = np.radians(cone["ra"].to_numpy(float)), np.radians(cone["dec"].to_numpy(float))
    ra0, dec0 = np.radians(float(cluster["ra"])), np.radians(float(cluster["dec"]))
    cosang = np.sin(dec) * np.sin(dec0) + np.cos(dec) * np.cos(dec0) * np.cos(ra - ra0)
    r_pc = np.arccos(np.clip(cosang, -1, 1)) * float(cluster["dist_pc"])
    shift = float(cluster["dist_mod"]) + A_G_OVER_A0 * float(cluster.get("a0", 0.0) or 0.0)
    colour = iso_colour = None
    if {"G_BPmag", "G_RPmag"} <= set(isochrone.columns) and {"phot_bp_mean_mag", "phot_rp_mean_mag"} <= set(cone.columns):
        colour = (cone["phot_bp_mean_mag"] - cone["phot_rp_mean_mag"]).to_numpy(float)
        iso_colour = (isochrone["G_BPmag"] - isochrone["G_RPmag"]).to_numpy(float)
        iso_colour = iso_colour + E_BPRP_OVER_A0 * float(cluster.get("a0", 0.0) or 0.0)
    g = cone["phot_g_mean_mag"].to_numpy(float)
    if kwargs.get("g_complete") is None:
        p_min = kwargs.get("p_min", 0.5)
        fin = np.isfinite(g)
        sel = fin & (prob >= p_min)
        if not sel.any():
            raise MethodError(f"total mass of {cluster.get('name', '<cluster>')}: no member with p >= {p_min}")
        kwargs["g_complete"] = min(completeness_magnitude(g[fin]), float(g[sel].max()))
    return total_mass(r_pc, g, prob,
                      isochrone["Mini"].to_numpy(float), isochrone["Gmag"].to_numpy(float) + shift,
                      colour=colour, iso_colour=iso_colour, **kwargs)
