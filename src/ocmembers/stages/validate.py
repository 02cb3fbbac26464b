"""Stage ``validate``: the comparison with Tarricq et al. (2022) of Sect. 4.

For the test clusters, our members (``members/<c>.parquet``) are compared
with the T22 lists:

* the two Venn diagrams of Fig. 3: all members at p >= 0.1, and members at
  p >= 0.5 within 20 pc projected radius and brighter than G = 18;
* the clusters where 100% of those T22 members are recovered;
* the T22 members we miss (non-members, or p < 0.1) and why: not candidates
  (which of Eqs. 3, 4, 5 failed), candidates with low probability (their
  mean projected radius), or not in the cone at all;
* the fraction of our p >= 0.1 members fainter than G = 18 (median and per
  cluster);
* the 15/50/85th percentiles of f_plx and f_mu (Eqs. 15-16) of both lists;
* the share of RUWE > 1.4 among our extra members.

Everything goes to one machine-readable file, ``validation/statistics.json``,
with per-cluster rows in ``validation/clusters.csv``; the paper's text
macros are generated from it (:mod:`ocmembers.stages.paper`). On the simulated sky
the same comparison is also made against the truth.

Every product read is verified (a corrupted member list is refused: that
cluster is left out with the reason, and the members stage rebuilds it).
Record: ``[validation]``, the sha256 of the T22 lists, of every test
cluster's member list and sets, and the code; ``statistics.json``'s manifest
is written last.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.sources.cache import read_table, write_json, atomic_path
from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError
from ocmembers.sources import cache
from ocmembers.stages.products import (SET_NAMES, load_members, load_params, members_paths, params_path,
                                       set_path, statistics_path)
from ocmembers.stages.runner import cluster_names, n_clusters, product_sha, record, sweep, up_to_date

__all__ = ["run", "cluster_comparison", "summarise", "load_cone_table"]

log = logging.getLogger(__name__)



def load_cone_table(cfg: Config, name: str) -> pd.DataFrame:
    """All cone sources of ``name`` (the three set files), with a ``set`` column."""
    parts = []
    for kind in SET_NAMES:
        path = set_path(cfg, name, kind)
        if not path.is_file():
            raise OCMembersError(f"cluster {name}: {path} missing; run the sets stage")
        t = read_table(path)
        t["set"] = kind
        parts.append(t)
    cone = pd.concat(parts, ignore_index=True)
    # a training member may also be a candidate: keep one row per source, members first
    return cone.drop_duplicates("source_id", keep="first").reset_index(drop=True)


def cluster_comparison(cfg: Config, name: str, t22_all: pd.DataFrame) -> dict[str, Any]:
    """Join our probabilities, the cone and the T22 list of one cluster.

    Returns a dict with the per-source table (``table``: one row per source
    in our cone or in T22) and the cluster parameters.
    """
    v = cfg.validation
    ours = load_members(cfg, name)  # verified: a corrupted list is refused
    from ocmembers.method.features import projected_radius
    params = load_params(cfg, name)
    cone = load_cone_table(cfg, name)
    t22 = t22_all.loc[t22_all["cluster"] == name]
    table = cone.merge(ours[["source_id", "probability"]], on="source_id", how="left")
    table["probability"] = table["probability"].fillna(0.0)
    table["in_cone"] = True
    table["t22"] = table["source_id"].isin(t22["source_id"])
    table = table.merge(t22[["source_id", "probability"]].rename(columns={"probability": "t22_probability"}),
                        on="source_id", how="left")
    # T22 members absent from our cone (outside 50 pc, outside Eqs. 1-2, or no G_RP)
    absent = t22.loc[~t22["source_id"].isin(cone["source_id"])]
    if len(absent):
        extra = pd.DataFrame({
            "source_id": absent["source_id"].to_numpy(),
            "ra": absent["ra"].to_numpy(), "dec": absent["dec"].to_numpy(),
            "pmra": absent["pmra"].to_numpy(), "pmdec": absent["pmdec"].to_numpy(),
            "parallax": absent["parallax"].to_numpy(),
            "phot_g_mean_mag": absent["phot_g_mean_mag"].to_numpy(),
            "f_r": projected_radius(absent["ra"].to_numpy(float), absent["dec"].to_numpy(float), params),
            "f_pm": np.hypot(absent["pmra"].to_numpy(float) - params.pmra, absent["pmdec"].to_numpy(float) - params.pmdec),
            "f_plx": absent["parallax"].to_numpy(float) - params.parallax,
            "probability": 0.0, "in_cone": False, "t22": True,
            "t22_probability": absent["probability"].to_numpy(), "set": "absent",
        })
        table = pd.concat([table, extra], ignore_index=True)
    table["cluster"] = name
    return {"table": table, "params": params}


def _venn(ours: np.ndarray, t22: np.ndarray) -> dict[str, int]:
    return {"ours_only": int((ours & ~t22).sum()), "t22_only": int((t22 & ~ours).sum()),
            "both": int((ours & t22).sum()), "ours": int(ours.sum()), "t22": int(t22.sum())}


def _pct(x: pd.Series | np.ndarray) -> list[float]:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return [float(v) for v in np.percentile(x, [15, 50, 85])] if len(x) else [float("nan")] * 3


#: the columns of a comparison table that :func:`summarise` reads
SUMMARY_COLUMNS = ("cluster", "phot_g_mean_mag", "probability", "t22", "t22_probability", "f_r", "f_plx",
                   "f_pm", "candidate", "in_cone", "pass_pm", "pass_plx", "pass_iso", "ruwe")

#: the per-cluster member counts of ``clusters.csv`` (besides ``[validation]``'s thresholds)
_COUNT_THRESHOLDS = (0.5, 0.9)


def summary_rows(table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """The part of one comparison table that can change :func:`summarise`'s result.

    A field star below every probability threshold and not in T22 counts in
    no statistic; the whole cone (about 10^5 rows and every set-file column
    per cluster) is dropped to the T22 rows and our members, in the columns
    :func:`summarise` reads. Holding all test clusters' full tables set the
    validate stage's 11 GB peak.
    """
    v = cfg.validation
    p_min = min(v.probability_all, v.probability_strict, *_COUNT_THRESHOLDS)
    keep = table["t22"].to_numpy(bool) | (table["probability"].to_numpy(float) >= p_min)
    return table.loc[keep, [c for c in SUMMARY_COLUMNS if c in table]].reset_index(drop=True)


def summarise(tables: list[pd.DataFrame], cfg: Config, clusters: list[str] | None = None
              ) -> tuple[dict[str, Any], pd.DataFrame]:
    """The statistics of Sect. 4 from the per-cluster comparison tables.

    ``clusters`` names every cluster compared, so that one left with no row
    by :func:`summary_rows` (no T22 member, no member of ours) still counts,
    with zero members; by default, the clusters the tables hold.
    """
    v = cfg.validation
    t = pd.concat(tables, ignore_index=True)
    names = sorted(set(t["cluster"]) | set(clusters or ()))
    g = t["phot_g_mean_mag"].to_numpy(float)
    p = t["probability"].to_numpy(float)
    t22 = t["t22"].to_numpy(bool)
    t22p = t["t22_probability"].fillna(0.0).to_numpy(float)
    near = t["f_r"].to_numpy(float) < v.radius_pc
    bright = g < v.g_max
    ours_all = p >= v.probability_all
    ours_strict = (p >= v.probability_strict) & near & bright
    t22_strict = t22 & (t22p >= v.probability_strict) & near & bright

    stats: dict[str, Any] = {"n_clusters": len(names),
                             "thresholds": {"p_all": v.probability_all, "p_strict": v.probability_strict,
                                            "radius_pc": v.radius_pc, "g_max": v.g_max, "ruwe": v.ruwe_max}}
    stats["venn_all"] = _venn(ours_all, t22)
    stats["venn_strict"] = _venn(ours_strict, t22_strict)

    # missed T22 members: non-members (or not in our cone) or p < p_all
    missed = t22 & ~ours_all
    cand = t.get("candidate", pd.Series(False, index=t.index)).fillna(False).to_numpy(bool)
    in_cone = t["in_cone"].to_numpy(bool)
    non_cand = missed & in_cone & ~cand
    low_p = missed & cand
    fail = {}
    for flag, key in (("pass_pm", "proper_motion"), ("pass_plx", "parallax"), ("pass_iso", "isochrone")):
        col = t[flag].fillna(True).to_numpy(bool) if flag in t else np.zeros(len(t), bool)
        fail[key] = float((non_cand & ~col).sum() / max(non_cand.sum(), 1))
    r_low = t.loc[low_p, "f_r"].to_numpy(float)
    stats["t22_missed"] = {
        "n": int(missed.sum()), "fraction_of_t22": float(missed.sum() / max(t22.sum(), 1)),
        "fraction_candidates": float(low_p.sum() / max(missed.sum(), 1)),
        "fraction_not_in_cone": float((missed & ~in_cone).sum() / max(missed.sum(), 1)),
        "fraction_non_candidates_in_cone": float(non_cand.sum() / max(missed.sum(), 1)),
        "non_candidates_failing": fail,
        "low_p_candidates_radius_pc_mean": float(np.mean(r_low)) if len(r_low) else float("nan"),
        "low_p_candidates_radius_pc_std": float(np.std(r_low)) if len(r_low) else float("nan"),
    }

    rows = []
    groups = dict(tuple(t.groupby("cluster", sort=True)))
    for name in names:
        c = groups.get(name, t.iloc[:0])
        cp = c["probability"].to_numpy(float)
        cg = c["phot_g_mean_mag"].to_numpy(float)
        c_t22 = c["t22"].to_numpy(bool)
        c_near = c["f_r"].to_numpy(float) < v.radius_pc
        c_strict_t22 = c_t22 & (c["t22_probability"].fillna(0).to_numpy(float) >= v.probability_strict) & c_near & (cg < v.g_max)
        c_strict_ours = (cp >= v.probability_strict) & c_near & (cg < v.g_max)
        n_all = int((cp >= v.probability_all).sum())
        rows.append({
            "cluster": name,
            "n_ours_p01": n_all, **{f"n_ours_p{round(10 * q):02d}": int((cp >= q).sum()) for q in _COUNT_THRESHOLDS},
            "n_t22": int(c_t22.sum()),
            "n_t22_strict": int(c_strict_t22.sum()),
            "n_t22_strict_recovered": int((c_strict_t22 & c_strict_ours).sum()),
            "fraction_faint_p01": float(((cp >= v.probability_all) & (cg > v.g_max)).sum() / n_all) if n_all else float("nan"),
        })
    per = pd.DataFrame(rows)
    has_strict = per["n_t22_strict"] > 0
    stats["n_clusters_full_recovery"] = int((has_strict & (per["n_t22_strict_recovered"] == per["n_t22_strict"])).sum())
    stats["n_clusters_with_strict_t22"] = int(has_strict.sum())
    stats["faint"] = {"median_fraction_g_gt_gmax_p_all": float(np.nanmedian(per["fraction_faint_p01"])),
                      "max_fraction_g_gt_gmax_p_all": float(np.nanmax(per["fraction_faint_p01"])) if len(per) else float("nan")}
    stats["percentiles"] = {
        "ours": {"f_plx": _pct(t.loc[ours_strict, "f_plx"]), "f_pm": _pct(t.loc[ours_strict, "f_pm"])},
        "t22": {"f_plx": _pct(t.loc[t22_strict, "f_plx"]), "f_pm": _pct(t.loc[t22_strict, "f_pm"])},
    }
    extra = ours_all & bright & ~t22
    ruwe = t["ruwe"].to_numpy(float) if "ruwe" in t else np.full(len(t), np.nan)
    stats["ruwe"] = {"n_extra_bright": int(extra.sum()),
                     "fraction_extra_ruwe_gt_max": float((extra & (ruwe > v.ruwe_max)).sum() / max(extra.sum(), 1))}
    stats["members"] = {"total_p_all": int(ours_all.sum()), "total_p_strict_near_bright": int(ours_strict.sum()),
                        "t22_total": int(t22.sum()), "t22_strict_near_bright": int(t22_strict.sum())}
    return stats, per


def truth_lists(cfg: Config, names: list[str]) -> pd.DataFrame:
    """The true members of simulated clusters, as a member list (the T22 columns, p = 1)."""
    from ocmembers.sources import get_source
    source = get_source(cfg)
    parts = []
    for name in names:
        sim = source.simulated(name)
        mem = sim.cone.loc[sim.truth["is_member"].to_numpy(bool)]
        parts.append(pd.DataFrame({"cluster": name, "source_id": mem["source_id"].to_numpy(),
                                   "ra": mem["ra"].to_numpy(), "dec": mem["dec"].to_numpy(),
                                   "pmra": mem["pmra"].to_numpy(), "pmdec": mem["pmdec"].to_numpy(),
                                   "parallax": mem["parallax"].to_numpy(),
                                   "phot_g_mean_mag": mem["phot_g_mean_mag"].to_numpy(), "probability": 1.0}))
    return pd.concat(parts, ignore_index=True)


def _compare_all(cfg: Config, names: list[str], reference: pd.DataFrame, what: str
                 ) -> tuple[dict[str, Any], pd.DataFrame, dict[str, str]]:
    tables, failed = [], {}
    for name in names:
        try:
            # only the rows and columns the statistics read are kept, one cluster at a time
            tables.append(summary_rows(cluster_comparison(cfg, name, reference)["table"], cfg))
        except (OCMembersError, FileNotFoundError) as exc:
            failed[name] = str(exc)
            print(f"validate: {name}: skipped: {exc}", file=sys.stderr)
    if not tables:
        raise OCMembersError(f"validate: no test cluster has members to compare with {what} "
                             f"({len(failed)} failed)")
    stats, per = summarise(tables, cfg, clusters=[n for n in names if n not in failed])
    return stats, per, failed


def _record(cfg: Config, names: list[str]) -> dict:
    inputs: dict[str, str] = {"raw/catalogues/t22_members.parquet":
                              product_sha(cfg.raw_dir / "catalogues" / "t22_members.parquet")}
    for n in names:
        for p in (members_paths(cfg, n)[0], *(set_path(cfg, n, k) for k in SET_NAMES), params_path(cfg, n)):
            try:
                inputs[str(p.relative_to(cfg.out_dir))] = product_sha(p) if p.is_file() else "missing"
            except OCMembersError:
                inputs[str(p.relative_to(cfg.out_dir))] = "corrupted"
    return record(cfg, "validate", sections=("validation",), inputs=inputs)


def run(cfg: Config) -> dict[str, Any]:
    names = cluster_names(cfg, "test")
    out = cfg.out_dir / "validation"
    sweep(out)
    rec = _record(cfg, names)
    products = [out / "clusters.csv", statistics_path(cfg)]
    if cfg.source.name == "sim":
        products[:0] = [out / "truth_clusters.csv", out / "truth_statistics.json"]
    if up_to_date(products, rec):
        print(f"validate: 0 done, 1 up to date ({statistics_path(cfg)})", file=sys.stderr)
        return cache.read_json(statistics_path(cfg))
    t22_all = read_table(cfg.raw_dir / "catalogues" / "t22_members.parquet")
    stats, per, failed = _compare_all(cfg, names, t22_all, "T22")
    stats["clusters"] = sorted(set(names) - set(failed))
    stats["failed"] = failed
    stats["source"] = cfg.source.name
    src, query = cfg.source.name, f"validation of {len(names)} test cluster(s) against T22"
    if cfg.source.name == "sim":
        # the same comparison against the truth, which only the simulated sky has
        done = [n for n in names if n not in failed]
        truth_stats, truth_per, _ = _compare_all(cfg, done, truth_lists(cfg, done), "the truth")
        truth_stats["reference"] = "truth"
        _write_csv(truth_per, out / "truth_clusters.csv", src, query, rec)
        cache.write_json_product(truth_stats, out / "truth_statistics.json", source=src, query=query, record=rec)
        va = truth_stats["venn_all"]
        print(f"validate: against the truth, p >= {cfg.validation.probability_all}: precision "
              f"{va['both'] / max(va['ours'], 1):.3f}, recall {va['both'] / max(va['t22'], 1):.3f} "
              f"-> {out / 'truth_statistics.json'}", file=sys.stderr)
    _write_csv(per, out / "clusters.csv", src, query, rec)
    cache.write_json_product(stats, statistics_path(cfg), source=src, query=query, record=rec)  # last
    print(f"validate: {n_clusters(stats['n_clusters'])} -> {statistics_path(cfg)}", file=sys.stderr)
    print("validate: 1 done, 0 up to date", file=sys.stderr)
    return stats


def _write_csv(table: pd.DataFrame, path: Path, source: str, query: str, rec: dict) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    cache.write_manifest(path, source=source, query=query, rows=len(table), record=rec)
