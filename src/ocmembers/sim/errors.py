r"""Gaia DR3 measurement model of the simulated sky.

Turns true quantities (position, parallax, proper motion, magnitudes, colour)
into a ``gaiadr3.gaia_source``-like table (:data:`ocmembers.method.columns.GAIA_COLUMNS`).

Astrometry
----------
Parallax uncertainty against :math:`G` (Gaia EDR3 science performance;
Lindegren et al. 2021, Fig. 9 / Table 4 give 0.02-0.03 mas at
:math:`G<15`, 0.07 mas at 17, 0.5 mas at 20, 1.3 mas at 21):

.. math::

    \sigma_\varpi = \sqrt{10^2 + 40 + 800 z + 30 z^2}\ \mu{\rm as},\quad
    z = 10^{0.4(\max(G, 13) - 15)},

times :math:`(200/n_{obs})^{1/4}` and a log-normal scatter of 0.12 dex
(truncated at 0.3 dex) between sources (scan-law and crowding variation). It matches the medians of
the DR3 field cone ``ra45_dec0_r0.5deg`` within 15 per cent for
:math:`12 < G < 21`. Proper-motion uncertainties are
:math:`\sigma_{\mu_{\alpha*}} = r_\alpha \sigma_\varpi`,
:math:`\sigma_{\mu_\delta} = r_\delta\sigma_\varpi` (mas/yr) with
:math:`r_\alpha \approx 1.05`, :math:`r_\delta \approx 0.75-1.0` depending on
the sky position (the DR3 cones give 1.04-1.10 and 0.76-0.98), position
uncertainties 0.83 and 0.78 :math:`\sigma_\varpi`.

The 10 correlation coefficients share a per-field value (the scanning law
makes them coherent over a few degrees) drawn in [-0.35, 0.35], plus a
per-source scatter of 0.12, clipped to :math:`\pm 0.45`, which keeps every
(parallax, pmra, pmdec) correlation matrix positive definite; the noise of
the three is drawn from that multivariate normal.

Parallax zero point: the measured parallax is
:math:`\varpi = \varpi_{true} + Z_5/Z_6(G, \nu_{eff}, \hat\nu_{eff}, \beta) + \epsilon`
with the Lindegren et al. (2021) recipe of ``gaiadr3-zeropoint``, so that the
pipeline's correction removes it; outside the recipe's range, -0.017 mas.
:math:`\nu_{eff}` from the colour, Lindegren et al. (2021) Eq. 3,
:math:`\nu_{eff} = 1.76 - (1.61/\pi)\arctan(0.531\,(G_{BP}-G_{RP}))`,
clamped to [1.24, 1.72] as in EDR3.

Solution types: 2-parameter solutions (``astrometric_params_solved = 3``, no
parallax, proper motion, ``ruwe``) with probability
:math:`0.015 + 0.985/(1+e^{-(G-20.75)/0.2})`; among the rest, 6-parameter
solutions (95, with ``pseudocolour``) with
:math:`0.03 + 0.62/(1+e^{-(G-18.8)/0.35})`; 5-parameter (31) otherwise (fits of
the DR3 field cone). Detection completeness
:math:`1/(1+e^{(G-G_{lim}-0.1)/0.2})`.

``ruwe``: log-normal around 1.01 (0.05 dex); with ``[sim] ruwe_model =
"ad_hoc"`` (the default until the reproduction is rerun) a fraction
``wobble_fraction`` of the unresolved binaries get :math:`1.2 + {\rm Exp}(1)`;
with ``"orbit"`` each binary's RUWE follows from its orbit, distance and
along-scan precision (:mod:`ocmembers.sim.binaries`).

Photometry
----------
The DPAC model (Riello et al. 2021; ``LogErrVsMagSpline.csv``):
:math:`\sigma_X = 10^{s_X(m)}\sqrt{n_{ref}/n_{obs}}`, evaluated by
:func:`ocmembers.method.preprocessing.load_error_model`. ``phot_g_n_obs`` is a
per-field value (150-450) times a per-source scatter, falling off beyond
:math:`G = 20.7`; BP/RP get about a ninth of it. Fluxes from the DR3 zero
points (Riello et al. 2021, Table 3: 25.6874, 25.3385, 24.7479 mag), errors
:math:`\sigma_F = F\sigma_m/1.0857`. BP and RP are missing
(``phot_*_n_obs = 0``, NaN magnitudes) with probability
:math:`0.005 + 0.03/(1+e^{-(G-20.5)/0.3})`.

References
----------
Lindegren, L., et al. 2021, A&A 649, A2 and A&A 649, A4 (zero point).
Riello, M., et al. 2021, A&A 649, A3.
Gaia Collaboration, Vallenari, A., et al. 2023, A&A 674, A1.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ocmembers.method.columns import GAIA_COLUMNS
from ocmembers.sim.binaries import binary_ruwe, draw_log_periods, photocentre_wobble_mas
from ocmembers.method.preprocessing import load_error_model
from ocmembers.sim._numeric import clip

__all__ = ["ScanLaw", "parallax_error_median", "observe", "nu_eff_from_colour", "ZERO_POINTS",
           "GAIA_DTYPES", "healpix_nest", "make_source_ids", "ecliptic_latitude", "icrs_to_galactic"]

#: Bound on the simulated parallax zero point (mas); the recipe stays well inside it in its range.
ZP_BOUND = 0.15

#: DR3 photometric zero points (Vega), Riello et al. (2021), Table 3.
ZERO_POINTS: dict[str, float] = {"g": 25.6874, "bp": 25.3385, "rp": 24.7479}

#: dtypes of the gaia_source columns as the archive delivers them.
GAIA_DTYPES: dict[str, str] = {c: "float32" for c in GAIA_COLUMNS}
GAIA_DTYPES.update({"source_id": "int64", "ra": "float64", "dec": "float64", "parallax": "float64",
                    "pmra": "float64", "pmdec": "float64", "l": "float64", "b": "float64",
                    "ecl_lat": "float64", "phot_g_mean_flux": "float64", "phot_bp_mean_flux": "float64",
                    "phot_rp_mean_flux": "float64", "phot_g_n_obs": "int16", "phot_bp_n_obs": "int16",
                    "phot_rp_n_obs": "int16", "astrometric_params_solved": "int16"})

_CORR_NAMES = ("ra_dec_corr", "ra_parallax_corr", "ra_pmra_corr", "ra_pmdec_corr", "dec_parallax_corr",
               "dec_pmra_corr", "dec_pmdec_corr", "parallax_pmra_corr", "parallax_pmdec_corr",
               "pmra_pmdec_corr")

#: ICRS -> Galactic rotation (Hipparcos, ESA 1997, Vol. 1, Eq. 1.5.11).
ICRS_TO_GAL = np.array([[-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
                        [+0.4941094278755837, -0.4448296299600112, +0.7469822444972189],
                        [-0.8676661490190047, -0.1980763734312015, +0.4559837761750669]])
OBLIQUITY_DEG = 23.4392911


@dataclass(frozen=True)
class ScanLaw:
    """Per-field properties set by the scanning law (shared by all sources of a cone)."""

    n_obs_g: float
    ratio_pmra: float
    ratio_pmdec: float
    corr: tuple[float, ...]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "ScanLaw":
        return cls(n_obs_g=float(rng.uniform(150, 450)), ratio_pmra=float(rng.uniform(1.02, 1.10)),
                   ratio_pmdec=float(rng.uniform(0.75, 1.0)),
                   corr=tuple(float(c) for c in rng.uniform(-0.35, 0.35, len(_CORR_NAMES))))


#: Astrometric errors of a release relative to DR3's: (parallax, proper motion). DR4 (66 months of
#: data against DR3's 34): 0.75 and 0.4, PyGaia's DR4 performance model (``pygaia.errors``, the
#: ``release="dr4"`` default) against its ``"dr3"`` one; photometric errors stay DR3's.
RELEASE_ERROR_FACTORS: dict[str, tuple[float, float]] = {"dr3": (1.0, 1.0), "dr4": (0.75, 0.4)}
#: The reference epoch of each release (Julian years).
RELEASE_EPOCHS: dict[str, float] = {"dr3": 2016.0, "dr4": 2017.5}


def propagate_positions_deg(ra_deg: np.ndarray, dec_deg: np.ndarray, pmra: np.ndarray, pmdec: np.ndarray,
                            dt_yr: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions moved by ``dt_yr`` years of proper motion (mas/yr; pmra is mu_alpha*), linearly:
    enough for the 1.5 yr between the DR3 and DR4 epochs (a few mas)."""
    mas = 1.0 / 3.6e6
    dec = dec_deg + dt_yr * pmdec * mas
    ra = ra_deg + dt_yr * pmra * mas / np.cos(np.deg2rad(dec_deg))
    return ra % 360.0, dec




