"""Stage ``pr22``: Peña Ramírez et al. (2022) on the simulated Gaia + 2MASS + VVV sky (issue 12).

``make pr22 SOURCE=sim`` (``ocmembers pr22``), for the 37 clusters of PR22's
Table 1 selected by name from the CG20 table (:mod:`ocmembers.sources.pr22`;
``CLUSTERS``: a subset of them):

1. **Data** (per cluster), over 5 x r50, cached with manifests under ``raw/vvv/``:

   * ``SOURCE=sim``: the simulated 8-dimensional field of :mod:`ocmembers.sim.vvv`
     (``<cluster>.{cone,truth}.parquet``, ``.meta.json`` with the star counts by G and Ks);
   * ``SOURCE=archive``, and ``SOURCE=local`` (``DATA_DIR`` holds no 2MASS or VVV files, so the
     services are asked): Gaia DR3, 2MASS PSC (VizieR II/246) and VIRAC2 (VizieR II/387) fetched
     and combined by :func:`ocmembers.sources.nir_archive.fetch_field` (``<cluster>.cone.parquet``,
     whose manifest holds the three requests and whose record their digest; ``.meta.json`` with
     the star counts of the field and the catalogues that answered with no rows); the cluster
     table is the ``catalogues`` stage's (``raw/catalogues/clusters.parquet``). There is no truth,
     so no precision and recall and no comparison (step 3).
2. **Method** (per cluster): XDGMM (10 components, 200 bootstraps) -> UPMASK on
   the J, H, Ks photometry and positions of the ``p_xd >= 0.9`` stars
   (:func:`ocmembers.method.penaramirez22.penaramirez22_members`), then the total
   mass (:func:`ocmembers.method.cluster_mass.total_mass`, in Ks with the
   isochrone's Ks of :mod:`ocmembers.sim.nir`). A field without any J, H, Ks
   (no NIR coverage) runs on the Gaia dimensions (G, BP, RP), and its row says
   so (``photometry``, and ``nir_coverage``: which catalogues had rows); an XD fit that stops at ``[methods] xd_max_iter`` without
   converging is reported (``xd_converged``); a cluster whose fit fails is
   reported in ``reports/pr22.json`` and the batch goes on.
   Writes ``pr22/clusters/<cluster>.parquet`` (``source_id, probability, p_xd``)
   and ``pr22/clusters/<cluster>.json`` (counts, mass, wall times, truth metrics).
3. **Comparison** (per cluster, sim): precision and recall against the truth at
   p >= 0.5 and 0.9 for PR22's method on its field and, on the cluster's simulated
   Gaia cone (50 pc, Eqs. 1-2 of van Groeningen et al. 2023), for HDBSCAN as
   Tarricq et al. (2022) and for Deep Sets (Gaia only; the ``[membership] model``;
   a row saying why when no model is available): ``pr22/compare/<cluster>.json``.
4. **Summary**: ``pr22/statistics.json``, ``pr22/clusters.csv``,
   ``pr22/field_counts.csv``, the figures (``pr22/figures/``) and the
   generated macros; with ``latexmk`` on the path, ``paper/pr22/ms.pdf``.

The total mass uses the isochrone's Ks from the Gaia bands (Evans et al. 2018, Eq. 2) on
every route; the CMD 2MASS/VISTA isochrones (:func:`ocmembers.sources.parsec.read_cmd`,
``photsys=``) are not used by the stage yet.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ocmembers.api import members_from_cone
from ocmembers.config import Config
from ocmembers.exceptions import ConfigError, OCMembersError
from ocmembers.method.hdbscan_t22 import t22_members
from ocmembers.method.preprocessing import preprocess_cone
from ocmembers.method.columns import cluster_row
from ocmembers.method.cluster_mass import completeness_magnitude, total_mass
from ocmembers.method.member_table import MethodError
from ocmembers.method.penaramirez22 import penaramirez22_members
from ocmembers.sim.isochrones import cluster_isochrone
from ocmembers.sim.metrics import benchmark_cluster
from ocmembers.sim.nir import A_KS_OVER_AV_VISTA, nir_extinction, twomass_from_gaia, vista_from_twomass
from ocmembers.sim.source import SimSource
from ocmembers.sim.vvv import COUNT_EDGES, VVV_CONE_VERSION, VVVCone, simulate_vvv_cone, star_counts
from ocmembers.sources import cache
from ocmembers.sources.nir_archive import fetch_field, field_radius_deg
from ocmembers.sources.pr22 import pr22_cluster_table, pr22_names, published_pr22
from ocmembers.stages.products import catalogue_paths, model_paths
from ocmembers.stages.runner import (StageReport, failed_clusters, for_each_cluster, product_sha, record,
                                     sweep)

__all__ = ["run", "main", "pr22_cluster", "pr22_input", "summarise", "NIR_BANDS", "THRESHOLDS"]

log = logging.getLogger(__name__)

#: The combined near-infrared columns of the PR22 fields (VISTA system).
NIR_BANDS = ("Jmag", "Hmag", "Ksmag")
#: Probability thresholds of the truth metrics (PR22 count members at p >= 0.9).
THRESHOLDS = (0.5, 0.9)
P_MIN = 0.9
#: Sources per 0.5-mag bin before a fall of the field's Ks counts marks its completeness (the few
#: brightest stars of a field fluctuate).
MASS_MIN_COUNT = 50
PAPER_DIR = Path(__file__).resolve().parents[3] / "paper" / "pr22"


# ---------------------------------------------------------------------------
# paths (the stage's own products)
# ---------------------------------------------------------------------------
def _raw_paths(cfg: Config, name: str) -> tuple[Path, Path, Path]:
    d = cfg.raw_dir / "vvv"
    return d / f"{name}.cone.parquet", d / f"{name}.truth.parquet", d / f"{name}.meta.json"


def _out(cfg: Config) -> Path:
    return cfg.out_dir / "pr22"


def _cluster_paths(cfg: Config, name: str) -> tuple[Path, Path]:
    d = _out(cfg) / "clusters"
    return d / f"{name}.parquet", d / f"{name}.json"


def _compare_path(cfg: Config, name: str) -> Path:
    return _out(cfg) / "compare" / f"{name}.json"


# ---------------------------------------------------------------------------
#: The sources whose near-infrared data the stage fetches from the services (module docstring).
NIR_FETCHED = ("archive", "local")


def _table(cfg: Config) -> pd.DataFrame:
    if cfg.source.name == "sim":
        return pr22_cluster_table(SimSource(cfg)._full_table())
    if cfg.source.name not in NIR_FETCHED:
        raise ConfigError(f"pr22: SOURCE={cfg.source.name} has no near-infrared route; use SOURCE=sim, "
                          "archive or local")
    path = catalogue_paths(cfg)["clusters"]
    if not cache.is_valid(path):
        raise ConfigError(f"pr22: SOURCE={cfg.source.name} needs the cluster table {path}: run "
                          f"`make catalogues SOURCE={cfg.source.name}` first")
    return pr22_cluster_table(cache.read_table(path))


def _is_sim(cfg: Config) -> bool:
    return cfg.source.name == "sim"


def _names(cfg: Config) -> list[str]:
    wanted = list(cfg.clusters.names)
    pr22 = pr22_names()
    if not wanted:
        return pr22
    names = [n for n in wanted if n in set(pr22)]
    if not names:
        raise ConfigError(f"pr22: none of CLUSTERS ({', '.join(wanted)}) is among PR22's 37 clusters")
    return names


def vvv_field(cfg: Config, row: pd.Series) -> VVVCone:
    """The PR22 field of ``row`` (simulated, or fetched: :func:`archive_field`), from the cache
    when its record matches."""
    if not _is_sim(cfg):
        return archive_field(cfg, row)
    name = str(row["name"])
    paths = _raw_paths(cfg, name)
    rec = record(cfg, "pr22", sections=("sim", "isochrone"), code_of=("ocmembers.sim.vvv",),
                 inputs={f"cluster[{name}]": cache.json_digest({k: row[k] for k in row.index
                                                                if isinstance(row[k], (int, float, str))})})
    query = f"sim vvv field v{VVV_CONE_VERSION}: seed={cfg.sim.seed} cluster={name} radius=5 x r50"
    if all(cache.is_current(p, rec) for p in paths):
        return VVVCone(name=name, cone=cache.read_table(paths[0]), truth=cache.read_table(paths[1]),
                       meta=cache.read_json(paths[2]))
    v = simulate_vvv_cone(row, cfg)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    cache.write_json_product(v.meta, paths[2], source="sim", query=query, record=rec)
    cache.write_table(v.truth, paths[1], source="sim", query=query, record=rec)
    cache.write_table(v.cone, paths[0], source="sim", query=query, record=rec)
    return v


def _row_digest(row: pd.Series) -> str:
    return cache.json_digest({k: row[k] for k in row.index if isinstance(row[k], (int, float, str))})


def field_meta(field: pd.DataFrame, row: pd.Series) -> dict:
    """Star counts of a fetched field by G and Ks (:data:`ocmembers.sim.vvv.COUNT_EDGES`; after the
    proper-motion window, unlike the simulated fields' counts), its area and its catalogues."""
    radius = field_radius_deg(row)
    counts = {"edges_g": COUNT_EDGES["g"].tolist(), "edges_ks": COUNT_EDGES["ks"].tolist()}
    for key, col, edges in (("gaia_g", "phot_g_mean_mag", COUNT_EDGES["g"]), ("tmass_ks", "tmass_ks", COUNT_EDGES["ks"]),
                            ("vvv_ks", "vvv_ks", COUNT_EDGES["ks"]), ("ks", "Ksmag", COUNT_EDGES["ks"])):
        counts[key] = star_counts(field[col].to_numpy(float), edges).tolist()
    a = field.attrs
    empty = list(a.get("empty_catalogues", []))
    have = [n for k, n in (("2mass", "2MASS"), ("virac2", "VIRAC2")) if k not in empty]
    return {"cluster": str(row["name"]), "radius_deg": radius, "n_sources": int(len(field)),
            "area_deg2": float(2 * np.pi * (1 - np.cos(np.deg2rad(radius))) * (180 / np.pi) ** 2),
            "counts": counts, "counts_after_pm_window": True, "empty_catalogues": empty,
            "nir_coverage": ("+".join(have) if have else "none (2MASS and VIRAC2 answered with no rows)"),
            "match": {k: a[k] for k in ("n_gaia", "n_2mass", "n_virac2", "n_gaia_virac2", "n_virac2_only",
                                        "n_2mass_matched", "n_2mass_unmatched", "n_no_astrometry", "match_arcsec")
                      if k in a}}


def archive_field(cfg: Config, row: pd.Series) -> VVVCone:
    """The fetched PR22 field of ``row`` (:func:`ocmembers.sources.nir_archive.fetch_field`), from the
    cache when its record (the cluster's row and the digest of the three requests) matches; no truth."""
    from ocmembers.sources.nir_archive import field_queries
    from ocmembers.sources.vizier import query_text

    name = str(row["name"])
    cone_p, _, meta_p = _raw_paths(cfg, name)
    q = field_queries(row, cfg)
    texts = {"gaia": q["gaia"], "2mass": query_text(q["2mass"]), "virac2": query_text(q["virac2"])}
    rec = record(cfg, "pr22", code_of=("ocmembers.sources.nir_archive",),
                 inputs={f"cluster[{name}]": _row_digest(row), "queries": cache.json_digest(texts)})
    if cache.is_current(cone_p, rec) and cache.is_current(meta_p, rec):
        return VVVCone(name=name, cone=cache.read_table(cone_p), truth=None, meta=cache.read_json(meta_p))
    field = fetch_field(row, cfg)
    meta = field_meta(field, row)
    field.attrs = {}
    query = f"pr22 field {name}: " + query_text(texts)
    cone_p.parent.mkdir(parents=True, exist_ok=True)
    cache.write_json_product(meta, meta_p, source=cfg.source.name, query=query, record=rec)
    cache.write_table(field, cone_p, source=cfg.source.name, query=query, record=rec)
    return VVVCone(name=name, cone=field, truth=None, meta=meta)


def pr22_input(cone: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The table PR22's method runs on, and which photometry it holds.

    With any J, H, Ks: the 8 dimensions (positions, astrometry, J, H, Ks; the
    Gaia magnitudes left out, so that sources fainter than Gaia stay in);
    ``"J,H,Ks"``. Without (no NIR coverage): the Gaia dimensions G, BP, RP instead;
    ``"gaia only (no J, H, Ks)"``.
    """
    has_nir = any(c in cone.columns and np.isfinite(cone[c].to_numpy(float)).any() for c in NIR_BANDS)
    if has_nir:
        return cone.drop(columns=[c for c in cone.columns if c.startswith("phot_")]), "J,H,Ks"
    drop = [c for c in cone.columns if c in NIR_BANDS or c in {f"e_{b}" for b in NIR_BANDS}
            or c.startswith(("tmass_", "vvv_"))]
    return cone.drop(columns=drop), "gaia only (no J, H, Ks)"


def _iso_ks(cfg: Config, row: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial mass, apparent VISTA Ks and J - Ks of the cluster's isochrone (CG20 distance, A0)."""
    iso = cluster_isochrone(cfg.local_dir, float(row["log_age"]), cfg.isochrone.metallicity_z,
                            use_parsec=cfg.sim.use_parsec, cluster=str(row["name"]))
    v = vista_from_twomass(twomass_from_gaia(iso["Gmag"].to_numpy(float), iso["G_BPmag"].to_numpy(float),
                                             iso["G_RPmag"].to_numpy(float)))
    a = nir_extinction(np.array(float(row["a0"])), "vista")
    ks = v["ks"] + float(row["dist_mod"]) + float(a["ks"])
    jk = v["j"] - v["ks"] + float(a["j"] - a["ks"])
    return iso["Mini"].to_numpy(float), ks, jk


def _mass(cfg: Config, row: pd.Series, cone: pd.DataFrame, prob: np.ndarray) -> dict:
    """PR22 Sect. 4.2 in Ks: profile, completeness magnitude, Kroupa extension."""
    mini, iso_ks, iso_jk = _iso_ks(cfg, row)
    ra, dec = np.radians(cone["ra"].to_numpy(float)), np.radians(cone["dec"].to_numpy(float))
    ra0, dec0 = np.radians(float(row["ra"])), np.radians(float(row["dec"]))
    cosang = np.sin(dec) * np.sin(dec0) + np.cos(dec) * np.cos(dec0) * np.cos(ra - ra0)
    r_pc = np.arccos(np.clip(cosang, -1, 1)) * float(row["dist_pc"])
    ks = cone["Ksmag"].to_numpy(float)
    jk = cone["Jmag"].to_numpy(float) - ks
    ok = np.isfinite(ks) & np.isfinite(jk)
    sel = ok & (prob >= P_MIN)
    if not sel.any():
        return {"status": f"no mass: no member with p >= {P_MIN}"}
    # the completeness of the data (the turnover of the Ks counts of every source of the field),
    # not of the members, as PR22 Sect. 4.2 and total_mass_from_members
    ks_complete = min(completeness_magnitude(ks[ok], min_count=MASS_MIN_COUNT), float(ks[sel].max()))
    try:
        est = total_mass(r_pc[ok], ks[ok], prob[ok], mini, iso_ks, colour=jk[ok], iso_colour=iso_jk,
                         g_complete=ks_complete,
                         r_max=float(np.radians(5 * float(row["r50"])) * float(row["dist_pc"])), p_min=P_MIN)
    except (OCMembersError, IndexError) as exc:   # IndexError: no member brighter than the completeness
        return {"status": f"no mass: {type(exc).__name__}: {exc}"}
    return {"status": "ok", **{k: float(v) for k, v in est.to_dict().items()}}


def pr22_cluster(cfg: Config, name: str) -> bool:
    """One cluster: field, XDGMM -> UPMASK, mass, truth metrics (module docstring)."""
    row = cluster_row(_table(cfg), name)
    field = vvv_field(cfg, row)
    members_p, stats_p = _cluster_paths(cfg, name)
    raw = _raw_paths(cfg, name)
    inputs = {f"raw/vvv/{name}.cone.parquet": product_sha(raw[0])}
    if field.truth is not None:
        inputs[f"raw/vvv/{name}.truth.parquet"] = product_sha(raw[1])
    rec = record(cfg, "pr22", sections=("methods", "isochrone"), inputs=inputs)
    done = cache.is_current(members_p, rec) and cache.is_current(stats_p, rec)
    if not done:
        table, photometry = pr22_input(field.cone)
        t0 = time.perf_counter()
        try:
            res = penaramirez22_members(table, row, cfg)
        except (RuntimeError, np.linalg.LinAlgError) as exc:  # a library failure inside the fit: this cluster only
            raise MethodError(f"cluster {name}: XDGMM + UPMASK: {type(exc).__name__}: {exc}") from exc
        wall = time.perf_counter() - t0
        prob = res["probability"].to_numpy(float)
        params = res.attrs.get("parameters", {})
        truth = field.truth
        metrics = (benchmark_cluster(res[["source_id", "probability"]], truth, cluster=name,
                                     method="xdgmm_upmask", thresholds=THRESHOLDS) if truth is not None else None)
        lit = int(row["n_literature_p09"])
        stats = {
            "cluster": name, "paper_name": row["paper_name"], "l": float(row["l"]), "b": float(row["b"]),
            "photometry": photometry, "source": cfg.source.name,
            "nir_coverage": field.meta.get("nir_coverage", "simulated 2MASS + VVV/VIRAC2"),
            "n_sources": int(len(table)), "n_after_cuts": params.get("n_after_cuts"),
            "n_xd_members": params.get("n_xd_members"), "n_p09": int((prob >= P_MIN).sum()),
            "n_literature_p09": lit, "n_pr22_p09": int(row["n_pr22_p09"]),
            "mass_pr22_msun": float(row["mass_pr22_msun"]), "mass_pr22_err_msun": float(row["mass_pr22_err_msun"]),
            "xd_converged": bool(params.get("xd_converged", False)), "xd_n_iter": params.get("xd_n_iter"),
            "xd_components_used": params.get("xd_components_used"),
            "xd_components_dropped": params.get("xd_components_dropped"),
            "xd_bootstrap": params.get("n_bootstrap"), "empty_reason": res.attrs.get("empty_reason", ""),
            "wall_s": round(wall, 3),
            "n_true_members": int(truth["is_member"].sum()) if truth is not None else None,
            "n_true_members_area": int(field.meta["n_members_area"]) if "n_members_area" in field.meta else None,
            "area_deg2": float(field.meta.get("area_deg2", np.nan)),
            "metrics": _metric_rows(metrics) if metrics is not None else [],
        }
        out = pd.DataFrame({"source_id": res["source_id"].to_numpy(np.int64), "probability": prob,
                            "p_xd": res["p_xd"].to_numpy(float)})
        members_p.parent.mkdir(parents=True, exist_ok=True)
        query = f"pr22 xdgmm_upmask {name}"
        cache.write_table(out, members_p, source=cfg.source.name, query=query, record=rec)
        cache.write_json_product(stats, stats_p, source=cfg.source.name, query=query, record=rec)
        log.info("%s: %d members at p >= 0.9 (literature %d, PR22 %d) in %.1f s", name, stats["n_p09"], lit,
                 stats["n_pr22_p09"], wall)
    compared = _compare(cfg, row) if _is_sim(cfg) else False   # the comparison needs the truth
    return (not done) or compared


def _metric_rows(metrics: pd.DataFrame) -> list[dict]:
    m = metrics.loc[metrics["variable"] == "all"]
    return [{"method": r["method"], "threshold": float(r["threshold"]), "n_true": int(r["n_true"]),
             "n_selected": int(r["n_selected"]), "precision": _f(r["precision"]), "recall": _f(r["recall"]),
             "f1": _f(r["f1"])} for _, r in m.iterrows()]


def _f(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _compare(cfg: Config, row: pd.Series) -> bool:
    """HDBSCAN (T22) and Deep Sets on the cluster's simulated Gaia cone, against its truth."""
    name = str(row["name"])
    path = _compare_path(cfg, name)
    spec = cfg.membership.model
    model_sha = "none"
    if spec == "trained":
        w = model_paths(cfg)["weights"]
        model_sha = product_sha(w) if w.is_file() else "absent"
        spec = str(w)
    elif spec:
        model_sha = str(spec)    # the published model (vg23) or a path
    rec = record(cfg, "pr22", sections=("methods", "sim", "cone", "membership"),
                 inputs={"model": model_sha, f"cluster[{name}]": cache.json_digest(
                     {k: row[k] for k in row.index if isinstance(row[k], (int, float, str))})})
    if cache.is_current(path, rec):
        return False
    src = SimSource(cfg)
    gaia_row = cluster_row(src._full_table(), name)
    raw_cone = src.cone(gaia_row)
    cone = preprocess_cone(raw_cone, cluster=name)
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
                # the raw cone: the Deep Sets pipeline preprocesses it itself (as the members stage)
                res = members_from_cone(raw_cone, name, spec, cfg)[["source_id", "probability"]]
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


# ---------------------------------------------------------------------------
# summary: statistics, tables, figures, macros, PDF
# ---------------------------------------------------------------------------
def _load(cfg: Config, names: list[str]) -> tuple[list[dict], list[dict], list[dict]]:
    stats, comps, metas = [], [], []
    for n in names:
        s_p, c_p, m_p = _cluster_paths(cfg, n)[1], _compare_path(cfg, n), _raw_paths(cfg, n)[2]
        if cache.is_valid(s_p):
            stats.append(cache.read_json(s_p))
        if cache.is_valid(c_p):
            comps.append(cache.read_json(c_p))
        if cache.is_valid(m_p):
            metas.append({"cluster": n, **cache.read_json(m_p)})
    return stats, comps, metas


def _pooled(rows: list[dict], method: str, threshold: float) -> dict:
    """Precision and recall of ``method`` pooled over clusters (sums of true/false positives)."""
    sel = [r for r in rows if r["method"] == method and r["threshold"] == threshold]
    tp = sum(round((r["precision"] or 0) * r["n_selected"]) for r in sel)
    n_sel = sum(r["n_selected"] for r in sel)
    n_true = sum(r["n_true"] for r in sel)
    return {"method": method, "threshold": threshold, "n_clusters": len(sel), "n_true": n_true,
            "n_selected": n_sel, "precision": tp / n_sel if n_sel else None,
            "recall": tp / n_true if n_true else None}


def summarise(cfg: Config, names: list[str]) -> dict:
    """Write ``pr22/statistics.json``, ``clusters.csv``, ``field_counts.csv``, figures and macros."""
    stats, comps, metas = _load(cfg, names)
    pub = published_pr22()
    out = _out(cfg)
    out.mkdir(parents=True, exist_ok=True)
    masses = [_cluster_mass(cfg, s["cluster"]) for s in stats]
    table = pd.DataFrame([{k: v for k, v in s.items() if k not in ("mass", "metrics")} |
                          {"mass_msun": m.get("total"), "mass_err_msun": m.get("uncertainty"),
                           "mass_ks_complete": m.get("g_complete"), "mass_status": m["status"]}
                          for s, m in zip(stats, masses)])
    table = _xd_truth(cfg, table)
    counts = _field_counts(metas)
    metric_rows = [dict(r, cluster=s["cluster"]) for s in stats for r in s["metrics"]]
    metric_rows += [dict(r, cluster=c["cluster"]) for c in comps for r in c["metrics"]]
    pooled = [_pooled(metric_rows, m, t) for m in ("xdgmm_upmask", "hdbscan_t22", "deep_sets") for t in THRESHOLDS]
    runs = {c["cluster"]: c["runs"] for c in comps}
    failed = failed_clusters(cfg, "pr22")
    n_lit = int(table["n_literature_p09"].sum()) if len(table) else 0
    n_ours = int(table["n_p09"].sum()) if len(table) else 0
    statistics = {
        "n_clusters_selected": len(names), "n_clusters_run": len(stats), "failed": failed,
        "n_literature_p09": n_lit, "n_ours_p09": n_ours,
        "increase_percent": 100.0 * (n_ours - n_lit) / n_ours if n_ours else None,
        "increase_percent_over_literature": 100.0 * (n_ours - n_lit) / n_lit if n_lit else None,
        "published": {k: v for k, v in pub.items() if k != "clusters"},
        "n_pr22_table2_p09_sum": int(sum(c["n_pr22_p09"] for c in pub["clusters"])),
        "n_fewer_than_literature": [s["cluster"] for s in stats if s["n_p09"] < s["n_literature_p09"]],
        "n_gaia_only": [s["cluster"] for s in stats if s["photometry"] != "J,H,Ks"],
        "source": cfg.source.name,
        "xd_not_converged": [s["cluster"] for s in stats if not s["xd_converged"]],
        "xd_found_cluster": ([str(c) for c in table.loc[table["xd_precision"] >= 0.5, "cluster"]]
                             if "xd_precision" in table else []),
        "wall_s": {s["cluster"]: {"wall_s": s["wall_s"], "n_sources": s["n_sources"],
                                  "n_after_cuts": s["n_after_cuts"]} for s in stats},
        "wall_s_total": float(sum(s["wall_s"] for s in stats)),
        "mass_msun_range": ([float(np.nanmin(table["mass_msun"])), float(np.nanmax(table["mass_msun"]))]
                            if len(table) and table["mass_msun"].notna().any() else None),
        "truth_pooled": pooled, "compare_runs": runs,
        "field_counts_reference": _count_reference(counts),
    }
    cache.write_json_product(statistics, out / "statistics.json", source=cfg.source.name, query="pr22 statistics")
    cache.write_table(table, out / "clusters.parquet", source=cfg.source.name, query="pr22 clusters")
    table.to_csv(out / "clusters.csv", index=False)
    counts.to_csv(out / "field_counts.csv", index=False)
    pd.DataFrame(metric_rows).to_csv(out / "truth_metrics.csv", index=False)
    figs = _figures(cfg, stats, metas, table)
    _macros(cfg, statistics, table, counts, figs)
    return statistics


def _cluster_mass(cfg: Config, name: str) -> dict:
    """The total mass of ``name`` from its member list and field (PR22 Sect. 4.2; :func:`_mass`)."""
    row = cluster_row(_table(cfg), name)
    cone = cache.read_table(_raw_paths(cfg, name)[0])
    mem = cache.read_table(_cluster_paths(cfg, name)[0])
    p = pd.Series(mem["probability"].to_numpy(float), index=mem["source_id"].to_numpy())
    return _mass(cfg, row, cone, p.reindex(cone["source_id"].to_numpy()).fillna(0.0).to_numpy())


def _xd_truth(cfg: Config, table: pd.DataFrame) -> pd.DataFrame:
    """Per cluster, what the XD step alone kept: the stars with ``p_xd >= 0.9`` and the fraction of
    the field's true members among them (``xd_recall``) and of them that are members (``xd_precision``):
    whether the lowest-entropy component was the cluster."""
    rows = []
    for name in table.get("cluster", pd.Series(dtype=str)):
        if not cache.is_valid(_raw_paths(cfg, name)[1]):      # no truth (the archive route)
            continue
        mem = cache.read_table(_cluster_paths(cfg, name)[0])
        truth = cache.read_table(_raw_paths(cfg, name)[1])
        p = pd.Series(mem["p_xd"].to_numpy(float), index=mem["source_id"].to_numpy())
        sel = p.reindex(truth["source_id"].to_numpy()).fillna(0.0).to_numpy() >= P_MIN
        true = truth["is_member"].to_numpy(bool)
        rows.append({"cluster": name, "n_xd_p09": int(sel.sum()),
                     "xd_recall": float((sel & true).sum() / max(true.sum(), 1)),
                     "xd_precision": float((sel & true).sum() / sel.sum()) if sel.any() else np.nan})
    return table.merge(pd.DataFrame(rows), on="cluster", how="left") if rows else table


def _field_counts(metas: list[dict]) -> pd.DataFrame:
    """Star counts per deg^2 of each field: Gaia G < 21, 2MASS Ks < 14.3, VVV Ks < 16, all Ks."""
    rows = []
    for m in metas:
        c, area = m["counts"], m["area_deg2"]
        eg, ek = np.asarray(c["edges_g"]), np.asarray(c["edges_ks"])

        def upto(key, edges, lim):
            return float(np.sum(np.asarray(c[key])[edges[1:] <= lim + 1e-9]) / area)
        rows.append({"cluster": m["cluster"], "area_deg2": area,
                     "gaia_g21_per_deg2": upto("gaia_g", eg, 21.0),
                     "tmass_ks14.3_per_deg2": upto("tmass_ks", ek, 14.3),
                     "vvv_ks16_per_deg2": upto("vvv_ks", ek, 16.0),
                     "vvv_all_per_deg2": float(np.sum(c["vvv_ks"]) / area),
                     "all_ks_per_deg2": float(np.sum(c["ks"]) / area)})
    return pd.DataFrame(rows)


#: Published VVV source densities to compare the simulated field with: Saito et al. (2012, A&A 544,
#: A147): 84.0 million stellar sources with J, H and Ks over the ~315 deg^2 of the VVV bulge area;
#: Minniti et al. (2010, New Astron. 15, 433): ~1e9 point sources over the 520 deg^2 of VVV (to Ks ~ 18).
REFERENCE_DENSITY = {"saito12_bulge_jhks_per_deg2": 84.0e6 / 315.0, "minniti10_vvv_per_deg2": 1.0e9 / 520.0}


def _count_reference(counts: pd.DataFrame) -> dict:
    out = dict(REFERENCE_DENSITY)
    if len(counts):
        out["ours_vvv_all_median_per_deg2"] = float(counts["vvv_all_per_deg2"].median())
        out["ours_vvv_all_max_per_deg2"] = float(counts["vvv_all_per_deg2"].max())
    return out


# -- figures ----------------------------------------------------------------
def _figures(cfg: Config, stats: list[dict], metas: list[dict], table: pd.DataFrame) -> dict[str, str]:
    import matplotlib
    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    fdir = _out(cfg) / "figures"
    fdir.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}
    meta_pdf = {"CreationDate": None, "ModDate": None}
    if len(table):
        # Fig. 1: p >= 0.9 members per cluster, literature vs PR22 vs ours
        t = table.reset_index(drop=True)
        x = np.arange(len(t))
        fig, ax = plt.subplots(figsize=(10, 3.6))
        ax.bar(x - 0.27, t["n_literature_p09"], 0.27, label="literature (PR22 Table 1)", color="0.6")
        ax.bar(x, t["n_pr22_p09"], 0.27, label="PR22 (their Table 2)", color="C0")
        ax.bar(x + 0.27, t["n_p09"], 0.27, color="C3",
               label="ours (simulated sky)" if _is_sim(cfg) else f"ours ({cfg.source.name} data)")
        ax.set_xticks(x, t["cluster"].str.replace("_", " "), rotation=75, fontsize=7)
        ax.set_ylabel("members with p >= 0.9")
        ax.legend(fontsize=8)
        fig.tight_layout()
        made["fig1"] = _save(fig, fdir / "pr22_fig1_counts.pdf", meta_pdf)
        # mass figure: ours vs PR22 Table 2
        fig, ax = plt.subplots(figsize=(4.2, 4))
        ok = t["mass_msun"].notna()
        ax.errorbar(t.loc[ok, "mass_pr22_msun"], t.loc[ok, "mass_msun"], xerr=t.loc[ok, "mass_pr22_err_msun"],
                    yerr=t.loc[ok, "mass_err_msun"], fmt="o", ms=3)
        lim = [50, 5000]
        ax.plot(lim, lim, "k:", lw=1)
        ax.set(xscale="log", yscale="log", xlim=lim, ylim=lim, xlabel="PR22 total mass (Msun)",
               ylabel="ours (Msun)")
        fig.tight_layout()
        made["mass"] = _save(fig, fdir / "pr22_mass.pdf", meta_pdf)
        # Fig. 2 and Appendix A: Ks vs J - Ks
        ratio = (t["n_p09"] + 1) / (t["n_literature_p09"] + 1)
        pick = [t.loc[int(np.argmax(ratio)), "cluster"], t.loc[int(np.argmin(ratio)), "cluster"]]
        made["fig2"] = _cmds(cfg, pick, fdir / "pr22_fig2_cmd.pdf", plt, meta_pdf)
        made["appendix"] = _cmds(cfg, list(t["cluster"]), fdir / "pr22_appendix_cmds.pdf", plt, meta_pdf)
    if metas:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), sharey=True)
        for m in metas:
            c = m["counts"]
            for ax, key, edges in ((axes[0], "gaia_g", c["edges_g"]), (axes[1], "vvv_ks", c["edges_ks"])):
                ax.plot(np.asarray(edges[1:]), np.cumsum(c[key]) / m["area_deg2"], lw=0.7, alpha=0.6)
            axes[1].plot(np.asarray(c["edges_ks"][1:]), np.cumsum(c["tmass_ks"]) / m["area_deg2"], "k", lw=0.3,
                         alpha=0.4)
        axes[1].axhline(REFERENCE_DENSITY["saito12_bulge_jhks_per_deg2"], color="C3", ls="--", lw=1,
                        label="Saito et al. 2012 (bulge mean, JHKs)")
        axes[0].set(yscale="log", xlabel="Gaia G", ylabel="N(< mag) per deg$^2$", xlim=(8, 22))
        axes[1].set(xlabel="Ks (VVV colours; black: 2MASS)", xlim=(6, 19))
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        made["counts"] = _save(fig, fdir / "pr22_field_counts.pdf", meta_pdf)
    plt.close("all")
    return made


