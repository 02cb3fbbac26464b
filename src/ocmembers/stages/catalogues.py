"""Stage ``catalogues``: CG20 table1, CG20 members and T22 members, and the cluster selection.

Writes (under ``data/<source>/``) ``raw/catalogues/clusters.parquet``,
``raw/catalogues/train_members.parquet`` and
``raw/catalogues/t22_members.parquet``, each with a manifest, then
``samples.json``: the training, validation and test clusters of
:mod:`ocmembers.method.samples` with the counts each criterion leaves.

Record (:func:`ocmembers.stages.runner.record`): the tables record the data
source's request (``query``, which for a local file holds its sha256), the
``DATA_DIR`` files read (sha256) and the code of the source; ``samples.json``
records ``[samples]`` and the sha256 of the three tables.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ocmembers.sources import cache
from ocmembers.sources.cache import cached_table
from ocmembers.config import Config
from ocmembers.exceptions import TableParseError
from ocmembers.method.samples import Samples, select_samples
from ocmembers.sources import get_source
from ocmembers.stages.products import catalogue_paths, samples_path
from ocmembers.stages.runner import record, source_module, sweep

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
    sweep(cfg.raw_dir / "catalogues")
    fetchers = {"clusters": source.cluster_table, "train_members": source.training_members,
                "t22_members": source.comparison_members}
    tables, done, current = {}, 0, 0
    for product, path in catalogue_paths(cfg).items():
        rec = record(cfg, "catalogues", inputs=_data_files(source, product), code_of=(source_module(cfg),))
        fetched = []

        def fetch(f=fetchers[product]):
            fetched.append(True)
            return f()

        tables[product] = cached_table(path, fetch, source=source.name, query=source.catalogue_query(product),
                                       record=rec)
        done += bool(fetched)
        current += not fetched
        print(f"catalogues: {product}: {len(tables[product])} rows -> {path}", file=sys.stderr)
    samples = real if real is not None else select_samples(tables["clusters"], tables["train_members"],
                                                           tables["t22_members"], cfg)
    rec = record(cfg, "catalogues", sections=("samples",), inputs={
        f"raw/catalogues/{p}.parquet": cache.read_manifest(path)["sha256"] for p, path in catalogue_paths(cfg).items()})
    if cache.is_current(samples_path(cfg), rec) and cache.read_json(samples_path(cfg)) == _plain(samples.to_dict()):
        current += 1
    else:
        cache.write_json_product(samples.to_dict(), samples_path(cfg), source=source.name,
                                 query="the cluster selection of Sects. 3.2 and 4", record=rec)
        done += 1
    for role, steps in samples.counts.items():
        print(f"catalogues: {role} selection:", file=sys.stderr)
        for step, n in steps.items():
            print(f"  {step:<45s} {n:5d}", file=sys.stderr)
    print(f"catalogues: {len(samples.train)} training, {len(samples.validation)} validation, "
          f"{len(samples.test)} test clusters -> {samples_path(cfg)}", file=sys.stderr)
    print(f"catalogues: {done} done, {current} up to date, 0 failed", file=sys.stderr)
    return tables


def _plain(obj):
    import json
    return json.loads(json.dumps(obj, sort_keys=True, default=list))


def _data_files(source, product: str) -> dict[str, str]:
    """The ``DATA_DIR`` files a catalogue product is read from, with their sha256."""
    finder = {"clusters": "_cluster_file", "train_members": "_train_file", "t22_members": "_t22_file"}[product]
    files: list[Path] = []
    if source.name == "local":
        files = [getattr(source, finder)()]
    elif source.name == "sim":
        f = source._cg20_file()
        files = [f] if f is not None else []
    return {str(f.resolve()): cache.sha256_file(f) for f in files}
