"""Stage ``catalogues``: CG20 table1, CG20 members and T22 members, and the cluster selection.

Writes (under ``data/<source>/``) ``raw/catalogues/clusters.parquet``,
``raw/catalogues/train_members.parquet`` and
``raw/catalogues/t22_members.parquet``, each with a manifest, then
``samples.json``: the training, validation and test clusters of
:mod:`ocmembers.samples` with the counts each criterion leaves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from .cache import cached_table, read_table, write_json
from .config import Config
from .samples import select_samples
from .sources import get_source

__all__ = ["run", "catalogue_paths", "load_catalogues"]

PRODUCTS = ("clusters", "train_members", "t22_members")


def catalogue_paths(cfg: Config) -> dict[str, Path]:
    return {p: cfg.raw_dir / "catalogues" / f"{p}.parquet" for p in PRODUCTS}


def load_catalogues(cfg: Config) -> dict[str, pd.DataFrame]:
    """The verified cached catalogues (run the stage first)."""
    return {p: read_table(path) for p, path in catalogue_paths(cfg).items()}


def run(cfg: Config) -> dict[str, pd.DataFrame]:
    source = get_source(cfg)
    fetchers = {"clusters": source.cluster_table, "train_members": source.training_members,
                "t22_members": source.comparison_members}
    tables = {}
    for product, path in catalogue_paths(cfg).items():
        tables[product] = cached_table(path, fetchers[product], source=source.name,
                                       query=source.catalogue_query(product))
        print(f"catalogues: {product}: {len(tables[product])} rows -> {path}", file=sys.stderr)
    samples = select_samples(tables["clusters"], tables["train_members"], tables["t22_members"], cfg)
    write_json(samples.to_dict(), cfg.out_dir / "samples.json")
    for role, steps in samples.counts.items():
        print(f"catalogues: {role} selection:", file=sys.stderr)
        for step, n in steps.items():
            print(f"  {step:<45s} {n:5d}", file=sys.stderr)
    print(f"catalogues: {len(samples.train)} training, {len(samples.validation)} validation, "
          f"{len(samples.test)} test clusters -> {cfg.out_dir / 'samples.json'}", file=sys.stderr)
    return tables
