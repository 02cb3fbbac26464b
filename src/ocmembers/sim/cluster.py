r"""A simulated Gaia DR3 cone around one CG20 cluster: cluster + field + measurement.

Cluster
-------
* Isochrone of the CG20 age (``log_age``) at ``[isochrone] metallicity_z``
  (:func:`ocmembers.sim.isochrones.cluster_isochrone`), distance from the
  CG20 parallax (:func:`true_distance_pc`),
  extinction :math:`A_0` = ``a0`` applied per star through its
  :math:`T_{eff}` (:mod:`ocmembers.sim.extinction`).
* Masses from the Kroupa (2001) IMF between the mass that reaches
  :math:`G_{lim}+1` and the heaviest living star, a fraction
  ``[sim] binary_fraction`` of unresolved binaries. Old clusters have lost
  low-mass stars (evaporation, mass segregation into an unobserved halo):
  the present-day mass function is the IMF times :math:`m^{\Delta}`,
  :math:`\Delta = \min(\Delta_{max}, k\,t/{\rm Gyr})` (``[sim]
  pdmf_tilt_per_gyr`` :math:`k = 0.35`, ``pdmf_tilt_max`` 1.5), a
  phenomenological choice that reproduces the ratio of turn-off to
  main-sequence stars of the real DR3 M67 extract (``figures/fig_sim_vs_gaia.py``).
* Number of stars: CG20's ``n_members`` (:math:`n_{0.7}`, members with
  :math:`G < 18`) times ``[sim] n_members_factor`` (1.8: CG20's
  :math:`p \ge 0.7` DR2 lists hold about half the :math:`G < 18` members
  Gaia DR3 shows, e.g. 598 against about 1100 in the real M67 extract),
  divided by the fraction of the drawn population with :math:`G < 18`,
  computed on a pilot sample.
* Positions: a King (1962) (``[sim] profile = "king62"``, :math:`r_t/r_c`
  = ``king_concentration``) or Plummer core plus an extended Plummer halo
  (``halo_fraction`` of the stars, scale ``halo_scale`` times the core
  scale), in 3D, scaled so that the projected half-number radius equals the
  CG20 ``r50`` at ``dist_pc``. Each star's own distance gives its parallax
  (depth spread for nearby clusters).
* Velocities: the mean space velocity from the CG20 proper motions at
  ``dist_pc`` and a radial velocity from Galactic rotation at the cluster,
  plus an isotropic internal dispersion :math:`\sigma_v`. Proper motions are
  the projections of each star's velocity at its own position and distance,
  so perspective effects (expansion/contraction, gradients across the field)
  come out exactly. :math:`\sigma_v` is derived from CG20's observed
  dispersions (bright members, Gaia DR2):
  :math:`\sigma_{int}^2 = \bar\sigma_{obs}^2 - \langle\epsilon^2_{DR2}\rangle
  - \sigma_{persp}^2`, with :math:`\epsilon_{DR2} = 2\times` the DR3
  proper-motion uncertainty (DR2's 22-month baseline; Lindegren et al. 2021
  report a factor 2-2.5 improvement), the median of :math:`\epsilon^2` over
  the pilot's :math:`G<18` members (a robust dispersion, as CG20's is
  dominated by the many faint members), and :math:`\sigma_{persp}` the spread produced
  by projection alone; :math:`\sigma_v = 4.74\,d_{kpc}\,\sigma_{int}`, at
  least ``[sim] min_sigma_v_kms``.

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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import ConfigError, EmptyConeError, TooFewMembersError
from ocmembers.method.columns import GAIA_COLUMNS
from ocmembers.method.cuts import apply_cone_cuts, cone_radius_deg, parallax_half_width, pm_radius
from ocmembers.sim.binaries import combine_magnitudes, draw_mass_ratios
from ocmembers.sim.errors import ZP_BOUND, ScanLaw, detection_probability, observe, parallax_error_median
from ocmembers.sim.extinction import gaia_extinction
from ocmembers.sim.galaxy import K_PM, disc_velocity_icrs, simulate_field, velocity_to_pm, V_CIRC
from ocmembers.sim.imf import sample_kroupa
from ocmembers.sim.isochrones import cluster_isochrone
from ocmembers.sim.king62 import King62
from ocmembers.sim.plummer import Plummer
from ocmembers.sim._profile import isotropic

__all__ = ["SimulatedCone", "simulate_cone", "check_cluster", "cluster_rng", "TRUTH_COLUMNS",
           "ClusterModel", "cluster_model"]

#: Largest |parallax zero point| (mas) of the Lindegren et al. (2021) recipe in its range.
ZP_MARGIN = ZP_BOUND
#: Bounds on phot_g_n_obs used by the early field cut (errors.observe: 150-450 per field,
#: x N(1, 0.08), x 0.3 at the faint end, at least 8).
N_OBS_MIN, N_OBS_MAX = 8.0, 700.0

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


@dataclass(frozen=True)
class ClusterModel:
    """Derived parameters of one simulated cluster."""

    n_stars: int
    m_low: float
    m_high: float
    scale_pc: float
    sigma_v_kms: float
    v_mean_icrs: tuple[float, float, float]
    f_bright: float


def cluster_rng(cfg: Config, name: str, n: int = 6) -> list[np.random.Generator]:
    """Independent generators of cluster ``name`` (seed ``[sim] seed`` and the name)."""
    ss = np.random.SeedSequence([int(cfg.sim.seed), zlib.crc32(name.encode())])
    return [np.random.default_rng(s) for s in ss.spawn(n)]


#: Gaia DR2 parallax zero point (Lindegren et al. 2018, A&A 616, A2: -0.029 mas from quasars).
DR2_ZERO_POINT = -0.029


def true_distance_pc(cluster: pd.Series, cfg: Config) -> float:
    """Distance at which the cluster is simulated.

    ``[sim] distance = "parallax"``: from the CG20 (DR2) mean parallax
    corrected for the DR2 zero point, :math:`1000/(\\varpi_{CG} + 0.029)`, when
    that parallax exceeds ``[sim] min_parallax_mas`` (else ``dist_pc``) - so
    the simulated DR3 parallaxes sit where the real ones do, and, as for real
    clusters, the sequence is offset from the isochrone shifted by CG20's
    distance modulus; ``"dist_pc"``: CG20's ``DistPc`` (the sequence sits on
    that isochrone).
    """
    if cfg.sim.distance == "dist_pc":
        return float(cluster["dist_pc"])
    if cfg.sim.distance != "parallax":
        raise ConfigError(f"[sim] distance must be parallax or dist_pc, got {cfg.sim.distance!r}")
    plx = float(cluster["parallax"]) - DR2_ZERO_POINT
    return 1000.0 / plx if plx >= cfg.sim.min_parallax_mas else float(cluster["dist_pc"])


def check_cluster(cluster: pd.Series) -> None:
    """Clear errors for cluster parameters outside their physical range."""
    name = cluster.get("name", "?")
    rules = {
        "dist_pc": lambda v: v > 0, "r50": lambda v: v > 0, "parallax": lambda v: v > 0,
        "parallax_std": lambda v: v > 0, "pmra_std": lambda v: v > 0, "pmdec_std": lambda v: v > 0,
        "pmra": lambda v: True, "pmdec": lambda v: True, "ra": lambda v: True, "l": lambda v: True,
        "b": lambda v: -90 <= v <= 90,
        "dec": lambda v: -90 <= v <= 90, "a0": lambda v: 0 <= v < 20, "log_age": lambda v: True,
        "n_members": lambda v: v >= 0,
    }
    for key, ok in rules.items():
        try:
            v = float(cluster.get(key, np.nan))
        except (TypeError, ValueError):
            v = np.nan
        if not np.isfinite(v) or not ok(v):
            raise ConfigError(f"cluster {name}: parameter {key}={cluster.get(key)!r} is missing or outside "
                              "its physical range; cannot simulate it")


def _profile(cfg: Config):
    s = cfg.sim
    if s.profile == "king62":
        core = King62(s.king_concentration)
    elif s.profile == "plummer":
        core = Plummer(50.0)
    else:
        raise ConfigError(f"[sim] profile must be king62 or plummer, got {s.profile!r}")
    return core, Plummer(50.0)


def _half_radius_unit(cfg: Config) -> float:
    """Projected half-number radius of core + halo, for a core scale of 1."""
    from scipy.optimize import brentq

    core, halo = _profile(cfg)
    fh, ah = cfg.sim.halo_fraction, cfg.sim.halo_scale

    def frac(r: float) -> float:
        return float((1 - fh) * core.n2d(np.array([r]))[0] + fh * halo.n2d(np.array([r / ah]))[0])

    return float(brentq(lambda r: frac(r) - 0.5, 1e-6, 1e3))


def _positions(cfg: Config, n: int, scale_pc: float, rng: np.random.Generator) -> np.ndarray:
    core, halo = _profile(cfg)
    in_halo = rng.random(n) < cfg.sim.halo_fraction
    r = np.where(in_halo, halo.sample_r3d(n, rng) * cfg.sim.halo_scale, core.sample_r3d(n, rng))
    return isotropic(r * scale_pc, rng)


def _cluster_frame(ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ra, dec = np.deg2rad(ra0), np.deg2rad(dec0)
    e0 = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    ea = np.array([-np.sin(ra), np.cos(ra), 0.0])
    ed = np.array([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)])
    return e0, ea, ed


def _place(cluster: pd.Series, offsets_pc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ICRS ``ra, dec`` and distance of stars at 3D offsets (x along the line of sight, y east, z north)."""
    e0, ea, ed = _cluster_frame(float(cluster["ra"]), float(cluster["dec"]))
    d0 = float(cluster["dist_pc"])
    pos = (e0[:, None] * (d0 + offsets_pc[:, 0]) + ea[:, None] * offsets_pc[:, 1]
           + ed[:, None] * offsets_pc[:, 2])
    dist = np.linalg.norm(pos, axis=0)
    return (np.rad2deg(np.arctan2(pos[1], pos[0])) % 360.0,
            np.rad2deg(np.arcsin(np.clip(pos[2] / dist, -1, 1))), dist)


