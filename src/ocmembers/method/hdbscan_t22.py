r"""HDBSCAN membership as in Tarricq et al. (2022, A&A 659, A59; "T22").

T22 revisited the members of 389 nearby open clusters out to 50 pc from
their centres by running HDBSCAN (Campello et al. 2013; McInnes et al. 2017)
on Gaia EDR3 parallax and proper motion only,
:math:`(\varpi, \mu_{\alpha*}, \mu_\delta)`, for sources with
:math:`G < 18`, with no cut in sky position (they studied cluster haloes).
van Groeningen et al. (2023, Sect. 4) compare their Deep Sets members with
these lists.

Implementation
--------------
1. Keep sources with finite astrometry, ``phot_g_mean_mag < g_max``
   (``g_max = 18``) and ``ruwe < ruwe_max`` (1.4): T22 excluded the sources
   with a RUWE above 1.4 (van Groeningen et al. 2023, Sect. 4.2, who find
   that 26 per cent of their G < 18 members missing from T22 have one).
2. Scale each of the three dimensions to zero mean and unit variance over
   those sources (:math:`x' = (x - \bar x)/s_x`), so that no dimension
   dominates the Euclidean metric of HDBSCAN.
3. Run ``hdbscan.HDBSCAN(min_cluster_size, min_samples,
   cluster_selection_method)``.
4. The cluster is the HDBSCAN group whose scaled centroid (median of its
   members) lies closest to the catalogue's mean
   :math:`(\varpi, \mu_{\alpha*}, \mu_\delta)` scaled the same way.
5. Probability = HDBSCAN's membership strength ``probabilities_`` for the
   group's members, 0 for everyone else (other groups, noise, ``G >= g_max``).

Parameters (``[methods]`` of ``config.toml``): ``hdbscan_min_cluster_size``,
``hdbscan_min_samples``, ``hdbscan_selection``, ``hdbscan_g_max``,
``hdbscan_ruwe_max`` (``inf``, or a cone without ``ruwe``: no RUWE cut, with a
warning for the latter), ``hdbscan_backend`` (below),
``hdbscan_sky`` (add the tangent-plane position to the features; the T22-like
lists of the simulated sky use it, ``[sim] t22_sky``). The exact values of
T22 could not be looked up offline (the paper text was not available); the
defaults (40, 20, ``"eom"``) are explained in ``config.toml``.

Backends
--------
``hdbscan_backend = "hdbscan"`` (default) runs the ``hdbscan`` package
(McInnes et al. 2017; Boruvka KD-tree). ``"fast_hdbscan"`` runs
``fast_hdbscan.HDBSCAN`` with the same parameters: 2.1-2.5 times less CPU on
the T22-like fields of the simulated sky (6e4-3.2e5 sources in five
dimensions), not the default because its lists are not byte for byte those of
``hdbscan``. Measured (issue 14, ``benchmarks/bench_sim_speed.py``): the core
distances count the point itself in both, and the minimum spanning tree of
the mutual reachability distances has the same weights (every minimum
spanning tree has the same sorted weights; the float64 weights of
fast-hdbscan's tree equal hdbscan's exactly on the simulated NGC 2099 field).
What differs is which of the edges of *equal* weight make the tree and in
which order they merge (ties are frequent: most mutual-reachability distances
are a core distance), and that decides whether stars joining at the level of
a split belong to the child or to the parent. On the simulated fields it
moved one star of p = 0.18 (NGC 2099, 2923 members), one of p = 0.32 (NGC
6705, 1940) and a block of 55 that all join at one level, p = 0.224-0.228
(NGC 7789, 5078): at most 1.1 per cent of a list, all at low p. ``hdbscan``
itself, on the same rows permuted, moved one star of each list (p = 0.18,
0.32, 0.22). The strengths of the common members differ by at most 1.4e-6
(fast-hdbscan's distances are float32).

.. warning:: HDBSCAN needs a field population around the cluster. T22 ran it
   on 50 pc fields *without* proper-motion or parallax cuts. On a cone cut
   around the cluster in astrometry (Eqs. 1-2 of van Groeningen et al. 2023,
   or the pre-cut M67 extract) the cluster can fill the whole sample; HDBSCAN
   then finds no group and the result is a labelled empty table.

References
----------
Tarricq, Y., Soubiran, C., Casamiquela, L., et al. 2022, A&A 659, A59.
Campello, R. J. G. B., Moulavi, D., Sander, J. 2013, PAKDD, 160.
McInnes, L., Healy, J., Astels, S. 2017, JOSS 2, 205.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.method.columns import require_columns
from ocmembers.method.member_table import MethodError, empty_result, member_table, source_ids
from ocmembers.method.settings import methods_config

__all__ = ["t22_members", "hdbscan_members", "sky_offsets", "ASTROMETRY", "curation_failure",
           "CURATED_COUNT_RANGE", "CURATED_MAX_DISPERSION"]

log = logging.getLogger(__name__)

METHOD = "hdbscan_t22"
ASTROMETRY: tuple[str, ...] = ("parallax", "pmra", "pmdec")


#: The number of members of a real T22 list over the catalogue's ``n_members`` (CG20's G < 18
#: members with p >= 0.7): 0.79-57 over the 387 real lists (median 2.4;
#: ``../shared/data/catalogues/t22_members_edr3.csv.gz`` against CG20), widened to round numbers.
CURATED_COUNT_RANGE: tuple[float, float] = (0.75, 60.0)
#: The robust (1.4826 MAD) dispersion of a real T22 list in pmra, pmdec or parallax over the
#: catalogue's ``pmra_std``, ``pmdec_std``, ``parallax_std``: at most 4.3, 5.5 and 8.1 over the
#: same 387 lists (medians 1.0-1.2).
CURATED_MAX_DISPERSION: dict[str, float] = {"pmra": 5.5, "pmdec": 5.5, "parallax": 8.5}


def curation_failure(members: pd.DataFrame, cluster: pd.Series) -> str | None:
    """Why an HDBSCAN list is not one a curator would have kept, or None when it passes.

    T22 chose and checked each of their lists; an unattended run has to say when the
    group HDBSCAN picked is a field-dominated group or a fragment. A list passes when
    it looks, relative to its catalogue entry, like the real T22 lists do: its size
    within :data:`CURATED_COUNT_RANGE` times the catalogue's ``n_members``, and its
    robust dispersions within :data:`CURATED_MAX_DISPERSION` times the catalogue's.
    The bounds are the range of the 387 real lists, not fitted to any result.

    Parameters
    ----------
    members : DataFrame
        The list's members (``parallax, pmra, pmdec``), one row each.
    cluster : Series
        The catalogue row (``n_members, pmra_std, pmdec_std, parallax_std``).
    """
    name = _cluster_name(cluster)
    n = len(members)
    if n == 0:
        return "no group"
    n_cat = float(cluster.get("n_members", np.nan))
    lo, hi = CURATED_COUNT_RANGE
    if np.isfinite(n_cat) and n_cat > 0 and not lo <= n / n_cat <= hi:
        return (f"{name}: {n} members, {n / n_cat:.3g} times the catalogue's {n_cat:.0f} "
                f"(real T22 lists: {lo:g}-{hi:g} times)")
    for c, limit in CURATED_MAX_DISPERSION.items():
        ref = float(cluster.get(f"{c}_std", np.nan))
        x = members[c].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        if not (np.isfinite(ref) and ref > 0) or x.size == 0:
            continue
        sigma = 1.4826 * float(np.median(np.abs(x - np.median(x))))
        if sigma > limit * ref:
            return (f"{name}: {c} dispersion {sigma:.3g}, {sigma / ref:.3g} times the catalogue's "
                    f"{ref:.3g} (real T22 lists: at most {limit:g} times)")
    return None


def _cluster_name(cluster: pd.Series | None) -> str:
    if cluster is None:
        return "<no cluster>"
    return str(cluster.get("name", "<unnamed cluster>"))


def _fit_hdbscan(xs: np.ndarray, *, min_cluster_size: int, min_samples: int, selection: str,
                 backend: str) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, probabilities)`` of HDBSCAN on ``xs`` through ``backend`` (module docstring)."""
    if backend == "hdbscan":
        import hdbscan  # imported here: a heavy import only this method needs

        # core_dist_n_jobs=1: hdbscan's default (4) starts joblib worker processes for every call,
        # 6 of the 7.7 s of a simulated NGC 752 field, and oversubscribes the pipeline's own JOBS
        model = hdbscan.HDBSCAN(min_cluster_size=int(min_cluster_size), min_samples=int(min_samples),
                                cluster_selection_method=selection, core_dist_n_jobs=1)
    elif backend == "fast_hdbscan":
        try:
            import fast_hdbscan
        except ImportError as exc:  # pragma: no cover - it is in the lock
            raise MethodError("[methods] hdbscan_backend = \"fast_hdbscan\" needs the package "
                              "fast-hdbscan (pip install fast-hdbscan)") from exc
        model = fast_hdbscan.HDBSCAN(min_cluster_size=int(min_cluster_size), min_samples=int(min_samples),
                                     cluster_selection_method=selection, metric="euclidean")
    else:
        raise MethodError(f"unknown HDBSCAN backend {backend!r} (hdbscan or fast_hdbscan)")
    labels = np.asarray(model.fit_predict(xs), dtype=np.int64)
    return labels, np.asarray(model.probabilities_, dtype=float)


