r"""Near-infrared J, H, Ks of simulated stars: 2MASS and VISTA (VVV), true and measured.

The shared PARSEC grids (``isochrones/*.dat``) hold only the Gaia EDR3 bands, so
the near-infrared bands of a simulated star come from its *intrinsic* Gaia
photometry (the isochrone's, before distance and extinction) through published
colour relations, then distance and near-infrared extinction:

1. **Intrinsic Gaia.** :math:`G_0 = G - \mu - A_G(T_{eff}, A_0)` (and BP, RP),
   undoing exactly what the simulator applied (:func:`ocmembers.sim.extinction.gaia_extinction`).
2. **Gaia -> 2MASS** (Eq. 1 here; Evans et al. 2018, A&A 616, A4, Table A.2):
   :math:`G - K_s = -0.1885 + 2.092\,x - 0.1345\,x^2` (:math:`\sigma = 0.084`),
   :math:`G - H = -0.1621 + 1.968\,x - 0.1328\,x^2` (0.080),
   :math:`G - J = -0.01883 + 1.394\,x - 0.07893\,x^2` (0.052), with
   :math:`x = (G_{BP} - G_{RP})_0` clipped to :data:`COLOUR_RANGE`. These are
   the DR2 relations; applied to the EDR3-band magnitudes of the isochrones they
   carry a systematic of a few hundredths of a magnitude, well inside their
   scatter. (For a solar star, :math:`x = 0.82`, they give :math:`J - K_s = 0.37`,
   the solar value 0.36 of Casagrande et al. 2012.)
3. **2MASS -> VISTA** (Eq. 2 here; González-Fernández et al. 2018, MNRAS 474,
   5459): :math:`J_V = J_2 - 0.031 (J-K_s)_2`, :math:`H_V = H_2 + 0.015 (J-K_s)_2`,
   :math:`K_{s,V} = K_{s,2} - 0.006 (J-K_s)_2`.
4. **Extinction** (Eq. 3 here): Cardelli, Clayton & Mathis (1989) infrared law,
   :math:`A_\lambda/A_V = a(x) + b(x)/R_V`, :math:`a = 0.574 x^{1.61}`,
   :math:`b = -0.527 x^{1.61}` (:math:`x = 1/\lambda` in um^-1, :math:`R_V = 3.1`),
   at the effective wavelengths of :data:`LAMBDA_EFF_UM`. At the VISTA Ks
   wavelength it gives :math:`A_{K_s}/A_V = 0.118`, the 0.118024 Peña Ramírez et al.
   (2022) adopt (VISTA, González-Fernández et al. 2018); the J and H ratios are the
   same law's (0.281, 0.181). :math:`A_V` is taken equal to the simulator's :math:`A_0`.

Measurement (:func:`measure_survey`): each survey of :data:`SURVEYS` has a
bright limit (saturation), an error curve
:math:`\sigma(m) = \sqrt{\sigma_f^2 + (0.1086\cdot 10^{0.4(m - m_{10})})^2}` (sky-limited
beyond the floor :math:`\sigma_f`; :math:`m_{10}` is the 10-sigma magnitude) and a
completeness :math:`c(m) = 1/(1 + e^{(m - m_{50})/w})`:

* **2MASS** (Skrutskie et al. 2006, AJ 131, 1163): 10-sigma point-source limits
  J = 15.8, H = 15.1, Ks = 14.3; the PSC is > 99 per cent complete there, so
  :math:`m_{50} = m_{10} + 0.6`, :math:`w = 0.15`. The 1.3 s exposures saturate near
  9 mag; brighter stars are measured in the 51 ms Read_1 exposure (floor 0.03
  instead of 0.02) down to :data:`TWOMASS_READ1_LIMIT` (about 4 mag).
* **VVV** (VIRCAM; Peña Ramírez et al. 2022, Sect. 2.2, after González-Fernández
  et al. 2018): non-linearity puts errors above 0.1 mag brighter than
  J, H, Ks = 11.5, 12.0, 11.0 (no VVV measurement brighter); sky noise limits
  the faint end at 17.5, 16.5, 16.0, taken as the 10-sigma magnitudes, with
  :math:`m_{50} = m_{10} + 0.75`, :math:`w = 0.2`; calibration floor 0.01 mag.

Crowding is not modelled: in the bulge, real 2MASS is confusion-limited brighter
than its nominal limits.

VIRAC2 astrometry (:func:`virac2_errors`): for VVV sources with Ks in the VVV
range, proper-motion and parallax errors
:math:`\sigma(K_s) = \sqrt{0.1^2 + (0.9\cdot 10^{0.4(K_s - 15)})^2}` mas (/yr), about
0.9 at Ks = 15 ("under ~1.0 mas (yr^-1)" at Ks ~ 15, Peña Ramírez et al. 2022, Sect. 2.2).

Combination (:func:`inverse_variance`, Eq. 4 here; with Eq. 2, in :mod:`ocmembers.method.nir`,
shared with the archive route): PR22 combine 2MASS and VVV
photometry (here after Eq. 2, in the VISTA system) and Gaia and VIRAC2
astrometry of the same star by inverse-variance weighting,
:math:`\hat x = \sum_i x_i\sigma_i^{-2} / \sum_i\sigma_i^{-2}`,
:math:`\hat\sigma = (\sum_i\sigma_i^{-2})^{-1/2}`.

All random draws take the generator they are given; the simulator passes
streams of its own (:mod:`ocmembers.sim.vvv`), so the Gaia columns of the sky
are untouched.

References
----------
Evans, D. W., et al. 2018, A&A 616, A4.
González-Fernández, C., et al. 2018, MNRAS 474, 5459.
Cardelli, J. A., Clayton, G. C., Mathis, J. S. 1989, ApJ 345, 245.
Skrutskie, M. F., et al. 2006, AJ 131, 1163.
Peña Ramírez, K., et al. 2022, MNRAS (The VVV open cluster project II).
Casagrande, L., et al. 2012, ApJ 761, 16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ocmembers.method.nir import BANDS, GF18_VISTA, inverse_variance, vista_from_twomass
from ocmembers.sim.extinction import gaia_extinction

__all__ = ["BANDS", "EVANS18_2MASS", "COLOUR_RANGE", "LAMBDA_EFF_UM", "SurveyModel", "SURVEYS",
           "TWOMASS", "VVV", "twomass_from_gaia", "vista_from_twomass", "ccm89_ratio", "nir_extinction",
           "intrinsic_gaia", "true_nir", "photometric_error", "completeness", "measure_survey",
           "virac2_errors", "inverse_variance", "A_KS_OVER_AV_VISTA", "R_V", "GF18_VISTA"]


#: Evans et al. (2018) Table A.2: (c0, c1, c2, sigma) of G - band = c0 + c1 x + c2 x^2, x = BP - RP.
EVANS18_2MASS: dict[str, tuple[float, float, float, float]] = {
    "ks": (-0.1885, 2.092, -0.1345, 0.08412),
    "h": (-0.1621, 1.968, -0.1328, 0.07987),
    "j": (-0.01883, 1.394, -0.07893, 0.05246),
}
#: BP - RP range the colour relations are used in (clipped outside; Evans et al. 2018 fit
#: 0.25-5.5, extended to the blue by the same quadratic down to the hottest PARSEC stars).
COLOUR_RANGE = (-0.5, 5.5)


#: Cardelli et al. (1989) R_V.
R_V = 3.1
#: Effective wavelengths (um): 2MASS (Cohen et al. 2003 isophotal), VISTA (the Ks value is
#: the one at which Eq. 3 gives the A_Ks/A_V = 0.118024 of PR22; J and H from GF18).
LAMBDA_EFF_UM = {"2mass": {"j": 1.235, "h": 1.662, "ks": 2.159},
                 "vista": {"j": 1.254, "h": 1.646, "ks": 2.1475}}
#: A_Ks/A_V of the VISTA system used by Peña Ramírez et al. (2022).
A_KS_OVER_AV_VISTA = 0.118024

#: 2MASS Read_1 (51 ms) saturation (mag): no 2MASS measurement brighter (Skrutskie et al. 2006).
TWOMASS_READ1_LIMIT = 4.0
#: 2MASS 1.3 s saturation (mag): brighter, the Read_1 floor applies.
TWOMASS_SATURATION = 9.0


@dataclass(frozen=True)
class SurveyModel:
    """Magnitude range, error curve and completeness of one near-infrared survey (module docstring)."""

    name: str
    system: str                                  # "2mass" or "vista"
    bright: dict[str, float]                     # no measurement brighter (saturation)
    m10: dict[str, float]                        # 10-sigma magnitude
    floor: float                                 # error floor (mag)
    m50_offset: float                            # completeness 50 per cent at m10 + offset
    width: float                                 # completeness logistic width (mag)
    saturated_floor: float = 0.0                 # floor brighter than `saturation` (2MASS Read_1)
    saturation: float = -np.inf


TWOMASS = SurveyModel("2mass", "2mass", bright={b: TWOMASS_READ1_LIMIT for b in BANDS},
                      m10={"j": 15.8, "h": 15.1, "ks": 14.3}, floor=0.02, m50_offset=0.6, width=0.15,
                      saturated_floor=0.03, saturation=TWOMASS_SATURATION)
VVV = SurveyModel("vvv", "vista", bright={"j": 11.5, "h": 12.0, "ks": 11.0},
                  m10={"j": 17.5, "h": 16.5, "ks": 16.0}, floor=0.01, m50_offset=0.75, width=0.2)
SURVEYS = {"2mass": TWOMASS, "vvv": VVV}


def twomass_from_gaia(g0: np.ndarray, bp0: np.ndarray, rp0: np.ndarray) -> dict[str, np.ndarray]:
    """2MASS J, H, Ks from Gaia G, BP, RP (Eq. 1, Evans et al. 2018 Table A.2); unreddened input."""
    g0 = np.asarray(g0, dtype=float)
    x = np.clip(np.asarray(bp0, dtype=float) - np.asarray(rp0, dtype=float), *COLOUR_RANGE)
    return {b: g0 - (c0 + c1 * x + c2 * x * x) for b, (c0, c1, c2, _) in EVANS18_2MASS.items()}


def ccm89_ratio(lambda_um: float | np.ndarray, r_v: float = R_V) -> np.ndarray:
    """:math:`A_\\lambda/A_V` of Cardelli et al. (1989) in the infrared (Eq. 3; their Eqs. 2a-2b,
    valid for 0.3 <= 1/lambda <= 1.1 um^-1)."""
    x = 1.0 / np.asarray(lambda_um, dtype=float)
    if np.any((x < 0.3) | (x > 1.1)):
        raise ValueError(f"ccm89_ratio: 1/lambda = {x} outside the infrared range 0.3-1.1 um^-1")
    return 0.574 * x ** 1.61 - 0.527 * x ** 1.61 / r_v


def nir_extinction(a_v: np.ndarray, system: str) -> dict[str, np.ndarray]:
    """``A_J, A_H, A_Ks`` (Eq. 3) of the ``system`` ("2mass" or "vista") for ``a_v``."""
    lam = LAMBDA_EFF_UM[system]
    a_v = np.asarray(a_v, dtype=float)
    return {b: float(ccm89_ratio(lam[b])) * a_v for b in BANDS}


def intrinsic_gaia(g: np.ndarray, bp: np.ndarray, rp: np.ndarray, teff: np.ndarray,
                   a0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unreddened apparent G, BP, RP: the simulator's true magnitudes less ``A_X(Teff, A0)``."""
    ag, abp, arp = gaia_extinction(np.asarray(teff, dtype=float), np.asarray(a0, dtype=float))
    return np.asarray(g) - ag, np.asarray(bp) - abp, np.asarray(rp) - arp