def _mean_velocity(cluster: pd.Series) -> np.ndarray:
    """Cluster space velocity (km/s, heliocentric, ICRS axes): CG20 pm + rotation-curve rv."""
    ra, dec, d = (np.array([float(cluster[k])]) for k in ("ra", "dec", "dist_pc"))
    v_disc = disc_velocity_icrs(ra, dec, d, np.zeros(1), np.full(1, V_CIRC), np.zeros(1))
    _, _, rv = velocity_to_pm(ra, dec, d, v_disc)
    e0, ea, ed = _cluster_frame(float(ra[0]), float(dec[0]))
    d_kpc = float(d[0]) / 1e3
    return (ea * float(cluster["pmra"]) * K_PM * d_kpc + ed * float(cluster["pmdec"]) * K_PM * d_kpc
            + e0 * float(rv[0]))


def pdmf_tilt(cfg: Config, log_age: float) -> float:
    """Flattening of the present-day mass function of a cluster of ``log_age`` (module docstring)."""
    return float(min(cfg.sim.pdmf_tilt_max, cfg.sim.pdmf_tilt_per_gyr * 10 ** log_age / 1e9))


def sample_cluster_masses(n: int, rng: np.random.Generator, m_low: float, m_high: float,
                          tilt: float) -> np.ndarray:
    """Kroupa IMF times :math:`m^{\\Delta}` (``tilt``), by rejection from the IMF."""
    if tilt <= 0:
        return sample_kroupa(n, rng, m_low, m_high)
    out: list[np.ndarray] = []
    got = 0
    while got < n:
        m = sample_kroupa(max(2 * (n - got), 1000) * int(np.ceil((m_high / m_low) ** min(tilt, 3) ** 0.5)),
                          rng, m_low, m_high)
        m = m[rng.random(m.size) < (m / m_high) ** tilt]
        out.append(m)
        got += m.size
    return np.concatenate(out)[:n]