def _save(fig, path: Path, metadata: dict) -> str:
    with cache.atomic_path(path) as tmp:
        fig.savefig(tmp, format="pdf", metadata=metadata)
    return str(path)


def _cmds(cfg: Config, names: list[str], path: Path, plt, metadata: dict) -> str:
    n = len(names)
    ncol = min(n, 6)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.2 * ncol, 2.6 * nrow), squeeze=False)
    for ax, name in zip(axes.flat, names):
        cone = cache.read_table(_raw_paths(cfg, name)[0])
        mem = cache.read_table(_cluster_paths(cfg, name)[0])
        sel = mem["probability"].to_numpy() >= P_MIN
        jk = cone["Jmag"] - cone["Ksmag"]
        ax.scatter(jk, cone["Ksmag"], s=0.2, c="0.8", rasterized=True)
        ax.scatter(jk[sel], cone["Ksmag"][sel], s=2, c="C3")
        ax.set(xlim=(-0.2, 3.0), ylim=(18, 6), title=name.replace("_", " "))
        ax.title.set_fontsize(8)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.supxlabel("J - Ks")
    fig.supylabel("Ks")
    fig.tight_layout()
    return _save(fig, path, metadata)


# -- the manuscript's numbers -----------------------------------------------
def _macro_name(s: str) -> str:
    digits = {"0": "Zero", "1": "One", "2": "Two", "3": "Three", "4": "Four", "5": "Five", "6": "Six",
              "7": "Seven", "8": "Eight", "9": "Nine"}
    return "".join(digits.get(ch, ch) for ch in re.sub(r"[^A-Za-z0-9]", "", s))


