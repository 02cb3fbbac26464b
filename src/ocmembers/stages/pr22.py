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

The total mass takes the isochrone's VISTA J and Ks from CMD on ``SOURCE=archive`` and ``local``
(:func:`nir_isochrone`; one single-age request per cluster, kept under ``raw/isochrones/``), and on
``SOURCE=sim`` from the Gaia bands as the simulated sky was made (Evans et al. 2018, Eq. 2); the
cluster table says which (``mass_isochrone``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError
from ocmembers.method.columns import cluster_row
from ocmembers.method.cluster_mass import completeness_magnitude, total_mass
from ocmembers.sim.isochrones import cluster_isochrone
from ocmembers.sim.nir import A_KS_OVER_AV_VISTA, nir_extinction, twomass_from_gaia, vista_from_twomass
from ocmembers.sources import cache
from ocmembers.sources.pr22 import pr22_names, published_pr22
from ocmembers.stages.pr22_cluster import (NIR_BANDS, NIR_FETCHED, P_MIN, THRESHOLDS, _cluster_paths, _compare_path,
                                           _is_sim, _names, _out, _raw_paths, _table, pr22_cluster, pr22_input)
from ocmembers.stages.pr22_compare import compare_cluster
from ocmembers.stages.runner import StageReport, failed_clusters, for_each_cluster, sweep

__all__ = ["run", "main", "pr22_cluster", "pr22_input", "summarise", "NIR_BANDS", "THRESHOLDS"]

log = logging.getLogger(__name__)
PAPER_DIR = Path(__file__).resolve().parents[3] / "paper" / "pr22"


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


def _range(values: pd.Series) -> list[float] | None:
    v = values.to_numpy(float)
    return [float(np.nanmin(v)), float(np.nanmax(v))] if np.isfinite(v).any() else None


def summarise(cfg: Config, names: list[str]) -> dict:
    """Write ``pr22/statistics.json``, ``clusters.csv``, ``field_counts.csv``, figures and macros."""
    stats, comps, metas = _load(cfg, names)
    pub = published_pr22()
    out = _out(cfg)
    out.mkdir(parents=True, exist_ok=True)
    masses = [_cluster_mass(cfg, s["cluster"]) for s in stats]
    table = pd.DataFrame([{k: v for k, v in s.items() if k not in ("mass", "metrics")} |
                          {"mass_msun": m.get("total"), "mass_err_msun": m.get("uncertainty"),
                           "mass_ks_complete": m.get("g_complete"), "mass_status": m["status"],
                           "mass_isochrone": m.get("isochrone", "")}
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
        "mass_msun_range": _range(table["mass_msun"]) if len(table) else None,
        # where the XD component is the cluster: elsewhere a field component's "members" give a
        # field's mass (millions of Msun), which says nothing about the method's masses
        "mass_msun_range_found": (_range(table.loc[table["xd_precision"] >= 0.5, "mass_msun"])
                                  if "xd_precision" in table else None),
        "truth_pooled": pooled, "compare_runs": runs,
        "deep_sets_model": cfg.membership.model, "deep_sets_n_samples": int(cfg.membership.n_samples),
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


#: Sources per 0.5-mag bin before a fall of the field's Ks counts marks its completeness (the few
#: brightest stars of a field fluctuate).
MASS_MIN_COUNT = 50


def nir_isochrone(cfg: Config, row: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Initial mass and absolute VISTA J and Ks of the cluster's isochrone, and where they come from.

    ``SOURCE=archive`` and ``local`` (whose NIR fields come from the services too) ask CMD for the
    VISTA bands (:meth:`ocmembers.sources.archive.ArchiveSource.nir_isochrone`, PR22's
    PARSEC-COLIBRI in their system). ``SOURCE=sim`` uses the bands the simulated sky was made
    with: the Gaia bands of the local grids through Evans et al. (2018, Eq. 2) and
    González-Fernández et al. (2018) (:mod:`ocmembers.sim.nir`).
    """
    if cfg.source.name in NIR_FETCHED:
        from ocmembers.sources.archive import ArchiveSource
        iso = ArchiveSource(cfg).nir_isochrone(float(row["log_age"]), photsys="vista")
        return (iso["Mini"].to_numpy(float), iso["Jmag"].to_numpy(float), iso["Ksmag"].to_numpy(float),
                iso.attrs.get("provenance", "CMD vista"))
    iso = cluster_isochrone(cfg.local_dir, float(row["log_age"]), cfg.isochrone.metallicity_z,
                            use_parsec=cfg.sim.use_parsec, cluster=str(row["name"]))
    v = vista_from_twomass(twomass_from_gaia(iso["Gmag"].to_numpy(float), iso["G_BPmag"].to_numpy(float),
                                             iso["G_RPmag"].to_numpy(float)))
    return (iso["Mini"].to_numpy(float), v["j"], v["ks"],
            "Gaia bands of the local PARSEC grid through Evans et al. (2018) and Gonzalez-Fernandez et al. (2018)")


def _iso_ks(cfg: Config, row: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Initial mass, apparent VISTA Ks and J - Ks of the cluster's isochrone (CG20 distance, A0),
    and the isochrone's provenance (:func:`nir_isochrone`)."""
    mini, j, k, provenance = nir_isochrone(cfg, row)
    a = nir_extinction(np.array(float(row["a0"])), "vista")
    ks = k + float(row["dist_mod"]) + float(a["ks"])
    jk = j - k + float(a["j"] - a["ks"])
    return mini, ks, jk, provenance


def _mass(cfg: Config, row: pd.Series, cone: pd.DataFrame, prob: np.ndarray) -> dict:
    """PR22 Sect. 4.2 in Ks: profile, completeness magnitude, Kroupa extension."""
    try:
        mini, iso_ks, iso_jk, provenance = _iso_ks(cfg, row)
    except OCMembersError as exc:   # e.g. CMD unreachable: this cluster has no mass, the rest go on
        return {"status": f"no mass: isochrone: {type(exc).__name__}: {exc}", "isochrone": ""}
    ra, dec = np.radians(cone["ra"].to_numpy(float)), np.radians(cone["dec"].to_numpy(float))
    ra0, dec0 = np.radians(float(row["ra"])), np.radians(float(row["dec"]))
    cosang = np.sin(dec) * np.sin(dec0) + np.cos(dec) * np.cos(dec0) * np.cos(ra - ra0)
    r_pc = np.arccos(np.clip(cosang, -1, 1)) * float(row["dist_pc"])
    ks = cone["Ksmag"].to_numpy(float)
    jk = cone["Jmag"].to_numpy(float) - ks
    ok = np.isfinite(ks) & np.isfinite(jk)
    sel = ok & (prob >= P_MIN)
    if not sel.any():
        return {"status": f"no mass: no member with p >= {P_MIN}", "isochrone": provenance}
    # the completeness of the data (the turnover of the Ks counts of every source of the field),
    # not of the members, as PR22 Sect. 4.2 and total_mass_from_members
    ks_complete = min(completeness_magnitude(ks[ok], min_count=MASS_MIN_COUNT), float(ks[sel].max()))
    try:
        est = total_mass(r_pc[ok], ks[ok], prob[ok], mini, iso_ks, colour=jk[ok], iso_colour=iso_jk,
                         g_complete=ks_complete,
                         r_max=float(np.radians(5 * float(row["r50"])) * float(row["dist_pc"])), p_min=P_MIN)
    except (OCMembersError, IndexError) as exc:   # IndexError: no member brighter than the completeness
        return {"status": f"no mass: {type(exc).__name__}: {exc}", "isochrone": provenance}
    return {"status": "ok", "isochrone": provenance, **{k: float(v) for k, v in est.to_dict().items()}}


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
        "dsSamples": _fmt(st["deep_sets_n_samples"]),
        "dsModel": str(st["deep_sets_model"]).replace("_", r"\_"),
    }
    for key, lo, hi in (("mass_msun_range", "massMin", "massMax"), ("mass_msun_range_found", "massMinFound", "massMaxFound")):
        r = st.get(key)
        m[lo], m[hi] = (_fmt(r[0]), _fmt(r[1])) if r else ("--", "--")
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
    if _is_sim(cfg):   # the comparison needs the truth; a pass of its own (its own record)
        ran = [n for n in names if n not in report.failed]
        compared = for_each_cluster(cfg, ran, compare_cluster, "pr22_compare", raise_on_failure=False)
        report.failed.update({n: f"comparison: {why}" for n, why in compared.failed.items()})
    st = summarise(cfg, names)
    print(f"pr22: {st['n_clusters_run']} of {st['n_clusters_selected']} clusters; {st['n_ours_p09']} members "
          f"at p >= 0.9 against {st['n_literature_p09']} in the literature; XD+UPMASK {st['wall_s_total']:.0f} s")
    print(_build_pdf())
    return report
