r"""A simulated Gaia DR3 cone around one CG20 cluster: cluster + field + measurement.

Cluster: the model and draws of :mod:`ocmembers.sim.cluster_model` (its docstring
holds the physics: isochrone, mass function, numbers, profile, velocities).

Field and measurement: :mod:`ocmembers.sim.galaxy`, :mod:`ocmembers.sim.errors`.
The cone is then cut exactly as the archive query of Sect. 2.1 of van
Groeningen et al. (2023): inside ``[cone] radius_pc`` projected at
``dist_pc``, and Eqs. 1-2 at ``[cone] n_sigma``
(:func:`ocmembers.method.cuts.apply_cone_cuts`). The sources brighter than
``[sim] t22_g_max`` inside the radius, without Eqs. 1-2 (``bright``), are
kept too, as far as the T22-like list looks at them (Eq. 2 in parallax and
``[sim] t22_pm_window`` times the Eq. 1 radius in proper motion,
:mod:`ocmembers.sim.catalogues`): Tarricq et al. (2022) ran HDBSCAN on such
50 pc fields. Stars outside both windows are never completed, which keeps
the wide cones of nearby clusters (21 deg for the Pleiades) cheap.

Randomness: one ``numpy.random.SeedSequence((seed, crc32(name)))`` per
cluster, split into independent streams, so that each cluster is the same
whatever else is simulated, in whatever order or process.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import ConfigError, EmptyConeError
from ocmembers.method.columns import GAIA_COLUMNS
from ocmembers.method.cuts import (angular_separation_deg, cone_radius_deg, cone_window, parallax_half_width,
                                   pm_radius)
from ocmembers.sim.binaries import draw_mass_ratios
from ocmembers.sim.cluster_model import (M_MIN, ClusterModel, check_cluster, cluster_frame, cluster_model,
                                         draw_photometry, draw_positions, pdmf_tilt, pdmf_tilt_rate_per_myr, place,
                                         sample_cluster_masses, true_distance_pc)
from ocmembers.sim.errors import ZP_BOUND, ScanLaw, detection_probability, observe, parallax_error_median
from ocmembers.sim import tails
from ocmembers.sim._numeric import clip
from ocmembers.sim.errors import ICRS_TO_GAL
from ocmembers.sim.galaxy import POPULATIONS, simulate_field, velocity_to_pm
from ocmembers.sim.imf import sample_kroupa
from ocmembers.sim.isochrones import cluster_isochrone

__all__ = ["SimulatedCone", "simulate_cone", "check_cluster", "cluster_rng", "TRUTH_COLUMNS",
           "ClusterModel", "cluster_model", "cluster_stars", "Windows", "Measurement", "observed_sources",
           "truth_table"]

#: Largest |parallax zero point| (mas) of the Lindegren et al. (2021) recipe in its range.
ZP_MARGIN = ZP_BOUND
#: Bounds on phot_g_n_obs used by the early field cut (errors.observe: 150-450 per field,
#: x N(1, 0.08), x 0.3 at the faint end, at least 8).
N_OBS_MIN, N_OBS_MAX = 8.0, 700.0
#: Scatter (dex) of a source's parallax error about the median law, and the factor of
#: the faintest (95-window) sources (errors.observe); they bound the error of a star.
SIGMA_SCATTER_DEX, FAINT_ERROR_FACTOR = 0.3, 1.15
#: Upper bound on the proper-motion / parallax uncertainty ratio (<= 1.10 * 1.18).
PM_PER_PARALLAX_ERROR_MAX = 1.3
#: Largest |correlation| of the astrometric noise (errors.observe clips at 0.45) and the
#: largest weight of the pmra deviate in the pmdec noise: they bound the mixed noise.
CORR_MAX, PMDEC_CROSS_MAX = 0.45, 0.75
#: Slack (mas/yr) on the proper-motion radii of the early cuts (the final cut is exact).
PM_SLACK = 1e-3
#: Magnitudes fainter than ``[sim] t22_g_max`` a true field star may be and still be kept
#: for the T22-like list (its measured G may come out brighter).
T22_G_SLACK = 0.5
#: ``n_sigma`` that makes Eqs. 1-2 keep everything (the radius cut alone).
NO_CUT_SIGMA = 1e12
#: Solar metallicity Z of the [M/H] of the truth table (PARSEC's Z_sun).
Z_SUN = 0.0152

#: Names of the populations of a Gaia cone (the truth's ``population``).
#: ``escaped``: members lost over the age (corona and tidal tails, ``[sim] structure = corona_tails``).
_POPULATION_NAMES: tuple[str, ...] = ("cluster",) + tuple(p.name for p in POPULATIONS) + ("escaped",)

TRUTH_COLUMNS: tuple[str, ...] = (
    "source_id", "is_member", "population", "mass", "q", "dist_pc", "parallax_true", "pmra_true",
    "pmdec_true", "rv_true", "g_true", "bp_true", "rp_true", "teff", "a0", "log_age", "mh", "zero_point",
    "r_proj_pc", "binary_wobble",
)


@dataclass
class SimulatedCone:
    """One simulated cone: what the archive would return, and the truth behind it."""

    name: str
    cone: pd.DataFrame           # GAIA_COLUMNS, Eq. 1-2 cuts applied
    truth: pd.DataFrame          # TRUTH_COLUMNS, same rows and order as ``cone``
    bright: pd.DataFrame | None = None  # GAIA_COLUMNS, G < [sim] t22_g_max in the radius and the T22 window
    meta: dict = field(default_factory=dict)


def isochrone_and_physics(cluster: pd.Series, cfg: Config) -> tuple[pd.DataFrame, pd.Series]:
    """The cluster's isochrone and its row with the true distance (``dist_pc``), as every
    simulated cone of it (Gaia, VVV) starts."""
    iso = cluster_isochrone(cfg.local_dir, float(cluster["log_age"]), cfg.isochrone.metallicity_z,
                            use_parsec=cfg.sim.use_parsec, cluster=str(cluster["name"]))
    phys = cluster.copy()
    phys["dist_pc"] = true_distance_pc(cluster, cfg)
    return iso, phys


def cluster_rng(cfg: Config, name: str, n: int = 6) -> list[np.random.Generator]:
    """Independent generators of cluster ``name`` (seed ``[sim] seed`` and the name)."""
    ss = np.random.SeedSequence([int(cfg.sim.seed), zlib.crc32(name.encode())])
    return [np.random.default_rng(s) for s in ss.spawn(n)]


def simulate_cone(cluster: pd.Series, cfg: Config) -> SimulatedCone:
    """Simulate the Gaia DR3 cone of ``cluster`` (a row of the canonical cluster table).

    Returns
    -------
    SimulatedCone
        ``cone`` (``GAIA_COLUMNS``, archive dtypes, sorted by ``source_id``,
        Eq. 1-2 cuts applied) and ``truth`` (``TRUTH_COLUMNS``, same rows).

    Raises
    ------
    ConfigError, IsochroneRangeError, TooFewMembersError, EmptyConeError
        Naming the cluster and the parameter.
    """
    check_cluster(cluster)
    name = str(cluster["name"])
    r_model, r_cl, r_field, r_obs, r_scan, _ = cluster_rng(cfg, name)
    iso, phys = isochrone_and_physics(cluster, cfg)
    model = cluster_model(phys, cfg, iso, r_model)
    cl = cluster_stars(cluster, phys, cfg, iso, model, r_cl)
    windows = Windows.of(cluster, cfg)
    orbits = cluster_rng(cfg, name, 8)[7] if cfg.sim.ruwe_model == "orbit" else None
    measure = Measurement(cfg, ScanLaw.draw(r_scan), r_obs, windows.measured, orbit_rng=orbits)
    both = observed_sources(cluster, phys, cfg, cl, windows, measure, r_field)
    n_field = measure.n_generated - len(cl)
    # the bright wide cone (radius only: what T22 ran HDBSCAN on) and the Eq. 1-2 cone, selected
    # column by column (the same rows and values as apply_cone_cuts, one separation for both)
    in_wide, in_cut = _cone_masks(both, cluster, cfg)
    g_obs = both["phot_g_mean_mag"].to_numpy(float)
    rows = np.flatnonzero(in_wide & (g_obs < windows.g_wide))
    rows = rows[np.argsort(both["source_id"].to_numpy()[rows], kind="stable")]
    bright = _take_frame(both, list(GAIA_COLUMNS), rows)
    rows = np.flatnonzero(in_cut)
    if rows.size == 0:
        raise EmptyConeError(f"cluster {name}: no simulated source passes the cone cuts")
    order = np.argsort(both["source_id"].to_numpy()[rows], kind="stable")
    truth = _truth_rows(both, rows, cluster, order)
    cone = _take_frame(both, list(GAIA_COLUMNS), rows[order])
    scan = measure.scan
    meta = {"cluster": name, "seed": int(cfg.sim.seed), "n_cluster_stars": int(model.n_stars),
            "true_distance_pc": float(phys["dist_pc"]),
            "n_cluster_in_cone": int(truth["is_member"].sum()), "n_field_generated": int(n_field),
            "sigma_v_kms": model.sigma_v_kms, "scale_pc": model.scale_pc, "m_low": model.m_low,
            "f_bright": model.f_bright, "isochrone": iso.attrs.get("provenance", ""),
            "scan_law": {"n_obs_g": scan.n_obs_g, "ratio_pmra": scan.ratio_pmra, "ratio_pmdec": scan.ratio_pmdec}}
    meta["n_bright_wide"] = int(len(bright))
    return SimulatedCone(name=name, cone=cone, truth=truth, meta=meta, bright=bright)


def _cone_masks(both: pd.DataFrame, cluster: pd.Series, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ocmembers.method.cuts.cone_mask` of ``both`` for the radius alone (``NO_CUT_SIGMA``:
    finite astrometry in the radius) and for Eqs. 1-2, with one angular separation."""
    wide = cone_window(cluster, radius_pc=cfg.cone.radius_pc, n_sigma=NO_CUT_SIGMA)
    win = cone_window(cluster, radius_pc=cfg.cone.radius_pc, n_sigma=cfg.cone.n_sigma)
    sep = angular_separation_deg(both["ra"].to_numpy(float), both["dec"].to_numpy(float), win.ra, win.dec)
    dpm = np.hypot(both["pmra"].to_numpy(float) - win.pmra, both["pmdec"].to_numpy(float) - win.pmdec)
    dplx = np.abs(both["parallax"].to_numpy(float) - win.parallax)
    in_radius = sep <= win.radius_deg
    return (in_radius & (dpm <= wide.pm_max) & (dplx <= wide.parallax_max),
            in_radius & (dpm <= win.pm_max) & (dplx <= win.parallax_max))


