r"""Unresolved binaries.

A fraction ``f_b`` of the stars (``[sim] binary_fraction``) has a companion
of mass :math:`q M_1` with :math:`q` uniform in :math:`[q_{min}, 1]` (the flat
mass-ratio distribution of solar-type binaries, Raghavan et al. 2010; Moe &
Di Stefano 2017 for :math:`q > 0.1`). The companion's light is added in each
band,

.. math:: m = -2.5 \log_{10}\left(10^{-0.4 m_1} + 10^{-0.4 m_2}\right),

so that binaries lie up to 0.75 mag above the single-star sequence. Companions
below the isochrone's lowest mass add no light.

RUWE of an unresolved binary (``[sim] ruwe_model = "orbit"``)
-------------------------------------------------------------
The photocentre of an unresolved pair moves on an ellipse of semi-major axis
(Penoyre et al. 2020, Eq. 2; Belokurov et al. 2020)

.. math:: \alpha = \frac{a}{d}\,|B - \beta|, \qquad B = \frac{q}{1+q},
          \quad \beta = \frac{\ell}{1+\ell},

with :math:`a` the relative orbit's semi-major axis from Kepler's third law,
:math:`a^3 = M_1 (1+q) P^2` (AU, solar masses, years), :math:`d` the distance,
:math:`q` the mass ratio and :math:`\ell` the companion's G-band flux ratio,
taken from the main-sequence mass-luminosity relation :math:`\ell = q^{4}`
(Eker et al. 2015, :math:`L \propto M^{4.0}` for 0.7-2.4 solar masses).
Periods follow the log-normal of Raghavan et al. (2010): mean
:math:`\log_{10} P/{\rm d} = 5.03`, dispersion 2.28. The astrometric fit
absorbs what a linear motion can follow: for periods shorter than the DR3
baseline :math:`T` (34 months) the residual rms along scan is
:math:`\delta\theta = \alpha/\sqrt{2}`; for longer periods the orbit looks
increasingly like proper motion and the residual falls as
:math:`(T/P)^2` (the steep decline beyond :math:`P \approx T` of Penoyre et
al. 2020, Fig. 4; an approximation of its shape). A pair wider than 1 arcsec is
resolved and has no wobble. The renormalised unit weight error then grows as
(Belokurov et al. 2020, Eq. 2)

.. math:: {\rm RUWE} = {\rm RUWE}_0 \sqrt{1 + \delta\theta^2/\sigma_{\rm AL}^2},

with :math:`{\rm RUWE}_0` the single-star value and :math:`\sigma_{\rm AL}`
the along-scan uncertainty of one CCD observation, here from the star's own
parallax uncertainty and number of CCD observations, :math:`\sigma_{\rm AL}
\approx \sigma_\varpi \sqrt{N_{\rm CCD}}/2` (one CCD observation carries
about a quarter of the parallax information of the mean of all of them, for
Gaia's 45 deg solar-aspect angle; :math:`N_{\rm CCD}` = ``phot_g_n_obs``).

References
----------
Raghavan, D., et al. 2010, ApJS 190, 1.
Moe, M., Di Stefano, R. 2017, ApJS 230, 15.
Penoyre, Z., Belokurov, V., Wyn Evans, N., et al. 2020, MNRAS 495, 321.
Belokurov, V., Penoyre, Z., Oh, S., et al. 2020, MNRAS 496, 1922.
Eker, Z., et al. 2015, AJ 149, 131.
"""

from __future__ import annotations

import numpy as np

__all__ = ["draw_mass_ratios", "combine_magnitudes", "draw_log_periods", "photocentre_wobble_mas",
           "binary_ruwe", "LOG_PERIOD_MEAN", "LOG_PERIOD_SIGMA", "DR3_BASELINE_YR"]

#: Raghavan et al. (2010): log10 of the period in days, mean and dispersion.
LOG_PERIOD_MEAN, LOG_PERIOD_SIGMA = 5.03, 2.28
#: The span of the DR3 observations (25 July 2014 - 28 May 2017), years.
DR3_BASELINE_YR = 34.0 / 12.0
#: Separation (mas) beyond which Gaia resolves a pair.
RESOLVED_MAS = 1000.0


def draw_mass_ratios(n: int, fraction: float, rng: np.random.Generator, q_min: float = 0.1) -> np.ndarray:
    """Mass ratio of each of ``n`` stars: 0 for singles, uniform in ``[q_min, 1]`` for binaries."""
    is_bin = rng.random(n) < fraction
    q = rng.uniform(q_min, 1.0, n)
    return np.where(is_bin, q, 0.0)


def combine_magnitudes(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """Magnitude of two unresolved stars (``m2 = NaN`` or ``inf``: no light)."""
    f2 = np.where(np.isfinite(m2), 10 ** (-0.4 * np.where(np.isfinite(m2), m2, 99.0)), 0.0)
    return -2.5 * np.log10(10 ** (-0.4 * m1) + f2)


def draw_log_periods(n: int, rng: np.random.Generator) -> np.ndarray:
    """log10 of the orbital period in days of ``n`` binaries (Raghavan et al. 2010)."""
    return rng.normal(LOG_PERIOD_MEAN, LOG_PERIOD_SIGMA, n)


def photocentre_wobble_mas(mass1: np.ndarray, q: np.ndarray, dist_pc: np.ndarray,
                           log_period_d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, rho): the photocentre's and the pair's angular semi-major axes in mas (module
    docstring); 0 where ``q`` is 0 (a single star)."""
    m1, q = np.asarray(mass1, float), np.asarray(q, float)
    p_yr = 10.0 ** np.asarray(log_period_d, float) / 365.25
    a_au = np.cbrt(np.maximum(m1 * (1.0 + q), 0.0) * p_yr ** 2)
    rho = 1000.0 * a_au / np.asarray(dist_pc, float)
    lum = q ** 4
    alpha = rho * np.abs(q / (1.0 + q) - lum / (1.0 + lum))
    return np.where(q > 0, alpha, 0.0), np.where(q > 0, rho, 0.0)


def binary_ruwe(base_ruwe: np.ndarray, alpha_mas: np.ndarray, rho_mas: np.ndarray,
                log_period_d: np.ndarray, sigma_al_mas: np.ndarray,
                baseline_yr: float = DR3_BASELINE_YR) -> np.ndarray:
    """The RUWE of a source whose photocentre wobbles by ``alpha_mas`` (module docstring)."""
    p_yr = 10.0 ** np.asarray(log_period_d, float) / 365.25
    damp = np.where(p_yr <= baseline_yr, 1.0, (baseline_yr / np.maximum(p_yr, 1e-12)) ** 2)
    dtheta = np.where(np.asarray(rho_mas) < RESOLVED_MAS, np.asarray(alpha_mas) / np.sqrt(2.0) * damp, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(np.asarray(sigma_al_mas) > 0, dtheta / np.asarray(sigma_al_mas, float), 0.0)
    return np.asarray(base_ruwe, float) * np.sqrt(1.0 + np.nan_to_num(x) ** 2)