def true_nir(g: np.ndarray, bp: np.ndarray, rp: np.ndarray, teff: np.ndarray,
             a0: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """True apparent J, H, Ks in both systems: ``{"2mass": {"j": ...}, "vista": {...}}``.

    ``g, bp, rp`` are the simulator's true apparent magnitudes (distance and
    Gaia extinction included), ``a0`` its extinction, ``teff`` the star's (the
    primary's for binaries, as the simulator used).
    """
    g0, bp0, rp0 = intrinsic_gaia(g, bp, rp, teff, a0)
    tm0 = twomass_from_gaia(g0, bp0, rp0)
    vi0 = vista_from_twomass(tm0)
    a_tm, a_vi = nir_extinction(a0, "2mass"), nir_extinction(a0, "vista")
    return {"2mass": {b: tm0[b] + a_tm[b] for b in BANDS}, "vista": {b: vi0[b] + a_vi[b] for b in BANDS}}


def photometric_error(survey: SurveyModel, band: str, mag: np.ndarray) -> np.ndarray:
    """1-sigma error (mag) of ``survey`` in ``band`` at ``mag`` (module docstring)."""
    mag = np.asarray(mag, dtype=float)
    floor = np.where(mag < survey.saturation, survey.saturated_floor, survey.floor)
    return np.sqrt(floor ** 2 + (0.1086 * 10 ** (0.4 * (mag - survey.m10[band]))) ** 2)


def completeness(survey: SurveyModel, band: str, mag: np.ndarray) -> np.ndarray:
    """Detection probability of ``survey`` in ``band`` at ``mag`` (0 brighter than its bright limit)."""
    mag = np.asarray(mag, dtype=float)
    m50 = survey.m10[band] + survey.m50_offset
    with np.errstate(over="ignore"):
        c = 1.0 / (1.0 + np.exp((mag - m50) / survey.width))
    return np.where(mag >= survey.bright[band], c, 0.0)


def measure_survey(survey: SurveyModel, true: dict[str, np.ndarray],
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Measured ``{band: mag, band + "_error": sigma}`` of ``survey``; NaN where not detected.

    Draw order (fixed, one array per step): for each band J, H, Ks, the
    detection uniforms then the noise normals.
    """
    out: dict[str, np.ndarray] = {}
    for b in BANDS:
        m = np.asarray(true[b], dtype=float)
        det = rng.random(m.size) < completeness(survey, b, m)
        sig = photometric_error(survey, b, m)
        obs = m + rng.standard_normal(m.size) * sig
        # the measured magnitude must itself be in the survey's range (saturation)
        det &= obs >= survey.bright[b]
        out[b] = np.where(det, obs, np.nan)
        out[b + "_error"] = np.where(det, sig, np.nan)
    return out


def virac2_errors(ks_vista: np.ndarray) -> np.ndarray:
    """VIRAC2-like proper-motion and parallax error (mas, mas/yr) at VISTA ``Ks`` (module docstring)."""
    ks = np.asarray(ks_vista, dtype=float)
    return np.sqrt(0.1 ** 2 + (0.9 * 10 ** (0.4 * (ks - 15.0))) ** 2)
