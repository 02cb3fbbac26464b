"""Other membership methods for comparison (issue 6).

- :mod:`.hdbscan_t22`: HDBSCAN on (parallax, pmra, pmdec), G < 18, as Tarricq et al. (2022).
- :mod:`.upmask`: UPMASK (Krone-Martins & Moitinho 2014).
- :mod:`.xdgmm`: extreme-deconvolution Gaussian mixtures (Bovy et al. 2011) with the
  entropy-based choice of the cluster component.
- :mod:`.penaramirez22`: the XDGMM + UPMASK pipeline of Peña Ramírez et al. (2022), Sect. 3,
  and their total-mass estimate (Sect. 4.2).
- :mod:`.compare`: runs all methods (and Deep Sets) on the same clusters.

Every method returns the common member table of :mod:`.base`.
"""

from .base import MEMBER_TABLE_COLUMNS, MethodError, member_table, members

__all__ = ["MEMBER_TABLE_COLUMNS", "MethodError", "member_table", "members"]
