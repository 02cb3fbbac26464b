r"""The Kroupa (2001) initial mass function.

.. math::

    \xi(m) \propto m^{-\alpha_i}, \quad
    \alpha = 0.3\ (0.01 \le m/M_\odot < 0.08),\
    1.3\ (0.08 \le m < 0.5),\ 2.3\ (m \ge 0.5),

continuous at the break masses (Kroupa 2001, MNRAS 322, 231, Eq. 2).
Sampling inverts the cumulative distribution of the piecewise power law
analytically, restricted to any mass interval ``[m_lo, m_hi]``.

References
----------
Kroupa, P. 2001, MNRAS 322, 231.
"""

from __future__ import annotations

import numpy as np

from ocmembers.exceptions import ConfigError
from ocmembers.sim._numeric import clip

__all__ = ["KROUPA_BREAKS", "KROUPA_SLOPES", "kroupa_pdf", "kroupa_cdf", "sample_kroupa", "kroupa_fraction"]

#: Break masses (Msun) and the slopes alpha of each segment (Kroupa 2001, Eq. 2).
KROUPA_BREAKS: tuple[float, ...] = (0.01, 0.08, 0.5, 150.0)
KROUPA_SLOPES: tuple[float, ...] = (0.3, 1.3, 2.3)


def _segments() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Break masses, slopes and the continuity constants k_i of each segment."""
    b = np.asarray(KROUPA_BREAKS)
    a = np.asarray(KROUPA_SLOPES)
    k = np.ones(a.size)
    for i in range(1, a.size):  # continuity at b[i]
        k[i] = k[i - 1] * b[i] ** (a[i] - a[i - 1])
    return b, a, k


def _seg_integral(lo: np.ndarray, hi: np.ndarray, a: float, k: float) -> np.ndarray:
    if abs(a - 1) < 1e-12:
        return k * np.log(hi / lo)
    return k * (hi ** (1 - a) - lo ** (1 - a)) / (1 - a)


def kroupa_pdf(m: np.ndarray) -> np.ndarray:
    """Unnormalised :math:`\\xi(m)` (zero outside 0.01-150 Msun)."""
    b, a, k = _segments()
    m = np.asarray(m, dtype=float)
    i = clip(np.searchsorted(b, m, side="right") - 1, 0, a.size - 1)
    out = k[i] * m ** (-a[i])
    return np.where((m >= b[0]) & (m <= b[-1]), out, 0.0)


def kroupa_cdf(m: np.ndarray) -> np.ndarray:
    """Unnormalised cumulative number :math:`\\int_{0.01}^{m} \\xi\\,dm`."""
    b, a, k = _segments()
    m = clip(np.asarray(m, dtype=float), b[0], b[-1])
    out = np.zeros_like(m)
    for i in range(a.size):
        lo = np.full_like(m, b[i])
        hi = clip(m, b[i], b[i + 1])
        out += _seg_integral(lo, hi, a[i], k[i])
    return out


def kroupa_fraction(m_lo: float, m_hi: float, within: tuple[float, float]) -> float:
    """Fraction of the stars of ``within`` (a mass interval) that lie in ``[m_lo, m_hi]``."""
    c = kroupa_cdf(np.array([m_lo, m_hi, within[0], within[1]]))
    return float(max(c[1] - c[0], 0.0) / (c[3] - c[2]))


def sample_kroupa(n: int, rng: np.random.Generator, m_lo: float | np.ndarray = 0.08,
                  m_hi: float | np.ndarray = 150.0) -> np.ndarray:
    """Draw ``n`` masses (Msun) from the Kroupa IMF restricted to ``[m_lo, m_hi]``.

    Inverse-transform sampling: a uniform deviate in the cumulative number is
    mapped back through the analytic inverse of the segment it falls in.
    ``m_lo`` and ``m_hi`` may be arrays of length ``n`` (one interval per star).
    """
    b, a, k = _segments()
    m_lo = np.broadcast_to(np.asarray(m_lo, dtype=float), (n,))
    m_hi = np.broadcast_to(np.asarray(m_hi, dtype=float), (n,))
    if n and not (np.all(b[0] <= m_lo) and np.all(m_lo < m_hi) and np.all(m_hi <= b[-1])):
        raise ConfigError(f"IMF mass range [{m_lo.min()}, {m_hi.max()}] outside {b[0]}-{b[-1]} Msun "
                          "or empty")
    c_lo, c_hi = kroupa_cdf(m_lo), kroupa_cdf(m_hi)
    u = c_lo + rng.random(n) * (c_hi - c_lo)
    cb = kroupa_cdf(b)  # cumulative at the breaks
    i = clip(np.searchsorted(cb, u, side="right") - 1, 0, a.size - 1)
    rem = u - cb[i]
    ai, ki, bi = a[i], k[i], b[i]
    lin = np.abs(ai - 1) < 1e-12
    with np.errstate(invalid="ignore", divide="ignore"):
        pw = (bi ** (1 - ai) + rem * (1 - ai) / ki) ** (1 / np.where(lin, 1.0, 1 - ai))
    m = np.where(lin, bi * np.exp(rem / ki), pw)
    return clip(m, m_lo, m_hi)