def _take_frame(df: pd.DataFrame, columns: list[str], rows: np.ndarray) -> pd.DataFrame:
    """``df.iloc[rows][columns].reset_index(drop=True)``, column by column (no block copies)."""
    return pd.DataFrame({c: df[c].to_numpy()[rows] if not isinstance(df[c].dtype, pd.CategoricalDtype)
                         else df[c].array.take(rows) for c in columns}, copy=False)


def _population_category(part: pd.DataFrame) -> pd.DataFrame:
    """``part`` with its ``population`` as a categorical of the known names (the same strings in
    the truth table: taking and concatenating a string column per chunk cost a second a cone)."""
    if "population" not in part.columns or isinstance(part["population"].dtype, pd.CategoricalDtype):
        return part
    codes, names = pd.factorize(part["population"])
    if (codes < 0).any() or not set(names) <= set(_POPULATION_NAMES):
        return part                         # a name not listed, or none: left as it is
    where = np.array([_POPULATION_NAMES.index(v) for v in names], dtype=np.int8)
    out = part.copy(deep=False)
    out["population"] = pd.Categorical.from_codes(where[codes], categories=list(_POPULATION_NAMES))
    return out


def cluster_stars(cluster: pd.Series, phys: pd.Series, cfg: Config, iso: pd.DataFrame,
                  model: ClusterModel, rng: np.random.Generator) -> pd.DataFrame:
    """The true cluster stars: masses, binaries, positions, velocities and photometry.

    ``phys`` is ``cluster`` at its simulated distance (:func:`true_distance_pc`).
    """
    n = model.n_stars
    mass = sample_cluster_masses(n, rng, model.m_low, model.m_high, pdmf_tilt(cfg, float(cluster["log_age"])))
    q = draw_mass_ratios(n, cfg.sim.binary_fraction, rng)
    off = draw_positions(cfg, n, model.scale_pc, rng)
    ra, dec, dist = place(phys, off)
    v = np.asarray(model.v_mean_icrs)[:, None] + rng.normal(0, model.sigma_v_kms, (3, n))
    pmra, pmdec, rv = velocity_to_pm(ra, dec, dist, v)
    ph = draw_photometry(iso, mass, q, dist, float(cluster["a0"]))
    bound = _star_table(cluster, cfg, ra, dec, dist, pmra, pmdec, rv, ph, mass, q)
    if cfg.sim.structure == "core_halo":
        return bound
    esc = escaped_stars(cluster, phys, cfg, iso, model, mass, q, cluster_rng(cfg, str(cluster["name"]), 9)[8])
    return pd.concat([bound, esc], ignore_index=True)


