r"""The Galactic field population of the simulated sky.

A Besancon-like (Robin et al. 2003) model, reduced to what a cone needs:

Density (stars formed per pc^3, masses 0.08-150 Msun, Kroupa IMF):

* thin disc, constant star formation over 10 Gyr in 7 age bins,
  :math:`\rho = \rho_0 w_i/(2 h_{z,i}) \exp(-(R-R_0)/h_R - |z|/h_{z,i})`,
  :math:`h_R = 2.6` kpc, :math:`h_z(\tau) = 60 + 240 (\tau/10\,{\rm Gyr})^{1/2}` pc,
  [M/H] from +0.05 (young) to -0.25 (10 Gyr);
* thick disc, 10 Gyr, [M/H] = -0.6, :math:`h_R = 3.0` kpc,
  :math:`h_z = 0.9` kpc, 6 per cent of the thin disc in the midplane at the
  Sun (Bland-Hawthorn & Gerhard 2016: :math:`4 \pm 2` per cent, :math:`h_R`
  2-3.6 kpc in the literature; Juric et al. 2008: 12 per cent);
* stellar halo, 12 Gyr, [M/H] = -1.5, :math:`\rho \propto (r_q/R_0)^{-2.8}`,
  :math:`r_q^2 = R^2 + (z/0.64)^2` (core 1 kpc), 0.5 per cent of the thin disc
  at the Sun (Juric et al. 2008 find 0.5 per cent; 0.2 fits the DR3 counts).

:math:`R_0 = 8.2` kpc, :math:`z_\odot = 20.8` pc (Bland-Hawthorn & Gerhard
2016; Bennett & Bovy 2019). The midplane normalisation :math:`\rho_0`
(``[sim] field_density``) is calibrated on the DR3 field cone at
(ra, dec) = (45, 0) (see ``tests/test_sim_field.py``).

Kinematics (velocity ellipsoids in Galactocentric cylindrical coordinates):
thin disc :math:`\sigma_U = 42 ((\tau + 0.1)/10.1)^{0.33}` km/s,
:math:`\sigma_V = 0.63\sigma_U`, :math:`\sigma_W = 0.5\sigma_U`, asymmetric
drift :math:`V_a = \sigma_U^2/80` km/s; thick disc (67, 51, 42) km/s,
:math:`V_a = 46` km/s; halo (131, 106, 85) km/s, no net rotation. Flat
rotation curve :math:`v_c = 232` km/s; solar motion (11.1, 12.24, 7.25) km/s
(Schoenrich et al. 2010).

Stars are drawn per distance bin along the cone: the expected number in a
shell is :math:`\Omega d^2 \Delta d\,\rho_{max}(d)\,f_{IMF}(m > m_{min}(d))`,
with :math:`m_{min}` the faintest mass that can reach :math:`G_{lim}+0.6`
after distance modulus and extinction; directions are uniform in the cone and
kept with probability :math:`\rho/\rho_{max}` (exact density across wide cones).
Photometry from the isochrone of each population (model isochrones,
:mod:`ocmembers.sim.isochrones`), unresolved binaries, extinction along the
line of sight (:mod:`ocmembers.sim.extinction`).

References
----------
Robin, A. C., Reyle, C., Derriere, S., Picaud, S. 2003, A&A 409, 523.
Juric, M., et al. 2008, ApJ 673, 864.
Schoenrich, R., Binney, J., Dehnen, W. 2010, MNRAS 403, 1829.
Bland-Hawthorn, J., Gerhard, O. 2016, ARA&A 54, 529.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ocmembers.sim.binaries import combine_magnitudes, draw_mass_ratios
from ocmembers.sim._numeric import Interpolator, clip
from ocmembers.sim.errors import ICRS_TO_GAL, icrs_to_galactic
from ocmembers.sim.extinction import gaia_extinction, los_a0
from ocmembers.sim.imf import kroupa_cdf, sample_kroupa
from ocmembers.sim.isochrones import model_isochrone

__all__ = ["Population", "POPULATIONS", "simulate_field", "velocity_to_pm", "sun_velocity_icrs",
           "R0_PC", "Z_SUN_PC", "V_CIRC", "SUN_PECULIAR", "K_PM", "cone_directions", "disc_velocity_icrs"]

R0_PC = 8200.0
Z_SUN_PC = 20.8
V_CIRC = 232.0
SUN_PECULIAR = (11.1, 12.24, 7.25)
K_PM = 4.740470446  # km/s per (mas/yr * kpc)

_THIN_EDGES_GYR = (0.01, 0.15, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0)


@dataclass(frozen=True)
class Population:
    """One stellar population of the field."""

    name: str
    log_age: float
    mh: float
    weight: float          # share of the local midplane density rho_0
    h_r_pc: float
    h_z_pc: float          # <= 0: halo power law
    sigma_uvw: tuple[float, float, float]
    v_asym: float

    def density(self, r_pc: np.ndarray, z_pc: np.ndarray) -> np.ndarray:
        """Density relative to the local midplane value of this population."""
        if self.h_z_pc > 0:
            return np.exp(-(r_pc - R0_PC) / self.h_r_pc - np.abs(z_pc) / self.h_z_pc)
        rq = np.sqrt(r_pc ** 2 + (z_pc / 0.64) ** 2 + 1000.0 ** 2)
        return (rq / np.sqrt(R0_PC ** 2 + 1000.0 ** 2)) ** -2.8


def _thin_populations() -> list[Population]:
    out = []
    edges = np.asarray(_THIN_EDGES_GYR)
    for lo, hi in zip(edges[:-1], edges[1:]):
        tau = 0.5 * (lo + hi)
        w = (hi - lo) / (edges[-1] - edges[0])
        hz = 60 + 240 * np.sqrt(tau / 10)
        su = 42 * ((tau + 0.1) / 10.1) ** 0.33
        out.append(Population(f"thin_{tau:.2f}Gyr", float(np.log10(tau * 1e9)), float(0.05 - 0.03 * tau),
                              float(w), 2600.0, float(hz), (su, 0.63 * su, 0.5 * su), su ** 2 / 80))
    return out


def _all_populations() -> tuple[Population, ...]:
    thin = _thin_populations()
    # weight of each thin bin: its share of the *midplane* density = w / (2 h_z), normalised
    mid = np.array([p.weight / (2 * p.h_z_pc) for p in thin])
    thin = [Population(p.name, p.log_age, p.mh, float(m / mid.sum()), p.h_r_pc, p.h_z_pc, p.sigma_uvw, p.v_asym)
            for p, m in zip(thin, mid)]
    thick = Population("thick", 10.0, -0.6, 0.06, 3000.0, 900.0, (67.0, 51.0, 42.0), 46.0)
    halo = Population("halo", 10.08, -1.5, 0.002, 1.0, 0.0, (131.0, 106.0, 85.0), V_CIRC)
    return tuple(thin) + (thick, halo)


POPULATIONS: tuple[Population, ...] = _all_populations()


# ---------------------------------------------------------------------------
# geometry and kinematics
# ---------------------------------------------------------------------------
def _unit_icrs(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    cd = np.cos(dec)
    return np.stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)])


def _radec(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.rad2deg(np.arctan2(u[1], u[0])) % 360.0, np.rad2deg(np.arcsin(clip(u[2], -1, 1)))


def _galactocentric_u(u: np.ndarray, d_pc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = ICRS_TO_GAL
    x = (a[0, 0] * u[0] + a[0, 1] * u[1] + a[0, 2] * u[2]) * d_pc - R0_PC
    y = (a[1, 0] * u[0] + a[1, 1] * u[1] + a[1, 2] * u[2]) * d_pc
    z = (a[2, 0] * u[0] + a[2, 1] * u[1] + a[2, 2] * u[2]) * d_pc + Z_SUN_PC
    return x, y, z


def galactocentric(ra_deg: np.ndarray, dec_deg: np.ndarray, d_pc: np.ndarray) -> tuple[np.ndarray, ...]:
    """Galactocentric Cartesian ``X, Y, Z`` (pc; Sun at ``(-R0, 0, z_sun)``, Y along rotation)."""
    u = _unit_icrs(ra_deg, dec_deg)
    g = np.tensordot(ICRS_TO_GAL, u, axes=(1, 0)) * d_pc
    return g[0] - R0_PC, g[1], g[2] + Z_SUN_PC


def sun_velocity_icrs() -> np.ndarray:
    """Velocity of the Sun (km/s) in Galactocentric rest frame, on ICRS axes."""
    u, v, w = SUN_PECULIAR
    return ICRS_TO_GAL.T @ np.array([u, V_CIRC + v, w])


def _pm_u(u: np.ndarray, d_pc: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pmra, pmdec, rv)`` from unit vectors ``u`` (3, n) and velocities ``v`` (3, n), no trigonometry."""
    cd = np.sqrt(u[0] ** 2 + u[1] ** 2)
    k = K_PM * np.asarray(d_pc) / 1e3
    va = (-u[1] * v[0] + u[0] * v[1]) / cd
    vd = (-u[2] * (u[0] * v[0] + u[1] * v[1])) / cd + cd * v[2]
    return va / k, vd / k, u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def velocity_to_pm(ra_deg: np.ndarray, dec_deg: np.ndarray, d_pc: np.ndarray,
                   v_icrs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pmra, pmdec, rv)`` (mas/yr, km/s) of heliocentric velocities ``v_icrs`` (3, n), in km/s."""
    return _pm_u(_unit_icrs(ra_deg, dec_deg), d_pc, v_icrs)


def _disc_velocity_u(u: np.ndarray, d_pc: np.ndarray, v_r: np.ndarray, v_rot: np.ndarray,
                     v_z: np.ndarray) -> np.ndarray:
    x, y, _ = _galactocentric_u(u, d_pc)
    rr = np.hypot(x, y)
    us, vs, ws = SUN_PECULIAR
    vx = (v_r * x + v_rot * y) / rr - us
    vy = (v_r * y - v_rot * x) / rr - (V_CIRC + vs)
    vz = v_z - ws
    a = ICRS_TO_GAL  # Galactic -> ICRS is the transpose
    return np.stack([a[0, 0] * vx + a[1, 0] * vy + a[2, 0] * vz,
                     a[0, 1] * vx + a[1, 1] * vy + a[2, 1] * vz,
                     a[0, 2] * vx + a[1, 2] * vy + a[2, 2] * vz])


def disc_velocity_icrs(ra_deg: np.ndarray, dec_deg: np.ndarray, d_pc: np.ndarray,
                       v_r: np.ndarray, v_rot: np.ndarray, v_z: np.ndarray) -> np.ndarray:
    """Heliocentric velocity (3, n) on ICRS axes of stars with Galactocentric cylindrical velocities
    (``v_r`` outwards, ``v_rot`` along the rotation, ``v_z`` to the north Galactic pole)."""
    return _disc_velocity_u(_unit_icrs(ra_deg, dec_deg), d_pc, v_r, v_rot, v_z)


def _cone_unit(ra0: float, dec0: float, radius_deg: float, n: int, rng: np.random.Generator) -> np.ndarray:
    cos_r = np.cos(np.deg2rad(radius_deg))
    c = rng.uniform(cos_r, 1.0, n)
    s = np.sqrt(1 - c ** 2)
    phi = rng.uniform(0, 2 * np.pi, n)
    ra, dec = np.deg2rad(ra0), np.deg2rad(dec0)
    e0 = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    ea = np.array([-np.sin(ra), np.cos(ra), 0.0])
    ed = np.array([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)])
    a, b = s * np.cos(phi), s * np.sin(phi)
    # e0 c + ea a + ed b, row by row in place (the same operations in the same order)
    out = np.empty((3, n))
    tmp = np.empty(n)
    for i in range(3):
        np.multiply(e0[i], c, out=out[i])
        out[i] += np.multiply(ea[i], a, out=tmp)
        out[i] += np.multiply(ed[i], b, out=tmp)
    return out


def cone_directions(ra0: float, dec0: float, radius_deg: float, n: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` directions uniform on the sphere inside a cone."""
    return _radec(_cone_unit(ra0, dec0, radius_deg, n, rng))


