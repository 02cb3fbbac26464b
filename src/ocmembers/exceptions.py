"""Typed errors of ocmembers; every message names the cluster, file or parameter."""

from __future__ import annotations

__all__ = [
    "OCMembersError", "ConfigError", "ArchiveError", "EmptyResponseError",
    "TableParseError", "MissingColumnsError", "EmptyConeError",
    "CacheCorruptedError", "UnknownClusterError", "TooFewMembersError",
    "IsochroneRangeError", "ModelMismatchError", "StageNotBuiltError",
]


class OCMembersError(Exception):
    """Base class of all errors raised by ocmembers."""


class ConfigError(OCMembersError, ValueError):
    """A configuration key or command-line parameter is invalid."""


class ArchiveError(OCMembersError):
    """A remote service (Gaia TAP, VizieR, CMD) failed after all retries."""


class EmptyResponseError(ArchiveError, ValueError):
    """A service answered, but with no rows."""


class TableParseError(OCMembersError, ValueError):
    """A file or a service reply could not be read as the expected table."""


class MissingColumnsError(TableParseError):
    """A table lacks columns the pipeline needs."""


class EmptyConeError(OCMembersError, ValueError):
    """A Gaia cone holds no usable sources."""


class CacheCorruptedError(OCMembersError):
    """A cached product does not match its manifest (truncated or altered)."""


class UnknownClusterError(OCMembersError, KeyError):
    """A cluster name is not in the catalogue."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TooFewMembersError(OCMembersError, ValueError):
    """A cluster has fewer training members than the method needs."""


class IsochroneRangeError(OCMembersError, ValueError):
    """An age or metallicity lies outside the available isochrone grid."""


class ModelMismatchError(OCMembersError, ValueError):
    """A saved model does not fit the feature set or configuration in use."""


class StageNotBuiltError(OCMembersError, NotImplementedError):
    """A pipeline stage that this version does not implement yet."""
