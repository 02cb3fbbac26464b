r"""Escaped stars of a simulated cluster: its corona and tidal tails (``[sim] structure = "corona_tails"``).

The bound cluster (King/Plummer core plus halo, :mod:`ocmembers.sim.cluster_model`)
is what is left of a more massive cluster that has been losing stars over
its age :math:`t`. This module adds the stars it has lost, where they are now.

Escape rate
-----------
Lamers et al. (2005, A&A 441, 117, Eq. 6 and Sect. 5) describe the loss of
mass by dissolution in the solar neighbourhood as
:math:`dM/dt = -M^{1-\gamma}/t_0`, :math:`\gamma = 0.62` (Baumgardt &
Makino 2003), :math:`t_0 = 3.3` Myr (``[sim] dissolution_t0_myr``,
``dissolution_gamma``). Integrated: :math:`M(t')^{\gamma} = M_i^{\gamma} -
\gamma t'/t_0`, so a cluster of present mass :math:`M` and age :math:`t`
started with :math:`M_i = (M^{\gamma} + \gamma t/t_0)^{1/\gamma}` and lost
:math:`M_i - M`; stellar-evolution mass loss is left out. The mass lost
during the last :math:`\tau` is :math:`M(t-\tau) - M`, and the time since
escape of each escaped star follows by inverting it (:func:`escape_ages`).
The present mass :math:`M` is that of the simulated bound stars (primaries
and companions) extended down to :math:`0.08\,M_\odot` with the Kroupa IMF.

Orbits of the escaped stars
---------------------------
Stars leave through the Lagrange points at the Jacobi radius
:math:`r_J = (G M / 4\Omega A)^{1/3}` (King 1962; Küpper et al. 2008,
MNRAS 387, 1248, Eq. 1 with the Oort constants), and then move in the
epicyclic approximation of the Galactic tidal field (Hill's equations,
Küpper et al. 2008 Sect. 2; Jerabkova et al. 2021, A&A 647, A137): in the
rotating frame :math:`x` radially outwards, :math:`y` along the rotation,
:math:`z` completing a right-handed set,

.. math::

    \ddot x - 2\Omega\dot y - 4\Omega A x = 0,\quad
    \ddot y + 2\Omega\dot x = 0,\quad \ddot z + \nu^2 z = 0,

solved analytically (:func:`hill_orbit`): a star released at
:math:`x_0 = \pm r_J` at rest drifts along :math:`y` at
:math:`-2A x_g`, with guiding centre :math:`x_g = x_0\Omega/(\Omega-A)`,
and makes epicycles of frequency :math:`\kappa = \sqrt{-4B\Omega}`: the
leading tail inside the orbit, the trailing tail outside. The cluster's own
gravity is neglected after escape (which makes the drift somewhat too fast
near the cluster, Küpper et al. 2008). Each escaped star starts with the
cluster's internal dispersion :math:`\sigma_v` as its velocity. The Oort
constants are those of Bovy (2017, MNRAS 468, L63): :math:`A = 15.3`,
:math:`B = -11.9` km/s/kpc; :math:`\nu = \sqrt{4\pi G\rho_0}` with
:math:`\rho_0 = 0.1\,M_\odot\,{\rm pc^{-3}}` (Holmberg & Flynn 2000).
Positions and inertial velocities (rotating-frame velocity plus
:math:`\Omega\times r`) are rotated into ICRS with the cluster's position,
so tail stars carry coherent parallaxes and proper motions.

The stars escaped within the last :math:`\tau_{max}`, the time the drift
takes to carry a star ``[sim] tail_max_pc`` away, are simulated (older
escapers lie far outside any cone); their inner part, still near
:math:`r_J`, is the corona (Meingast, Alves & Rottensteiner 2021, A&A 645,
A84, who found such extended populations around nearby clusters).
Their masses follow the Kroupa IMF without the present-day tilt of the
bound stars (the low-mass stars the bound cluster lacks are those it lost).
"""

from __future__ import annotations

import numpy as np

from ocmembers.sim.galaxy import R0_PC

__all__ = ["OORT_A", "OORT_B", "NU_Z", "G_PC", "jacobi_radius_pc", "initial_mass", "escape_ages",
           "hill_orbit", "hill_axes_galactic", "drift_speed_kms",
           "inertial_velocity", "N_PILOT_IMF", "PC_PER_MYR"]

#: Oort constants (km/s/kpc), Bovy (2017, MNRAS 468, L63).
OORT_A, OORT_B = 15.3, -11.9
#: Gravitational constant in pc (km/s)^2 / Msun.
G_PC = 4.30091e-3
#: Local mid-plane density (Msun / pc^3; Holmberg & Flynn 2000, MNRAS 313, 209).
RHO_0 = 0.1
#: Vertical frequency (km/s/kpc): sqrt(4 pi G rho_0).
NU_Z = float(np.sqrt(4 * np.pi * G_PC * RHO_0) * 1e3)
#: pc per Myr in one km/s.
PC_PER_MYR = 1.0227121650537077
#: IMF draws (0.08 Msun to the heaviest star) that extend the bound mass to the whole IMF.
N_PILOT_IMF = 20_000


