"""Stage ``cones``: the Gaia DR3 cone of every cluster (Sect. 2.1, Eqs. 1-2).

``raw/cones/<cluster>.parquet`` with its manifest (the ADQL for the archive,
the file and its checksum for a local extract, the seed for the simulated
sky). A cone already cached for the same query and verified is not fetched
again; a corrupted one is fetched again.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ocmembers.sources.cache import cached_table, read_table
from ocmembers.config import Config
from ocmembers.exceptions import EmptyConeError
from ocmembers.stages.runner import StageReport, cluster_names, for_each_cluster
from ocmembers.sources import get_source
from ocmembers.method.columns import cluster_row
from ocmembers.stages.products import catalogue_paths, cone_path

__all__ = ["run", "fetch_cone"]


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
