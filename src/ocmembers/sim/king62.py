r"""The King (1962) profile.

Projected surface density (King 1962, AJ 67, 471, Eq. 14), with
:math:`x = (R/r_c)^2`, :math:`x_t = (r_t/r_c)^2`:

.. math::

    f(R) = k \left[\frac{1}{\sqrt{1+x}} - \frac{1}{\sqrt{1+x_t}}\right]^2,

its integral, the number within :math:`R` (King 1962, Eq. 18):

.. math::

    n(x) = \pi r_c^2 k \left[\ln(1+x) - \frac{4(\sqrt{1+x}-1)}{\sqrt{1+x_t}}
           + \frac{x}{1+x_t}\right],

and the space density it deprojects to (King 1962, Eq. 27), with
:math:`z = \sqrt{(1+r^2/r_c^2)/(1+x_t)}`:

.. math::

    \rho(r) \propto \frac{1}{z^2}\left[\frac{\arccos z}{z} - \sqrt{1-z^2}\right].

Radii are in units of the core radius :math:`r_c`.

References
----------
King, I. 1962, AJ 67, 471.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import cumulative_trapezoid

from ocmembers.exceptions import ConfigError
from ocmembers.sim._profile import RadialProfile

__all__ = ["King62"]


class King62(RadialProfile):
    """King (1962) profile of concentration ``rt_over_rc`` (radii in units of ``r_c``)."""

    def __init__(self, rt_over_rc: float = 10.0) -> None:
        if not np.isfinite(rt_over_rc) or rt_over_rc <= 1:
            raise ConfigError(f"King profile: tidal/core radius ratio must exceed 1, got {rt_over_rc}")
        self.r_max = float(rt_over_rc)
        self._xt = self.r_max ** 2
        grid = np.concatenate([[0.0], np.geomspace(1e-5, self.r_max, 3000)])
        rho = self.density(grid)
        cum = cumulative_trapezoid(grid ** 2 * rho, grid, initial=0.0)
        self._grid, self._cum = grid, cum / cum[-1]

    def density(self, r: np.ndarray) -> np.ndarray:
        """Unnormalised space density (Eq. 27), zero beyond ``r_t``."""
        r = np.asarray(r, dtype=float)
        z = np.sqrt((1 + r ** 2) / (1 + self._xt))
        zc = np.clip(z, 1e-12, 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = (np.arccos(zc) / zc - np.sqrt(1 - zc ** 2)) / zc ** 2
        return np.where(z < 1, rho, 0.0)

    def _n(self, x: np.ndarray) -> np.ndarray:
        st = np.sqrt(1 + self._xt)
        return np.log1p(x) - 4 * (np.sqrt(1 + x) - 1) / st + x / (1 + self._xt)

    def n2d(self, r: np.ndarray) -> np.ndarray:
        x = np.clip(np.asarray(r, dtype=float), 0, self.r_max) ** 2
        return self._n(x) / self._n(np.array(self._xt))

    def n3d(self, r: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(r, dtype=float), self._grid, self._cum)
