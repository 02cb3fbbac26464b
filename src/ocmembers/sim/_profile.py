"""Common machinery of the radial profiles (``king62.py``, ``plummer.py``)."""

from __future__ import annotations

import abc

import numpy as np
from scipy.optimize import brentq

__all__ = ["RadialProfile"]


class RadialProfile(abc.ABC):
    """A spherical star-count profile in units of its scale radius (dimensionless).

    Subclasses give the 3D cumulative number ``_n3d(r)`` and the projected
    cumulative number ``_n2d(R)``, both normalised to 1 at ``r_max``.
    """

    r_max: float = np.inf

    @abc.abstractmethod
    def n3d(self, r: np.ndarray) -> np.ndarray:
        """Fraction of stars within 3D radius ``r``."""

    @abc.abstractmethod
    def n2d(self, r: np.ndarray) -> np.ndarray:
        """Fraction of stars within projected radius ``R``."""

    def sample_r3d(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """3D radii by inverting ``n3d`` on a fine grid."""
        hi = self.r_max if np.isfinite(self.r_max) else 1e3
        grid = np.concatenate([[0.0], np.geomspace(1e-4, hi, 4000)])
        cdf = self.n3d(grid)
        cdf = np.maximum.accumulate(cdf / cdf[-1])
        return np.interp(rng.random(n), cdf, grid)

    def half_number_radius_2d(self) -> float:
        """Projected radius holding half the stars (the ``r50`` of CG20)."""
        hi = self.r_max if np.isfinite(self.r_max) else 1e3
        return float(brentq(lambda r: float(self.n2d(np.array([r]))[0]) - 0.5, 1e-6, hi))


def isotropic(r: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(n, 3)`` positions at radii ``r`` in random directions."""
    cost = rng.uniform(-1, 1, r.size)
    phi = rng.uniform(0, 2 * np.pi, r.size)
    sint = np.sqrt(1 - cost ** 2)
    return np.column_stack([r * sint * np.cos(phi), r * sint * np.sin(phi), r * cost])
