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
leading tail inside the orbit, the trailing tail outside. With ``[sim]
tail_orbits = "tide_only"`` the cluster's own gravity is neglected after
escape (which makes the drift somewhat too fast near the cluster, Küpper et
al. 2008); ``"cluster_gravity"`` adds it, the cluster as a Plummer sphere of
the present mass and projected half-mass radius ``r50``, integrated
numerically (:func:`hill_cluster_orbit`). Each escaped star starts with the
cluster's internal dispersion :math:`\sigma_v` as its velocity. The Oort
constants are those of Bovy (2017, MNRAS 468, L63): :math:`A = 15.3`,
:math:`B = -11.9` km/s/kpc; :math:`\nu = \sqrt{4\pi G\rho_0}` with
:math:`\rho_0 = 0.1\,M_\odot\,{\rm pc^{-3}}` (Holmberg & Flynn 2000).

Galactocentric radius
---------------------
``[sim] tidal_field = "galactocentric"`` (default): a cluster at
:math:`R_G \ne R_0` feels another tide and dissolves at another rate. On a
flat rotation curve :math:`\Omega, A, B \propto V/R_G` (the Oort constants
above scaled by :math:`R_0/R_G`, :func:`_freqs`), so :math:`r_J \propto
R_G^{2/3}`; and the dissolution time scales as :math:`R_G/V_G` (Baumgardt &
Makino 2003, MNRAS 340, 227, Eq. 10; equivalently
:math:`\rho_{amb}^{-1/2}`, Lamers, Gieles & Portegies Zwart 2005, A&A 429,
173), so :math:`t_0 = 3.3\,{\rm Myr}\,R_G/R_0` (:func:`dissolution_t0_myr`).
:math:`R_G` is the cluster's present radius in the plane; :math:`\nu` is kept
at its local value, and the orbit's eccentricity and height are left out.
``"solar"``: the Sun's values for every cluster (the sky of commit c90787d).
Positions and inertial velocities (rotating-frame velocity plus
:math:`\Omega\times r`) are rotated into ICRS with the cluster's position,
so tail stars carry coherent parallaxes and proper motions.

The stars escaped within the last :math:`\tau_{max}`, the time the drift
takes to carry a star ``[sim] tail_max_pc`` away, are simulated (older
escapers lie far outside any cone); their inner part, still near
:math:`r_J`, is the corona (Meingast, Alves & Rottensteiner 2021, A&A 645,
A84, who found such extended populations around nearby clusters).

Mass function of the escaped stars
----------------------------------
``[sim] escaper_mass_function = "present"`` (default): the stars lost in the
last :math:`\tau_{max}` (a few per cent of the age of a cluster older than a
few hundred Myr) left the present cluster, so their masses follow its
present-day mass function (Baumgardt & Makino 2003, MNRAS 340, 227: the
escapers are drawn from the cluster, preferentially its low-mass stars, which
is what flattens its mass function). The simulated bound cluster has the mass
function :math:`\phi(m)\,m^{\Delta(t)}` (Kroupa IMF, tilt
:math:`\Delta = \min(\Delta_{max}, k t)`,
:mod:`ocmembers.sim.cluster_model`), of :math:`N(t)` stars and mass
:math:`M(t) = N\langle m\rangle`. The rate at which stars of mass
:math:`m` leave it, :math:`E(m) = -\partial_t [N \phi m^{\Delta}/Z(\Delta)]`,
is then fixed by the Lamers et al. (2005) rate and the tilt's growth
:math:`\dot\Delta` (:func:`escape_weights`):

.. math::

    E(m) = N_b(m)\,[r_N - \dot\Delta(\ln m - \langle\ln m\rangle)],\qquad
    r_N = \frac{-\dot M}{M} + \dot\Delta\,
    \frac{\mathrm{Cov}(m_{sys}, \ln m)}{\langle m_{sys}\rangle},

