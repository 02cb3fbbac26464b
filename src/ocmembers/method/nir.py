r"""The 8-dimensional data set of Peña Ramírez et al. (2022): 2MASS + VVV photometry, Gaia + VIRAC2
astrometry, combined by inverse-variance weighting (pure maths; both the simulated route,
:mod:`ocmembers.sim.vvv`, and the archive route, :mod:`ocmembers.sources.nir_archive`, use it).

PR22 (Sect. 2.2): "In the 2MASS/VVV magnitude overlap, sources present in both catalogs
are combined photometrically with an optimal inverse variance weighting. In the VVV/Gaia
overlap the astrometric parameters of duplicated stars were also combined using an inverse
variance weighted average."

* **2MASS -> VISTA** (González-Fernández et al. 2018, MNRAS 474, 5459):
  :math:`J_V = J_2 - 0.031 (J-K_s)_2`, :math:`H_V = H_2 + 0.015 (J-K_s)_2`,
  :math:`K_{s,V} = K_{s,2} - 0.006 (J-K_s)_2` (:func:`vista_from_twomass`), so that
  the combined photometry is in the VISTA system of VVV.
* **Inverse variance** (:func:`inverse_variance`):
  :math:`\hat x = \sum_i x_i\sigma_i^{-2} / \sum_i\sigma_i^{-2}`,
  :math:`\hat\sigma = (\sum_i\sigma_i^{-2})^{-1/2}`, NaN entries ignored.
* **Correlations**: with VIRAC2 noise independent of Gaia's, the combined correlation of
  two astrometric parameters is Gaia's scaled by the combination,
  :math:`\rho = \rho_{\rm Gaia}\,\hat\sigma_a\hat\sigma_b/(\sigma_{{\rm Gaia},a}\sigma_{{\rm Gaia},b})`,
  and 0 for VIRAC2 alone (VizieR's VIRAC2 table gives no correlations).

:func:`combine_measurements` takes one row per source with its measurements from each
survey (NaN where the survey did not see it):

* ``gaia_ra, gaia_dec, gaia_parallax, gaia_parallax_error, gaia_pmra, ..., gaia_pmra_pmdec_corr``
  and the Gaia magnitudes ``gaia_phot_g_mean_mag`` ... (any ``gaia_phot_*`` is passed on);
* ``virac_parallax, virac_parallax_error, virac_pmra, ..., virac_pmdec_error``;
* ``tmass_j, tmass_j_error, ... tmass_ks_error`` (2MASS system), ``vvv_j ... vvv_ks_error`` (VISTA);
* the position of the sources Gaia did not see, in the columns named by ``fallback``
  (the simulator's true position; the VIRAC2 position on the archive route);
* ``gaia_source_id`` (-1 where Gaia did not see the source).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["BANDS", "GF18_VISTA", "COMBINED_BANDS", "vista_from_twomass", "inverse_variance",
           "combine_measurements", "ASTROMETRY", "CORRELATIONS", "AREA_R50", "PM_WINDOW_SIGMA",
           "pm_window_bounds"]

BANDS = ("j", "h", "ks")
#: The combined columns of each band (VISTA system).
COMBINED_BANDS = {"j": "Jmag", "h": "Hmag", "ks": "Ksmag"}
#: González-Fernández et al. (2018): VISTA - 2MASS = k (J - Ks)_2MASS.
GF18_VISTA = {"j": -0.031, "h": 0.015, "ks": -0.006}
ASTROMETRY = ("parallax", "pmra", "pmdec")
#: PR22 Sect. 2.2: the studied area of each cluster is a circle of 5 x r50.
AREA_R50 = 5.0
#: PR22 Sect. 3: sources more than 10 sigma (the cluster's proper-motion dispersion, in each of
#: pmra and pmdec) from the cluster proper motion are removed first.
PM_WINDOW_SIGMA = 10.0
CORRELATIONS = (("parallax", "pmra"), ("parallax", "pmdec"), ("pmra", "pmdec"))


def vista_from_twomass(mags: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """VISTA J, H, Ks from 2MASS (González-Fernández et al. 2018; NaN where 2MASS J or Ks is)."""
    jk = np.asarray(mags["j"], dtype=float) - np.asarray(mags["ks"], dtype=float)
    return {b: np.asarray(mags[b], dtype=float) + GF18_VISTA[b] * jk for b in BANDS}


def inverse_variance(values: list[np.ndarray], errors: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-variance weighted mean and its error, ignoring NaN entries; NaN where none."""
    v = np.stack([np.asarray(x, dtype=float) for x in values])
    e = np.stack([np.asarray(x, dtype=float) for x in errors])
    ok = np.isfinite(v) & np.isfinite(e) & (e > 0)
    w = np.where(ok, 1.0 / np.where(ok, e, 1.0) ** 2, 0.0)
    sw = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(sw > 0, (w * np.where(ok, v, 0.0)).sum(axis=0) / sw, np.nan)
        err = np.where(sw > 0, 1.0 / np.sqrt(sw), np.nan)
    return mean, err


