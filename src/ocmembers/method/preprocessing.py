r"""Preprocessing of a Gaia DR3 cone: parallax zero point, photometric errors, colour.

Steps (Sects. 2.3-2.4 of van Groeningen et al. 2023), all vectorised:

1. **Photometry.** Sources without a G or G_RP magnitude (``phot_g_mean_mag``
   or ``phot_rp_mean_mag`` missing, or ``phot_g_n_obs`` / ``phot_rp_n_obs``
   equal to 0) have no colour :math:`C = G - G_{RP}` and are dropped; the
   counts are reported in ``DataFrame.attrs["dropped"]``. A missing G_BP is
   harmless: the method never uses G_BP (Sect. 2.3: G_BP overestimates the flux
   of faint sources). The authors' tool (gaia_oc_amd 0.2.1) instead drops every
   source with a NaN in any column, so it also loses sources without G_BP.

2. **Parallax zero point** of Lindegren et al. 2021 (A&A 649, A4) through the
   ``gaiadr3-zeropoint`` package, for 5- and 6-parameter solutions
   (``astrometric_params_solved`` 31 and 95): ``parallax = parallax_raw -
   zero_point``. The recipe is valid for :math:`6 < G < 21`,
   :math:`1.1 < \nu_{\rm eff} < 1.9` (5p) and :math:`1.24 < \hat\nu < 1.72`
   (6p, pseudocolour). Outside that range we evaluate the recipe at the inputs
   *clipped* to the range (the value at the boundary, which is what the package
   itself returns for G and for the pseudocolour when its warnings are on) and
   set ``zero_point_flag = 1``. (The authors' tool leaves such parallaxes
   uncorrected.) Two-parameter solutions (``astrometric_params_solved`` = 3)
   have no parallax and hence no zero point: ``zero_point`` is NaN and
   ``zero_point_flag = 2``; they are kept here and dropped by the ``sets`` stage,
   which needs full astrometry. (A 5- or 6-parameter source lacking the
   colour the recipe needs, ``nu_eff_used_in_astrometry`` or ``pseudocolour``,
   gets the same flag and keeps its uncorrected parallax; this does not happen
   in DR3.)

3. **Photometric errors** from the DPAC uncertainty model (Riello et al. 2021;
   technical note GAIA-C5-TN-UB-JMC-031): a cubic B-spline :math:`s_b(m)` of
   :math:`\log_{10}\sigma` against magnitude for a reference number of
   observations :math:`n_{\rm ref}` (200 for G, 20 for G_BP and G_RP), so that

   .. math:: \sigma_b = 10^{s_b(m)} \sqrt{n_{\rm ref} / n_{\rm obs}}.

   Magnitudes outside the spline's knot range [4.01667, 20.98333] get the value
   at the boundary (as in the authors' tool, which clips to [4.05, 20.95]).
   The colour error is :math:`\sigma_C = \sqrt{\sigma_G^2 + \sigma_{RP}^2}`.

Columns added: ``parallax_raw``, ``parallax`` (corrected), ``zero_point``,
``zero_point_flag``, ``phot_g_mean_mag_error``, ``phot_rp_mean_mag_error``,
``g_rp`` (= G - G_RP) and ``g_rp_error``.

References
----------
van Groeningen et al. 2023, A&A 675, A68. Lindegren et al. 2021, A&A 649, A4.
Riello et al. 2021, A&A 649, A3.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.interpolate import BSpline

from ocmembers.exceptions import EmptyConeError
from ocmembers.method.columns import GAIA_REQUIRED, require_columns

__all__ = [
    "PREPROCESS_REQUIRED", "REFERENCE_N_OBS", "ZP_OK", "ZP_CLIPPED", "ZP_NONE",
    "PhotometricErrorModel", "load_error_model", "parallax_zero_point", "preprocess_cone",
    "ASTROMETRY_COLUMNS", "PLAUSIBLE_RANGES", "astrometry_quality",
]

#: The astrometry every source needs for Eqs. 3-4 and the features (archive names).
ASTROMETRY_COLUMNS: tuple[str, ...] = ("ra", "dec", "pmra", "pmra_error", "pmdec", "pmdec_error",
                                       "parallax", "parallax_error")

#: Ranges outside which a value is an error of the file, not a measurement: no star has a
#: parallax beyond 1000 mas (Proxima Centauri: 768 mas) or a proper motion beyond 20 arcsec/yr
#: (Barnard's star, the largest: 10.4 arcsec/yr); an error is positive; a correlation lies in
#: [-1, 1]; a DR3 magnitude lies in [-2, 25] (the brightest DR3 sources are near G = 2, the
#: faintest near G = 21; 99 or -999 are fill values).
PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    "ra": (-360.0, 360.0), "dec": (-90.0, 90.0),
    "parallax": (-1000.0, 1000.0), "pmra": (-20000.0, 20000.0), "pmdec": (-20000.0, 20000.0),
    "parallax_error": (0.0, 1000.0), "pmra_error": (0.0, 20000.0), "pmdec_error": (0.0, 20000.0),
    "parallax_pmra_corr": (-1.0, 1.0), "parallax_pmdec_corr": (-1.0, 1.0), "pmra_pmdec_corr": (-1.0, 1.0),
    "phot_g_mean_mag": (-2.0, 25.0), "phot_rp_mean_mag": (-2.0, 25.0),
}

#: Columns whose lower bound is excluded (an error of exactly 0 is not a measurement).
_OPEN_BELOW = frozenset({"parallax_error", "pmra_error", "pmdec_error"})

#: Columns a cone needs for preprocessing (archive names).
PREPROCESS_REQUIRED: tuple[str, ...] = tuple(dict.fromkeys(GAIA_REQUIRED + (
    "phot_g_n_obs", "phot_rp_n_obs", "astrometric_params_solved",
    "nu_eff_used_in_astrometry", "pseudocolour", "ecl_lat")))

#: Reference numbers of observations of the DPAC spline (GAIA-C5-TN-UB-JMC-031).
REFERENCE_N_OBS: dict[str, int] = {"g": 200, "bp": 20, "rp": 20}

#: ``zero_point_flag`` values.
ZP_OK, ZP_CLIPPED, ZP_NONE = 0, 1, 2

# Valid range of the Lindegren et al. (2021) recipe (their Sect. 4 / the package docstring).
_G_RANGE = (6.0, 21.0)
_NUEFF_RANGE = (1.1, 1.9)
_PSEUDOCOLOUR_RANGE = (1.24, 1.72)
_EPS = 1e-6  # the package treats the bounds themselves as outside the range

_SPLINE_FILE = "dpac_photometric_error_spline.csv"


class PhotometricErrorModel:
    """DPAC model of the (E)DR3 magnitude uncertainties (Riello et al. 2021).

    Parameters
    ----------
    table : DataFrame
        Columns ``knots_G, coeff_G, knots_BP, coeff_BP, knots_RP, coeff_RP``
        (the ``LogErrVsMagSpline.csv`` of the DPAC tool).
    """

    def __init__(self, table: pd.DataFrame) -> None:
        self._splines: dict[str, BSpline] = {}
        self._range: dict[str, tuple[float, float]] = {}
        for band, col in (("g", "G"), ("bp", "BP"), ("rp", "RP")):
            sub = table[[f"knots_{col}", f"coeff_{col}"]].dropna()
            knots = sub[f"knots_{col}"].to_numpy(float)
            coeff = sub[f"coeff_{col}"].to_numpy(float)
            spline = BSpline(knots, coeff, 3, extrapolate=False)
            self._splines[band] = spline
            n = len(knots) - 3 - 1
            self._range[band] = (float(knots[3]), float(knots[n]))

    def magnitude_range(self, band: str) -> tuple[float, float]:
        """Magnitudes over which the spline of ``band`` is defined."""
        return self._range[band]

    def log10_error(self, band: str, mag: np.ndarray, n_obs: np.ndarray | float | None = None) -> np.ndarray:
        r""":math:`\log_{10}\sigma` for ``mag`` after ``n_obs`` observations (default: the reference)."""
        lo, hi = self._range[band]
        m = np.clip(np.asarray(mag, dtype=float), lo, hi)
        out = self._splines[band](m)
        if n_obs is not None:
            n = np.asarray(n_obs, dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                out = out + 0.5 * np.log10(REFERENCE_N_OBS[band] / n)
        return np.where(np.isfinite(np.asarray(mag, dtype=float)), out, np.nan)

    def error(self, band: str, mag: np.ndarray, n_obs: np.ndarray | float | None = None) -> np.ndarray:
        r"""Magnitude uncertainty :math:`\sigma = 10^{s(m)}\sqrt{n_{\rm ref}/n_{\rm obs}}` (mag)."""
        return 10.0 ** self.log10_error(band, mag, n_obs)


@functools.lru_cache(maxsize=4)
def load_error_model(path: str | None = None) -> PhotometricErrorModel:
    """The DPAC photometric error model.

    ``path`` is a ``LogErrVsMagSpline.csv``-format file; by default the copy
    shipped with ocmembers (``ocmembers/data/dpac_photometric_error_spline.csv``,
    the same numbers as the DPAC tool's file, checked by the tests).
    """
    if path is None:
        with resources.as_file(resources.files("ocmembers").joinpath("data", _SPLINE_FILE)) as p:
            table = pd.read_csv(p, comment="#")
    else:
        table = pd.read_csv(Path(path), comment="#")
    return PhotometricErrorModel(table)


@functools.lru_cache(maxsize=1)
def _zpt_module():
    from zero_point import zpt
    zpt.load_tables()
    return zpt


def parallax_zero_point(phot_g_mean_mag: np.ndarray, nu_eff_used_in_astrometry: np.ndarray,
                        pseudocolour: np.ndarray, ecl_lat: np.ndarray,
                        astrometric_params_solved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parallax zero point (mas) of Lindegren et al. (2021) and its flag.

    Returns ``(zero_point, flag)``: ``flag`` is :data:`ZP_OK` inside the
    recipe's valid range, :data:`ZP_CLIPPED` when some input lay outside it and
    the recipe was evaluated at the clipped inputs, :data:`ZP_NONE` (zero point
    NaN) for 2-parameter solutions or missing inputs.
    """
    g = np.asarray(phot_g_mean_mag, dtype=float)
    nu = np.asarray(nu_eff_used_in_astrometry, dtype=float)
    pc = np.asarray(pseudocolour, dtype=float)
    beta = np.asarray(ecl_lat, dtype=float)
    aps = np.asarray(astrometric_params_solved, dtype=float)
    n = len(g)
    zp = np.full(n, np.nan)
    flag = np.full(n, ZP_NONE, dtype=np.int8)
    is5 = (aps == 31) & np.isfinite(nu)
    is6 = (aps == 95) & np.isfinite(pc)
    ok = (is5 | is6) & np.isfinite(g) & np.isfinite(beta)
    if not ok.any():
        return zp, flag
    colour_in = np.where(is5, nu, pc)
    lo = np.where(is5, _NUEFF_RANGE[0], _PSEUDOCOLOUR_RANGE[0]) + _EPS
    hi = np.where(is5, _NUEFF_RANGE[1], _PSEUDOCOLOUR_RANGE[1]) - _EPS
    colour = np.clip(colour_in, lo, hi)
    gc = np.clip(g, _G_RANGE[0] + _EPS, _G_RANGE[1] - _EPS)
    clipped = (colour != colour_in) | (gc != g)
    idx = np.flatnonzero(ok)
    zpt = _zpt_module()
    nu_c = np.where(is5, colour, np.nan)[idx]
    pc_c = np.where(is6, colour, np.nan)[idx]
    zp[idx] = zpt.get_zpt(gc[idx], nu_c, pc_c, beta[idx], aps[idx], _warnings=False)
    flag[idx] = np.where(clipped[idx], ZP_CLIPPED, ZP_OK)
    flag[~np.isfinite(zp)] = ZP_NONE
    return zp, flag


def _ecliptic_latitude(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    from astropy import units as u
    from astropy.coordinates import BarycentricTrueEcliptic, SkyCoord
    c = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs").transform_to(BarycentricTrueEcliptic())
    return c.lat.deg


def astrometry_quality(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Which sources lack astrometry, and which have values no star can have.

    Returns
    -------
    missing : ndarray of bool
        A NaN in :data:`ASTROMETRY_COLUMNS` (2-parameter solutions; dropped as before).
    implausible : ndarray of bool
        Not missing, but an infinite value or one outside :data:`PLAUSIBLE_RANGES`
        in any column of it that the table has.
    counts : dict
        Implausible sources per column, for the message that names them.
    """
    astro = table[list(ASTROMETRY_COLUMNS)].to_numpy(float)
    missing = np.isnan(astro).any(axis=1)
    bad = np.zeros(len(table), bool)
    counts: dict[str, int] = {}
    for col, (lo, hi) in PLAUSIBLE_RANGES.items():
        if col not in table.columns:
            continue
        v = table[col].to_numpy(float)
        low_ok = v > lo if col in _OPEN_BELOW else v >= lo
        wrong = ~np.isnan(v) & ~(low_ok & (v <= hi))      # +-inf fails both bounds
        wrong &= ~missing
        if wrong.any():
            counts[col] = int(wrong.sum())
            bad |= wrong
    return missing, bad, counts


def preprocess_cone(cone: pd.DataFrame, *, cluster: str, zero_point: str = "lindegren21") -> pd.DataFrame:
    """Zero-point-corrected parallaxes, DPAC photometric errors and the colour G - G_RP.

    Parameters
    ----------
    cone : DataFrame
        Gaia DR3 sources with the archive column names
        (:data:`PREPROCESS_REQUIRED`; ``ecl_lat`` is computed from ra, dec when
        absent).
    cluster : str
        Name used in error messages and ``attrs``.
    zero_point : str
        ``"lindegren21"`` (Gaia DR3's recipe, the paper's) or ``"none"`` (parallaxes as published:
        a release without a recipe, e.g. DR4; ``[cone] parallax_zero_point``).

    Returns
    -------
    DataFrame
        The usable sources (a new frame, index reset) with the columns listed in
        the module docstring. ``attrs`` holds ``cluster``, ``n_input``,
        ``dropped`` (``{"no_g": n, "no_rp": n}``) and ``zero_point``
        (counts per flag).

    Raises
    ------
    EmptyConeError
        The cone is empty, or no source has a G and G_RP magnitude.
    MissingColumnsError
        A required column is missing.
    """
    if cone is None or len(cone) == 0:
        raise EmptyConeError(f"cluster {cluster}: the cone holds no sources")
    table = cone.copy()
    if "ecl_lat" not in table.columns and {"ra", "dec"} <= set(table.columns):
        table["ecl_lat"] = _ecliptic_latitude(table["ra"].to_numpy(float), table["dec"].to_numpy(float))
    require_columns(table, PREPROCESS_REQUIRED, f"cone of cluster {cluster}")
    n_input = len(table)

    g = table["phot_g_mean_mag"].to_numpy(float)
    rp = table["phot_rp_mean_mag"].to_numpy(float)
    if not np.isfinite(g).any():
        raise EmptyConeError(f"cluster {cluster}: all {n_input} phot_g_mean_mag values of the cone are NaN")
    if not np.isfinite(rp).any():
        raise EmptyConeError(f"cluster {cluster}: all {n_input} phot_rp_mean_mag values of the cone are NaN "
                             "(no G - G_RP colour)")
    g_nobs = table["phot_g_n_obs"].to_numpy(float)
    rp_nobs = table["phot_rp_n_obs"].to_numpy(float)
    no_g = ~np.isfinite(g) | ~(g_nobs > 0)
    no_rp = ~no_g & (~np.isfinite(rp) | ~(rp_nobs > 0))
    keep = ~(no_g | no_rp)
    if not keep.any():
        raise EmptyConeError(f"cluster {cluster}: none of the {n_input} sources has both G and G_RP photometry")
    table = table.loc[keep].reset_index(drop=True)

    plx_raw = table["parallax"].to_numpy(float)
    if zero_point == "lindegren21":   # Parallax zero point (Lindegren et al. 2021), DR3's
        zp, flag = parallax_zero_point(
            table["phot_g_mean_mag"].to_numpy(float), table["nu_eff_used_in_astrometry"].to_numpy(float),
            table["pseudocolour"].to_numpy(float), table["ecl_lat"].to_numpy(float),
            table["astrometric_params_solved"].to_numpy(float))
    elif zero_point == "none":        # a release without a recipe: the parallaxes as published
        has = np.isfinite(plx_raw)
        zp, flag = np.where(has, 0.0, np.nan), np.where(has, ZP_OK, ZP_NONE).astype(np.int8)
    else:
        raise ValueError(f"cluster {cluster}: zero_point must be 'lindegren21' or 'none', got {zero_point!r}")
    table["parallax_raw"] = plx_raw
    table["zero_point"] = zp
    table["zero_point_flag"] = flag
    table["parallax"] = np.where(np.isfinite(zp), plx_raw - np.nan_to_num(zp), plx_raw)

    # DPAC photometric errors and the colour.
    model = load_error_model()
    g_err = model.error("g", table["phot_g_mean_mag"].to_numpy(float), table["phot_g_n_obs"].to_numpy(float))
    rp_err = model.error("rp", table["phot_rp_mean_mag"].to_numpy(float), table["phot_rp_n_obs"].to_numpy(float))
    table["phot_g_mean_mag_error"] = g_err
    table["phot_rp_mean_mag_error"] = rp_err
    table["g_rp"] = table["phot_g_mean_mag"].to_numpy(float) - table["phot_rp_mean_mag"].to_numpy(float)
    table["g_rp_error"] = np.hypot(g_err, rp_err)

    table.attrs = {
        "cluster": cluster,
        "n_input": int(n_input),
        "dropped": {"no_g": int(no_g.sum()), "no_rp": int(no_rp.sum())},
        "zero_point": {"ok": int((flag == ZP_OK).sum()), "clipped": int((flag == ZP_CLIPPED).sum()),
                       "none": int((flag == ZP_NONE).sum())},
        "zero_point_recipe": zero_point,
    }
    return table
