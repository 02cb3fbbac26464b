"""Stage ``isochrones``: the PARSEC isochrone at each cluster's age (``isochrones/<cluster>.parquet``).

The isochrone comes from the data source (CMD web service, the CMD files of
``DATA_DIR``, or the simulated sky's own), interpolated to the CG20 age at
``[isochrone] metallicity_z``.

Record: ``[isochrone]``, the PARSEC files of ``DATA_DIR`` (sha256; local and
simulated sources) and the code of the data source.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ocmembers.exceptions import IsochroneRangeError
from ocmembers.method.columns import cluster_row
from ocmembers.sources import cache, get_source
from ocmembers.stages.products import isochrone_path
from ocmembers.stages.runner import cluster_names, for_each_cluster, record, source_module, sweep, up_to_date

__all__ = ["run"]


def _isochrone_one(cfg: Any, name: str) -> bool:
    clusters = cache.read_table(cfg.raw_dir / "catalogues" / "clusters.parquet")
    row = cluster_row(clusters, name)
    log_age = float(row["log_age"])
    if not np.isfinite(log_age):
        raise IsochroneRangeError(f"cluster {name}: no age in the cluster catalogue")
    source = get_source(cfg)
    query = source.isochrone_query(log_age)
    path = isochrone_path(cfg, name)
    grids = sorted((cfg.local_dir / "isochrones").glob("*.dat")) if source.name != "archive" else []
    rec = record(cfg, "isochrones", sections=("isochrone",), code_of=(source_module(cfg),),
                 inputs={str(f.resolve()): cache.sha256_file(f) for f in grids})
    if up_to_date([path], rec) and cache.read_manifest(path).get("query") == query:
        return False
    try:
        table = source.isochrone(log_age)
    except IsochroneRangeError as exc:
        raise IsochroneRangeError(f"cluster {name}: {exc}") from exc
    prov = table.attrs.get("provenance", "")
    cache.write_table(table, path, source=source.name, query=query, extra={"provenance": prov}, record=rec)
    return True


def run(cfg: Any):
    """Stage ``isochrones``: the isochrone of every cluster, ``isochrones/<cluster>.parquet``."""
    sweep(cfg.out_dir / "isochrones", cfg.raw_dir / "isochrones")
    return for_each_cluster(cfg, cluster_names(cfg), _isochrone_one, "isochrones")