def _photometry(iso: pd.DataFrame, mass: np.ndarray, q: np.ndarray, dist_pc: np.ndarray,
                a0: float | np.ndarray) -> dict[str, np.ndarray]:
    mini = iso["Mini"].to_numpy(float)
    out = {}
    for key, col in (("g", "Gmag"), ("bp", "G_BPmag"), ("rp", "G_RPmag")):
        m1 = np.interp(mass, mini, iso[col].to_numpy(float))
        m2 = np.where(q * mass >= mini[0], np.interp(q * mass, mini, iso[col].to_numpy(float)), np.inf)
        out[key] = combine_magnitudes(m1, m2)
    teff = 10 ** np.interp(mass, mini, iso["logTe"].to_numpy(float))
    ag, abp, arp = gaia_extinction(teff, a0)
    dm = 5 * np.log10(np.asarray(dist_pc) / 10)
    return {"g": out["g"] + dm + ag, "bp": out["bp"] + dm + abp, "rp": out["rp"] + dm + arp, "teff": teff}


def cluster_model(cluster: pd.Series, cfg: Config, iso: pd.DataFrame,
                  rng: np.random.Generator) -> ClusterModel:
    """Number of stars, mass range, scale and velocity dispersion of one cluster (module docstring)."""
    name = cluster["name"]
    d0 = float(cluster["dist_pc"])
    mini = iso["Mini"].to_numpy(float)
    g_app = iso["Gmag"].to_numpy(float) + 5 * np.log10(d0 / 10) + 0.75 * float(cluster["a0"])
    ms = iso["label"].to_numpy() <= 1
    faint = g_app[ms] > cfg.sim.g_limit + 1.0
    m_low = float(mini[ms][faint].max()) if faint.any() else float(mini[0])
    m_low = max(m_low, 0.08)
    m_high = float(mini[-1])
    if m_low >= m_high:
        raise TooFewMembersError(f"cluster {name}: no star of its isochrone is brighter than G = "
                                 f"{cfg.sim.g_limit + 1} at {d0} pc")
    n_pilot = 20000
    mass = sample_cluster_masses(n_pilot, rng, m_low, m_high, pdmf_tilt(cfg, float(cluster["log_age"])))
    q = draw_mass_ratios(n_pilot, cfg.sim.binary_fraction, rng)
    ph = _photometry(iso, mass, q, np.full(n_pilot, d0), float(cluster["a0"]))
    bright = ph["g"] < 18.0
    f_bright = float(bright.mean())
    n_mem = float(cluster["n_members"])
    if f_bright <= 0 or n_mem * 1.0 < cfg.sim.min_members:
        raise TooFewMembersError(f"cluster {name}: {n_mem:g} catalogue members and a fraction "
                                 f"{f_bright:.3g} of stars with G < 18: fewer than [sim] min_members = "
                                 f"{cfg.sim.min_members} simulated members")
    n_stars = int(round(cfg.sim.n_members_factor * n_mem / f_bright))
    if n_stars > cfg.sim.max_cluster_stars:
        raise ConfigError(f"cluster {name}: {n_stars} stars to simulate exceed [sim] max_cluster_stars")
    scale = float(cluster["dist_pc"]) * np.tan(np.deg2rad(float(cluster["r50"]))) / _half_radius_unit(cfg)
    # velocity dispersion: observed (CG20, DR2) minus DR2 errors minus perspective
    v_mean = _mean_velocity(cluster)
    off = _positions(cfg, 4000, scale, rng)
    ra, dec, dist = _place(cluster, off)
    pmra0, pmdec0, _ = velocity_to_pm(ra, dec, dist, np.repeat(v_mean[:, None], ra.size, axis=1))
    persp2 = 0.5 * (np.var(pmra0) + np.var(pmdec0))
    eps = 2.0 * 1.05 * parallax_error_median(ph["g"][bright]) if bright.any() else np.zeros(1)
    obs2 = 0.5 * (float(cluster["pmra_std"]) ** 2 + float(cluster["pmdec_std"]) ** 2)
    int2 = obs2 - float(np.median(eps ** 2)) - persp2
    sigma_v = max(np.sqrt(max(int2, 0.0)) * K_PM * d0 / 1e3, cfg.sim.min_sigma_v_kms)
    return ClusterModel(n_stars=n_stars, m_low=m_low, m_high=m_high, scale_pc=scale, sigma_v_kms=float(sigma_v),
                        v_mean_icrs=tuple(float(v) for v in v_mean), f_bright=f_bright)


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
    iso = cluster_isochrone(cfg.local_dir, float(cluster["log_age"]), cfg.isochrone.metallicity_z,
                            use_parsec=cfg.sim.use_parsec, cluster=name)
    phys = cluster.copy()
    phys["dist_pc"] = true_distance_pc(cluster, cfg)
    model = cluster_model(phys, cfg, iso, r_model)
    # --- cluster stars
    n = model.n_stars
    mass = sample_cluster_masses(n, r_cl, model.m_low, model.m_high, pdmf_tilt(cfg, float(cluster["log_age"])))
    q = draw_mass_ratios(n, cfg.sim.binary_fraction, r_cl)
    off = _positions(cfg, n, model.scale_pc, r_cl)
    ra, dec, dist = _place(phys, off)
    v = np.asarray(model.v_mean_icrs)[:, None] + r_cl.normal(0, model.sigma_v_kms, (3, n))
    pmra, pmdec, rv = velocity_to_pm(ra, dec, dist, v)
    ph = _photometry(iso, mass, q, dist, float(cluster["a0"]))
    r_proj = np.hypot(off[:, 1], off[:, 2])
    cl = pd.DataFrame({"ra": ra, "dec": dec, "dist_pc": dist, "parallax": 1000.0 / dist, "pmra": pmra,
                       "pmdec": pmdec, "rv": rv, "g": ph["g"], "bp": ph["bp"], "rp": ph["rp"], "teff": ph["teff"],
                       "mass": mass, "q": q, "log_age": float(cluster["log_age"]),
                       "mh": float(np.log10(cfg.isochrone.metallicity_z / 0.0152)), "population": "cluster",
                       "a0": float(cluster["a0"])})
    # --- field
    radius = cone_radius_deg(cfg.cone.radius_pc, float(cluster["dist_pc"]))
    l0, b0 = float(cluster["l"]), float(cluster["b"])
    a0_anchor = (float(phys["dist_pc"]), float(cluster["a0"]))
    plx_c, pmra_c, pmdec_c = (float(cluster[k]) for k in ("parallax", "pmra", "pmdec"))
    pm_r = pm_radius(cluster["pmra_std"], cluster["pmdec_std"], cfg.cone.n_sigma)          # Eq. 1
    plx_w = parallax_half_width(cluster["parallax_std"], cfg.cone.n_sigma) + ZP_MARGIN   # Eq. 2

    g_wide = cfg.sim.t22_g_max
    t22_pm_r = cfg.sim.t22_pm_window * pm_r

    def field_prefilter(plx: np.ndarray, g_bright: np.ndarray, g_faint: np.ndarray, pmra: np.ndarray,
                        pmdec: np.ndarray, noise: np.ndarray) -> np.ndarray:
        # the measurement (errors.observe) will be true + zp + sigma * (mixed noise) with
        # sigma_lo <= sigma <= sigma_up; keep a star when some sigma in that range could bring it in
        s_up = parallax_error_median(g_faint, N_OBS_MIN) * 10 ** 0.3 * 1.15
        s_lo = parallax_error_median(g_bright, N_OBS_MAX) * 10 ** -0.3
        a, b = noise[0] * s_lo, noise[0] * s_up
        lo = plx - ZP_MARGIN + np.minimum(a, b)
        hi = plx + ZP_MARGIN + np.maximum(a, b)
        w = parallax_half_width(cluster["parallax_std"], cfg.cone.n_sigma)
        ok_plx = (hi >= plx_c - w) & (lo <= plx_c + w)
        s_pm = 1.3 * s_up  # pm/parallax uncertainty ratio <= 1.10 * 1.18
        n0, n1, n2 = np.abs(noise)
        dx = np.maximum(np.abs(pmra - pmra_c) - s_pm * (0.45 * n0 + n1), 0.0)
        dy = np.maximum(np.abs(pmdec - pmdec_c) - s_pm * (0.45 * n0 + 0.75 * n1 + n2), 0.0)
        dpm = np.hypot(dx, dy)
        # the cone of Eqs. 1-2, or a bright star inside the window the T22-like list looks at
        # (sim/catalogues.py: Eq. 2 in parallax, t22_pm_window x Eq. 1 in proper motion)
        return ok_plx & ((dpm <= pm_r + 1e-3) | ((g_bright < g_wide + 0.5) & (dpm <= t22_pm_r + 1e-3)))

    scan = ScanLaw.draw(r_scan)

    def prefilter(plx: np.ndarray, pmra: np.ndarray, pmdec: np.ndarray, g: np.ndarray) -> np.ndarray:
        # Eqs. 1-2 before the zero point (|zp| < ZP_MARGIN) and with 1e-3 mas/yr of slack; and
        # the bright sources of the T22-like window (Eq. 2, t22_pm_window x Eq. 1)
        dpm = np.hypot(pmra - pmra_c, pmdec - pmdec_c)
        return (np.abs(plx - plx_c) <= plx_w) & ((dpm <= pm_r + 1e-3) | ((g < g_wide) & (dpm <= t22_pm_r + 1e-3)))

    n_generated = [0]

    def measure(true: pd.DataFrame) -> pd.DataFrame:
        """Detection and the Gaia measurement of a batch of true stars; the cut rows are dropped."""
        n_generated[0] += len(true)
        det = r_obs.random(len(true)) < detection_probability(true["g"].to_numpy(float), cfg.sim.g_limit)
        true = true.loc[det].reset_index(drop=True)
        true["binary_wobble"] = (true["q"].to_numpy() > 0) & (r_obs.random(len(true)) < cfg.sim.wobble_fraction)
        obs, zp, kept = observe(true, scan, r_obs, prefilter=prefilter)
        t = true.iloc[kept].reset_index(drop=True).add_prefix("true_")
        t["true_zero_point"] = zp
        return pd.concat([obs.reset_index(drop=True), t], axis=1)

    cl["is_member"] = True
    parts = [measure(cl)]
    fld = simulate_field(float(cluster["ra"]), float(cluster["dec"]), radius, r_field, g_limit=cfg.sim.g_limit,
                         density=cfg.sim.field_density, binary_fraction=cfg.sim.binary_fraction,
                         a0_anchor=a0_anchor, prefilter=field_prefilter,
                         on_chunk=lambda part: measure(part.assign(is_member=False)))
    n_field = n_generated[0] - len(cl)
    parts.append(fld)
    both = pd.concat([p for p in parts if len(p)], ignore_index=True)
    # source ids were drawn per batch: make them unique across batches (collisions ~ 1e-6)
    dup = both["source_id"].duplicated().to_numpy()
    while dup.any():
        both.loc[dup, "source_id"] = both.loc[dup, "source_id"].to_numpy() + 1
        dup = both["source_id"].duplicated().to_numpy()
    # the bright wide cone (radius only): what T22 ran HDBSCAN on
    wide = apply_cone_cuts(both, cluster, radius_pc=cfg.cone.radius_pc, n_sigma=1e12)
    bright = wide.loc[wide["phot_g_mean_mag"].to_numpy(float) < g_wide, list(GAIA_COLUMNS)]
    bright = bright.sort_values("source_id", kind="stable").reset_index(drop=True)
    cut = apply_cone_cuts(both, cluster, radius_pc=cfg.cone.radius_pc, n_sigma=cfg.cone.n_sigma)
    if len(cut) == 0:
        raise EmptyConeError(f"cluster {name}: no simulated source passes the cone cuts")
    cone = cut[list(GAIA_COLUMNS)]
    t = cut[[c for c in cut.columns if c.startswith("true_")]].rename(columns=lambda c: c[5:])
    zp = t["zero_point"].to_numpy(float)
    # projected distance from the centre at the cluster distance (pc)
    e0, _, _ = _cluster_frame(float(cluster["ra"]), float(cluster["dec"]))
    rr, dd = np.deg2rad(cone["ra"].to_numpy()), np.deg2rad(cone["dec"].to_numpy())
    u = np.stack([np.cos(dd) * np.cos(rr), np.cos(dd) * np.sin(rr), np.sin(dd)])
    sep = np.arccos(np.clip(e0 @ u, -1, 1))
    truth = pd.DataFrame({
        "source_id": cone["source_id"].to_numpy(), "is_member": t["is_member"].to_numpy(bool),
        "population": t["population"].astype(str).to_numpy(), "mass": t["mass"].to_numpy(float),
        "q": t["q"].to_numpy(float), "dist_pc": t["dist_pc"].to_numpy(float),
        "parallax_true": t["parallax"].to_numpy(float), "pmra_true": t["pmra"].to_numpy(float),
        "pmdec_true": t["pmdec"].to_numpy(float), "rv_true": t["rv"].to_numpy(float),
        "g_true": t["g"].to_numpy(float), "bp_true": t["bp"].to_numpy(float), "rp_true": t["rp"].to_numpy(float),
        "teff": t["teff"].to_numpy(float), "a0": t["a0"].to_numpy(float), "log_age": t["log_age"].to_numpy(float),
        "mh": t["mh"].to_numpy(float), "zero_point": zp,
        "r_proj_pc": float(cluster["dist_pc"]) * np.tan(sep), "binary_wobble": t["binary_wobble"].to_numpy(bool),
    })
    order = np.argsort(cone["source_id"].to_numpy(), kind="stable")
    cone = cone.iloc[order].reset_index(drop=True)
    truth = truth.iloc[order].reset_index(drop=True)
    meta = {"cluster": name, "seed": int(cfg.sim.seed), "n_cluster_stars": int(n),
            "true_distance_pc": float(phys["dist_pc"]),
            "n_cluster_in_cone": int(truth["is_member"].sum()), "n_field_generated": int(n_field),
            "sigma_v_kms": model.sigma_v_kms, "scale_pc": model.scale_pc, "m_low": model.m_low,
            "f_bright": model.f_bright,  "isochrone": iso.attrs.get("provenance", ""),
            "scan_law": {"n_obs_g": scan.n_obs_g, "ratio_pmra": scan.ratio_pmra, "ratio_pmdec": scan.ratio_pmdec}}
    meta["n_bright_wide"] = int(len(bright))
    return SimulatedCone(name=name, cone=cone, truth=truth, meta=meta, bright=bright)
