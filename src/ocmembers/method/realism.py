r"""Statistics that hold a simulated member list or field against a real one (issue 16).

The simulated sky is only as real as its clusters and fields. These functions
compute, for a member list of one cluster, the numbers that Tarricq et al.
(2022, T22) and Cantat-Gaudin et al. (2018, CG18) lists can be compared on
without any model, and for a field the RUWE and star-count distributions:

* :func:`list_statistics` -- the number of members; the fractions beyond 10,
  20 and 30 pc of projected radius, :math:`r = d \tan\theta` with
  :math:`\theta` the separation from the catalogued centre and :math:`d` the
  catalogued distance (the same for both lists, so that the radii are
  comparable); the robust dispersions :math:`1.4826\,\mathrm{MAD}` of
  pmra, pmdec and parallax (robust, because a few field stars in a list would
  dominate a standard deviation); the 10th, 50th and 90th percentiles of G and
  the fraction fainter than G = 17.
* :func:`compare_lists` -- sim/real of each statistic, and the two-sample
  Kolmogorov-Smirnov distance of the G and radius distributions.
* :func:`summarise_ratios` -- per statistic, over clusters: the median of
  sim/real and its spread (16th-84th percentiles), as the report gives them.
* :func:`ruwe_statistics`, :func:`star_counts` -- the field and member RUWE
  distributions (fraction above 1.4, percentiles) and the counts per G bin.
* :func:`beyond_jacobi` -- the fraction of a list beyond a cluster's Jacobi radius in
  projected radius (Hunt & Reffert 2024 give r_J and the share of their own members within
  it: an independent census of what lies outside the bound cluster).
* :func:`field_statistics` -- a plain field (no cluster) per G bin: the number
  of sources, the fraction with RUWE > 1.4, the fraction without parallax
  (two-parameter solutions), and the median and robust dispersion of pmra,
  pmdec and parallax.

All pure: tables in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _stats

from ocmembers.method.cuts import angular_separation_deg

__all__ = ["RADII_PC", "RUWE_LIMIT", "list_statistics", "compare_lists", "summarise_ratios",
           "ruwe_statistics", "star_counts", "robust_sigma", "projected_radius_pc", "field_statistics",
           "FIELD_G_EDGES", "beyond_jacobi", "spread"]

#: Projected radii (pc) of the "fraction beyond" statistics (issue 16).
RADII_PC: tuple[float, ...] = (10.0, 20.0, 30.0)
#: The RUWE above which an astrometric solution is commonly taken as poor (Lindegren et al. 2021).
RUWE_LIMIT = 1.4
#: G bins of :func:`field_statistics`.
FIELD_G_EDGES: tuple[float, ...] = (3.0, 15.0, 17.0, 18.0, 19.0, 20.0, 21.0)


def robust_sigma(x: np.ndarray) -> float:
    """1.4826 times the median absolute deviation of the finite values (NaN if fewer than 2)."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def projected_radius_pc(ra: np.ndarray, dec: np.ndarray, cluster: pd.Series) -> np.ndarray:
    """Projected distance (pc) from the cluster's catalogued centre at its catalogued distance."""
    sep = angular_separation_deg(ra, dec, float(cluster["ra"]), float(cluster["dec"]))
    return float(cluster["dist_pc"]) * np.tan(np.deg2rad(sep))


def list_statistics(members: pd.DataFrame, cluster: pd.Series) -> dict[str, float]:
    """The statistics of one member list (module docstring); NaN where a list is too short."""
    r = projected_radius_pc(members["ra"].to_numpy(float), members["dec"].to_numpy(float), cluster)
    g = members["phot_g_mean_mag"].to_numpy(float)
    g = g[np.isfinite(g)]
    out: dict[str, float] = {"n": float(len(members))}
    for radius in RADII_PC:
        out[f"frac_r_gt_{radius:g}pc"] = float(np.mean(r > radius)) if len(r) else math.nan
    out["r_median_pc"] = float(np.median(r)) if len(r) else math.nan
    for col in ("pmra", "pmdec", "parallax"):
        out[f"sigma_{col}"] = robust_sigma(members[col].to_numpy(float))
    for q in (10, 50, 90):
        out[f"g_q{q}"] = float(np.percentile(g, q)) if g.size else math.nan
    out["frac_g_gt_17"] = float(np.mean(g > 17.0)) if g.size else math.nan
    return out


def beyond_jacobi(members: pd.DataFrame, cluster: pd.Series, r_jacobi_pc: float) -> float:
    """Fraction of ``members`` (``ra``, ``dec``) whose projected radius at the cluster's
    catalogued distance exceeds ``r_jacobi_pc``; NaN for an empty list."""
    if not len(members):
        return math.nan
    r = projected_radius_pc(members["ra"].to_numpy(float), members["dec"].to_numpy(float), cluster)
    return float(np.mean(r > float(r_jacobi_pc)))