def hdbscan_members(x: np.ndarray, centre: np.ndarray, *, min_cluster_size: int,
                    min_samples: int, selection: str = "eom",
                    what: str = "cone", backend: str = "hdbscan") -> tuple[np.ndarray, np.ndarray, int]:
    """HDBSCAN on standard-scaled features; the group closest to ``centre``.

    Parameters
    ----------
    x : (n, d) array
        Features (finite).
    centre : (d,) array
        The catalogue position of the cluster in the same (unscaled) units.
    min_cluster_size, min_samples, selection
        HDBSCAN parameters (``selection`` is ``cluster_selection_method``).
    backend : {"hdbscan", "fast_hdbscan"}
        The implementation (``[methods] hdbscan_backend``), with the same
        parameters and the Euclidean metric.

    Returns
    -------
    probability : (n,) array
        ``probabilities_`` for the chosen group, 0 elsewhere.
    labels : (n,) int array
        HDBSCAN labels (-1 noise).
    chosen : int
        Label of the chosen group, -1 when HDBSCAN found no group.
    """
    n = x.shape[0]
    if n <= max(min_cluster_size, min_samples):
        raise MethodError(f"{what}: {n} sources, too few for HDBSCAN with "
                          f"min_cluster_size={min_cluster_size}, min_samples={min_samples}")
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    if np.any(~np.isfinite(std)) or np.any(std <= 0):
        raise MethodError(f"{what}: a feature has zero spread; cannot scale for HDBSCAN")
    xs = (x - mean) / std
    cs = (np.asarray(centre, dtype=float) - mean) / std
    labels, strength = _fit_hdbscan(xs, min_cluster_size=min_cluster_size, min_samples=min_samples,
                                    selection=selection, backend=backend)
    groups = np.unique(labels[labels >= 0])
    if groups.size == 0:
        return np.zeros(n), labels, -1
    # group centroids (medians) in scaled space, vectorised over groups via sorting
    cents = np.stack([np.median(xs[labels == g], axis=0) for g in groups])  # few groups
    chosen = int(groups[np.argmin(np.linalg.norm(cents - cs, axis=1))])
    prob = np.where(labels == chosen, strength, 0.0)
    return prob, labels, chosen