def combine_measurements(m: pd.DataFrame, *, fallback: tuple[str, str] = ("ra_true", "dec_true"),
                         gaia_phot: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The 8-dimensional columns of per-survey measurements ``m`` (module docstring).

    Returns
    -------
    DataFrame
        ``ra, dec`` (Gaia's, else ``fallback``); ``parallax, pmra, pmdec`` and their
        ``_error`` (Gaia and VIRAC2 combined); the three correlations; ``astrometry``
        (``gaia``, ``virac2``, ``gaia+virac2`` or ``none``); ``Jmag, e_Jmag, Hmag, e_Hmag,
        Ksmag, e_Ksmag`` (2MASS in the VISTA system and VVV combined); the per-survey
        ``tmass_*``/``vvv_*`` columns; the Gaia magnitudes (``gaia_phot``: the names
        without their ``gaia_`` prefix; default every ``gaia_phot_*`` column); ``gaia_source_id``.
    """
    out = pd.DataFrame(index=m.index)
    has_g = np.isfinite(m["gaia_ra"].to_numpy(float))
    out["ra"] = np.where(has_g, m["gaia_ra"], m[fallback[0]])
    out["dec"] = np.where(has_g, m["gaia_dec"], m[fallback[1]])
    sig = {}
    for c in ASTROMETRY:
        v, e = inverse_variance([m[f"gaia_{c}"], m[f"virac_{c}"]], [m[f"gaia_{c}_error"], m[f"virac_{c}_error"]])
        out[c], out[f"{c}_error"] = v, e
        sig[c] = (e, m[f"gaia_{c}_error"].to_numpy(float))
    for a, b in CORRELATIONS:
        rho = m[f"gaia_{a}_{b}_corr"].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = rho * sig[a][0] * sig[b][0] / (sig[a][1] * sig[b][1])
        out[f"{a}_{b}_corr"] = np.where(np.isfinite(r), r, 0.0)
    has_ga = np.isfinite(m["gaia_pmra"].to_numpy(float))
    has_v = np.isfinite(m["virac_pmra"].to_numpy(float))
    out["astrometry"] = np.select([has_ga & has_v, has_ga, has_v], ["gaia+virac2", "gaia", "virac2"], "none")
    tm_v = vista_from_twomass({b: m[f"tmass_{b}"].to_numpy(float) for b in BANDS})
    for b in BANDS:
        name = COMBINED_BANDS[b]
        # a 2MASS band without its J - Ks colour term stays untransformed (2MASS J or Ks missing)
        tmb = np.where(np.isfinite(tm_v[b]), tm_v[b], m[f"tmass_{b}"].to_numpy(float))
        v, e = inverse_variance([tmb, m[f"vvv_{b}"]], [m[f"tmass_{b}_error"], m[f"vvv_{b}_error"]])
        out[name], out["e_" + name] = v, e
    for b in BANDS:
        for s in ("tmass", "vvv"):
            out[f"{s}_{b}"], out[f"{s}_{b}_error"] = m[f"{s}_{b}"], m[f"{s}_{b}_error"]
    phot = gaia_phot if gaia_phot is not None else tuple(c[len("gaia_"):] for c in m.columns
                                                         if c.startswith("gaia_phot_"))
    for c in phot:
        out[c] = m[f"gaia_{c}"]
    out["gaia_source_id"] = m["gaia_source_id"]
    return out


def pm_window_bounds(cluster) -> tuple[tuple[float, float], tuple[float, float]]:
    """PR22's first cut as bounds: ``((pmra_lo, pmra_hi), (pmdec_lo, pmdec_hi))``, the cluster's
    ``pmra``/``pmdec`` +- :data:`PM_WINDOW_SIGMA` x its ``pmra_std``/``pmdec_std``."""
    out = []
    for c in ("pmra", "pmdec"):
        mid, half = float(cluster[c]), PM_WINDOW_SIGMA * float(cluster[f"{c}_std"])
        out.append((mid - half, mid + half))
    return out[0], out[1]