def compare_lists(sim: pd.DataFrame, real: pd.DataFrame, cluster: pd.Series) -> dict[str, Any]:
    """Statistics of both lists, sim/real of each (NaN where the real value is 0 or NaN), and the
    Kolmogorov-Smirnov distances of their G and projected-radius distributions."""
    s, r = list_statistics(sim, cluster), list_statistics(real, cluster)
    ratio = {k: (s[k] / r[k] if np.isfinite(r[k]) and r[k] != 0 and np.isfinite(s[k]) else math.nan)
             for k in s}
    ks = {}
    for name, col in (("g", "phot_g_mean_mag"), ("r", None)):
        if col is None:
            a = projected_radius_pc(sim["ra"].to_numpy(float), sim["dec"].to_numpy(float), cluster)
            b = projected_radius_pc(real["ra"].to_numpy(float), real["dec"].to_numpy(float), cluster)
        else:
            a, b = sim[col].to_numpy(float), real[col].to_numpy(float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        ks[f"ks_{name}"] = float(_stats.ks_2samp(a, b).statistic) if a.size and b.size else math.nan
    return {"sim": s, "real": r, "sim_over_real": ratio, **ks}


def summarise_ratios(per_cluster: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per statistic: median, 16th and 84th percentiles of sim/real over clusters, and how many
    clusters have a finite ratio. ``per_cluster`` maps a name to :func:`compare_lists`."""
    keys: list[str] = []
    for v in per_cluster.values():
        keys += [k for k in v["sim_over_real"] if k not in keys]
    return {k: spread([v["sim_over_real"].get(k, math.nan) for v in per_cluster.values()]) for k in keys}


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, 16th and 84th percentiles of the finite ``values`` (one per cluster) and how many
    there are: the summary form of the report."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if not x.size:
        return {"median": math.nan, "p16": math.nan, "p84": math.nan, "n_clusters": 0}
    return {"median": float(np.median(x)), "p16": float(np.percentile(x, 16)),
            "p84": float(np.percentile(x, 84)), "n_clusters": int(x.size)}


def ruwe_statistics(ruwe: np.ndarray) -> dict[str, float]:
    """Fraction with RUWE > 1.4, and the 50th, 90th and 99th percentiles of the finite values."""
    x = np.asarray(ruwe, float)
    x = x[np.isfinite(x)]
    if not x.size:
        return {"n": 0.0, "frac_gt_1.4": math.nan, "q50": math.nan, "q90": math.nan, "q99": math.nan}
    return {"n": float(x.size), "frac_gt_1.4": float(np.mean(x > RUWE_LIMIT)),
            "q50": float(np.percentile(x, 50)), "q90": float(np.percentile(x, 90)),
            "q99": float(np.percentile(x, 99))}


def star_counts(g: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Number of sources per G bin of ``edges``."""
    x = np.asarray(g, float)
    return np.histogram(x[np.isfinite(x)], bins=np.asarray(edges, float))[0]


def field_statistics(field: pd.DataFrame, edges: Sequence[float] = FIELD_G_EDGES) -> dict[str, list[float]]:
    """Per G bin of ``edges``: ``n``, ``frac_ruwe_gt_1.4`` (of the sources with a RUWE),
    ``frac_two_parameter`` (no parallax), and ``<col>_median``, ``<col>_sigma``
    (:func:`robust_sigma`) of pmra, pmdec and parallax; NaN in an empty bin."""
    g = field["phot_g_mean_mag"].to_numpy(float)
    ruwe = field["ruwe"].to_numpy(float)
    plx = field["parallax"].to_numpy(float)
    out: dict[str, list[float]] = {k: [] for k in ("n", "frac_ruwe_gt_1.4", "frac_two_parameter")}
    for col in ("pmra", "pmdec", "parallax"):
        out[f"{col}_median"], out[f"{col}_sigma"] = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        b = (g >= lo) & (g < hi)
        has = b & np.isfinite(ruwe)
        out["n"].append(float(b.sum()))
        out["frac_ruwe_gt_1.4"].append(float(np.mean(ruwe[has] > RUWE_LIMIT)) if has.any() else math.nan)
        out["frac_two_parameter"].append(float(np.mean(~np.isfinite(plx[b]))) if b.any() else math.nan)
        for col in ("pmra", "pmdec", "parallax"):
            x = field[col].to_numpy(float)[b]
            x = x[np.isfinite(x)]
            out[f"{col}_median"].append(float(np.median(x)) if x.size else math.nan)
            out[f"{col}_sigma"].append(robust_sigma(x))
    return out
