r"""Total mass of a cluster from its member list, as Peña Ramírez et al. (2022, Sect. 4.2).

Following Peña Ramírez et al. (2021), the members' radial density profile is integrated to count the stars the field
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
Kroupa, P. 2001, MNRAS 322, 231.
King, I. 1962, AJ 67, 471.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.method.columns import require_columns
from ocmembers.method.member_table import MethodError

__all__ = ["total_mass", "MassEstimate", "kroupa_integral", "completeness_magnitude", "king_number",
           "total_mass_from_members", "A_G_OVER_A0", "KROUPA_BREAKS", "KROUPA_ALPHA"]


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
                           drop: float = 0.5, min_count: float = 0.0) -> float:
    """Faintest magnitude before the counts per magnitude bin fall off (PR22, Sect. 4.2).

    PR22 take the faintest magnitude at which the counts per magnitude
    interval do not deviate from an increasing distribution. Counts of a
    cluster-dominated sample need not increase (an old cluster's luminosity
    function turns over well above the survey limit), so the deviation is
    taken as a *fall*: scanning from bright to faint, the completeness limit
    is the lower edge of the first bin holding fewer than ``drop`` times the
    largest count of the brighter bins (the bright end of a rising count
    distribution never triggers it). ``min_count``: falls are looked for only once
    that largest count reaches it (the few brightest stars of a field fluctuate).
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
    fall = np.flatnonzero((counts[1:] < drop * running[:-1]) & (running[:-1] >= min_count)) + 1
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