(the second term of :math:`r_N` makes :math:`\int m_{sys} E = -\dot M`;
:math:`m_{sys}` counts the companion, the tilt acts on the primary),
clipped at zero; the present mass :math:`M` extends the simulated bound
stars below ``m_low`` with the same present-day mass function. The
distribution is that of today for all of :math:`\tau_{max}` (the tilt moves
by :math:`\dot\Delta\tau_{max} \lesssim 0.1` in that time).
``"imf"``: the Kroupa IMF without the tilt, and the present mass extended
with the IMF (the sky of commit 5131cb1).
"""

from __future__ import annotations

import numpy as np

from ocmembers.sim.galaxy import R0_PC

__all__ = ["OORT_A", "OORT_B", "NU_Z", "G_PC", "jacobi_radius_pc", "initial_mass", "escape_ages",
           "escape_weights", "galactocentric_radius_ratio", "dissolution_t0_myr",
           "hill_orbit", "hill_cluster_orbit", "jacobi_integral", "MAX_STEP_MYR", "hill_axes_galactic",
           "drift_speed_kms",
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


def _freqs(radius_ratio: float) -> tuple[float, float]:
    """Omega and A (km/s/pc) at ``radius_ratio`` = R_G / R0 on a flat rotation curve (both ~ V/R_G)."""
    return _omega() / 1e3 / radius_ratio, OORT_A / 1e3 / radius_ratio


def galactocentric_radius_ratio(x_gal_pc: np.ndarray) -> float:
    """R_G / R0 of a heliocentric Galactic position (pc, x towards the Galactic centre at ``R0_PC``)."""
    return float(np.hypot(x_gal_pc[0] - R0_PC, x_gal_pc[1]) / R0_PC)


def dissolution_t0_myr(t0_solar_myr: float, radius_ratio: float) -> float:
    r"""Lamers et al. (2005) :math:`t_0` at :math:`R_G = ` ``radius_ratio`` :math:`R_0`.

    Baumgardt & Makino (2003, MNRAS 340, 227, Eq. 10): the dissolution time
    scales as :math:`R_G/V_G` (:math:`\propto \rho_{amb}^{-1/2}`, Lamers,
    Gieles & Portegies Zwart 2005, A&A 429, 173), so on a flat rotation curve
    :math:`t_0 = t_{0,\odot}\,R_G/R_0`, with :math:`t_{0,\odot}` = 3.3 Myr
    the solar neighbourhood's (Lamers et al. 2005, A&A 441, 117).
    """
    if not radius_ratio > 0:
        raise ValueError(f"R_G / R0 must be positive, got {radius_ratio!r}")
    return float(t0_solar_myr * radius_ratio)


def jacobi_radius_pc(mass_msun: float, radius_ratio: float = 1.0) -> float:
    """Jacobi radius :math:`(G M / 4\\Omega A)^{1/3}` (pc) of a cluster of ``mass_msun`` (Küpper et al. 2008, Eq. 1),
    at ``radius_ratio`` = R_G / R0 (:func:`_freqs`)."""
    if not mass_msun > 0:
        raise ValueError(f"cluster mass must be positive, got {mass_msun!r}")
    om, a = _freqs(radius_ratio)  # km/s/pc
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


def escape_weights(m: np.ndarray, m_sys: np.ndarray, tilt_rate_per_myr: float,
                   mass_loss_rate_per_myr: float, at: np.ndarray | None = None) -> np.ndarray:
    r"""Escape rate per star (1/Myr) of bound stars of primary mass ``m`` and system mass ``m_sys``.

    ``m``, ``m_sys``: a sample of the present-day mass function (primaries and
    their systems); ``tilt_rate_per_myr``: :math:`\dot\Delta`;
    ``mass_loss_rate_per_myr``: :math:`-\dot M/M` (Lamers et al. 2005,
    :math:`M^{-\gamma}/t_0`). Returns :math:`r_N - \dot\Delta(\ln m -
    \langle\ln m\rangle)` clipped at 0 (module docstring, "Mass function of
    the escaped stars"): weighted by ``m_sys`` its mean is the mass-loss rate
    whenever the clip does not act; with :math:`\dot\Delta = 0` every star
    escapes at the same rate (escapers follow the present mass function).
    ``at``: primary masses to evaluate the rate at instead of ``m``.
    """
    m, m_sys = np.asarray(m, float), np.asarray(m_sys, float)
    if m.size == 0 or m.shape != m_sys.shape:
        raise ValueError("escape_weights needs a non-empty sample of masses and system masses of one shape")
    ln_m = np.log(m)
    mean_ln = float(ln_m.mean())
    r_n = mass_loss_rate_per_myr + tilt_rate_per_myr * float(np.mean(m_sys * (ln_m - mean_ln))) / float(np.mean(m_sys))
    dev = (ln_m if at is None else np.log(np.asarray(at, float))) - mean_ln
    return np.maximum(r_n - tilt_rate_per_myr * dev, 0.0)


def hill_orbit(x0: np.ndarray, v0: np.ndarray, tau_myr: np.ndarray,
               radius_ratio: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Positions (pc) and rotating-frame velocities (km/s) after ``tau_myr`` in Hill's equations.

    ``x0`` (3, n) pc and ``v0`` (3, n) km/s at release, axes (x out, y along
    rotation, z); the analytic solution of the module docstring's equations, with
    Omega and A at ``radius_ratio`` = R_G / R0 (:func:`_freqs`).
    """
    (om, a), nu = _freqs(radius_ratio), NU_Z / 1e3                # km/s/pc
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


#: Largest RK4 step (Myr) of :func:`hill_cluster_orbit`: a star crossing a Plummer core of 1 pc at
#: 3 km/s takes 0.3 Myr; the Jacobi integral is kept to ~1e-7 of its value (tested).
MAX_STEP_MYR = 0.05


def hill_cluster_orbit(x0: np.ndarray, v0: np.ndarray, tau_myr: np.ndarray, mass_msun: float,
                       plummer_a_pc: float, max_step_myr: float = MAX_STEP_MYR,
                       radius_ratio: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    r""":func:`hill_orbit` with the cluster's own gravity: Hill's equations plus a Plummer sphere.

    The escaped star then moves in the cluster's potential
    :math:`-GM/\sqrt{r^2+a^2}` (Plummer 1911) as well as the Galactic tide, as
    in the N-body models of Küpper, MacLeod & Heggie (2008, MNRAS 387, 1248)
    and Küpper, Lane & Heggie (2012, MNRAS 420, 2700), whose tails are
    better matched with the cluster's mass included: released at the
    Lagrange point (a saddle of the effective potential) with the internal
    dispersion, a star lingers near :math:`r_J`, or falls back inside it for
    a while (a potential escaper: Fukushige & Heggie 2000, MNRAS 318, 753;
    Baumgardt 2001, MNRAS 325, 1323), before it drifts into the tail. The
    rotating-frame equations

    .. math::

        \ddot{\mathbf r} = (2\Omega\dot y + 4\Omega A x,\; -2\Omega\dot x,\; -\nu^2 z)
        - \frac{GM\,\mathbf r}{(r^2+a^2)^{3/2}}

    conserve the Jacobi integral :math:`\tfrac12 v^2 - 2\Omega A x^2 +
    \tfrac12\nu^2 z^2 - GM/\sqrt{r^2+a^2}`. They are integrated with
    fourth-order Runge-Kutta, every star with its own step :math:`\tau/n`,
    :math:`n = \lceil\tau/\text{max\_step\_myr}\rceil` (the potential is
    static in the rotating frame, so each star needs only its own time since
    escape), all stars at once. ``mass_msun`` is the present mass (its change
    over :math:`\tau` is left out, as is the pull of the escaped stars). :math:`\Omega` and
    :math:`A` at ``radius_ratio`` = R_G / R0 (:func:`_freqs`).
    """
    (om, a), nu = _freqs(radius_ratio), NU_Z / 1e3                # km/s/pc
    gm, a2 = G_PC * float(mass_msun), float(plummer_a_pc) ** 2
    tau = np.asarray(tau_myr, float)
    p, v = np.array(x0, float), np.array(v0, float)
    n_steps = np.maximum(np.ceil(tau / max_step_myr).astype(int), 1)
    h_all = tau * PC_PER_MYR / n_steps                              # pc / (km/s)

    def acc(q: np.ndarray, w: np.ndarray) -> np.ndarray:
        f = gm / (q[0] ** 2 + q[1] ** 2 + q[2] ** 2 + a2) ** 1.5
        return np.array([2 * om * w[1] + 4 * om * a * q[0] - f * q[0], -2 * om * w[0] - f * q[1],
                         -nu ** 2 * q[2] - f * q[2]])

    order = np.argsort(-n_steps, kind="stable")                    # the longest first: active = a prefix
    p, v, h, n_sorted = p[:, order], v[:, order], h_all[order], n_steps[order]
    for k in range(int(n_sorted[0]) if n_sorted.size else 0):
        m = int(np.searchsorted(-n_sorted, -k, side="left"))        # stars with n_steps > k
        q, w, hh = p[:, :m], v[:, :m], h[:m]
        a1 = acc(q, w)
        a2_ = acc(q + 0.5 * hh * w, w + 0.5 * hh * a1)
        a3 = acc(q + 0.5 * hh * (w + 0.5 * hh * a1), w + 0.5 * hh * a2_)
        a4 = acc(q + hh * (w + 0.5 * hh * a2_), w + hh * a3)
        p[:, :m] = q + hh * w + hh ** 2 / 6 * (a1 + a2_ + a3)
        v[:, :m] = w + hh / 6 * (a1 + 2 * a2_ + 2 * a3 + a4)
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    return p[:, inv], v[:, inv]


def jacobi_integral(pos: np.ndarray, vel: np.ndarray, mass_msun: float, plummer_a_pc: float,
                    radius_ratio: float = 1.0) -> np.ndarray:
    """Jacobi integral ((km/s)^2) of :func:`hill_cluster_orbit` at rotating-frame ``pos`` (pc) and ``vel``."""
    (om, a), nu = _freqs(radius_ratio), NU_Z / 1e3
    r2 = np.sum(np.asarray(pos) ** 2, axis=0)
    return (0.5 * np.sum(np.asarray(vel) ** 2, axis=0) - 2 * om * a * pos[0] ** 2 + 0.5 * nu ** 2 * pos[2] ** 2
            - G_PC * mass_msun / np.sqrt(r2 + plummer_a_pc ** 2))


def drift_speed_kms(r_j_pc: float, radius_ratio: float = 1.0) -> float:
    """Drift speed :math:`2A|x_g|` (km/s) along the orbit of a star released at rest at ``r_j_pc``."""
    om, a = _freqs(radius_ratio)
    return float(2 * a * r_j_pc * om / (om - a))


def inertial_velocity(pos_pc: np.ndarray, vel_rot: np.ndarray, radius_ratio: float = 1.0) -> np.ndarray:
    """Velocity relative to the cluster in a non-rotating frame: :math:`v + \\Omega\\hat z\\times r` (km/s)."""
    om = _freqs(radius_ratio)[0]
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
