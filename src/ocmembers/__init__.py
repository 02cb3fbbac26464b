"""ocmembers: open-cluster membership in Gaia DR3 with Deep Sets.

An implementation of van Groeningen et al. (2023, A&A 675, A68) as a tool,
and the pipeline that reproduces that paper end to end.

The public API is re-exported here and imported on first use, so that
``import ocmembers`` (and ``ocmembers --help``) loads neither torch nor pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

from ocmembers._version import __version__
from ocmembers.config import Config, load_config

#: public name -> module that defines it
_LAZY: dict[str, str] = {
    "members": "ocmembers.api",
    "members_from_cone": "ocmembers.api",
    "DeepSetsClassifier": "ocmembers.method.classifier",
    "read_cone_file": "ocmembers.sources.cone_file",
    "load_classifier": "ocmembers.sources.models",
    "save_classifier": "ocmembers.sources.models",
}

__all__ = ["__version__", "Config", "load_config", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ocmembers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
