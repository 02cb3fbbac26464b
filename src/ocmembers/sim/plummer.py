r"""The Plummer (1911) profile.

With scale radius :math:`a` (here 1):

.. math::

    N(<r) = \frac{r^3}{(r^2+a^2)^{3/2}}, \qquad N(<R) = \frac{R^2}{R^2 + a^2},

so the projected half-number radius equals :math:`a`. Also used for the
extended halo of the simulated clusters.

References
----------
Plummer, H. C. 1911, MNRAS 71, 460.
"""

from __future__ import annotations

import numpy as np

from ocmembers.sim._profile import RadialProfile

__all__ = ["Plummer"]


class Plummer(RadialProfile):
    """Plummer sphere with unit scale radius, truncated at ``r_max`` (in units of ``a``)."""

    def __init__(self, r_max: float = 100.0) -> None:
        self.r_max = float(r_max)
        self._n3max = self.r_max ** 3 / (self.r_max ** 2 + 1) ** 1.5

    def n3d(self, r: np.ndarray) -> np.ndarray:
        r = np.clip(np.asarray(r, dtype=float), 0, self.r_max)
        return r ** 3 / (r ** 2 + 1) ** 1.5 / self._n3max

    def n2d(self, r: np.ndarray) -> np.ndarray:
        # projected fraction of a truncated sphere: numerically from the 3D law
        r = np.asarray(r, dtype=float)
        big = self.r_max
        # for r_max >> 1 the truncation is negligible: analytic untruncated law
        return np.clip(r ** 2 / (r ** 2 + 1) / (big ** 2 / (big ** 2 + 1)), 0, 1)
