r"""The Gaia cone of a cluster: its radius and the cuts of Eqs. 1-2 (Sect. 2.1).

The cone holds the sources within a projected radius :math:`R` (``[cone]
radius_pc``, 50 pc) of the cluster centre, at angle
:math:`\theta_{\max} = \arctan(R / d)` for a cluster at distance :math:`d`, and
within :math:`n` (``[cone] n_sigma``, 10) member dispersions of the cluster
in proper motion and parallax:

.. math::

    \sqrt{(\mu_{\alpha*} - \mu_{\alpha*,c})^2 + (\mu_\delta - \mu_{\delta,c})^2}
        \le n \sqrt{(\sigma_{\mu_{\alpha*}}^2 + \sigma_{\mu_\delta}^2) / 2}     \qquad (1)

    |\varpi - \varpi_c| \le n\,\sigma_\varpi                                     \qquad (2)

with the means and dispersions of the CG20 members. This module is the one
place these are written: the ADQL of the archive (:mod:`ocmembers.sources.gaia`),
the reader of files on disk (:mod:`ocmembers.sources.local`) and the simulated
sky (:mod:`ocmembers.sim.cluster`) all take them from here.

References
----------
van Groeningen, M. G. J., Castro-Ginard, A., Brown, A. G. A., et al. 2023,
A&A 675, A68, Sect. 2.1, Eqs. 1-2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ocmembers.exceptions import MissingColumnsError, TableParseError
from ocmembers.method.columns import cluster_label

__all__ = ["CONE_PARAMETERS", "ConeWindow", "cone_radius_deg", "pm_radius", "parallax_half_width",
           "cone_window", "cone_mask", "apply_cone_cuts", "angular_separation_deg", "cone_cut_status"]

#: Cluster-table columns the cone needs (canonical names of :mod:`ocmembers.method.columns`).
CONE_PARAMETERS: tuple[str, ...] = ("ra", "dec", "dist_pc", "pmra", "pmra_std", "pmdec",
                                    "pmdec_std", "parallax", "parallax_std")


def cone_radius_deg(radius_pc: float, dist_pc: float) -> float:
    """Angle (deg) subtended by the projected radius ``radius_pc`` at ``dist_pc``: arctan(R / d)."""
    return float(np.rad2deg(np.arctan2(float(radius_pc), float(dist_pc))))


def pm_radius(pmra_std: float, pmdec_std: float, n_sigma: float) -> float:
    """Right-hand side of Eq. 1: ``n_sigma * sqrt((pmra_std**2 + pmdec_std**2) / 2)`` (mas/yr)."""
    return float(n_sigma * np.sqrt((float(pmra_std) ** 2 + float(pmdec_std) ** 2) / 2))


def parallax_half_width(parallax_std: float, n_sigma: float) -> float:
    """Right-hand side of Eq. 2: ``n_sigma * parallax_std`` (mas)."""
    return float(n_sigma * float(parallax_std))


@dataclass(frozen=True)
class ConeWindow:
    """The cone of one cluster: centre and radius (deg), and the limits of Eqs. 1-2."""

    name: str
    ra: float
    dec: float
    radius_deg: float
    pmra: float
    pmdec: float
    pm_max: float
    parallax: float
    parallax_max: float


def cone_window(cluster: pd.Series, *, radius_pc: float, n_sigma: float) -> ConeWindow:
    """The validated cone of ``cluster`` (a row of the canonical cluster table).

    Raises
    ------
    MissingColumnsError, TableParseError
        When a needed parameter is missing, NaN or not physical; the message
        names the cluster and the parameter.
    """
    name = cluster_label(cluster)
    missing = [c for c in CONE_PARAMETERS if c not in cluster.index]
    if missing:
        raise MissingColumnsError(f"cluster {name}: the cluster table lacks {', '.join(missing)}, "
                                  "needed for the Gaia cone (Eqs. 1-2)")
    v: dict[str, float] = {}
    bad: list[str] = []
    for key in CONE_PARAMETERS:
        try:
            v[key] = float(cluster[key])
        except (TypeError, ValueError):
            v[key] = math.nan
        if not math.isfinite(v[key]):
            bad.append(key)
    if bad:
        raise TableParseError(f"cluster {name}: {', '.join(bad)} missing (NaN) in the cluster "
                              "table; the Gaia cone (Eqs. 1-2) cannot be built")
    if v["dist_pc"] <= 0:
        raise TableParseError(f"cluster {name}: distance dist_pc = {v['dist_pc']} pc is not "
                              "positive; the cone radius cannot be computed")
    negative = [k for k in ("pmra_std", "pmdec_std", "parallax_std") if v[k] < 0]
    if negative:
        raise TableParseError(f"cluster {name}: negative dispersion(s) {', '.join(negative)}")
    if (v["pmra_std"] == 0 and v["pmdec_std"] == 0) or v["parallax_std"] == 0:
        raise TableParseError(f"cluster {name}: zero member dispersion in proper motion or "
                              "parallax; the cuts of Eqs. 1-2 would select nothing")
    if not -90.0 <= v["dec"] <= 90.0:
        raise TableParseError(f"cluster {name}: dec = {v['dec']} deg outside [-90, 90]")
    return ConeWindow(name=name, ra=v["ra"], dec=v["dec"],
                      radius_deg=cone_radius_deg(radius_pc, v["dist_pc"]),
                      pmra=v["pmra"], pmdec=v["pmdec"],
                      pm_max=pm_radius(v["pmra_std"], v["pmdec_std"], n_sigma),
                      parallax=v["parallax"],
                      parallax_max=parallax_half_width(v["parallax_std"], n_sigma))


def angular_separation_deg(ra_deg: np.ndarray, dec_deg: np.ndarray, ra0_deg: float,
                           dec0_deg: float) -> np.ndarray:
    """Great-circle distance (deg) from (``ra0_deg``, ``dec0_deg``), by the haversine formula
    (stable at the small separations of a cone)."""
    ra0, dec0 = np.deg2rad(ra0_deg), np.deg2rad(dec0_deg)
    ra, dec = np.deg2rad(np.asarray(ra_deg, float)), np.deg2rad(np.asarray(dec_deg, float))
    h = np.sin((dec - dec0) / 2) ** 2 + np.cos(dec) * np.cos(dec0) * np.sin((ra - ra0) / 2) ** 2
    return np.rad2deg(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def cone_mask(sources: pd.DataFrame, window: ConeWindow) -> np.ndarray:
    """True for the rows of ``sources`` inside the cone and within Eqs. 1-2 of ``window``."""
    sep = angular_separation_deg(sources["ra"].to_numpy(float), sources["dec"].to_numpy(float),
                                 window.ra, window.dec)
    dpm = np.hypot(sources["pmra"].to_numpy(float) - window.pmra,
                   sources["pmdec"].to_numpy(float) - window.pmdec)
    dplx = np.abs(sources["parallax"].to_numpy(float) - window.parallax)
    return (sep <= window.radius_deg) & (dpm <= window.pm_max) & (dplx <= window.parallax_max)


def cone_cut_status(sources: pd.DataFrame, window: ConeWindow) -> np.ndarray:
    """Why each source is outside the cone of ``window``: ``""`` (inside, or not testable for a
    NaN), ``"outside_cone"`` (farther than the cone radius from the centre) or ``"cut_eq1_2"``
    (inside the radius, but failing Eq. 1 or Eq. 2). The tests of :func:`cone_mask`, kept apart
    for the report of every source."""
    sep = angular_separation_deg(sources["ra"].to_numpy(float), sources["dec"].to_numpy(float),
                                 window.ra, window.dec)
    dpm = np.hypot(sources["pmra"].to_numpy(float) - window.pmra,
                   sources["pmdec"].to_numpy(float) - window.pmdec)
    dplx = np.abs(sources["parallax"].to_numpy(float) - window.parallax)
    out = np.full(len(sources), "", dtype=object)
    # a NaN is not a cut: the source goes on, and build_sets reports it as missing astrometry
    out[(dpm > window.pm_max) | (dplx > window.parallax_max)] = "cut_eq1_2"
    out[sep > window.radius_deg] = "outside_cone"
    return out


def apply_cone_cuts(sources: pd.DataFrame, cluster: pd.Series, *, radius_pc: float,
                    n_sigma: float) -> pd.DataFrame:
    """The rows of ``sources`` in the cone of ``cluster`` (Sect. 2.1, Eqs. 1-2), re-indexed.

    The WHERE clause of the archive query, applied to a table in memory.
    """
    window = cone_window(cluster, radius_pc=radius_pc, n_sigma=n_sigma)
    return sources.loc[cone_mask(sources, window)].reset_index(drop=True)
