r"""The bulge/bar population added to the field of the simulated near-infrared (VVV) cones.

The Gaia field model (:mod:`ocmembers.sim.galaxy`) is a disc + halo; the VVV
clusters of Peña Ramírez et al. (2022) lie at :math:`|b| < 2` deg towards the
inner Galaxy, some within 10 deg of the Galactic centre, where the bulge
dominates the counts. Its density (stars formed per pc^3) is the Gaussian
"G2" bar of Dwek et al. (1995), made axisymmetric here (the field model's
densities take cylindrical :math:`R, z`):

.. math::  \rho_b = \rho_{b,0} \exp(-r_s^2/2),\quad
           r_s^2 = (R/R_b)^2 + (z/z_b)^2,

:math:`R_b = \sqrt{x_0 y_0} = 0.82` kpc and :math:`z_b = z_0 = 0.42` kpc from
Dwek's :math:`x_0, y_0, z_0 = 1.59, 0.42, 0.42` kpc; :math:`\rho_{b,0}` from a
stellar mass of :math:`1.8\times10^{10}\,M_\odot` (Portail et al. 2015, bar and
bulge) at 0.4 Msun of present-day mass per star formed (Kroupa IMF, 10 Gyr):
:math:`4.5\times10^{10}/((2\pi)^{3/2} R_b^2 z_b) \approx 10` pc^-3, i.e.
:data:`BULGE_WEIGHT` times the field model's 0.14 pc^-3 disc normalisation.
Old (10 Gyr), solar metallicity (Zoccali et al. 2008 find a peak near
[Fe/H] = 0), velocity dispersion 110 km/s, mean rotation 50 km/s (Kunder et
al. 2012, BRAVA).

.. warning:: No bar angle, no nuclear disc, no long bar: the counts of the
   fields within a few degrees of the centre are right only to a factor of order 2.

References
----------
Dwek, E., et al. 1995, ApJ 445, 716.
Portail, M., Wegg, C., Gerhard, O. 2015, MNRAS 448, 713.
Zoccali, M., et al. 2008, A&A 486, 177.
Kunder, A., et al. 2012, AJ 143, 57.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ocmembers.sim.galaxy import POPULATIONS, V_CIRC, Population

__all__ = ["BulgePopulation", "BULGE", "NIR_POPULATIONS", "BULGE_R_PC", "BULGE_Z_PC", "BULGE_WEIGHT"]

BULGE_R_PC = 820.0
BULGE_Z_PC = 420.0
#: Central bulge density over the field model's local disc density (10 / 0.14 pc^-3 at the
#: default [sim] field_density; module docstring).
BULGE_WEIGHT = 71.0


@dataclass(frozen=True)
class BulgePopulation(Population):
    """A population with the axisymmetric Gaussian bulge density (module docstring)."""

    def density(self, r_pc: np.ndarray, z_pc: np.ndarray) -> np.ndarray:
        rs2 = (np.asarray(r_pc) / BULGE_R_PC) ** 2 + (np.asarray(z_pc) / BULGE_Z_PC) ** 2
        return np.exp(-0.5 * rs2)


BULGE = BulgePopulation("bulge", 10.0, 0.0, BULGE_WEIGHT, BULGE_R_PC, BULGE_Z_PC, (110.0, 110.0, 110.0),
                        V_CIRC - 50.0)

#: The field of the near-infrared cones: the Gaia field's populations and the bulge.
NIR_POPULATIONS: tuple[Population, ...] = POPULATIONS + (BULGE,)
