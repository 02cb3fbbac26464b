"""Access to the ``[methods]`` settings, with the packaged defaults as a fallback."""

from __future__ import annotations

from typing import Any

__all__ = ["methods_config"]


def methods_config(cfg: Any = None) -> Any:
    """``cfg.methods`` when present, else the defaults of :class:`ocmembers.config.MethodsConfig`."""
    from ..config import MethodsConfig, load_config

    if cfg is None:
        return load_config().methods
    mc = getattr(cfg, "methods", None)
    return mc if mc is not None else MethodsConfig()
