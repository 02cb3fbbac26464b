"""A small synthetic cone (cluster + uniform field) for tests and demonstrations of the methods.

The cluster is a Gaussian clump in proper motion and parallax, concentrated
on the sky (Gaussian, sigma ``r_sigma_deg``), on a narrow sequence in the
colour-magnitude diagram; the field is uniform on a disc of radius
``radius_deg`` with broad astrometry and colours. Columns follow the Gaia
archive (errors, correlations, fluxes) so every method runs on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["synthetic_cone"]


def synthetic_cone(n_field: int = 2000, n_cluster: int = 200, *, seed: int = 0,
                   ra0: float = 100.0, dec0: float = 20.0, radius_deg: float = 1.0,
                   r_sigma_deg: float = 0.08, pm: tuple[float, float] = (-5.0, 3.0),
                   pm_sigma: float = 0.1, parallax: float = 1.5, parallax_sigma: float = 0.03,
                   field_pm: tuple[float, float] = (-4.0, 2.0), field_pm_sigma: float = 1.5,
                   g_range: tuple[float, float] = (10.0, 18.0), catalogue_pm_std: float = 0.3,
                   ) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    """A cone with a cluster in a uniform field.

    Returns
    -------
    cone : DataFrame
        Gaia-like columns; ``source_id`` 1..n.
    truth : bool array
        True for cluster stars.
    cluster : Series
        Canonical cluster row (``*_std`` of proper motion: ``catalogue_pm_std``, as a
        catalogue dispersion inflated by errors would be) (``name, ra, dec, pmra, pmra_std, pmdec, pmdec_std,
        parallax, parallax_std``).
    """
    rng = np.random.default_rng(seed)
    nf, nc = n_field, n_cluster
    cosd = np.cos(np.radians(dec0))
    r = radius_deg * np.sqrt(rng.random(nf))
    phi = 2 * np.pi * rng.random(nf)
    cx, cy = rng.normal(0, r_sigma_deg, (2, nc))
    ra = np.r_[ra0 + r * np.cos(phi) / cosd, ra0 + cx / cosd]
    dec = np.r_[dec0 + r * np.sin(phi), dec0 + cy]
    g = rng.uniform(*g_range, nf + nc)
    colour = np.r_[rng.uniform(0.2, 1.5, nf), 0.3 + 0.08 * (g[nf:] - g_range[0]) + rng.normal(0, 0.02, nc)]
    n = nf + nc
    e_pm = 0.02 + 0.05 * rng.random(n)
    e_plx = 0.02 + 0.04 * rng.random(n)
    true_pmra = np.r_[rng.normal(field_pm[0], field_pm_sigma, nf), rng.normal(pm[0], pm_sigma, nc)]
    true_pmdec = np.r_[rng.normal(field_pm[1], field_pm_sigma, nf), rng.normal(pm[1], pm_sigma, nc)]
    true_plx = np.r_[rng.normal(0.8, 0.6, nf), rng.normal(parallax, parallax_sigma, nc)]
    flux_g = 10 ** (-0.4 * (g - 25.7))
    cone = pd.DataFrame({
        "source_id": np.arange(1, n + 1, dtype=np.int64),
        "ra": ra, "dec": dec,
        "pmra": true_pmra + e_pm * rng.standard_normal(n), "pmra_error": e_pm,
        "pmdec": true_pmdec + e_pm * rng.standard_normal(n), "pmdec_error": e_pm,
        "parallax": true_plx + e_plx * rng.standard_normal(n), "parallax_error": e_plx,
        "parallax_pmra_corr": np.zeros(n), "parallax_pmdec_corr": np.zeros(n), "pmra_pmdec_corr": np.zeros(n),
        "phot_g_mean_mag": g,
        "phot_bp_mean_mag": g + 0.6 * colour,
        "phot_rp_mean_mag": g - colour,
        "phot_g_mean_flux": flux_g, "phot_g_mean_flux_error": flux_g * 0.002,
    })
    truth = np.r_[np.zeros(nf, dtype=bool), np.ones(nc, dtype=bool)]
    cluster = pd.Series({"name": "SYNTH_1", "ra": ra0, "dec": dec0, "pmra": pm[0], "pmra_std": catalogue_pm_std,
                         "pmdec": pm[1], "pmdec_std": catalogue_pm_std, "parallax": parallax,
                         "parallax_std": parallax_sigma})
    return cone, truth, cluster
