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
:func:`total_mass` (:mod:`ocmembers.method.cluster_mass`, re-exported here) works
on plain arrays, so it applies to any member list (Deep Sets included).

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
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.method.cluster_mass import (A_G_OVER_A0, MassEstimate, completeness_magnitude, king_number,
                                          kroupa_integral, total_mass, total_mass_from_members)
from ocmembers.method.columns import require_columns
from ocmembers.method.member_table import MethodError, empty_result, member_table, source_ids
from ocmembers.method.settings import methods_config
from ocmembers.method.upmask import UPMASK, features_for, magnitude_errors, sky_window, tangent_plane
from ocmembers.method.xdgmm import XDGMM, catalogue_component, compact_component, covariance_from_gaia

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
        if mc.xd_component_choice == "entropy":
            comp = compact_component(xd, int(ok.sum()), mc.xd_min_component_stars)
        elif mc.xd_component_choice == "catalogue":
            target = np.array([*pm0, _cluster_value(cluster, "parallax", name)])
            sd = np.array([*pm_sd, _cluster_value(cluster, "parallax_std", name)])
            comp = catalogue_component(xd, int(ok.sum()), target, sd, mc.xd_min_component_stars)
        else:
            raise MethodError(f"[methods] xd_component_choice must be 'entropy' or 'catalogue', "
                              f"got {mc.xd_component_choice!r}")
    except MethodError as exc:
        raise MethodError(f"cluster {name}: {exc}") from exc
    params["xd_components_used"] = int(len(xd.weights_))
    params["xd_components_dropped"] = int(xd.n_dropped_)
    p_xd = np.zeros(n_all)
    p_xd[ok] = xd.bootstrap_membership(x[ok], s[ok], comp, mc.xd_bootstrap, seed=mc.seed)
    params.update({"xd_component_choice": mc.xd_component_choice, "xd_component": comp, "xd_converged": bool(xd.converged_), "xd_n_iter": xd.n_iter_,
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
