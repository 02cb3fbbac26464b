"""Data sources: the live archives, a local directory, a HATS catalogue, or the simulated sky.

``get_source(cfg)`` returns the :class:`~ocmembers.sources.base.DataSource`
named by ``[source] name`` (the Make variable ``SOURCE``). The sources are
found by name in :data:`SOURCES` and imported when first used (``sim`` needs
no astroquery). The simulated sky is a source like the others, but it lives
in :mod:`ocmembers.sim` (a layer above this one, since it builds on the
readers here): it is a plug-in of this interface, not a dependency of it.
"""

from __future__ import annotations

import importlib

from ocmembers.config import Config
from ocmembers.exceptions import ConfigError
from ocmembers.sources.base import DataSource

__all__ = ["DataSource", "SOURCES", "get_source"]

#: ``[source] name`` -> ``module:class`` of its :class:`DataSource`
SOURCES: dict[str, str] = {
    "archive": "ocmembers.sources.archive:ArchiveSource",
    "local": "ocmembers.sources.local:LocalSource",
    "hats": "ocmembers.sources.hats:HatsSource",
    "sim": "ocmembers.sim.source:SimSource",
}


def get_source(cfg: Config) -> DataSource:
    """The data source of ``cfg`` (``[source] name``: one of :data:`SOURCES`)."""
    name = cfg.source.name
    if name not in SOURCES:
        raise ConfigError(f"unknown data source {name!r}; use {', '.join(SOURCES)}")
    module, cls = SOURCES[name].split(":")
    return getattr(importlib.import_module(module), cls)(cfg)