# ---------------------------------------------------------------------------
# the field
# ---------------------------------------------------------------------------
def _complete(pop: Population, k: np.ndarray, edges: np.ndarray, d_mid: np.ndarray, a0_mid: np.ndarray,
              m_min: np.ndarray, m_max: float, iso: pd.DataFrame, rng: np.random.Generator, *, ra0: float,
              dec0: float, radius_deg: float, rho_max: np.ndarray, g_limit: float, binary_fraction: float,
              l0: float, b0: float, a0_scale: float, a0_anchor, prefilter,
              d_interp: Interpolator | None = None) -> pd.DataFrame | None:
    """Stars of distance bins ``k`` of one population: positions, masses, photometry, kinematics."""
    mini = iso["Mini"].to_numpy()
    g_abs = iso["Gmag"].to_numpy()
    n = k.size
    e3 = edges ** 3                     # the same values as edges[k] ** 3, 801 powers instead of 2n
    lo = e3[k]
    d = (lo + rng.random(n) * (e3[k + 1] - lo)) ** (1 / 3)
    u = _cone_unit(ra0, dec0, radius_deg, n, rng)
    x, y, z = _galactocentric_u(u, d)
    keep = rng.random(n) * rho_max[k] < pop.density(np.hypot(x, y), z)
    d, u, k = d[keep], u[:, keep], k[keep]
    n = d.size
    mass = sample_kroupa(n, rng, m_min[k], m_max)
    q = draw_mass_ratios(n, binary_fraction, rng)
    s_u, s_v, s_w = pop.sigma_uvw
    v_r = rng.normal(0, s_u, n)
    v_rot = V_CIRC - pop.v_asym + rng.normal(0, s_v, n)
    v_z = rng.normal(0, s_w, n)
    v = _disc_velocity_u(u, d, v_r, v_rot, v_z)
    pmra, pmdec, rv = _pm_u(u, d, v)
    # standard-normal astrometric noise of the measurement, drawn now so that cuts can be applied early
    noise = rng.standard_normal((3, n))
    # the isochrone's columns at the masses: np.interp's values, the grid searched once per mass
    ip = Interpolator(mini) if mini.size > 1 and np.all(np.diff(mini) > 0) else None
    index = (lambda x: ip.index(x)) if ip is not None else (lambda x: x)       # noqa: E731
    interp = ((lambda j, x, fp: ip.at(j, x, fp)) if ip is not None            # noqa: E731
              else (lambda j, x, fp: np.interp(x, mini, fp)))
    g_iso = dm = jm = None              # the primary's absolute G and the distance modulus, once
    if prefilter is not None:
        # G bounds: single-star G, a binary (q > 0) up to 0.753 mag brighter, 0.45 A0 <= A_G <= 1.1 A0 + 0.02
        a0_i = (d_interp or Interpolator(d_mid, bins=1 << 18)).interp(d, a0_mid)
        jm = index(mass)
        g_iso, dm = interp(jm, mass, g_abs), 5 * np.log10(d / 10)
        g_single = g_iso + dm
        g_bright = g_single + 0.45 * a0_i - np.where(q > 0, 0.76, 0.01)
        g_faint = g_single + 1.1 * a0_i + 0.02
        sel = np.flatnonzero(prefilter(1000.0 / d, g_bright, g_faint, pmra, pmdec, noise))
        d, mass, q, pmra, pmdec, rv, g_iso, dm, jm = (a[sel] for a in (d, mass, q, pmra, pmdec, rv, g_iso, dm,
                                                                        jm))
        u, noise = u[:, sel], noise[:, sel]
    if jm is None:
        jm = index(mass)
    logte = interp(jm, mass, iso["logTe"].to_numpy())
    mags = []
    qm = q * mass
    secondary = qm >= mini[0]
    jq = index(qm)
    for col in ("Gmag", "G_BPmag", "G_RPmag"):
        fp = iso[col].to_numpy()
        m1 = g_iso if col == "Gmag" and g_iso is not None else interp(jm, mass, fp)
        m2 = np.where(secondary, interp(jq, qm, fp), np.inf)
        mags.append(combine_magnitudes(m1, m2))
    a0 = los_a0(d, l0, b0, scale=a0_scale, anchor=a0_anchor)
    teff = 10 ** logte
    ag, abp, arp = gaia_extinction(teff, a0)
    if dm is None:
        dm = 5 * np.log10(d / 10)
    g, bp, rp = mags[0] + dm + ag, mags[1] + dm + abp, mags[2] + dm + arp
    sel = np.flatnonzero(g < g_limit + 0.6)
    if sel.size == 0:
        return None
    ra, dec = _radec(u[:, sel])
    return pd.DataFrame({
        "ra": ra, "dec": dec, "dist_pc": d[sel], "parallax": 1000.0 / d[sel],
        "pmra": pmra[sel], "pmdec": pmdec[sel], "rv": rv[sel], "g": g[sel], "bp": bp[sel], "rp": rp[sel],
        "teff": teff[sel], "mass": mass[sel], "q": q[sel], "log_age": pop.log_age, "mh": pop.mh,
        "population": pop.name, "a0": a0[sel],
        "noise_0": noise[0, sel], "noise_1": noise[1, sel], "noise_2": noise[2, sel]}, copy=False)


