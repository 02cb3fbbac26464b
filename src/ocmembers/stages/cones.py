"""Stage ``cones``: the Gaia DR3 cone of every cluster (Sect. 2.1, Eqs. 1-2).

``raw/cones/<cluster>.parquet`` with its manifest (the ADQL for the archive,
the file and its checksum for a local extract, the seed for the simulated
sky). A cone already cached for the same query and record (its cluster's row
of the catalogue, the ``DATA_DIR`` extract's sha256, ``[cone]``, the source's
code) and verified is not fetched again; a corrupted one is fetched again,
and the old cone stays until the new one is complete.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ocmembers.sources import cache
from ocmembers.sources.cache import cached_table, read_table
from ocmembers.config import Config
from ocmembers.exceptions import EmptyConeError
from ocmembers.stages.runner import StageReport, cluster_names, for_each_cluster, record, source_module, sweep
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

    cached_table(path, fetch, source=source.name, query=query, record=cone_record(cfg, source, row))
    return bool(fetched)


def cone_record(cfg: Config, source, row: pd.Series) -> dict:
    """``[cone]``, the cluster's catalogue row, the extract of ``DATA_DIR`` (local) and the source's code."""
    inputs = {f"raw/catalogues/clusters.parquet[{row['name']}]": cache.json_digest(
        {k: (None if pd.isna(v) else v) for k, v in row.items()})}
    if source.name == "local":
        f = source.cone_file(row["name"])
        inputs[str(f.resolve())] = cache.sha256_file(f)
    return record(cfg, "cones", sections=("cone",), inputs=inputs, code_of=(source_module(cfg),))


def run(cfg: Config) -> StageReport:
    sweep(cfg.raw_dir / "cones", cfg.raw_dir / "sim")
    return for_each_cluster(cfg, cluster_names(cfg, retry_failed_cones=True), fetch_cone, "cones")
