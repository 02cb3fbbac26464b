"""Common names of open clusters, and the key by which names are compared.

Catalogues spell a cluster in several ways (``NGC_2682``, ``NGC 2682``,
``ngc2682``) and astronomers use common names that no Gaia-era catalogue
lists as the main name (``Pleiades``, ``M67``, ``Praesepe``). A name given by
a user is resolved, in order (:func:`ocmembers.method.columns.cluster_row`):

1. the catalogue's own name, compared by :func:`name_key` (case, spaces and
   underscores ignored);
2. the alternative names of the catalogue row (Hunt & Reffert 2023/2024
   ``AllNames``: ``Pleiades`` and ``M45`` for ``Melotte_22``);
3. the alternative names of a second catalogue, when the first has none (a
   CG20 name found through the Hunt & Reffert aliases);
4. :data:`COMMON_NAMES`: the open clusters of Messier's catalogue and the
   naked-eye clusters by their traditional names.

References
----------
Messier, C. 1781, Connaissance des Temps pour 1784, 227; the NGC/IC identities
of the Messier open clusters as in SIMBAD and the SEDS Messier database.
Hunt, E. L. & Reffert, S. 2023, A&A 673, A114; 2024, A&A 686, A42.
"""

from __future__ import annotations

import re

__all__ = ["COMMON_NAMES", "name_key"]

#: Messier open clusters and traditional names -> the catalogue name (CG20 spelling).
COMMON_NAMES: dict[str, str] = {
    "M6": "NGC_6405", "M7": "NGC_6475", "M11": "NGC_6705", "M16": "NGC_6611", "M18": "NGC_6613",
    "M21": "NGC_6531", "M23": "NGC_6494", "M25": "IC_4725", "M26": "NGC_6694", "M29": "NGC_6913",
    "M34": "NGC_1039", "M35": "NGC_2168", "M36": "NGC_1960", "M37": "NGC_2099", "M38": "NGC_1912",
    "M39": "NGC_7092", "M41": "NGC_2287", "M44": "NGC_2632", "M45": "Melotte_22", "M46": "NGC_2437",
    "M47": "NGC_2422", "M48": "NGC_2548", "M50": "NGC_2323", "M52": "NGC_7654", "M67": "NGC_2682",
    "M93": "NGC_2447", "M103": "NGC_581",
    "Pleiades": "Melotte_22", "Hyades": "Melotte_25", "Praesepe": "NGC_2632", "Beehive": "NGC_2632",
    "Alpha Persei": "Melotte_20", "Alpha Per": "Melotte_20", "Coma Berenices": "Melotte_111",
    "Coma Star Cluster": "Melotte_111", "h Persei": "NGC_869", "chi Persei": "NGC_884",
    "Wild Duck": "NGC_6705", "Butterfly": "NGC_6405", "Ptolemy's Cluster": "NGC_6475",
    "Jewel Box": "NGC_4755", "Wishing Well": "NGC_3532", "Christmas Tree": "NGC_2264",
    "Southern Pleiades": "IC_2602",
}

_SEPARATORS = re.compile(r"[\s_]+")


def name_key(name: str) -> str:
    """The comparison key of a cluster name: lower case, without spaces or underscores
    (``"NGC 2682"``, ``"NGC_2682"`` and ``"ngc2682"`` are one cluster; ``"M 67"`` is ``"M67"``)."""
    return _SEPARATORS.sub("", str(name)).lower()


#: :data:`COMMON_NAMES` by :func:`name_key`.
COMMON_KEYS: dict[str, str] = {name_key(k): v for k, v in COMMON_NAMES.items()}
