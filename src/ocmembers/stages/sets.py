"""Stage ``sets``: members, candidates and non-members of each cluster (Sects. 2.2-2.4, 3.1).

For each cluster, :func:`ocmembers.method.sets.build_sets` on its cone, its
training members (mapped to DR3 by the ``crossmatch`` stage) and its isochrone.
Outputs per cluster: ``sets/<cluster>/members.parquet``, ``candidates.parquet``,
``non_members.parquet``, ``isochrone.parquet`` (the shifted, densified curve)
and ``params.json`` (:class:`~ocmembers.method.selection.ClusterParams` plus
counts and provenance), each written atomically with its manifest;
``params.json`` last: its manifest is the commit point of the cluster's sets.

Record: ``[selection]`` and ``[isochrone]``; the sha256 of the cone, the
crossmatch, the isochrone, and of the cluster's own row of the catalogue and
its own training members (another cluster's change redoes nothing here); the
code of this stage and of what it imports. A set file that no longer verifies
makes the cluster out of date: it is rebuilt on the next run.
"""

from __future__ import annotations

import logging
from typing import Any

from ocmembers.exceptions import OCMembersError
from ocmembers.method.columns import cluster_row
from ocmembers.method.sets import SET_NAMES, build_sets, members_of
from ocmembers.sources import cache
from ocmembers.stages.products import load_params, set_paths  # noqa: F401 - load_params re-exported
from ocmembers.stages.runner import cluster_names, for_each_cluster, product_sha, record, sweep, up_to_date

__all__ = ["run"]

log = logging.getLogger(__name__)


#: what the sets stage reads of the configuration
SECTIONS = ("selection", "isochrone")


def _paths(cfg: Any, name: str) -> tuple[list[Any], list[Any]]:
    raw = cfg.raw_dir
    inputs = [raw / "cones" / f"{name}.parquet", raw / "crossmatch" / f"{name}.parquet",
              raw / "catalogues" / "train_members.parquet", raw / "catalogues" / "clusters.parquet",
              cfg.out_dir / "isochrones" / f"{name}.parquet"]
    return inputs, set_paths(cfg, name)


def _sets_one(cfg: Any, name: str) -> bool:
    inputs, outputs = _paths(cfg, name)
    stage_of = ("cones", "crossmatch", "catalogues", "catalogues", "isochrones")
    missing = [f"{p} (stage {st})" for p, st in zip(inputs, stage_of) if not p.is_file()]
    if missing:
        raise OCMembersError(f"cluster {name}: input(s) missing: {'; '.join(missing)}; run those stages first")
    cone_p, xm_p, tm_p, cl_p, iso_p = inputs
    clusters = cache.read_table(cl_p)
    row = cluster_row(clusters, name)
    train_members = cache.read_table(tm_p)
    own = train_members.loc[train_members["cluster"] == str(row["name"])].reset_index(drop=True)
    rec = record(cfg, "sets", sections=SECTIONS, inputs={
        f"raw/cones/{name}.parquet": product_sha(cone_p),
        f"raw/crossmatch/{name}.parquet": product_sha(xm_p),
        f"isochrones/{name}.parquet": product_sha(iso_p),
        f"raw/catalogues/clusters.parquet[{name}]": cache.json_digest(
            {k: (None if v != v else v) for k, v in row.items()}),
        f"raw/catalogues/train_members.parquet[{name}]": cache.frame_digest(own),
    })
    if up_to_date(outputs, rec):
        return False
    cone = cache.read_table(cone_p)
    members = members_of(train_members, cache.read_table(xm_p), str(row["name"]),
                         cfg.selection.member_probability)
    iso = cache.read_table(iso_p)
    try:
        iso.attrs["provenance"] = cache.read_manifest(iso_p).get("extra", {}).get("provenance", "")
    except Exception:  # noqa: BLE001 - provenance is informative only
        pass
    sets = build_sets(cone, members, row, iso, cfg)
    out = outputs[0].parent
    query = f"sets of {name}; config {cfg.digest(*SECTIONS)[:16]}"
    for s in SET_NAMES:
        cache.write_table(getattr(sets, s), out / f"{s}.parquet", source=cfg.source.name, query=query,
                          record=rec)
    cache.write_table(sets.curve, out / "isochrone.parquet", source=cfg.source.name, query=query,
                      extra={"provenance": sets.curve.attrs.get("provenance", "")}, record=rec)
    doc = {"params": sets.params.to_dict(), "counts": sets.counts,
           "isochrone": sets.curve.attrs.get("provenance", ""), "config": cfg.digest(*SECTIONS)}
    cache.write_json_product(doc, out / "params.json", source=cfg.source.name, query=query, record=rec)
    log.info("%s: %d members, %d candidates, %d non-members", name, sets.counts["members"],
             sets.counts["candidates"], sets.counts["non_members"])
    return True


def run(cfg: Any):
    """Stage ``sets`` for every cluster (``sets/<cluster>/...``); returns the :class:`StageReport`."""
    sweep(cfg.out_dir / "sets")
    return for_each_cluster(cfg, cluster_names(cfg), _sets_one, "sets")



