"""The simulated sky: a mock Gaia DR3 with ground truth (``SOURCE=sim``).

Modules, one topic each:

* :mod:`~ocmembers.sim.isochrones` - PARSEC when available, else a model of our own;
* :mod:`~ocmembers.sim.imf` - Kroupa (2001) IMF;
* :mod:`~ocmembers.sim.king62`, :mod:`~ocmembers.sim.plummer` - radial profiles;
* :mod:`~ocmembers.sim.binaries` - unresolved binaries;
* :mod:`~ocmembers.sim.extinction` - Gaia-band extinction, dust along the line of sight;
* :mod:`~ocmembers.sim.galaxy` - the field (thin/thick disc, halo);
* :mod:`~ocmembers.sim.errors` - the Gaia DR3 measurement model;
* :mod:`~ocmembers.sim.cluster` - one cone: cluster + field + measurement + cuts;
* :mod:`~ocmembers.sim.catalogues` - CG20-like and T22-like member lists;
* :mod:`~ocmembers.sim.truth` - the truth table.

The data source is :class:`ocmembers.sim.source.SimSource`.
"""

from ocmembers.sim.cluster import TRUTH_COLUMNS, SimulatedCone, simulate_cone

__all__ = ["SimulatedCone", "simulate_cone", "TRUTH_COLUMNS"]