def _fmt(v, nd=0) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "--"
    return f"{v:,.{nd}f}".replace(",", "{,}") if isinstance(v, (int, float)) else str(v)


def _macros(cfg: Config, st: dict, table: pd.DataFrame, counts: pd.DataFrame, figs: dict[str, str]) -> None:
    build = PAPER_DIR / "build"
    build.mkdir(parents=True, exist_ok=True)
    pub = st["published"]
    m = {
        "nClustersSelected": _fmt(st["n_clusters_selected"]), "nClustersRun": _fmt(st["n_clusters_run"]),
        "nLitTotal": _fmt(st["n_literature_p09"]), "nOursTotal": _fmt(st["n_ours_p09"]),
        "increasePct": _fmt(st["increase_percent"], 0),
        "increaseOverLitPct": _fmt(st["increase_percent_over_literature"], 0),
        "pubLitTotal": _fmt(pub["n_literature_total"]["value"]), "pubOursTotal": _fmt(pub["n_pr22_total"]["value"]),
        "pubIncreasePct": _fmt(pub["increase_percent"]["value"]),
        "pubTableTwoSum": _fmt(st["n_pr22_table2_p09_sum"]),
        "pubMassMin": _fmt(pub["mass_min_msun"]["value"]), "pubMassMax": _fmt(pub["mass_max_msun"]["value"]),
        "wallTotal": _fmt(st["wall_s_total"], 0),
        "nFewer": _fmt(len(st["n_fewer_than_literature"])),
        "fewerNames": ", ".join(n.replace("_", " ") for n in st["n_fewer_than_literature"]) or "none",
        "nGaiaOnly": _fmt(len(st["n_gaia_only"])), "nNotConverged": _fmt(len(st["xd_not_converged"])),
        "nFailed": _fmt(len(st["failed"])),
        "nXdFound": _fmt(len(st["xd_found_cluster"])),
        "nEmpty": _fmt(int((table["n_p09"] == 0).sum()) if len(table) else 0),
        "refSaito": _fmt(REFERENCE_DENSITY["saito12_bulge_jhks_per_deg2"], 0),
        "refMinniti": _fmt(REFERENCE_DENSITY["minniti10_vvv_per_deg2"], 0),
        "oursVvvMedian": _fmt(st["field_counts_reference"].get("ours_vvv_all_median_per_deg2"), 0),
        "oursVvvMax": _fmt(st["field_counts_reference"].get("ours_vvv_all_max_per_deg2"), 0),
        "aKsAv": f"{A_KS_OVER_AV_VISTA}",
    }
    if st["mass_msun_range"]:
        m["massMin"], m["massMax"] = _fmt(st["mass_msun_range"][0]), _fmt(st["mass_msun_range"][1])
    else:
        m["massMin"] = m["massMax"] = "--"
    for r in st["truth_pooled"]:
        key = _macro_name(f"{r['method']}P{int(r['threshold'] * 10)}")
        m[f"prec{key}"] = _fmt(r["precision"], 2)
        m[f"rec{key}"] = _fmt(r["recall"], 2)
        m[f"nCl{key}"] = _fmt(r["n_clusters"])
    lines = [f"\\newcommand{{\\{k}}}{{{v}}}" for k, v in sorted(m.items())]
    (build / "numbers.tex").write_text("\n".join(lines) + "\n")
    # the per-cluster table (counts, masses, wall times)
    rows = []
    for _, r in table.iterrows():
        rows.append(" & ".join([r["cluster"].replace("_", " "), _fmt(int(r["n_literature_p09"])),
                                _fmt(int(r["n_pr22_p09"])), _fmt(int(r["n_p09"])),
                                _fmt(r["mass_pr22_msun"]), _fmt(r["mass_msun"]), _fmt(int(r["n_sources"])),
                                _fmt(r["wall_s"], 1), "yes" if r["xd_converged"] else "no",
                                "NIR" if r["photometry"] == "J,H,Ks" else "Gaia"]) + r" \\")
    (build / "clusters_table.tex").write_text("\n".join(rows) + "\n")
    crow = [" & ".join([c["cluster"].replace("_", " "), _fmt(c["gaia_g21_per_deg2"]),
                        _fmt(c["tmass_ks14.3_per_deg2"]), _fmt(c["vvv_ks16_per_deg2"]),
                        _fmt(c["vvv_all_per_deg2"])]) + r" \\" for _, c in counts.iterrows()]
    (build / "counts_table.tex").write_text("\n".join(crow) + "\n")
    for key, p in figs.items():
        shutil.copyfile(p, build / Path(p).name)


