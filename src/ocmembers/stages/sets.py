"""Stage ``sets``: members, candidates and non-members of each cluster (Sects. 2.2-2.4, 3.1).

For each cluster, :func:`ocmembers.method.sets.build_sets` on its cone, its
training members (mapped to DR3 by the ``crossmatch`` stage) and its isochrone.
Outputs per cluster: ``sets/<cluster>/members.parquet``, ``candidates.parquet``,
``non_members.parquet``, ``isochrone.parquet`` (the shifted, densified curve)
and ``params.json`` (:class:`~ocmembers.method.selection.ClusterParams` plus
counts and provenance), each written atomically; ``params.json`` last.
"""

from __future__ import annotations

import logging
from typing import Any

from ocmembers.exceptions import OCMembersError
from ocmembers.method.columns import cluster_row
from ocmembers.method.sets import SET_NAMES, build_sets, members_of
from ocmembers.sources import cache
from ocmembers.stages.products import load_params
from ocmembers.stages.runner import cluster_names, for_each_cluster, is_up_to_date

__all__ = ["run"]

log = logging.getLogger(__name__)


def _paths(cfg: Any, name: str) -> tuple[list[Any], list[Any]]:
    raw = cfg.raw_dir
    inputs = [raw / "cones" / f"{name}.parquet", raw / "crossmatch" / f"{name}.parquet",
              raw / "catalogues" / "train_members.parquet", raw / "catalogues" / "clusters.parquet",
              cfg.out_dir / "isochrones" / f"{name}.parquet"]
    out = cfg.out_dir / "sets" / name
    outputs = [out / f"{s}.parquet" for s in SET_NAMES] + [out / "isochrone.parquet", out / "params.json"]
    return inputs, outputs


def _sets_one(cfg: Any, name: str) -> bool:
    inputs, outputs = _paths(cfg, name)
    if is_up_to_date(outputs, inputs):
        return False
    stage_of = ("cones", "crossmatch", "catalogues", "catalogues", "isochrones")
    missing = [f"{p} (stage {st})" for p, st in zip(inputs, stage_of) if not p.is_file()]
    if missing:
        raise OCMembersError(f"cluster {name}: input(s) missing: {'; '.join(missing)}; run those stages first")
    cone_p, xm_p, tm_p, cl_p, iso_p = inputs
    cone = cache.read_table(cone_p)
    clusters = cache.read_table(cl_p)
    row = cluster_row(clusters, name)
    members = members_of(cache.read_table(tm_p), cache.read_table(xm_p), str(row["name"]),
                         cfg.selection.member_probability)
    iso = cache.read_table(iso_p)
    try:
        iso.attrs["provenance"] = cache.read_manifest(iso_p).get("extra", {}).get("provenance", "")
    except Exception:  # noqa: BLE001 - provenance is informative only
        pass
    sets = build_sets(cone, members, row, iso, cfg)
    out = outputs[0].parent
    query = f"sets of {name} from {', '.join(str(p) for p in inputs)}; config {cfg.digest('selection', 'isochrone')[:16]}"
    for s in SET_NAMES:
        cache.write_table(getattr(sets, s), out / f"{s}.parquet", source=cfg.source.name, query=query)
    cache.write_table(sets.curve, out / "isochrone.parquet", source=cfg.source.name, query=query,
                      extra={"provenance": sets.curve.attrs.get("provenance", "")})
    doc = {"params": sets.params.to_dict(), "counts": sets.counts,
           "isochrone": sets.curve.attrs.get("provenance", ""), "config": cfg.digest("selection", "isochrone")}
    cache.write_json(doc, out / "params.json")
    log.info("%s: %d members, %d candidates, %d non-members", name, sets.counts["members"],
             sets.counts["candidates"], sets.counts["non_members"])
    return True


def run(cfg: Any) -> None:
    """Stage ``sets`` for every cluster (``sets/<cluster>/...``)."""
    for_each_cluster(cfg, cluster_names(cfg), _sets_one, "sets")