def escaped_stars(cluster: pd.Series, phys: pd.Series, cfg: Config, iso: pd.DataFrame, model: ClusterModel,
                  mass: np.ndarray, q: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """The stars the cluster lost in the last :math:`\\tau_{max}`: corona and tidal tails (:mod:`ocmembers.sim.tails`).

    ``mass``, ``q``: the bound stars (their total, extended to 0.08 Msun with
    the mass function of ``[sim] escaper_mass_function``, is the present mass).
    On its own random stream ``rng``.
    """
    s = cfg.sim
    name = str(cluster["name"])
    log_age = float(cluster["log_age"])
    present = s.escaper_mass_function == "present"
    tilt = pdmf_tilt(cfg, log_age) if present else 0.0
    pilot_m = sample_cluster_masses(tails.N_PILOT_IMF, rng, M_MIN, model.m_high, tilt)
    pilot_q = draw_mass_ratios(pilot_m.size, s.binary_fraction, rng)
    pilot_sys = pilot_m * (1 + pilot_q)
    pilot_tot = float(np.sum(pilot_sys))
    above = pilot_m >= model.m_low
    m_present = float(np.sum(mass * (1 + q))) * pilot_tot / float(np.sum(pilot_sys[above]))
    e0, ea, ed = cluster_frame(float(phys["ra"]), float(phys["dec"]))
    x_gal = ICRS_TO_GAL @ (e0 * float(phys["dist_pc"]))
    # [sim] tidal_field: t0, Omega and A at the cluster's R_G (tails.dissolution_t0_myr) or the Sun's
    rr = tails.galactocentric_radius_ratio(x_gal) if s.tidal_field == "galactocentric" else 1.0
    t0 = tails.dissolution_t0_myr(s.dissolution_t0_myr, rr)
    r_j = tails.jacobi_radius_pc(m_present, rr)
    age_myr = 10 ** log_age / 1e6
    tau_max = s.tail_max_pc / tails.drift_speed_kms(r_j, rr) / tails.PC_PER_MYR
    _, lost = tails.escape_ages(m_present, age_myr, t0, s.dissolution_gamma, tau_max, np.zeros(0))
    if present:   # escape rate per star of the present mass function (tails.escape_weights)
        tilt_rate = pdmf_tilt_rate_per_myr(cfg, log_age)
        loss_rate = m_present ** -s.dissolution_gamma / t0                          # -dM/dt / M
        w = tails.escape_weights(pilot_m, pilot_sys, tilt_rate, loss_rate)
        n_per_mass = float(np.sum(w[above])) / float(np.sum(w * pilot_sys))
    else:
        n_per_mass = above.sum() / pilot_tot
    n = int(rng.poisson(lost * n_per_mass))
    if n + model.n_stars > s.max_cluster_stars:
        raise ConfigError(f"cluster {name}: {n} escaped stars to simulate exceed [sim] max_cluster_stars")
    tau, _ = tails.escape_ages(m_present, age_myr, t0, s.dissolution_gamma, tau_max, rng.random(n))
    x0 = np.zeros((3, n))
    x0[0] = np.where(rng.random(n) < 0.5, -r_j, r_j)
    v0 = rng.normal(0, model.sigma_v_kms, (3, n))
    if s.tail_orbits == "cluster_gravity":   # the cluster as a Plummer sphere of its r50 (tails.hill_cluster_orbit)
        r50_pc = float(phys["dist_pc"]) * np.tan(np.deg2rad(float(cluster["r50"])))
        pos, vel = tails.hill_cluster_orbit(x0, v0, tau, m_present, r50_pc, radius_ratio=rr)
    else:
        pos, vel = tails.hill_orbit(x0, v0, tau, rr)
    vel = tails.inertial_velocity(pos, vel, rr)
    hill = tails.hill_axes_galactic(x_gal)
    to_icrs = ICRS_TO_GAL.T @ hill.T                 # Hill -> ICRS
    p_icrs, v_icrs = to_icrs @ pos, to_icrs @ vel
    off = np.stack([e0 @ p_icrs, ea @ p_icrs, ed @ p_icrs], axis=1)
    ra, dec, dist = place(phys, off)
    v = np.asarray(model.v_mean_icrs)[:, None] + v_icrs
    pmra, pmdec, rv = velocity_to_pm(ra, dec, dist, v)
    if present:
        m = _escaper_masses(n, rng, model, tilt, lambda x: tails.escape_weights(pilot_m, pilot_sys, tilt_rate,
                                                                                 loss_rate, at=x))
    else:
        m = sample_kroupa(n, rng, model.m_low, model.m_high)
    qq = draw_mass_ratios(n, s.binary_fraction, rng)
    ph = draw_photometry(iso, m, qq, dist, float(cluster["a0"]))
    return _star_table(cluster, cfg, ra, dec, dist, pmra, pmdec, rv, ph, m, qq, population="escaped")


def _escaper_masses(n: int, rng: np.random.Generator, model: ClusterModel, tilt: float,
                    rate: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``n`` primary masses in ``[m_low, m_high]`` of the present-day mass function (``tilt``) times the
    escape rate per star ``rate`` (:func:`ocmembers.sim.tails.escape_weights`), by rejection (the rate is
    monotonic in ln m: its largest value is at an end of the range)."""
    w_max = float(np.max(rate(np.array([model.m_low, model.m_high]))))
    out: list[np.ndarray] = []
    got = 0
    while got < n:
        m = sample_cluster_masses(2 * (n - got) + 100, rng, model.m_low, model.m_high, tilt)
        m = m[rng.random(m.size) * w_max < rate(m)]
        out.append(m)
        got += m.size
    return np.concatenate(out)[:n] if out else np.zeros(0)


def _star_table(cluster: pd.Series, cfg: Config, ra, dec, dist, pmra, pmdec, rv, ph, mass, q,
                population: str = "cluster") -> pd.DataFrame:
    return pd.DataFrame({"ra": ra, "dec": dec, "dist_pc": dist, "parallax": 1000.0 / dist, "pmra": pmra,
                         "pmdec": pmdec, "rv": rv, "g": ph["g"], "bp": ph["bp"], "rp": ph["rp"],
                         "teff": ph["teff"], "mass": mass, "q": q, "log_age": float(cluster["log_age"]),
                         "mh": float(np.log10(cfg.isochrone.metallicity_z / Z_SUN)), "population": population,
                         "a0": float(cluster["a0"])})


@dataclass(frozen=True)
class Windows:
    """The archive query's windows in parallax and proper motion (Eqs. 1-2), and the T22-like one.

    Used to drop, before the expensive measurement, the stars that cannot end
    up in the cone or in the bright T22-like list (:mod:`ocmembers.sim.catalogues`:
    Eq. 2 in parallax, ``[sim] t22_pm_window`` times the Eq. 1 radius in proper motion).
    """

    parallax: float
    pmra: float
    pmdec: float
    pm_r: float            # Eq. 1 radius (mas/yr)
    plx_half: float        # Eq. 2 half width (mas)
    g_wide: float          # [sim] t22_g_max
    t22_pm_r: float        # [sim] t22_pm_window x Eq. 1 radius

    @classmethod
    def of(cls, cluster: pd.Series, cfg: Config) -> "Windows":
        pm_r = pm_radius(cluster["pmra_std"], cluster["pmdec_std"], cfg.cone.n_sigma)          # Eq. 1
        return cls(parallax=float(cluster["parallax"]), pmra=float(cluster["pmra"]),
                   pmdec=float(cluster["pmdec"]), pm_r=pm_r,
                   plx_half=parallax_half_width(cluster["parallax_std"], cfg.cone.n_sigma),  # Eq. 2
                   g_wide=cfg.sim.t22_g_max, t22_pm_r=cfg.sim.t22_pm_window * pm_r)

    def measured(self, plx: np.ndarray, pmra: np.ndarray, pmdec: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Measured sources that may pass: Eqs. 1-2 before the zero point (|zp| < ZP_MARGIN),
        with ``PM_SLACK``, or bright ones inside the T22-like window."""
        plx_w = self.plx_half + ZP_MARGIN
        dpm = np.hypot(pmra - self.pmra, pmdec - self.pmdec)
        return (np.abs(plx - self.parallax) <= plx_w) & (
            (dpm <= self.pm_r + PM_SLACK) | ((g < self.g_wide) & (dpm <= self.t22_pm_r + PM_SLACK)))

    def true_field(self, plx: np.ndarray, g_bright: np.ndarray, g_faint: np.ndarray, pmra: np.ndarray,
                   pmdec: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """True field stars that some measurement could bring into a window.

        The measurement (:func:`ocmembers.sim.errors.observe`) is true + zp +
        sigma * (mixed noise) with ``sigma_lo <= sigma <= sigma_up``; a star is
        kept when some sigma in that range could bring it in.
        """
        s_up = parallax_error_median(g_faint, N_OBS_MIN) * 10 ** SIGMA_SCATTER_DEX * FAINT_ERROR_FACTOR
        s_lo = parallax_error_median(g_bright, N_OBS_MAX) * 10 ** -SIGMA_SCATTER_DEX
        a, b = noise[0] * s_lo, noise[0] * s_up
        lo = plx - ZP_MARGIN + np.minimum(a, b)
        hi = plx + ZP_MARGIN + np.maximum(a, b)
        w = self.plx_half
        ok_plx = (hi >= self.parallax - w) & (lo <= self.parallax + w)
        s_pm = PM_PER_PARALLAX_ERROR_MAX * s_up
        n0, n1, n2 = np.abs(noise)
        dx = np.maximum(np.abs(pmra - self.pmra) - s_pm * (CORR_MAX * n0 + n1), 0.0)
        dy = np.maximum(np.abs(pmdec - self.pmdec) - s_pm * (CORR_MAX * n0 + PMDEC_CROSS_MAX * n1 + n2), 0.0)
        dpm = np.hypot(dx, dy)
        return ok_plx & ((dpm <= self.pm_r + PM_SLACK)
                         | ((g_bright < self.g_wide + T22_G_SLACK) & (dpm <= self.t22_pm_r + PM_SLACK)))


@dataclass
class Measurement:
    """Detection and the Gaia measurement of batches of true stars (cluster, then field chunks).

    ``n_generated`` counts the true stars offered, before detection and cuts.
    """

    cfg: Config
    scan: ScanLaw
    rng: np.random.Generator
    prefilter: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    n_generated: int = 0
    #: the binaries' orbits (``[sim] ruwe_model = "orbit"``): a stream of their own, so that
    #: every other measured value is the same under either RUWE model
    orbit_rng: np.random.Generator | None = None

    def __call__(self, true: pd.DataFrame) -> pd.DataFrame:
        """The measured rows of ``true`` that pass ``prefilter``, with their truth as ``true_*``."""
        self.n_generated += len(true)
        s = self.cfg.sim
        det = self.rng.random(len(true)) < detection_probability(true["g"].to_numpy(float), s.g_limit)
        true = true.loc[det].reset_index(drop=True)
        true["binary_wobble"] = (true["q"].to_numpy() > 0) & (self.rng.random(len(true)) < s.wobble_fraction)
        obs, zp, kept = observe(true, self.scan, self.rng, prefilter=self.prefilter, orbit_rng=self.orbit_rng,
                                release=s.release, epoch_offset_yr=self.cfg.cone.epoch - 2016.0)
        t = true.iloc[kept].reset_index(drop=True).add_prefix("true_")
        t["true_zero_point"] = zp
        return pd.concat([obs.reset_index(drop=True), t], axis=1)


def observed_sources(cluster: pd.Series, phys: pd.Series, cfg: Config, cl: pd.DataFrame, windows: Windows,
                     measure: Measurement, rng: np.random.Generator) -> pd.DataFrame:
    """The measured cluster stars and field stars of the cone, with unique ``source_id``."""
    radius = cone_radius_deg(cfg.cone.radius_pc, float(cluster["dist_pc"]))
    a0_anchor = (float(phys["dist_pc"]), float(cluster["a0"]))
    cl["is_member"] = True
    parts = [measure(_population_category(cl))]

    def field_chunk(part: pd.DataFrame) -> pd.DataFrame:
        # the measured chunks are kept here and concatenated once, with the cluster's
        parts.append(measure(_population_category(part.assign(is_member=False))))
        return parts[-1].iloc[:0]

    simulate_field(float(cluster["ra"]), float(cluster["dec"]), radius, rng, g_limit=cfg.sim.g_limit,
                   density=cfg.sim.field_density, binary_fraction=cfg.sim.binary_fraction,
                   a0_anchor=a0_anchor, prefilter=windows.true_field, on_chunk=field_chunk)
    both = pd.concat([p for p in parts if len(p)], ignore_index=True)
    # source ids were drawn per batch: make them unique across batches (collisions ~ 1e-6)
    dup = both["source_id"].duplicated().to_numpy()
    while dup.any():
        both.loc[dup, "source_id"] = both.loc[dup, "source_id"].to_numpy() + 1
        dup = both["source_id"].duplicated().to_numpy()
    return both


#: Truth columns copied from the ``true_*`` columns of the measured sources (name in the truth, source).
_TRUTH_COPIED: tuple[tuple[str, str, type], ...] = (
    ("is_member", "is_member", bool), ("mass", "mass", float), ("q", "q", float),
    ("dist_pc", "dist_pc", float), ("parallax_true", "parallax", float), ("pmra_true", "pmra", float),
    ("pmdec_true", "pmdec", float), ("rv_true", "rv", float), ("g_true", "g", float), ("bp_true", "bp", float),
    ("rp_true", "rp", float), ("teff", "teff", float), ("a0", "a0", float), ("log_age", "log_age", float),
    ("mh", "mh", float), ("zero_point", "zero_point", float), ("binary_wobble", "binary_wobble", bool))


def truth_table(cut: pd.DataFrame, cone: pd.DataFrame, cluster: pd.Series,
                order: np.ndarray | None = None) -> pd.DataFrame:
    """``TRUTH_COLUMNS`` of the sources of the cone, from the ``true_*`` columns of ``cut``; the rows
    in the order ``order`` when given (computed in the order of ``cut``, then reordered)."""
    return _truth_rows(cut, np.arange(len(cut)), cluster, order)


def _truth_rows(src: pd.DataFrame, rows: np.ndarray, cluster: pd.Series,
                order: np.ndarray | None = None) -> pd.DataFrame:
    """:func:`truth_table` of the rows ``rows`` of the measured sources ``src``, taken once in the
    final order ``rows[order]``; the projected radius is computed in the order of ``rows`` (the
    order the cone was cut in) and then reordered, so that its values are those of the cut."""
    final = rows if order is None else rows[order]
    cols: dict[str, object] = {"source_id": src["source_id"].to_numpy()[final]}
    for name, col, kind in _TRUTH_COPIED:
        cols[name] = np.asarray(src[f"true_{col}"].to_numpy()[final], dtype=kind)
    pop = src["true_population"]
    if isinstance(pop.dtype, pd.CategoricalDtype):
        cols["population"] = pd.Series(pop.array.take(final)).astype(str).array
    else:
        cols["population"] = pop.astype(str).to_numpy()[final]
    # projected distance from the centre at the cluster distance (pc)
    e0, _, _ = cluster_frame(float(cluster["ra"]), float(cluster["dec"]))
    rr, dd = np.deg2rad(src["ra"].to_numpy()[rows]), np.deg2rad(src["dec"].to_numpy()[rows])
    u = np.stack([np.cos(dd) * np.cos(rr), np.cos(dd) * np.sin(rr), np.sin(dd)])
    sep = np.arccos(clip(e0 @ u, -1, 1))
    r_proj = float(cluster["dist_pc"]) * np.tan(sep)
    cols["r_proj_pc"] = r_proj if order is None else r_proj[order]
    return pd.DataFrame({c: cols[c] for c in TRUTH_COLUMNS}, copy=False)
