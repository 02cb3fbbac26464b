"""Stage ``catalogue_members``: member lists for every cluster of the catalogue, as one HATS catalogue.

``make catalogue-members [SOURCE=...] [MODEL=vg23|path]`` runs the chain
(cones .. sets) for every cluster of the ``catalogues`` stage's cluster table
(CG20, or any catalogue that stage holds; ``CLUSTERS`` restricts it), the
``train`` stage once (nothing to train with ``MODEL=vg23`` or a path), then
this stage:

1. Per cluster (:func:`~ocmembers.stages.runner.for_each_cluster`, ``JOBS`` at
   a time, failures collected): the member list of
   :func:`ocmembers.stages.membership_run.member_list`, the same computation
   as the ``members`` stage, written to
   ``catalogue_members/clusters/<cluster>.{parquet,ecsv}`` with a manifest and
   a record. A cluster whose list records what the stage would record now is
   not redone (resumable per cluster; a killed run loses at most the clusters
   in flight).
2. The catalogue: every list (files only: no cluster's table is held by this
   process) goes through ``hats-import`` into one HATS catalogue,
   ``catalogue_members/members/``, partitioned by HEALPix pixel, which
   ``lsdb.open_catalog`` opens. Its manifest ``catalogue_members/members.json``
   (written last, the commit point) holds the provenance (model id and
   origin, config digest, code version, cluster count, rows, the sha256 of
   every list and of every file of the catalogue) and its record; the
   catalogue is rebuilt when any list changed, appeared or went away.

Memory: each task holds one cluster; ``hats-import`` reads the lists file by
file and writes pixel by pixel (``pixel_threshold`` rows at most per
partition), so the client's memory does not grow with the number of clusters.
The end of the stage prints the counts (done, up to date, failed with the
cause), rows, and the wall time of each step; ``reports/catalogue_members.json``
and ``reports/timings.jsonl`` keep them.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from hats_import.catalog.file_readers import ParquetPyarrowReader

from ocmembers._version import __version__
from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError
from ocmembers.sources import cache
from ocmembers.stages.membership_run import EXCLUDE, SECTIONS, load_model, member_list
from ocmembers.stages.products import (catalogue_cluster_names, catalogue_list_paths,
                                       catalogue_members_paths, catalogue_paths)
from ocmembers.stages.runner import failed_clusters, for_each_cluster, n_clusters, record, sweep

__all__ = ["run", "main", "catalogue_names", "build_catalogue", "catalogue_record"]

STAGE = "catalogue_members"
#: rows per HATS partition at most (hats-import's pixel_threshold)
PIXEL_THRESHOLD = 1_000_000
#: the deepest HEALPix order of a partition
HIGHEST_ORDER = 10


def catalogue_names(cfg: Config) -> list[str]:
    """The clusters of the catalogue (``clusters.parquet``; ``CLUSTERS`` restricts them), less
    those whose cone failed (``reports/cones.json``)."""
    names = catalogue_cluster_names(cfg)
    failed = failed_clusters(cfg, "cones")
    kept = [n for n in names if n not in failed]
    if len(kept) < len(names):
        print(f"({n_clusters(len(names) - len(kept))} without a cone left out; see "
              f"{cfg.out_dir / 'reports' / 'cones.json'})", file=sys.stderr)
    return kept


def _one(cfg: Config, name: str) -> bool:
    parquet, ecsv = catalogue_list_paths(cfg, name)
    return member_list(cfg, name, parquet, ecsv, stage=STAGE)


def catalogue_record(cfg: Config, lists: dict[str, Path]) -> dict:
    """The record of the catalogue: the membership config, the sha256 of every cluster's list
    (from its verified manifest) and of the cluster table, this stage's code."""
    inputs = {f"clusters/{n}.parquet": str(cache.verify(p)["sha256"]) for n, p in sorted(lists.items())}
    clusters = catalogue_paths(cfg)["clusters"]
    if clusters.is_file():
        inputs["raw/catalogues/clusters.parquet"] = str(cache.verify(clusters)["sha256"])
    return record(cfg, STAGE, sections=SECTIONS, exclude=EXCLUDE, inputs=inputs,
                  extra_config={"format": "hats", "pixel_threshold": PIXEL_THRESHOLD,
                                "highest_order": HIGHEST_ORDER})


class MemberListReader(ParquetPyarrowReader):
    """hats-import's Parquet reader, with the list's cluster (the file's stem) as a first column
    ``cluster``: a source may be a candidate of two overlapping clusters, so the catalogue's rows
    are (cluster, source_id)."""

    def read(self, input_file, read_columns=None):
        name = Path(input_file).stem
        columns = None if read_columns is None else [c for c in read_columns if c != "cluster"]
        for table in super().read(input_file, read_columns=columns):
            if read_columns is None or "cluster" in read_columns:
                table = table.add_column(0, "cluster", pa.array([name] * table.num_rows, pa.string()))
            yield table


def _files_sha(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): cache.sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _catalogue_current(paths: dict[str, Path], rec: dict) -> bool:
    prov, cat = paths["provenance"], paths["catalogue"]
    if not (cat.is_dir() and cache.is_current(prov, rec)):
        return False
    files = cache.read_json(prov).get("files", {})
    return all((cat / f).is_file() and cache.sha256_file(cat / f) == sha for f, sha in files.items())


