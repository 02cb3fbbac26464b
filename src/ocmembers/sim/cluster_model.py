r"""The simulated cluster itself: distance, mass function, numbers, positions, velocities.

The derived parameters of one cluster (:class:`ClusterModel`) and the draws of its
stars, used by :func:`ocmembers.sim.cluster.simulate_cone`.

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from ocmembers.config import Config
from ocmembers.exceptions import ConfigError, TooFewMembersError
from ocmembers.sim._profile import isotropic
from ocmembers.sim.binaries import combine_magnitudes, draw_mass_ratios
from ocmembers.sim.errors import parallax_error_median
from ocmembers.sim.extinction import gaia_extinction
from ocmembers.sim.galaxy import K_PM, V_CIRC, disc_velocity_icrs, velocity_to_pm
from ocmembers.sim.imf import sample_kroupa
from ocmembers.sim.king62 import King62
from ocmembers.sim.plummer import Plummer

__all__ = ["ClusterModel", "DR2_ZERO_POINT", "true_distance_pc", "check_cluster", "pdmf_tilt",
           "pdmf_tilt_rate_per_myr",
           "sample_cluster_masses", "cluster_model", "cluster_frame", "place", "draw_positions",
           "draw_photometry"]

#: Stars of the pilot sample that fixes the number of stars and the fraction with G < 18.
N_PILOT = 20_000
#: Stars of the pilot sample that measures the perspective spread of the proper motions.
N_PILOT_PERSPECTIVE = 4_000
#: G of the members CG20 counted (``n_members``: members with G < 18).
G_COUNTED = 18.0
#: Magnitudes fainter than ``[sim] g_limit`` down to which masses are drawn.
G_MARGIN = 1.0
#: Mean G extinction per unit A0 used to place the faint mass limit (a rough A_G / A_0).
A_G_PER_A0 = 0.75
#: Lowest stellar mass drawn (Msun, the hydrogen-burning limit).
M_MIN = 0.08
#: DR2 proper-motion errors relative to DR3 (22-month baseline), and DR3 pm / parallax error ratio.
DR2_PM_ERROR_FACTOR, PM_PER_PARALLAX_ERROR = 2.0, 1.05
#: Plummer scale of the Plummer core and of the halo (the profiles are rescaled to r50 afterwards).
PLUMMER_SCALE = 50.0

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
        core = Plummer(PLUMMER_SCALE)
    else:
        raise ConfigError(f"[sim] profile must be king62 or plummer, got {s.profile!r}")
    return core, Plummer(PLUMMER_SCALE)


def _half_radius_unit(cfg: Config) -> float:
    """Projected half-number radius of core + halo, for a core scale of 1."""
    core, halo = _profile(cfg)
    fh, ah = cfg.sim.halo_fraction, cfg.sim.halo_scale

    def frac(r: float) -> float:
        return float((1 - fh) * core.n2d(np.array([r]))[0] + fh * halo.n2d(np.array([r / ah]))[0])

    return float(brentq(lambda r: frac(r) - 0.5, 1e-6, 1e3))


def draw_positions(cfg: Config, n: int, scale_pc: float, rng: np.random.Generator) -> np.ndarray:
    core, halo = _profile(cfg)
    in_halo = rng.random(n) < cfg.sim.halo_fraction
    r = np.where(in_halo, halo.sample_r3d(n, rng) * cfg.sim.halo_scale, core.sample_r3d(n, rng))
    return isotropic(r * scale_pc, rng)


def cluster_frame(ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ra, dec = np.deg2rad(ra0), np.deg2rad(dec0)
    e0 = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    ea = np.array([-np.sin(ra), np.cos(ra), 0.0])
    ed = np.array([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)])
    return e0, ea, ed


def place(cluster: pd.Series, offsets_pc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ICRS ``ra, dec`` and distance of stars at 3D offsets (x along the line of sight, y east, z north)."""
    e0, ea, ed = cluster_frame(float(cluster["ra"]), float(cluster["dec"]))
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
    e0, ea, ed = cluster_frame(float(ra[0]), float(dec[0]))
    d_kpc = float(d[0]) / 1e3
    return (ea * float(cluster["pmra"]) * K_PM * d_kpc + ed * float(cluster["pmdec"]) * K_PM * d_kpc
            + e0 * float(rv[0]))


def pdmf_tilt(cfg: Config, log_age: float) -> float:
    """Flattening of the present-day mass function of a cluster of ``log_age`` (module docstring)."""
    return float(min(cfg.sim.pdmf_tilt_max, cfg.sim.pdmf_tilt_per_gyr * 10 ** log_age / 1e9))


def pdmf_tilt_rate_per_myr(cfg: Config, log_age: float) -> float:
    r""":math:`\dot\Delta` (1/Myr) of :func:`pdmf_tilt` now: ``pdmf_tilt_per_gyr`` / 1000 while the
    tilt grows, 0 once it has reached ``pdmf_tilt_max``."""
    grows = cfg.sim.pdmf_tilt_per_gyr * 10 ** log_age / 1e9 < cfg.sim.pdmf_tilt_max
    return float(cfg.sim.pdmf_tilt_per_gyr / 1e3) if grows else 0.0


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


def draw_photometry(iso: pd.DataFrame, mass: np.ndarray, q: np.ndarray, dist_pc: np.ndarray,
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
    g_app = iso["Gmag"].to_numpy(float) + 5 * np.log10(d0 / 10) + A_G_PER_A0 * float(cluster["a0"])
    ms = iso["label"].to_numpy() <= 1
    faint = g_app[ms] > cfg.sim.g_limit + G_MARGIN
    m_low = float(mini[ms][faint].max()) if faint.any() else float(mini[0])
    m_low = max(m_low, M_MIN)
    m_high = float(mini[-1])
    if m_low >= m_high:
        raise TooFewMembersError(f"cluster {name}: no star of its isochrone is brighter than G = "
                                 f"{cfg.sim.g_limit + G_MARGIN} at {d0} pc")
    n_pilot = N_PILOT
    mass = sample_cluster_masses(n_pilot, rng, m_low, m_high, pdmf_tilt(cfg, float(cluster["log_age"])))
    q = draw_mass_ratios(n_pilot, cfg.sim.binary_fraction, rng)
    ph = draw_photometry(iso, mass, q, np.full(n_pilot, d0), float(cluster["a0"]))
    bright = ph["g"] < G_COUNTED
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
    off = draw_positions(cfg, N_PILOT_PERSPECTIVE, scale, rng)
    ra, dec, dist = place(cluster, off)
    pmra0, pmdec0, _ = velocity_to_pm(ra, dec, dist, np.repeat(v_mean[:, None], ra.size, axis=1))
    persp2 = 0.5 * (np.var(pmra0) + np.var(pmdec0))
    eps = DR2_PM_ERROR_FACTOR * PM_PER_PARALLAX_ERROR * parallax_error_median(ph["g"][bright]) if bright.any() else np.zeros(1)
    obs2 = 0.5 * (float(cluster["pmra_std"]) ** 2 + float(cluster["pmdec_std"]) ** 2)
    int2 = obs2 - float(np.median(eps ** 2)) - persp2
    sigma_v = max(np.sqrt(max(int2, 0.0)) * K_PM * d0 / 1e3, cfg.sim.min_sigma_v_kms)
    return ClusterModel(n_stars=n_stars, m_low=m_low, m_high=m_high, scale_pc=scale, sigma_v_kms=float(sigma_v),
                        v_mean_icrs=tuple(float(v) for v in v_mean), f_bright=f_bright)