def sky_offsets(cone: pd.DataFrame, cluster: pd.Series) -> np.ndarray:
    """Gnomonic (tangent-plane) offsets ``(xi, eta)`` (rad) of the sources from the cluster centre."""
    ra0, de0 = np.deg2rad(float(cluster["ra"])), np.deg2rad(float(cluster["dec"]))
    ra, de = np.deg2rad(cone["ra"].to_numpy(float)), np.deg2rad(cone["dec"].to_numpy(float))
    cos_c = np.sin(de0) * np.sin(de) + np.cos(de0) * np.cos(de) * np.cos(ra - ra0)
    xi = np.cos(de) * np.sin(ra - ra0) / cos_c
    eta = (np.cos(de0) * np.sin(de) - np.sin(de0) * np.cos(de) * np.cos(ra - ra0)) / cos_c
    return np.column_stack([xi, eta])


def t22_members(cone: pd.DataFrame, cluster: pd.Series, cfg: Any = None, *,
                sky: bool | None = None) -> pd.DataFrame:
    """T22-like HDBSCAN members of one cluster in a Gaia cone.

    Parameters
    ----------
    cone : DataFrame
        Gaia archive columns (at least ``parallax, pmra, pmdec,
        phot_g_mean_mag``; ``source_id`` if present); a preprocessed cone
        (zero-point corrected ``parallax``) works too.
    cluster : Series
        Row of the canonical cluster table (``name, pmra, pmdec, parallax``).
    cfg : Config, optional
        Reads ``cfg.methods`` (defaults when absent).
    sky : bool, optional
        Add the tangent-plane position :math:`(\\xi, \\eta)` about the cluster
        centre (:func:`sky_offsets`) to the clustered features (five
        dimensions, scaled like the others). Default ``[methods] hdbscan_sky``.
        On wide low-latitude fields (hundreds of thousands of :math:`G < 18`
        sources) the three astrometric dimensions alone let "eom" pick a
        field-dominated group (simulated NGC 5316: 265 899 "members" for 691
        true ones); the spatial concentration separates the cluster (657, at
        least 90 per cent true).

    Returns
    -------
    DataFrame
        The common member table (:mod:`ocmembers.method.member_table`): one row per
        cone source, ``source_id, probability, method, hdbscan_label``;
        members of the cluster have ``probability > 0``. Parameters in
        ``attrs["parameters"]``. If HDBSCAN finds no group, a labelled empty
        result (``attrs["empty_reason"]``).
    """
    mc = methods_config(cfg)
    name = _cluster_name(cluster)
    sky = bool(mc.hdbscan_sky if sky is None else sky)
    features = list(ASTROMETRY) + (["xi", "eta"] if sky else [])
    ruwe_max = float(mc.hdbscan_ruwe_max)
    cut_ruwe = bool(np.isfinite(ruwe_max)) and "ruwe" in cone.columns
    if np.isfinite(ruwe_max) and not cut_ruwe:
        # a cone from a file may lack the column: cluster every source, and say so (params too)
        log.warning("cone of %s (hdbscan_t22) has no ruwe column: T22's cut RUWE < %g is not "
                    "applied", name, ruwe_max)
    require_columns(cone, list(ASTROMETRY) + ["phot_g_mean_mag"] + (["ra", "dec"] if sky else []),
                    f"cone of {name} (hdbscan_t22)")
    ids = source_ids(cone)
    params = {"min_cluster_size": mc.hdbscan_min_cluster_size,
              "min_samples": mc.hdbscan_min_samples,
              "cluster_selection_method": mc.hdbscan_selection,
              "g_max": mc.hdbscan_g_max, "ruwe_max": ruwe_max if cut_ruwe else None,
              "features": features, "backend": mc.hdbscan_backend,
              "scaling": "standard (zero mean, unit variance over the sources used)",
              "cluster": name}
    x_all = cone[list(ASTROMETRY)].to_numpy(dtype=float)
    centre = np.array([float(cluster[c]) for c in ASTROMETRY])
    if sky:
        for k in ("ra", "dec"):
            if not np.isfinite(float(cluster.get(k, np.nan))):
                raise MethodError(f"cluster {name}: catalogue {k} not finite (needed with sky=True)")
        x_all = np.column_stack([x_all, sky_offsets(cone, cluster)])
        centre = np.concatenate([centre, [0.0, 0.0]])
    g = cone["phot_g_mean_mag"].to_numpy(dtype=float)
    use = np.all(np.isfinite(x_all), axis=1) & np.isfinite(g) & (g < mc.hdbscan_g_max)
    if cut_ruwe:
        with np.errstate(invalid="ignore"):
            use &= cone["ruwe"].to_numpy(dtype=float) < ruwe_max   # no RUWE (2-parameter): no astrometry either
    what = f"G < {mc.hdbscan_g_max}" + (f", RUWE < {ruwe_max:g}" if cut_ruwe else "")
    if not np.all(np.isfinite(centre)):
        raise MethodError(f"cluster {name}: catalogue parallax/pmra/pmdec not finite")
    t0 = time.perf_counter()
    prob_use, labels_use, chosen = hdbscan_members(
        x_all[use], centre, min_cluster_size=mc.hdbscan_min_cluster_size,
        min_samples=mc.hdbscan_min_samples, selection=mc.hdbscan_selection,
        what=f"cone of {name} ({what})", backend=mc.hdbscan_backend)
    params["wall_s"] = round(time.perf_counter() - t0, 3)
    if chosen < 0:
        return empty_result(ids, METHOD, f"HDBSCAN found no group in the cone of {name} "
                            f"({int(use.sum())} sources with {what}); a cone dominated by "
                            "the cluster has no field to contrast with (T22 used 50 pc fields "
                            "without astrometric cuts)", params)
    prob = np.zeros(len(cone))
    prob[use] = prob_use
    labels = np.full(len(cone), -2, dtype=np.int64)  # -2: not used (faint / RUWE / non-finite)
    labels[use] = labels_use
    params["chosen_label"] = chosen
    return member_table(ids, prob, METHOD, params, extra={"hdbscan_label": labels})
