"""Stage ``catalogues``: CG20 table1, CG20 members and T22 members, and the cluster selection.

Writes (under ``data/<source>/``) ``raw/catalogues/clusters.parquet``,
``raw/catalogues/train_members.parquet`` and
``raw/catalogues/t22_members.parquet``, each with a manifest, then
``samples.json``: the training, validation and test clusters of
:mod:`ocmembers.method.samples` with the counts each criterion leaves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ocmembers.sources.cache import cached_table, read_table, write_json
from ocmembers.config import Config
from ocmembers.exceptions import TableParseError
from ocmembers.method.samples import Samples, select_samples
from ocmembers.sources import get_source
from ocmembers.stages.products import catalogue_paths, load_catalogues

__all__ = ["run", "real_selection_for_sim"]

def real_selection_for_sim(cfg: Config) -> Samples | None:
    """vG23's selection made on the real catalogues of ``DATA_DIR``, for the simulated sky.

    ``make all SOURCE=sim DATA_DIR=...`` reproduces the paper on simulated
    versions of the clusters the paper selects: the criteria of Sects. 3.2 and
    4 are applied to the real CG20 table and member lists (CG18 stands in
    offline) and to the real T22 lists, and the simulated sky then simulates
    those clusters. ``None`` when roles are given in the configuration (the
    demo), for other sources, or without the real catalogues.
    """
    s = cfg.samples
    if cfg.source.name != "sim" or s.train_clusters or s.validation_clusters or s.test_clusters:
        return None
    from ocmembers.sources.local import LocalSource
    local = LocalSource(cfg)
    try:
        tables = (local.cluster_table(), local.training_members(), local.comparison_members())
    except TableParseError:
        return None
    return select_samples(*tables, cfg)


def run(cfg: Config) -> dict[str, pd.DataFrame]:
    real = real_selection_for_sim(cfg)
    if real is not None:
        print(f"catalogues: simulating the clusters selected from the real catalogues in {cfg.local_dir}",
              file=sys.stderr)
        cfg = cfg.replace(samples={"train_clusters": real.train, "validation_clusters": real.validation,
                                   "test_clusters": real.test})
    source = get_source(cfg)
    fetchers = {"clusters": source.cluster_table, "train_members": source.training_members,
                "t22_members": source.comparison_members}
    tables = {}
    for product, path in catalogue_paths(cfg).items():
        tables[product] = cached_table(path, fetchers[product], source=source.name,
                                       query=source.catalogue_query(product))
        print(f"catalogues: {product}: {len(tables[product])} rows -> {path}", file=sys.stderr)
    samples = real if real is not None else select_samples(tables["clusters"], tables["train_members"],
                                                           tables["t22_members"], cfg)
    write_json(samples.to_dict(), cfg.out_dir / "samples.json")
    for role, steps in samples.counts.items():
        print(f"catalogues: {role} selection:", file=sys.stderr)
        for step, n in steps.items():
            print(f"  {step:<45s} {n:5d}", file=sys.stderr)
    print(f"catalogues: {len(samples.train)} training, {len(samples.validation)} validation, "
          f"{len(samples.test)} test clusters -> {cfg.out_dir / 'samples.json'}", file=sys.stderr)
    return tables