def _dask_client(cfg: Config):
    """A Dask client for hats-import: the scheduler of ``SCHEDULER`` when the configuration has
    one, else threads in this process (the lists are already on disk; no process to start)."""
    from dask.distributed import Client
    for name in ("distributed", "hats_import"):       # the scheduler's INFO lines: not for the user
        if logging.getLogger(name).getEffectiveLevel() < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)
    address = getattr(cfg.clusters, "scheduler", "") or ""
    if address:
        return Client(address)
    return Client(processes=False, n_workers=1, threads_per_worker=max(1, int(cfg.clusters.jobs)),
                  dashboard_address=":0", silence_logs=logging.WARNING)


def build_catalogue(cfg: Config, lists: dict[str, Path], out: Path, properties: dict[str, Any]) -> int:
    """Import the member lists ``lists`` (``{cluster: parquet}``) into the HATS catalogue ``out``
    (written beside it and renamed into place); returns its rows."""
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client
    import hats

    parent = out.parent
    work, old = parent / f".{out.name}.build", parent / f".{out.name}.old"
    build, tmp = work / out.name, work / "tmp"
    for d in (work, old):
        shutil.rmtree(d, ignore_errors=True)
    args = ImportArguments(
        output_path=str(work), output_artifact_name=out.name,
        input_file_list=[str(p) for _, p in sorted(lists.items())], file_reader=MemberListReader(),
        ra_column="ra", dec_column="dec", catalog_type="object",
        pixel_threshold=PIXEL_THRESHOLD, highest_healpix_order=HIGHEST_ORDER,
        sort_columns="cluster,source_id", addl_hats_properties=properties,
        tmp_dir=str(tmp), resume=False, progress_bar=False, dask_n_workers=1,
    )
    client = _dask_client(cfg)
    try:
        pipeline_with_client(args, client)
    finally:
        client.close()
    shutil.rmtree(tmp, ignore_errors=True)
    rows = int(hats.read_hats(build).catalog_info.total_rows)
    if out.exists():
        out.rename(old)
    build.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return rows


def run(cfg: Config):
    """Member lists for every cluster of the catalogue, then the HATS member catalogue; returns
    the :class:`~ocmembers.stages.runner.StageReport` of the lists."""
    t0 = time.perf_counter()
    paths = catalogue_members_paths(cfg)
    names = catalogue_names(cfg)
    if not names:
        raise OCMembersError("catalogue_members: no cluster in the catalogue; run `ocmembers catalogues`")
    model = load_model(cfg)  # fail early, once, when the model is missing or does not fit
    sweep(paths["lists"], paths["dir"])
    print(f"{STAGE}: {n_clusters(len(names))} of {catalogue_paths(cfg)['clusters']}, model "
          f"{cfg.membership.model} ({model.model_id_})", file=sys.stderr)
    report = for_each_cluster(cfg, names, _one, STAGE)
    t_lists = time.perf_counter() - t0

    # the catalogue, from the lists on disk (the manifests give the rows; nothing is loaded here)
    lists = {n: catalogue_list_paths(cfg, n)[0] for n in names if n not in report.failed}
    lists = {n: p for n, p in lists.items() if p.is_file()}
    rows = {n: int(cache.read_manifest(p).get("rows") or 0) for n, p in lists.items()}
    nonempty = {n: p for n, p in lists.items() if rows[n] > 0}
    rec = catalogue_record(cfg, lists)
    t1 = time.perf_counter()
    status = "up to date"
    if not nonempty:
        raise OCMembersError(f"{STAGE}: no cluster has a member list ({len(report.failed)} failed)")
    if not _catalogue_current(paths, rec):
        props = {"ocmembers_software": f"ocmembers {__version__}", "ocmembers_model_id": model.model_id_,
                 "ocmembers_config": rec["config"][:16], "ocmembers_code": rec["code"][:16],
                 "ocmembers_clusters": str(len(nonempty))}
        total = build_catalogue(cfg, nonempty, paths["catalogue"], props)
        if total != sum(rows.values()):
            raise OCMembersError(f"{STAGE}: the catalogue holds {total} rows, the lists {sum(rows.values())}")
        doc = {
            "catalogue": paths["catalogue"].name, "format": "HATS (hats-import)",
            "open_with": f"lsdb.open_catalog('{paths['catalogue']}')",
            "software": f"ocmembers {__version__}", "source": cfg.source.name,
            "model": cfg.membership.model, "model_id": model.model_id_,
            "model_origin": getattr(model, "origin_", "ocmembers"),
            "config_digest": rec["config"], "code_version": rec["code"],
            "membership_seed": cfg.membership.seed, "n_samples": cfg.membership.n_samples,
            "clusters": len(nonempty), "clusters_without_candidates": sorted(set(lists) - set(nonempty)),
            "rows": total, "lists": {n: {"rows": rows[n], "sha256": rec["inputs"][f"clusters/{n}.parquet"]}
                                     for n in sorted(lists)},
            "files": _files_sha(paths["catalogue"]),
        }
        cache.write_json_product(doc, paths["provenance"], source=cfg.source.name,
                                 query=f"member catalogue of {len(nonempty)} clusters", record=rec)
        status = "written"
    t_cat = time.perf_counter() - t1
    n_rows = sum(rows.values())
    print(f"{STAGE}: {len(report.done)} list(s) done, {len(report.skipped)} up to date, "
          f"{len(report.failed)} failed; catalogue {status}: {n_clusters(len(nonempty))}, {n_rows} rows "
          f"-> {paths['catalogue']} (lsdb.open_catalog)", file=sys.stderr)
    print(f"{STAGE}: wall time: lists {t_lists:.1f} s, catalogue {t_cat:.1f} s, total "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return report


def main(args, cfg: Config) -> None:
    if getattr(args, "list", False):
        print(" ".join(catalogue_cluster_names(cfg)))   # for the Makefile: the clusters to run
        return
    run(cfg)