def _omega() -> float:
    return OORT_A - OORT_B


def jacobi_radius_pc(mass_msun: float) -> float:
    """Jacobi radius :math:`(G M / 4\\Omega A)^{1/3}` (pc) of a cluster of ``mass_msun`` (Küpper et al. 2008, Eq. 1)."""
    if not mass_msun > 0:
        raise ValueError(f"cluster mass must be positive, got {mass_msun!r}")
    om, a = _omega() / 1e3, OORT_A / 1e3  # km/s/pc
    return float((G_PC * mass_msun / (4 * om * a)) ** (1 / 3))


def initial_mass(mass_msun: float, age_myr: float, t0_myr: float, gamma: float) -> float:
    """Initial mass :math:`(M^{\\gamma} + \\gamma t/t_0)^{1/\\gamma}` (Lamers et al. 2005, Eq. 6 integrated)."""
    return float((mass_msun ** gamma + gamma * age_myr / t0_myr) ** (1 / gamma))


def escape_ages(mass_msun: float, age_myr: float, t0_myr: float, gamma: float, tau_max_myr: float,
                u: np.ndarray) -> tuple[np.ndarray, float]:
    """Times since escape (Myr) of the mass lost in the last ``tau_max_myr``.

    Returns the times for uniform deviates ``u`` (inverse transform of the
    lost mass, :math:`M(t-\\tau) - M`) and that lost mass (Msun).
    """
    tau_max = min(tau_max_myr, age_myr)
    mi_g = mass_msun ** gamma + gamma * age_myr / t0_myr
    m_then = (mi_g - gamma * (age_myr - tau_max) / t0_myr) ** (1 / gamma)
    lost = m_then - mass_msun
    m_at = m_then - np.asarray(u) * lost          # mass when the star escaped
    t_esc = t0_myr * (mi_g - m_at ** gamma) / gamma
    return np.clip(age_myr - t_esc, 0.0, tau_max), float(lost)


def hill_orbit(x0: np.ndarray, v0: np.ndarray, tau_myr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (pc) and rotating-frame velocities (km/s) after ``tau_myr`` in Hill's equations.

    ``x0`` (3, n) pc and ``v0`` (3, n) km/s at release, axes (x out, y along
    rotation, z); the analytic solution of the module docstring's equations.
    """
    om, a, nu = _omega() / 1e3, OORT_A / 1e3, NU_Z / 1e3          # km/s/pc
    kap = np.sqrt(4 * om * (om - a))
    t = np.asarray(tau_myr) * PC_PER_MYR                           # pc / (km/s)
    x0, v0 = np.asarray(x0, float), np.asarray(v0, float)
    c = v0[1] + 2 * om * x0[0]                                      # conserved ydot + 2 Omega x
    xg = 2 * om * c / kap ** 2
    ck, sk = np.cos(kap * t), np.sin(kap * t)
    x = xg + (x0[0] - xg) * ck + v0[0] / kap * sk
    y = x0[1] + (c - 2 * om * xg) * t - 2 * om / kap * (x0[0] - xg) * sk + 2 * om * v0[0] / kap ** 2 * (ck - 1)
    z = x0[2] * np.cos(nu * t) + v0[2] / nu * np.sin(nu * t)
    vx = -kap * (x0[0] - xg) * sk + v0[0] * ck
    vy = c - 2 * om * x
    vz = -nu * x0[2] * np.sin(nu * t) + v0[2] * np.cos(nu * t)
    return np.array([x, y, z]), np.array([vx, vy, vz])


def drift_speed_kms(r_j_pc: float) -> float:
    """Drift speed :math:`2A|x_g|` (km/s) along the orbit of a star released at rest at ``r_j_pc``."""
    om, a = _omega() / 1e3, OORT_A / 1e3
    return float(2 * a * r_j_pc * om / (om - a))


def inertial_velocity(pos_pc: np.ndarray, vel_rot: np.ndarray) -> np.ndarray:
    """Velocity relative to the cluster in a non-rotating frame: :math:`v + \\Omega\\hat z\\times r` (km/s)."""
    om = _omega() / 1e3
    return np.array([vel_rot[0] - om * pos_pc[1], vel_rot[1] + om * pos_pc[0], vel_rot[2]])


def hill_axes_galactic(x_gal_pc: np.ndarray) -> np.ndarray:
    """Rows: Hill's x, y, z unit vectors in heliocentric Galactic Cartesian axes.

    ``x_gal_pc``: the cluster's heliocentric Galactic position (pc, x towards
    the Galactic centre at ``R0_PC``). x is radially outwards in the plane, y
    along the rotation (+y Galactic at the Sun), z = x cross y (towards the
    south Galactic pole, as the disc rotates clockwise seen from the north).
    """
    r = np.array([x_gal_pc[0] - R0_PC, x_gal_pc[1], 0.0])
    ex = r / np.linalg.norm(r)
    ey = np.array([ex[1], -ex[0], 0.0])
    return np.array([ex, ey, np.cross(ex, ey)])