def _complete_empty() -> pd.DataFrame:
    cols = ["ra", "dec", "dist_pc", "parallax", "pmra", "pmdec", "rv", "g", "bp", "rp", "teff", "mass", "q",
            "log_age", "mh", "a0"]
    out = pd.DataFrame({c: np.zeros(0) for c in cols})
    out["population"] = pd.Series([], dtype=str)
    return out


# ---------------------------------------------------------------------------
def simulate_field(ra0: float, dec0: float, radius_deg: float, rng: np.random.Generator, *,
                   g_limit: float = 21.0, density: float = 0.14, binary_fraction: float = 0.3,
                   a0_scale: float = 1.0, a0_anchor: tuple[float, float] | None = None,
                   d_max_pc: float = 60000.0,
                   populations: tuple[Population, ...] = POPULATIONS,
                   prefilter: Callable[..., np.ndarray] | None = None,
                   chunk: int = 400_000,
                   on_chunk: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                   m_min_fn: Callable[[pd.DataFrame, np.ndarray, np.ndarray], np.ndarray] | None = None,
                   ) -> pd.DataFrame:
    """True properties of the field stars in a cone, brighter than about ``g_limit + 0.6``.

    Parameters
    ----------
    ra0, dec0, radius_deg : float
        The cone (deg).
    rng : Generator
    g_limit : float
        Faint limit of the survey (``[sim] g_limit``).
    density : float
        Stars formed per pc^3 in the midplane at the Sun (``[sim] field_density``).
    binary_fraction : float
    a0_scale : float
        Factor on the extinction curve of :func:`ocmembers.sim.extinction.los_a0`.
    a0_anchor : (float, float), optional
        ``(distance_pc, A0)`` the extinction curve passes through (a cluster).
    prefilter : callable, optional
        ``prefilter(parallax_true, g_bright, g_faint, pmra_true, pmdec_true,
        noise) -> mask``, called before the photometry with bounds
        ``g_bright <= G <= g_faint`` on each star's true apparent G and the
        standard-normal astrometric noise ``noise`` (3, n) its measurement
        will use (:func:`ocmembers.sim.errors.observe`); stars it rejects are
        never completed. It must be conservative (keep every star whose
        *measured* astrometry could pass the cone cuts).
    chunk : int
        Stars completed at a time (bounds the memory).
    on_chunk : callable, optional
        Applied to each completed batch (e.g. the measurement and the cone
        cuts); what it returns is concatenated instead, so that a wide cone
        never holds all its field stars at once.
    m_min_fn : callable, optional
        ``m_min_fn(isochrone, d_mid_pc, a0_mid) -> m_min`` replaces the faintest
        useful mass per distance bin that ``g_limit`` sets (the near-infrared
        cones of :mod:`ocmembers.sim.vvv` reach stars fainter than Gaia); the
        ``g_limit`` cut on completed stars still applies (pass ``inf`` for none).

    Returns
    -------
    DataFrame
        ``ra, dec, dist_pc, parallax, pmra, pmdec, rv, g, bp, rp, teff, mass,
        q, log_age, mh, population, a0`` (true, apparent magnitudes) and
        ``noise_0, noise_1, noise_2`` (the measurement's standard-normal noise).
    """
    l0, b0 = icrs_to_galactic(np.array([ra0]), np.array([dec0]))
    omega = 2 * np.pi * (1 - np.cos(np.deg2rad(radius_deg)))  # sr
    edges = np.geomspace(2.0, d_max_pc, 801)
    d_mid = np.sqrt(edges[1:] * edges[:-1])
    shell = omega * (edges[1:] ** 3 - edges[:-1] ** 3) / 3
    a0_mid = los_a0(d_mid, float(l0[0]), float(b0[0]), scale=a0_scale, anchor=a0_anchor)
    probe_ra, probe_dec = cone_directions(ra0, dec0, radius_deg, 48, rng)
    probe_ra = np.concatenate([[ra0], probe_ra])
    probe_dec = np.concatenate([[dec0], probe_dec])
    parts = []
    c_all = kroupa_cdf(np.array([0.08, 150.0]))
    d_interp = Interpolator(d_mid, bins=1 << 18)     # the distance bins, for every chunk
    for pop in populations:
        iso = model_isochrone(pop.log_age, pop.mh)
        mini = iso["Mini"].to_numpy()
        g_abs = iso["Gmag"].to_numpy()
        ms = (iso["label"].to_numpy() == 1)
        # faintest useful mass at each distance (MS, G decreasing with mass)
        if m_min_fn is None:
            g_lim_abs = g_limit + 0.6 - 5 * np.log10(d_mid / 10) - 0.6 * a0_mid
            m_min = np.interp(-g_lim_abs, -g_abs[ms], mini[ms], left=mini[0], right=np.inf)
        else:
            m_min = np.asarray(m_min_fn(iso, d_mid, a0_mid), dtype=float)
        m_max = float(mini[-1])
        ok = m_min < m_max
        frac = np.zeros(d_mid.size)
        frac[ok] = (kroupa_cdf(np.full(ok.sum(), m_max)) - kroupa_cdf(m_min[ok])) / (c_all[1] - c_all[0])
        # max density over the cone at each distance
        x, y, z = galactocentric(probe_ra[:, None], probe_dec[:, None], d_mid[None, :])
        rho = pop.density(np.hypot(x, y), z)
        rho_max = rho.max(axis=0) * 1.05
        lam = shell * density * pop.weight * rho_max * frac
        n_k = rng.poisson(lam)
        n = int(n_k.sum())
        if n == 0:
            continue
        k_all = np.repeat(np.arange(d_mid.size), n_k)
        for start in range(0, n, chunk):
            k = k_all[start:start + chunk]
            part = _complete(pop, k, edges, d_mid, a0_mid, m_min, m_max, iso, rng, ra0=ra0, dec0=dec0,
                             radius_deg=radius_deg, rho_max=rho_max, g_limit=g_limit,
                             binary_fraction=binary_fraction, l0=float(l0[0]), b0=float(b0[0]),
                             a0_scale=a0_scale, a0_anchor=a0_anchor, prefilter=prefilter,
                             d_interp=d_interp)
            if part is not None:
                parts.append(on_chunk(part) if on_chunk is not None else part)
    if on_chunk is not None and not parts:
        return on_chunk(_complete_empty())
    if not parts:
        return pd.DataFrame(columns=["ra", "dec", "dist_pc", "parallax", "pmra", "pmdec", "rv", "g", "bp", "rp",
                                     "teff", "mass", "q", "log_age", "mh", "population", "a0"])
    return pd.concat(parts, ignore_index=True)
