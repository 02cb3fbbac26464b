"""Data sources: the live archives, a local directory, or the simulated sky.

``get_source(cfg)`` returns the :class:`~ocmembers.sources.base.DataSource`
named by ``[source] name`` (the Make variable ``SOURCE``).
"""

from __future__ import annotations

from ..config import Config
from ..exceptions import ConfigError
from .base import DataSource

__all__ = ["DataSource", "get_source"]


def get_source(cfg: Config) -> DataSource:
    """The data source of ``cfg`` (imported lazily: ``sim`` needs no astroquery)."""
    name = cfg.source.name
    if name == "archive":
        from .archive import ArchiveSource
        return ArchiveSource(cfg)
    if name == "local":
        from .local import LocalSource
        return LocalSource(cfg)
    if name == "sim":
        from .sim import SimSource
        return SimSource(cfg)
    raise ConfigError(f"unknown data source {name!r}; use archive, local or sim")
