"""Stage ``crossmatch``: DR3 ids of the (Gaia DR2) training members of each cluster.

The archive source asks ``gaiadr3.dr2_neighbourhood``; the local and
simulated sources match positions after propagating the DR2 positions to
the DR3 epoch (:mod:`ocmembers.sources.positional`). Never by id equality.
Writes ``raw/crossmatch/<cluster>.parquet`` (``source_id_dr2, source_id,
angular_distance, magnitude_difference, ambiguous``) and reports ambiguous
and unmatched members.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ocmembers.sources import cache
from ocmembers.sources.cache import cached_table, read_table
from ocmembers.config import Config
from ocmembers.stages.runner import (StageReport, cluster_names, for_each_cluster, product_sha, record,
                                     source_module, sweep)
from ocmembers.sources import get_source
from ocmembers.method.columns import cluster_row
from ocmembers.stages.products import catalogue_paths, cone_path, crossmatch_path, load_cone

__all__ = ["run", "crossmatch_cluster"]

log = logging.getLogger(__name__)


def crossmatch_cluster(cfg: Config, name: str) -> bool:
    paths = catalogue_paths(cfg)
    row = cluster_row(read_table(paths["clusters"]), name)
    members = read_table(paths["train_members"])
    members = members.loc[members["cluster"] == row["name"]]
    cone = load_cone(cfg, row["name"])
    source = get_source(cfg)
    # this cluster's members only: a change to another cluster's list redoes nothing here
    members_sha = cache.frame_digest(members.reset_index(drop=True))
    query = (f"{source.name} DR2->DR3 of {len(members)} members of {row['name']}; members "
             f"sha256:{members_sha[:16]}, cone sha256:"
             f"{product_sha(cone_path(cfg, row['name']))[:16]}; {cfg.crossmatch}")
    fetched = []

    def fetch():
        fetched.append(True)
        return source.crossmatch(members, cone, row)

    rec = record(cfg, "crossmatch", sections=("crossmatch",), code_of=(source_module(cfg),), inputs={
        f"raw/catalogues/train_members.parquet[{row['name']}]": members_sha,
        f"raw/cones/{row['name']}.parquet": product_sha(cone_path(cfg, row["name"]))})
    table = cached_table(crossmatch_path(cfg, row["name"]), fetch, source=source.name, query=query, record=rec)
    if fetched:
        n_amb = int(table["ambiguous"].sum())
        log.info("%s: %d of %d members matched, %d ambiguous", row["name"], len(table), len(members), n_amb)
    return bool(fetched)


def run(cfg: Config) -> StageReport:
    sweep(cfg.raw_dir / "crossmatch")
    return for_each_cluster(cfg, cluster_names(cfg), crossmatch_cluster, "crossmatch")
