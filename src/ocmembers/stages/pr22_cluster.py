"""The per-cluster work of stage ``pr22`` (:mod:`ocmembers.stages.pr22`, steps 1-2): the field and
XDGMM -> UPMASK (the comparison with HDBSCAN and Deep Sets: :mod:`.pr22_compare`).

Apart from the summary so that the products' record (the code of this module and what it
imports) does not change with the statistics, figures and paper of
:func:`ocmembers.stages.pr22.summarise`: editing those redoes no cluster.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import ConfigError
from ocmembers.method.columns import cluster_row
from ocmembers.method.member_table import MethodError
from ocmembers.method.penaramirez22 import penaramirez22_members
from ocmembers.sim.metrics import benchmark_cluster
from ocmembers.sim.source import SimSource
from ocmembers.sim.vvv import COUNT_EDGES, VVV_CONE_VERSION, VVVCone, simulate_vvv_cone, star_counts
from ocmembers.sources import cache
from ocmembers.sources.nir_archive import fetch_field, field_radius_deg
from ocmembers.sources.pr22 import pr22_cluster_table, pr22_names
from ocmembers.stages.products import catalogue_paths
from ocmembers.stages.runner import product_sha, record

__all__ = ["pr22_cluster", "pr22_input", "vvv_field", "archive_field", "field_meta", "NIR_BANDS", "THRESHOLDS", "P_MIN"]

log = logging.getLogger("ocmembers.stages.pr22")

#: The combined near-infrared columns of the PR22 fields (VISTA system).
NIR_BANDS = ("Jmag", "Hmag", "Ksmag")
#: Probability thresholds of the truth metrics (PR22 count members at p >= 0.9).
THRESHOLDS = (0.5, 0.9)
P_MIN = 0.9


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
                 inputs={f"cluster[{name}]": _row_digest(row)})
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


def pr22_cluster(cfg: Config, name: str) -> bool:
    """One cluster: field, XDGMM -> UPMASK, mass, truth metrics (module docstring)."""
    row = cluster_row(_table(cfg), name)
    field = vvv_field(cfg, row)
    members_p, stats_p = _cluster_paths(cfg, name)
    raw = _raw_paths(cfg, name)
    inputs = {f"raw/vvv/{name}.cone.parquet": product_sha(raw[0])}
    if field.truth is not None:
        inputs[f"raw/vvv/{name}.truth.parquet"] = product_sha(raw[1])
    rec = record(cfg, "pr22", sections=("methods", "isochrone"), inputs=inputs, code_of=(__name__,))
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
    return not done


def _metric_rows(metrics: pd.DataFrame) -> list[dict]:
    m = metrics.loc[metrics["variable"] == "all"]
    return [{"method": r["method"], "threshold": float(r["threshold"]), "n_true": int(r["n_true"]),
             "n_selected": int(r["n_selected"]), "precision": _f(r["precision"]), "recall": _f(r["recall"]),
             "f1": _f(r["f1"])} for _, r in m.iterrows()]


def _f(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
