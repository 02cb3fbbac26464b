r"""Catalogue products of the simulated sky: CG20-like and T22-like member lists.

CG20-like list (the training members, Sect. 2.2 of van Groeningen et al. 2023)
-------------------------------------------------------------------------------
Cantat-Gaudin et al. (2018, 2020) listed members with :math:`G < 18` from
UPMASK on Gaia DR2. The simulated list takes the true bound members of the
cone brighter than ``[sim] cg20_g_max`` (measured G; not the escaped corona
and tail stars, which UPMASK's concentrated groups miss) and keeps each with
probability :math:`c\,(1 - 0.5\,s)`, :math:`s = 1/(1+e^{-(G-17)/0.4})`
(:math:`c` = ``cg20_completeness``: completeness falls towards the faint
limit as UPMASK's does), dropping half of those with ``ruwe > 1.4``; a
fraction ``cg20_contamination`` of field stars of similar astrometry (within
3 member dispersions) is added. Probabilities are 1 except for
``cg20_low_probability_fraction`` of the list, drawn in [0.7, 1) and chosen
preferentially among the outer members. Each entry carries a Gaia DR2-like id
``source_id_dr2`` (equal to the DR3 id except for
``dr2_id_change_fraction`` of them, as for real DR2 -> DR3 id changes) and
DR2-epoch (J2015.5) positions, :math:`\alpha_{2015.5} = \alpha_{2016} -
0.5\,\mu_{\alpha*}/\cos\delta`, so that the positional crossmatch
(:func:`ocmembers.sources.positional.crossmatch_positional`) has real work to
do. Astrometry and G get DR2-like noise (2 times the DR3 uncertainty).

T22-like list (the comparison members, Sect. 4)
------------------------------------------------
HDBSCAN on (parallax, pmra, pmdec) of the :math:`G < 18` sources with RUWE
below 1.4 (T22's cut, ``[methods] hdbscan_ruwe_max``) within
50 pc of the centre *without* the cuts of Eqs. 1-2 (``SimulatedCone.bright``),
as Tarricq et al. (2022) did on their 50 pc fields: computed by
:func:`ocmembers.method.hdbscan_t22.t22_members`, the same code that would
run on a real cone. To keep HDBSCAN tractable on wide low-latitude fields
(millions of G < 18 stars within 50 pc of a nearby cluster), the field is
first restricted to a generous astrometric window: the parallax cut of
Eq. 2 and a proper-motion circle ``[sim] t22_pm_window`` (default 5) times
the radius of Eq. 1. The window is wide enough that the field, not the
cluster, dominates the proper-motion distribution (HDBSCAN finds no group
when the cluster dominates, as on the Eq. 1-2 cone itself).

With ``[sim] t22_sky = true`` HDBSCAN clusters the tangent-plane position too
(five dimensions). T22 describe clustering on parallax and proper motion
(``t22_sky = false``); but they chose and checked each of their 389 lists,
which an unattended pipeline cannot. In three dimensions, on the wide
low-latitude fields of the 265 clusters of the full simulated run, "eom"
picked a field-dominated group for about a fifth of them (NGC 5316: 265 899
"members", Collinder 197: 336 402), and on 31 test clusters with coronae and
tails a fragment of 40-83 stars for 5 more; in five, the lists hold 80-96 per
cent of the true bright members in the cone at a purity of 90 per cent or
more (NGC 2099, 752, 2527, 3114, 4609, 5316, IC 2714, Collinder 197), as a
curated list would, but the spatial density keeps them nearer the centre
than T22's.

``[sim] t22_check = true`` stands in for T22's checking: a list is kept when
it looks, relative to its catalogue entry, like the 387 real T22 lists do
(:func:`ocmembers.method.hdbscan_t22.curation_failure`: its size 0.75-60
times the catalogue's ``n_members``, its robust astrometric dispersions at
most 5.5-8.5 times the catalogue's); otherwise the list of the other choice
of dimensions is used where it passes. Where the first choice finds no group
(a rich cluster on a sparse high-latitude field, e.g. NGC 188 in five
dimensions), the other is used in any case.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.method.columns import MEMBER_COLUMNS
from ocmembers.method.cuts import parallax_half_width, pm_radius
from ocmembers.method.hdbscan_t22 import curation_failure, t22_members
from ocmembers.sim.cluster import SimulatedCone, cluster_rng

__all__ = ["cg20_like_members", "t22_like_members"]

log = logging.getLogger(__name__)


def cg20_like_members(sim: SimulatedCone, cluster: pd.Series, cfg: Config) -> pd.DataFrame:
    """CG20-like member list of one simulated cone (module docstring).

    Returns
    -------
    DataFrame
        ``MEMBER_COLUMNS`` + ``source_id_dr2``; ``attrs`` hold nothing (the
        true DR3 id of each entry is in :func:`cg20_truth`).
    """
    s = cfg.sim
    rng = cluster_rng(cfg, sim.name, 7)[6]
    cone, truth = sim.cone, sim.truth
    g = cone["phot_g_mean_mag"].to_numpy(float)
    bright = np.isfinite(g) & (g < s.cg20_g_max) & np.isfinite(cone["parallax"].to_numpy(float))
    mem = bright & truth["is_member"].to_numpy(bool)
    # UPMASK (CG18) keeps only concentrated groups: no corona or tail stars (real CG18 has 2% beyond 10 pc)
    mem &= truth["population"].astype(str).to_numpy() != "escaped"
    p_keep = s.cg20_completeness * (1 - 0.5 / (1 + np.exp(-(g - 17.0) / 0.4)))
    ruwe = cone["ruwe"].to_numpy(float)
    p_keep = np.where(ruwe > 1.4, 0.5 * p_keep, p_keep)
    listed = mem & (rng.random(len(cone)) < np.nan_to_num(p_keep))
    n_list = int(listed.sum())
    # contamination: field stars close to the cluster in astrometry
    d2 = (((cone["pmra"].to_numpy(float) - float(cluster["pmra"])) / float(cluster["pmra_std"])) ** 2
          + ((cone["pmdec"].to_numpy(float) - float(cluster["pmdec"])) / float(cluster["pmdec_std"])) ** 2
          + ((cone["parallax"].to_numpy(float) - float(cluster["parallax"])) / float(cluster["parallax_std"])) ** 2)
    cand = np.flatnonzero(bright & ~truth["is_member"].to_numpy(bool) & (np.nan_to_num(d2, nan=np.inf) < 9.0))
    n_con = min(int(round(s.cg20_contamination * n_list)), cand.size)
    contam = rng.choice(cand, n_con, replace=False) if n_con else np.array([], dtype=int)
    rows = np.sort(np.concatenate([np.flatnonzero(listed), contam]))
    t = cone.iloc[rows]
    n = rows.size
    # DR2-like measurements at J2015.5
    cosd = np.cos(np.deg2rad(t["dec"].to_numpy(float)))
    pmra = t["pmra"].to_numpy(float) + 2.0 * t["pmra_error"].to_numpy(float) * rng.normal(0, 1, n)
    pmdec = t["pmdec"].to_numpy(float) + 2.0 * t["pmdec_error"].to_numpy(float) * rng.normal(0, 1, n)
    plx = t["parallax"].to_numpy(float) + 2.0 * t["parallax_error"].to_numpy(float) * rng.normal(0, 1, n)
    dt = cfg.crossmatch.dr2_epoch - cfg.cone.epoch
    ra = t["ra"].to_numpy(float) + dt * t["pmra"].to_numpy(float) / cosd / 3.6e6
    dec = t["dec"].to_numpy(float) + dt * t["pmdec"].to_numpy(float) / 3.6e6
    gmag = t["phot_g_mean_mag"].to_numpy(float) + rng.normal(0, 0.01, n)
    # probabilities: mostly 1, a fraction in [0.7, 1), preferring the outer stars
    r = truth["r_proj_pc"].to_numpy(float)[rows]
    prob = np.ones(n)
    n_low = int(round(s.cg20_low_probability_fraction * n))
    if n_low:
        w = r / r.sum() if r.sum() > 0 else None
        low = rng.choice(n, n_low, replace=False, p=w)
        prob[low] = np.round(rng.uniform(0.7, 0.99, n_low), 2)
    sid = t["source_id"].to_numpy(np.int64).copy()
    change = rng.random(n) < s.dr2_id_change_fraction
    sid_dr2 = np.where(change, sid + rng.integers(1, 2 ** 20, n), sid).astype(np.int64)
    out = pd.DataFrame({"cluster": sim.name, "ra": ra, "dec": dec, "pmra": pmra, "pmdec": pmdec,
                        "parallax": plx, "phot_g_mean_mag": gmag, "probability": prob,
                        "source_id_dr2": sid_dr2})
    return out[list(MEMBER_COLUMNS) + ["source_id_dr2"]]


def _t22_window(field: pd.DataFrame, cluster: pd.Series, cfg: Config) -> pd.DataFrame:
    """Eq. 2 in parallax and ``t22_pm_window`` x Eq. 1 in proper motion (module docstring)."""
    pm_r = cfg.sim.t22_pm_window * pm_radius(cluster["pmra_std"], cluster["pmdec_std"], cfg.cone.n_sigma)
    dpm = np.hypot(field["pmra"].to_numpy(float) - cluster["pmra"], field["pmdec"].to_numpy(float) - cluster["pmdec"])
    dplx = np.abs(field["parallax"].to_numpy(float) - cluster["parallax"])
    return field.loc[(dpm <= pm_r) & (dplx <= parallax_half_width(cluster["parallax_std"], cfg.cone.n_sigma))
                     ].reset_index(drop=True)


def _failure(res: pd.DataFrame, field: pd.DataFrame, cluster: pd.Series, cfg: Config) -> str | None:
    """Why a T22-like HDBSCAN result is not kept: no group, or (``[sim] t22_check``) the curation
    check of :func:`ocmembers.method.hdbscan_t22.curation_failure`."""
    sel = res["probability"].to_numpy(float) > 0
    if not sel.any():
        return "no group"
    if not cfg.sim.t22_check:
        return None
    return curation_failure(field.loc[sel, ["parallax", "pmra", "pmdec"]], cluster)


def t22_like_members(sim: SimulatedCone, cluster: pd.Series, cfg: Config) -> pd.DataFrame:
    """T22-like list: :func:`ocmembers.method.hdbscan_t22.t22_members` on the simulated cone.

    Returns ``MEMBER_COLUMNS`` + ``source_id`` for the sources with
    probability > 0 (some may lie outside the Eq. 1-2 cone, as real T22
    members do).
    """
    field = sim.bright if sim.bright is not None and len(sim.bright) else sim.cone
    field = _t22_window(field, cluster, cfg)
    first = bool(cfg.sim.t22_sky)
    res = t22_members(field, cluster, cfg, sky=first)
    why = _failure(res, field, cluster, cfg)
    if why is not None:
        # five dimensions find no group where a rich cluster fills a sparse field (NGC 188 at
        # b = 22 deg); three pick a field-dominated group or a fragment on some wide
        # low-latitude fields: the other choice, kept where it passes (module docstring)
        other = t22_members(field, cluster, cfg, sky=not first)
        why_other = _failure(other, field, cluster, cfg)
        kept = other if why_other is None or not (res["probability"].to_numpy(float) > 0).any() else res
        log.info("T22-like list of %s: %s dimensions give %s; %s dimensions %s; kept %s", sim.name,
                 5 if first else 3, why, 3 if first else 5, why_other or "pass",
                 "the second" if kept is other else "the first")
        res = kept
    res = res.loc[res["probability"].to_numpy(float) > 0, ["source_id", "probability"]]
    cols = ["source_id", "ra", "dec", "pmra", "pmdec", "parallax", "phot_g_mean_mag"]
    out = res.merge(field[cols], on="source_id", how="left")
    out.insert(0, "cluster", sim.name)
    return out[list(MEMBER_COLUMNS) + ["source_id"]].reset_index(drop=True)