def _build_pdf() -> str:
    if shutil.which("latexmk") is None or not (PAPER_DIR / "ms.tex").is_file():
        return "latexmk or paper/pr22/ms.tex not found: paper/pr22/ms.pdf not built"
    env = dict(os.environ, SOURCE_DATE_EPOCH=os.environ.get("SOURCE_DATE_EPOCH", "0"))
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "ms.tex"],
                          cwd=PAPER_DIR, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise OCMembersError(f"pr22: latexmk failed on paper/pr22/ms.tex:\n{proc.stdout[-2000:]}")
    return str(PAPER_DIR / "ms.pdf")


def main(args, cfg: Config) -> StageReport | None:
    """The CLI entry: :func:`run`; with ``--if-any`` (``make all``) nothing is done, successfully,
    when ``CLUSTERS`` names none of PR22's clusters (an explicit ``make pr22`` then fails)."""
    wanted = list(cfg.clusters.names)
    if getattr(args, "if_any", False) and wanted and not set(wanted) & set(pr22_names()):
        print(f"pr22: none of CLUSTERS ({', '.join(wanted)}) is among PR22's 37 clusters; nothing to do")
        return None
    return run(cfg)


def run(cfg: Config) -> StageReport:
    names = _names(cfg)
    _table(cfg)
    sweep(cfg.raw_dir / "vvv", _out(cfg) / "clusters", _out(cfg) / "compare")
    report = for_each_cluster(cfg, names, pr22_cluster, "pr22", raise_on_failure=False)
    st = summarise(cfg, names)
    print(f"pr22: {st['n_clusters_run']} of {st['n_clusters_selected']} clusters; {st['n_ours_p09']} members "
          f"at p >= 0.9 against {st['n_literature_p09']} in the literature; XD+UPMASK {st['wall_s_total']:.0f} s")
    print(_build_pdf())
    return report
