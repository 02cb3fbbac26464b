"""The comparison of stage ``pr22`` (:mod:`ocmembers.stages.pr22`, step 3): HDBSCAN as Tarricq et
al. (2022) and Deep Sets (Gaia only) on each cluster's simulated Gaia cone, against its truth.

A module of its own so that the products of the XD fits (:mod:`.pr22_cluster`), the expensive
step, do not record this code: a change here redoes the comparison only.
"""

from __future__ import annotations

import time

import pandas as pd

from ocmembers.api import members_from_cone
from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError
from ocmembers.method.columns import cluster_row
from ocmembers.method.hdbscan_t22 import t22_members
from ocmembers.method.member_table import MethodError
from ocmembers.method.preprocessing import preprocess_cone
from ocmembers.sim.catalogues import cg20_like_members
from ocmembers.sim.metrics import benchmark_cluster
from ocmembers.sim.source import SimSource
from ocmembers.sources import cache
from ocmembers.stages.pr22_cluster import THRESHOLDS, _compare_path, _metric_rows, _row_digest, _table
from ocmembers.stages.products import model_paths
from ocmembers.stages.runner import product_sha, record

__all__ = ["compare_cluster"]


def compare_cluster(cfg: Config, name: str) -> bool:
    """HDBSCAN (T22) and Deep Sets on the cluster's simulated Gaia cone, against its truth
    (``pr22/compare/<cluster>.json``); ``False`` when that product is up to date."""
    row = cluster_row(_table(cfg), name)
    path = _compare_path(cfg, name)
    spec = cfg.membership.model
    model_sha = "none"
    if spec == "trained":
        w = model_paths(cfg)["weights"]
        model_sha = product_sha(w) if w.is_file() else "absent"
        spec = str(w)
    elif spec:
        model_sha = str(spec)    # the published model (vg23) or a path
    rec = record(cfg, "pr22", sections=("methods", "sim", "cone", "membership"), code_of=(__name__,),
                 inputs={"model": model_sha, f"cluster[{name}]": _row_digest(row)})
    if cache.is_current(path, rec):
        return False
    src = SimSource(cfg)
    gaia_row = cluster_row(src._full_table(), name)
    sim = src.simulated(gaia_row)
    raw_cone = sim.cone.copy()
    cone = preprocess_cone(raw_cone, cluster=name, zero_point=cfg.cone.parallax_zero_point)
    truth = src.truth(gaia_row)
    rows, runs = [], []
    for method in ("hdbscan_t22", "deep_sets"):
        t0 = time.perf_counter()
        try:
            if method == "hdbscan_t22":
                res = t22_members(cone, gaia_row, cfg)[["source_id", "probability"]]
            else:
                if model_sha == "absent":
                    raise MethodError(f"no trained model at {spec}: run `make train SOURCE=sim` first")
                # the cluster's own row and CG20-like members (the support-set pool), as the pipeline
                # gives them: SimSource's catalogue holds only the clusters it simulates for the paper
                catalogues = {"clusters": pd.DataFrame([gaia_row]).reset_index(drop=True),
                              "train_members": cg20_like_members(sim, gaia_row, cfg)}
                # the raw cone: the Deep Sets pipeline preprocesses it itself (as the members stage)
                res = members_from_cone(raw_cone, name, spec, cfg, catalogues=catalogues)[["source_id", "probability"]]
        except (OCMembersError, ImportError, ValueError) as exc:
            runs.append({"method": method, "status": f"not run: {type(exc).__name__}: {exc}", "wall_s": None})
            continue
        runs.append({"method": method, "status": "ok", "wall_s": round(time.perf_counter() - t0, 3)})
        res = res.drop_duplicates("source_id")
        rows += _metric_rows(benchmark_cluster(res, truth, cluster=name, method=method, thresholds=THRESHOLDS))
    path.parent.mkdir(parents=True, exist_ok=True)
    cache.write_json_product({"cluster": name, "universe": "simulated Gaia DR3 cone (50 pc, Eqs. 1-2)",
                              "runs": runs, "metrics": rows}, path, source="sim",
                             query=f"pr22 compare {name}", record=rec)
    return True
