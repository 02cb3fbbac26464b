r"""Unresolved binaries.

A fraction ``f_b`` of the stars (``[sim] binary_fraction``) has a companion
of mass :math:`q M_1` with :math:`q` uniform in :math:`[q_{min}, 1]` (the flat
mass-ratio distribution of solar-type binaries, Raghavan et al. 2010; Moe &
Di Stefano 2017 for :math:`q > 0.1`). The companion's light is added in each
band,

.. math:: m = -2.5 \log_{10}\left(10^{-0.4 m_1} + 10^{-0.4 m_2}\right),

so that binaries lie up to 0.75 mag above the single-star sequence. Companions
below the isochrone's lowest mass add no light.

References
----------
Raghavan, D., et al. 2010, ApJS 190, 1.
Moe, M., Di Stefano, R. 2017, ApJS 230, 15.
"""

from __future__ import annotations

import numpy as np

__all__ = ["draw_mass_ratios", "combine_magnitudes"]


def draw_mass_ratios(n: int, fraction: float, rng: np.random.Generator, q_min: float = 0.1) -> np.ndarray:
    """Mass ratio of each of ``n`` stars: 0 for singles, uniform in ``[q_min, 1]`` for binaries."""
    is_bin = rng.random(n) < fraction
    q = rng.uniform(q_min, 1.0, n)
    return np.where(is_bin, q, 0.0)


def combine_magnitudes(m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """Magnitude of two unresolved stars (``m2 = NaN`` or ``inf``: no light)."""
    f2 = np.where(np.isfinite(m2), 10 ** (-0.4 * np.where(np.isfinite(m2), m2, 99.0)), 0.0)
    return -2.5 * np.log10(10 ** (-0.4 * m1) + f2)
