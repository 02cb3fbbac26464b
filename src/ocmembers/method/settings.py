"""Settings of the other membership methods (the ``[methods]`` table of the configuration).

The defaults live here, beside the methods, so that a method called without a
configuration runs with them; :mod:`ocmembers.config` reads the ``[methods]``
table into this class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MethodsConfig", "methods_config", "HDBSCAN_BACKENDS"]

#: Implementations of HDBSCAN for ``[methods] hdbscan_backend`` (:mod:`ocmembers.method.hdbscan_t22`).
HDBSCAN_BACKENDS: tuple[str, ...] = ("hdbscan", "fast_hdbscan")


@dataclass(frozen=True)
class MethodsConfig:
    """Comparison methods of issue 6 (``ocmembers.method.member_table``)."""

    hdbscan_g_max: float = 18.0
    hdbscan_ruwe_max: float = 1.4
    hdbscan_min_cluster_size: int = 40
    hdbscan_min_samples: int = 20
    hdbscan_selection: str = "eom"
    hdbscan_sky: bool = False
    hdbscan_backend: str = "hdbscan"
    upmask_stars_per_group: int = 25
    upmask_iterations: int = 50
    upmask_random_fields: int = 200
    upmask_alpha: float = 0.05
    upmask_space: str = "astrometry"
    upmask_g_max: float = 18.0
    upmask_max_outer: int = 10
    xd_components: int = 10
    xd_components_select: str = "fixed"
    xd_max_iter: int = 200
    xd_tol: float = 1e-6
    xd_n_init: int = 1
    xd_outlier_sigma: float = 10.0
    xd_bootstrap: int = 200
    xd_p_min: float = 0.9
    xd_min_component_stars: float = 10.0
    xd_component_choice: str = "entropy"
    pr22_g_max: float = 0.0
    pr22_upmask_iterations: int = 100
    seed: int = 2022
    compare_threshold: float = 0.5
    compare_g_bins: tuple[float, ...] = (6.0, 12.0, 14.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0)
    compare_radius_bins_pc: tuple[float, ...] = (0.0, 2.0, 5.0, 10.0, 20.0, 50.0)


def methods_config(cfg: Any = None) -> MethodsConfig:
    """``cfg.methods`` of a configuration, ``cfg`` itself when it is a :class:`MethodsConfig`,
    else the defaults."""
    if isinstance(cfg, MethodsConfig):
        return cfg
    mc = getattr(cfg, "methods", None)
    return mc if isinstance(mc, MethodsConfig) else MethodsConfig()