def parallax_error_median(g: np.ndarray, n_obs_g: np.ndarray | float = 200.0) -> np.ndarray:
    """Median DR3 parallax uncertainty (mas) of a 5-parameter solution (module docstring)."""
    z = 10 ** (0.4 * (np.maximum(np.asarray(g, dtype=float), 13.0) - 15.0))
    sig_uas = np.sqrt(100.0 + 40.0 + 800.0 * z + 30.0 * z ** 2)
    return sig_uas / 1e3 * (200.0 / np.asarray(n_obs_g, dtype=float)) ** 0.25


def nu_eff_from_colour(bp_rp: np.ndarray) -> np.ndarray:
    """Effective wavenumber (1/um) from :math:`G_{BP}-G_{RP}`, Lindegren et al. (2021) Eq. 3, clamped."""
    nu = 1.76 - (1.61 / np.pi) * np.arctan(0.531 * np.asarray(bp_rp, dtype=float))
    return clip(nu, 1.24, 1.72)


def ecliptic_latitude(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Ecliptic latitude (deg, mean ecliptic J2000) of ICRS positions."""
    ra, dec, eps = np.deg2rad(ra_deg), np.deg2rad(dec_deg), np.deg2rad(OBLIQUITY_DEG)
    s = np.sin(dec) * np.cos(eps) - np.cos(dec) * np.sin(eps) * np.sin(ra)
    return np.rad2deg(np.arcsin(clip(s, -1, 1)))


def icrs_to_galactic(ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Galactic ``(l, b)`` (deg) of ICRS positions."""
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    v = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    g = ICRS_TO_GAL @ v
    return np.rad2deg(np.arctan2(g[1], g[0])) % 360.0, np.rad2deg(np.arcsin(clip(g[2], -1, 1)))


def healpix_nest(ra_deg: np.ndarray, dec_deg: np.ndarray, level: int = 12) -> np.ndarray:
    """Nested HEALPix index (Gorski et al. 2005) of ICRS positions, as encoded in Gaia source ids."""
    nside = 1 << level
    z = np.sin(np.deg2rad(dec_deg))
    za = np.abs(z)
    tt = np.mod(np.deg2rad(ra_deg), 2 * np.pi) * (2 / np.pi)
    # equatorial region
    t1 = nside * (0.5 + tt)
    t2 = nside * z * 0.75
    jp = (t1 - t2).astype(np.int64)
    jm = (t1 + t2).astype(np.int64)
    ifp, ifm = jp // nside, jm // nside
    face_eq = np.where(ifp == ifm, ifp | 4, np.where(ifp < ifm, ifp, ifm + 8))
    ix_eq = jm & (nside - 1)
    iy_eq = nside - (jp & (nside - 1)) - 1
    # polar caps
    ntt = np.minimum(tt.astype(np.int64), 3)
    tp = tt - ntt
    tmp = nside * np.sqrt(3 * (1 - za))
    jp2 = np.minimum((tp * tmp).astype(np.int64), nside - 1)
    jm2 = np.minimum(((1 - tp) * tmp).astype(np.int64), nside - 1)
    north = z >= 0
    face_po = np.where(north, ntt, ntt + 8)
    ix_po = np.where(north, nside - jm2 - 1, jp2)
    iy_po = np.where(north, nside - jp2 - 1, jm2)
    eq = za <= 2.0 / 3.0
    face = np.where(eq, face_eq, face_po).astype(np.int64)
    ix = np.where(eq, ix_eq, ix_po).astype(np.int64)
    iy = np.where(eq, iy_eq, iy_po).astype(np.int64)
    pix = _spread_bits(ix, level) | (_spread_bits(iy, level) << 1)
    return face * nside * nside + pix


def _spread_bits(v: np.ndarray, level: int) -> np.ndarray:
    """The low ``level`` (<= 16) bits of ``v`` moved to the even bit positions (bit i to bit 2i)."""
    x = v & ((1 << level) - 1)
    x = (x | (x << 8)) & 0x00FF00FF
    x = (x | (x << 4)) & 0x0F0F0F0F
    x = (x | (x << 2)) & 0x33333333
    return (x | (x << 1)) & 0x55555555


def make_source_ids(ra_deg: np.ndarray, dec_deg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unique Gaia-like source ids: HEALPix level-12 index times :math:`2^{35}` plus a random number."""
    hp = healpix_nest(ra_deg, dec_deg)
    for _ in range(10):
        sid = hp * (2 ** 35) + rng.integers(0, 2 ** 35, hp.size)
        srt = np.sort(sid)
        if not np.any(srt[1:] == srt[:-1]):     # unique (a sort: np.unique hashes, 100x slower here)
            return sid.astype(np.int64)
    raise RuntimeError("could not draw unique source ids")  # pragma: no cover


@functools.lru_cache(maxsize=1)
def _phot_model():
    return load_error_model()


def _logistic(x: np.ndarray, x0: float, w: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x - x0) / w))


def detection_probability(g: np.ndarray, g_limit: float) -> np.ndarray:
    """Probability that a source of magnitude ``g`` is in Gaia DR3 (module docstring)."""
    return 1.0 - _logistic(np.asarray(g, dtype=float), g_limit + 0.1, 0.2)


def observe(true: pd.DataFrame, scan: ScanLaw, rng: np.random.Generator,
            prefilter: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
            zp_margin: float = 0.1, orbit_rng: np.random.Generator | None = None,
            release: str = "dr3", epoch_offset_yr: float = 0.0
            ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    r"""Gaia DR3 measurements of the sources in ``true``.

    Parameters
    ----------
    true : DataFrame
        ``ra, dec`` (deg, epoch 2016.0), ``parallax, pmra, pmdec`` (true; mas,
        mas/yr), ``g, bp, rp`` (true apparent magnitudes), ``binary_wobble``
        (bool: an astrometric binary with large ``ruwe``); optionally
        ``noise_0, noise_1, noise_2``, the standard-normal deviates of the
        (parallax, pmra, pmdec) noise (drawn here when absent), which the
        correlations then mix: :math:`\epsilon_\varpi = \sigma_\varpi n_0`,
        :math:`\epsilon_{\mu_\alpha} = \sigma_{\mu_\alpha}(\rho_{\varpi\alpha} n_0 + L_{22} n_1)`,
        :math:`\epsilon_{\mu_\delta} = \sigma_{\mu_\delta}(\rho_{\varpi\delta} n_0 + L_{32} n_1 + L_{33} n_2)`.
    scan : ScanLaw
        Per-field scanning-law properties.
    rng : Generator
    prefilter : callable, optional
        ``prefilter(parallax, pmra, pmdec, phot_g_mean_mag) -> bool mask`` on the measured
        astrometry *before* the zero point is added (``parallax`` is offered
        as an interval ``+-zp_margin`` by the caller's own margin). Sources it
        rejects are dropped before the expensive rest of the measurement, so
        that a cone with Eq. 1-2 cuts costs little more than its survivors.
        Must not reject a source that could pass after the zero point.

    Returns
    -------
    cone : DataFrame
        The columns of ``GAIA_COLUMNS`` (``source_id`` included) with the
        archive's dtypes, for the kept sources in the order of ``true``.
    zero_point : ndarray
        The parallax offset added to each kept source (mas), for the truth table.
    kept : ndarray
        Positions in ``true`` of the rows of ``cone``.
    """
    n = len(true)
    g_t = true["g"].to_numpy(float)
    # --- stage 1: what the astrometric noise depends on --------------------
    fade = _logistic(g_t, 20.7, 0.35)
    n_g = np.maximum(np.round(scan.n_obs_g * rng.normal(1.0, 0.08, n) * (1 - 0.7 * fade)), 8).astype(np.int64)
    sig_g = _phot_model().error("g", g_t, n_g)
    sig_g = np.where(np.isfinite(sig_g), sig_g, 0.3)
    g = g_t + rng.normal(0, 1, n) * sig_g
    missing = rng.random(n) < 0.005 + 0.03 * _logistic(g_t, 20.5, 0.3)
    two_p = rng.random(n) < 0.015 + 0.985 * _logistic(g, 20.75, 0.2)
    six_p = ~two_p & ((rng.random(n) < 0.03 + 0.62 * _logistic(g, 18.8, 0.35)) | missing)
    aps = np.where(two_p, 3, np.where(six_p, 95, 31))
    s_plx = (parallax_error_median(g_t, n_g) * 10 ** clip(rng.normal(0, 0.12, n), -0.3, 0.3)
             * np.where(aps == 95, 1.15, 1.0))
    s_pmra = s_plx * scan.ratio_pmra * rng.normal(1.0, 0.03, n)
    s_pmdec = s_plx * scan.ratio_pmdec * rng.normal(1.0, 0.03, n)
    if release != "dr3":                  # a later release: the same stars, smaller errors
        f_plx, f_pm = RELEASE_ERROR_FACTORS[release]
        s_plx, s_pmra, s_pmdec = s_plx * f_plx, s_pmra * f_pm, s_pmdec * f_pm
    corr = clip(np.asarray(scan.corr)[:, None] + rng.normal(0, 0.12, (len(_CORR_NAMES), n)), -0.45, 0.45)
    ci = {name: i for i, name in enumerate(_CORR_NAMES)}
    r_a, r_d, r_ad = corr[ci["parallax_pmra_corr"]], corr[ci["parallax_pmdec_corr"]], corr[ci["pmra_pmdec_corr"]]
    # Cholesky factor of [[1, r_a, r_d], [r_a, 1, r_ad], [r_d, r_ad, 1]], per source
    l22 = np.sqrt(1 - r_a ** 2)
    l32 = (r_ad - r_d * r_a) / l22
    l33 = np.sqrt(clip(1 - r_d ** 2 - l32 ** 2, 1e-9, None))
    if all(f"noise_{i}" in true.columns for i in range(3)):
        e = np.stack([true[f"noise_{i}"].to_numpy(float) for i in range(3)])
    else:
        e = rng.normal(0, 1, (3, n))
    plx = true["parallax"].to_numpy(float) + s_plx * e[0]
    pmra = true["pmra"].to_numpy(float) + s_pmra * (r_a * e[0] + l22 * e[1])
    pmdec = true["pmdec"].to_numpy(float) + s_pmdec * (r_d * e[0] + l32 * e[1] + l33 * e[2])
    keep = aps != 3 if prefilter is not None else np.ones(n, bool)
    if prefilter is not None:
        keep &= prefilter(plx, pmra, pmdec, g)
    kept = np.flatnonzero(keep)
    sub = lambda a: a[..., kept]  # noqa: E731
    g_t, n_g, sig_g, g, missing, aps, s_plx, s_pmra, s_pmdec, corr, plx, pmra, pmdec = map(
        sub, (g_t, n_g, sig_g, g, missing, aps, s_plx, s_pmra, s_pmdec, corr, plx, pmra, pmdec))
    t = true.iloc[kept]
    m = kept.size
    bp_t, rp_t = t["bp"].to_numpy(float), t["rp"].to_numpy(float)
    ra_t, dec_t = t["ra"].to_numpy(float), t["dec"].to_numpy(float)
    if epoch_offset_yr:                   # positions at the release's reference epoch, not J2016.0
        ra_t, dec_t = propagate_positions_deg(ra_t, dec_t, t["pmra"].to_numpy(float),
                                              t["pmdec"].to_numpy(float), epoch_offset_yr)
    # --- stage 2: the rest, for the kept sources ----------------------------
    fade = _logistic(g_t, 20.7, 0.35)
    n_bp = np.maximum(np.round(n_g / 9.5 * rng.normal(1.0, 0.05, m) * (1 - 0.5 * fade)), 1).astype(np.int64)
    n_rp = np.maximum(n_bp + rng.integers(-1, 2, m), 1)
    only_bp = missing & (rng.random(m) < 0.3)
    n_bp = np.where(missing, 0, n_bp)
    n_rp = np.where(missing & ~only_bp, 0, n_rp)
    pm = _phot_model()
    out: dict[str, np.ndarray] = {}
    for band, mag_t, nobs in (("g", g_t, n_g), ("bp", bp_t, n_bp), ("rp", rp_t, n_rp)):
        if band == "g":
            mag, sig = g, sig_g
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                sig = pm.error(band, mag_t, np.where(nobs > 0, nobs, np.nan))
            sig = np.where(np.isfinite(sig), sig, 0.3)
            mag = np.where(nobs > 0, mag_t + rng.normal(0, 1, m) * sig, np.nan)
        flux = 10 ** (-0.4 * (mag - ZERO_POINTS[band]))
        out[f"phot_{band}_mean_mag"] = mag
        out[f"phot_{band}_mean_flux"] = flux
        out[f"phot_{band}_mean_flux_error"] = flux * sig / 1.0857
        out[f"phot_{band}_n_obs"] = nobs
    nu_true = nu_eff_from_colour(bp_t - rp_t)
    nu_eff = np.where(aps == 31, nu_true, np.nan)
    pc_sig = 0.01 + 0.08 * _logistic(g, 20.0, 0.6)
    pseudo = np.where(aps == 95, clip(nu_true + rng.normal(0, 1, m) * pc_sig, 1.24, 1.72), np.nan)
    # --- zero point (Lindegren et al. 2021) -------------------------------
    zp = _zero_point(g, nu_eff, pseudo, ecliptic_latitude(ra_t, dec_t), aps)
    plx = plx + zp
    s_ra, s_dec = 0.83 * s_plx, 0.78 * s_plx
    mas = 1 / 3.6e6
    ra = ra_t + rng.normal(0, 1, m) * s_ra * mas / np.cos(np.deg2rad(dec_t))
    dec = dec_t + rng.normal(0, 1, m) * s_dec * mas
    ruwe = 10 ** rng.normal(np.log10(1.01), 0.05 / 2.3, m)
    wobble = t["binary_wobble"].to_numpy(bool) if "binary_wobble" in t else np.zeros(m, bool)
    ad_hoc = np.where(wobble, 1.2 + rng.exponential(1.0, m), ruwe)   # drawn either way: same streams
    if orbit_rng is not None and {"q", "mass", "dist_pc"} <= set(t.columns):
        # the photocentre wobble of each unresolved binary (sim.binaries), from its own stream
        log_p = draw_log_periods(m, orbit_rng)
        alpha, rho = photocentre_wobble_mas(t["mass"].to_numpy(float), t["q"].to_numpy(float),
                                            t["dist_pc"].to_numpy(float), log_p)
        sigma_al = s_plx * np.sqrt(np.maximum(n_g, 1)) / 2.0
        ruwe = binary_ruwe(ruwe, alpha, rho, log_p, sigma_al)
    else:
        ruwe = ad_hoc
    five = aps != 3
    nan = np.nan
    l, b = icrs_to_galactic(ra, dec)
    cols: dict[str, np.ndarray] = {
        "source_id": make_source_ids(ra, dec, rng),
        "ra": ra, "dec": dec, "ra_error": s_ra, "dec_error": s_dec,
        "parallax": np.where(five, plx, nan), "parallax_error": np.where(five, s_plx, nan),
        "pmra": np.where(five, pmra, nan), "pmra_error": np.where(five, s_pmra, nan),
        "pmdec": np.where(five, pmdec, nan), "pmdec_error": np.where(five, s_pmdec, nan),
    }
    for name, i in ci.items():
        cols[name] = corr[i] if name == "ra_dec_corr" else np.where(five, corr[i], nan)
    cols.update(out)
    cols.update({"l": l, "b": b, "ruwe": np.where(five, ruwe, nan), "nu_eff_used_in_astrometry": nu_eff,
                 "pseudocolour": pseudo, "ecl_lat": ecliptic_latitude(ra, dec), "astrometric_params_solved": aps})
    df = pd.DataFrame({c: np.asarray(cols[c]).astype(GAIA_DTYPES[c]) for c in GAIA_COLUMNS}, copy=False)
    return df, zp, kept


@functools.lru_cache(maxsize=1)
def _zpt():
    from zero_point import zpt
    zpt.load_tables()
    return zpt


def _zero_point(g: np.ndarray, nu_eff: np.ndarray, pseudo: np.ndarray, ecl_lat: np.ndarray,
                aps: np.ndarray) -> np.ndarray:
    """Lindegren et al. (2021) zero point (mas); -0.017 where the recipe does not apply."""
    out = np.full(g.shape, -0.017)
    ok = (aps != 3) & np.isfinite(g) & (g > 6.0) & (g < 21.0)
    if ok.any():
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nu = np.asarray(np.where(np.isnan(nu_eff[ok]), 1.5, nu_eff[ok]), float)
            pc = np.asarray(np.where(np.isnan(pseudo[ok]), 1.5, pseudo[ok]), float)
            z = _zpt().get_zpt(np.asarray(g[ok], float), nu, pc, np.asarray(ecl_lat[ok], float),
                               np.asarray(aps[ok], int), _warnings=False)
        z = np.asarray(z, dtype=float)
        out[ok] = np.where(np.isfinite(z), z, -0.017)
    return clip(out, -ZP_BOUND, ZP_BOUND)
