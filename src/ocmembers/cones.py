"""Stage ``cones``: the Gaia DR3 cone of every cluster (Sect. 2.1, Eqs. 1-2).

``raw/cones/<cluster>.parquet`` with its manifest (the ADQL for the archive,
the file and its checksum for a local extract, the seed for the simulated
sky). A cone already cached for the same query and verified is not fetched
again; a corrupted one is fetched again.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .cache import cached_table, read_table
from .catalogues import catalogue_paths
from .config import Config
from .exceptions import EmptyConeError
from .pipeline import StageReport, cluster_names, for_each_cluster
from .sources import get_source
from .sources.columns import cluster_row

__all__ = ["run", "cone_path", "fetch_cone", "load_cone"]


def cone_path(cfg: Config, name: str) -> Path:
    return cfg.raw_dir / "cones" / f"{name}.parquet"


def load_cone(cfg: Config, name: str) -> pd.DataFrame:
    """The verified cached cone of ``name``."""
    return read_table(cone_path(cfg, name))


def fetch_cone(cfg: Config, name: str) -> bool:
    """Fetch (or verify the cache of) the cone of cluster ``name``; False when it was cached."""
    clusters = read_table(catalogue_paths(cfg)["clusters"])
    row = cluster_row(clusters, name)
    source = get_source(cfg)
    path = cone_path(cfg, row["name"])
    query = source.cone_query(row)
    fetched = []

    def fetch() -> pd.DataFrame:
        fetched.append(True)
        cone = source.cone(row)
        if len(cone) == 0:
            raise EmptyConeError(f"cluster {row['name']}: the cone is empty")
        return cone

    cached_table(path, fetch, source=source.name, query=query)
    return bool(fetched)


def run(cfg: Config) -> StageReport:
    return for_each_cluster(cfg, cluster_names(cfg, retry_failed_cones=True), fetch_cone, "cones")
