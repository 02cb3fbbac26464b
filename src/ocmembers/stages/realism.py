r"""Stage ``realism``: the simulated sky held against the real catalogues (``make realism``).

The reproduction runs on the simulated sky, so each of its numbers is only as
real as the simulation. This stage compares, without tuning anything, what the
simulation makes with independent real data in ``DATA_DIR`` (issue 16):

* **T22 lists.** For every test cluster (``samples.json``; with ``CLUSTERS``, or
  before the catalogues stage, every simulated cluster) with a real Tarricq et al. (2022)
  list (``catalogues/t22_members_edr3.csv.gz``): the simulated T22-like list
  (HDBSCAN on the simulated 50 pc field, :func:`ocmembers.sim.catalogues.t22_like_members`)
  against the real one.
* **CG18 lists.** For the training and validation clusters (or as above), the simulated
  CG20-like lists (members with p >= 0.7, as
  CG20's ``n07``) against the real CG18 lists (``catalogues/cg18_members_dr2.csv.gz``,
  PMemb >= 0.7).
* **Beyond the Jacobi radius.** For the clusters held against T22 that Hunt & Reffert
  (2024, ``catalogues/hunt2024_table.csv``) list: the fraction beyond their Jacobi radius
  (projected, at the catalogued distance) of Hunt's own members (``1 - NJ/N``), of the real
  T22 list, of the T22-like list and of the true members with G < 18. Hunt's and T22's lists
  are two real censuses of the same clusters' outskirts.
* **Plain fields** (``gaia/fields/ra<RA>_dec<DEC>_r<R>deg.<ext>``: a complete
  real Gaia cone with no cluster): the simulated sky's field at the same position
  (:func:`ocmembers.sim.plain_field.simulate_plain_field`) against the real one, per G
  bin (:func:`ocmembers.method.realism.field_statistics`): star counts, RUWE,
  two-parameter solutions and the proper-motion and parallax distributions.
* **The real M67 cone** (``gaia/cones/NGC_2682.csv``, when M67 is simulated):
  RUWE of members and field, and star counts per G bin, in the window both
  share (the real extract's box in position and proper motion, the 50 pc
  radius and Eqs. 1-2 of the CG20 cluster), for G < 18. Members: the real
  CG18 members (p >= 0.7) matched by position in the real cone (not T22's:
  T22 kept only RUWE < 1.4, so none of its M67 members has a large RUWE); the
  true members and the T22-like list in the simulated one.

The statistics and their definitions are :mod:`ocmembers.method.realism`. Per
statistic, the median of sim/real over clusters and its 16th-84th percentile
spread are the summary. Outputs: ``<out_dir>/realism/realism.json`` (with a
manifest recording the configuration, the real files' sha256 and the code) and
``figures/<run>/realism.{pdf,png}``. ``SOURCE=sim`` only.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError, TableParseError
from ocmembers.method.cuts import angular_separation_deg, cone_mask, cone_window
from ocmembers.method.realism import (FIELD_G_EDGES, RUWE_LIMIT, beyond_jacobi, compare_lists,
                                      field_statistics, ruwe_statistics, spread, star_counts,
                                      summarise_ratios)
from ocmembers.sim.catalogues import cg20_like_members, t22_like_members
from ocmembers.sim.plain_field import simulate_plain_field
from ocmembers.sim.source import SimSource
from ocmembers.sources import cache
from ocmembers.sources.cluster_tables import read_jacobi_table
from ocmembers.sources.local import read_gaia_table, read_member_list
from ocmembers.sources.positional import crossmatch_positional
from ocmembers.stages.plots import save_pdf_png
from ocmembers.stages.products import catalogue_lists, figures_dir, realism_path
from ocmembers.stages.runner import cluster_names, product_sha, record, sweep, up_to_date

__all__ = ["run", "realism_path", "G_EDGES_COUNTS", "CG_MIN_PROBABILITY"]

#: G bins of the star counts of the M67 field.
G_EDGES_COUNTS: tuple[float, ...] = tuple(float(x) for x in np.arange(8.0, 21.5, 1.0))
#: Members of the CG lists compared: p >= 0.7, the ``n07`` of CG20.
CG_MIN_PROBABILITY = 0.7
_M67 = "NGC_2682"
#: The name of a plain-field file of ``gaia/fields/``: its centre and radius (deg).
_FIELD_NAME = re.compile(r"^ra(?P<ra>-?[0-9.]+)_dec(?P<dec>-?[0-9.]+)_r(?P<r>[0-9.]+)deg(?=\.)")


def _real_files(cfg: Config) -> dict[str, Path]:
    root = cfg.local_dir
    files = {"t22": root / "catalogues" / "t22_members_edr3.csv.gz",
             "cg18": root / "catalogues" / "cg18_members_dr2.csv.gz",
             "m67_cone": root / "gaia" / "cones" / f"{_M67}.csv",
             "hunt24": root / "catalogues" / "hunt2024_table.csv"}
    fields = root / "gaia" / "fields"
    for p in sorted(fields.glob("*")) if fields.is_dir() else []:
        m = _FIELD_NAME.match(p.name)
        if p.is_file() and m:
            files[f"field:{m[0]}"] = p
    missing = [str(p) for k, p in files.items() if k not in ("m67_cone", "hunt24") and not p.is_file()]
    if missing:
        raise TableParseError(f"realism: the real lists to compare with are missing: {', '.join(missing)} "
                              "(DATA_DIR must hold ../shared/data's catalogues/)")
    return files


def _m67_field(cfg: Config, source: SimSource, path: Path, real_cg: pd.DataFrame,
               t22_lists: dict[str, pd.DataFrame]) -> dict[str, Any]:
    row = source._row(_M67)
    real = read_gaia_table(path)
    sim = source.simulated(row)
    window = cone_window(row, radius_pc=cfg.cone.radius_pc, n_sigma=cfg.cone.n_sigma)

    def shared(t: pd.DataFrame) -> np.ndarray:   # the real extract's box and the cone of Eqs. 1-2
        box = np.ones(len(t), bool)
        for col in ("ra", "dec", "pmra", "pmdec"):
            v = t[col].to_numpy(float)
            box &= (v >= float(real[col].min())) & (v <= float(real[col].max()))
        return box & cone_mask(t, window)

    real_in = real.loc[shared(real)].reset_index(drop=True)
    keep = shared(sim.cone)
    sim_in, truth_in = sim.cone.loc[keep].reset_index(drop=True), sim.truth.loc[keep].reset_index(drop=True)
    # the real members: CG18's (DR2, matched by propagated position). Not T22's: T22 kept only
    # sources with RUWE < 1.4, so none of its M67 members has a large RUWE (0 of 1097 here)
    xm = crossmatch_positional(real_cg.loc[real_cg["cluster"] == _M67], real_in, cfg)
    real_member = real_in["source_id"].isin(xm["source_id"]).to_numpy()
    g_sim = sim_in["phot_g_mean_mag"].to_numpy(float)
    true_member = truth_in["is_member"].to_numpy(bool) & (g_sim < cfg.sim.t22_g_max)
    t22_like = t22_lists.get(_M67)
    if t22_like is None:
        t22_like = t22_like_members(sim, row, cfg)
    like_member = sim_in["source_id"].isin(t22_like["source_id"]).to_numpy()
    bright_real = real_in["phot_g_mean_mag"].to_numpy(float) < cfg.sim.t22_g_max
    bright_sim = g_sim < cfg.sim.t22_g_max
    ruwe_r, ruwe_s = real_in["ruwe"].to_numpy(float), sim_in["ruwe"].to_numpy(float)
    out = {
        "window": {"ra": [float(real["ra"].min()), float(real["ra"].max())],
                   "dec": [float(real["dec"].min()), float(real["dec"].max())],
                   "pmra": [float(real["pmra"].min()), float(real["pmra"].max())],
                   "pmdec": [float(real["pmdec"].min()), float(real["pmdec"].max())],
                   "eqs_1_2": f"{cfg.cone.n_sigma:g} sigma, radius {cfg.cone.radius_pc:g} pc"},
        "ruwe": {"real_members_cg18": ruwe_statistics(ruwe_r[real_member & bright_real]),
                 "sim_true_members_g_lt_18": ruwe_statistics(ruwe_s[true_member]),
                 "sim_t22_like_members": ruwe_statistics(ruwe_s[like_member]),
                 "real_all_g_lt_18": ruwe_statistics(ruwe_r[bright_real]),
                 "sim_all_g_lt_18": ruwe_statistics(ruwe_s[bright_sim]),
                 "real_field_g_lt_18": ruwe_statistics(ruwe_r[~real_member & bright_real]),
                 "sim_field_g_lt_18": ruwe_statistics(ruwe_s[~truth_in["is_member"].to_numpy(bool) & bright_sim])},
        "g_edges": list(G_EDGES_COUNTS),
        "counts_real": star_counts(real_in["phot_g_mean_mag"].to_numpy(float), G_EDGES_COUNTS).tolist(),
        "counts_sim": star_counts(g_sim, G_EDGES_COUNTS).tolist(),
    }
    a, b = np.asarray(out["counts_sim"], float), np.asarray(out["counts_real"], float)
    out["counts_sim_over_real"] = [float(x / y) if y > 0 else math.nan for x, y in zip(a, b)]
    r = out["ruwe"]
    out["ruwe_members_difference_pp"] = 100.0 * (r["sim_true_members_g_lt_18"]["frac_gt_1.4"]
                                                 - r["real_members_cg18"]["frac_gt_1.4"])
    return out


def _plain_fields(cfg: Config, files: dict[str, Path]) -> dict[str, Any]:
    """Each real plain field against the simulated sky's field at its position."""
    out: dict[str, Any] = {}
    for key, path in files.items():
        if not key.startswith("field:"):
            continue
        m = _FIELD_NAME.match(path.name)
        assert m is not None                      # _real_files kept only matching names
        name = m[0]
        ra, dec, radius = float(m["ra"]), float(m["dec"]), float(m["r"])
        real = read_gaia_table(path)
        sep = angular_separation_deg(real["ra"].to_numpy(float), real["dec"].to_numpy(float), ra, dec)
        if np.nanmax(sep) > 1.05 * radius:
            raise TableParseError(f"{path}: sources up to {np.nanmax(sep):.3f} deg from ({ra}, {dec}), "
                                  f"beyond the {radius} deg of its name")
        sim = simulate_plain_field(ra, dec, radius, cfg)
        out[name] = {"ra": ra, "dec": dec, "radius_deg": radius, "g_edges": list(FIELD_G_EDGES),
                     "real": field_statistics(real), "sim": field_statistics(sim),
                     "n_real": int(len(real)), "n_sim": int(len(sim))}
    return out


def _true_members(sim: Any, cfg: Config) -> pd.DataFrame:
    """The true members of a simulated cone brighter than ``[sim] t22_g_max`` (T22's limit):
    what a perfect T22-like list of the cone would hold."""
    keep = sim.truth["is_member"].to_numpy(bool) & (sim.cone["phot_g_mean_mag"].to_numpy(float)
                                                    < cfg.sim.t22_g_max)
    return sim.cone.loc[keep].reset_index(drop=True)


def _jacobi(files: dict[str, Path], lists: dict[str, tuple[pd.Series, pd.DataFrame, pd.DataFrame, pd.DataFrame]]) -> dict[str, Any] | None:
    """Fractions beyond Hunt & Reffert's (2024) Jacobi radius (module docstring), per cluster
    and as medians with 16-84 % spreads; None without their table."""
    if not files["hunt24"].is_file() or not lists:
        return None
    table = read_jacobi_table(files["hunt24"]).set_index("name")
    per: dict[str, dict[str, float]] = {}
    for name, (row, real, sim, truth) in lists.items():
        if name not in table.index:
            continue
        h = table.loc[name]
        r_j = float(h["r_jacobi_pc"])
        per[name] = {"r_jacobi_pc": r_j, "hunt24": 1.0 - float(h["n_within_jacobi"]) / float(h["n_members"]),
                     "real_t22": beyond_jacobi(real, row, r_j), "sim_t22_like": beyond_jacobi(sim, row, r_j),
                     "sim_truth_g_lt_18": beyond_jacobi(truth, row, r_j)}
    summary = {key: spread([v[key] for v in per.values()])
               for key in ("r_jacobi_pc", "hunt24", "real_t22", "sim_t22_like", "sim_truth_g_lt_18")}
    return {"per_cluster": per, "summary": summary,
            "definition": "fraction beyond Hunt & Reffert (2024) rJpc in projected radius at the catalogued "
                          "distance; hunt24 = 1 - NJ/N of their own members"}


def _selection(cfg: Config, source: SimSource, files: dict[str, Path]) -> tuple[list[str], list[str], list[str]]:
    """(every cluster, those held against T22, those held against CG18).

    ``CLUSTERS``, or without ``samples.json`` the clusters the sky simulates: each of
    them against both lists. With the catalogues stage's ``samples.json`` and no
    ``CLUSTERS``: the test clusters against T22 (their T22-like lists are the ones the
    validation reads) and the training and validation clusters against CG18 (their
    CG20-like lists are the training lists); M67 for its real field when its real cone is
    there, in neither summary unless it has one of these roles.
    """
    samples = cfg.out_dir / "samples.json"
    if cfg.clusters.names or not samples.is_file():
        names = source.cluster_names()
        return names, names, names
    t22 = cluster_names(cfg, "test")
    cg = [*cluster_names(cfg, "train"), *cluster_names(cfg, "validation")]
    extra = [_M67] if files["m67_cone"].is_file() else []
    return list(dict.fromkeys([*t22, *cg, *extra])), t22, cg


def _record(cfg: Config, files: dict[str, Path], names: list[str], against_t22: list[str],
            against_cg: list[str]) -> dict:
    inputs = {f"DATA_DIR/{p.relative_to(cfg.local_dir)}": cache.sha256_file(p) for p in files.values()
              if p.is_file()}
    for product in ("t22_members", "train_members"):
        p = cfg.raw_dir / "catalogues" / f"{product}.parquet"
        if p.is_file():
            inputs[f"raw/catalogues/{product}.parquet"] = product_sha(p)
    return record(cfg, "realism", sections=("sim", "cone", "isochrone", "methods", "crossmatch"),
                  inputs=inputs, extra_config={"clusters": names, "against_t22": against_t22,
                                                "against_cg18": against_cg})


def run(cfg: Config) -> dict[str, Any]:
    """The realism report of the simulated clusters of ``cfg`` (module docstring)."""
    if cfg.source.name != "sim":
        raise OCMembersError(f"realism compares the simulated sky with real lists: SOURCE=sim, got "
                             f"{cfg.source.name!r}")
    files = _real_files(cfg)
    source = SimSource(cfg)
    names, against_t22, against_cg = _selection(cfg, source, files)
    out_json = realism_path(cfg)
    fig_base = figures_dir(cfg) / "realism"
    sweep(out_json.parent)
    rec = _record(cfg, files, names, against_t22, against_cg)
    if up_to_date([out_json], rec) and fig_base.with_suffix(".png").is_file():
        print(f"realism: up to date ({out_json})", file=sys.stderr)
        return cache.read_json(out_json)
    real_t22 = read_member_list(files["t22"], id_column="source_id")
    real_cg = read_member_list(files["cg18"], id_column="source_id_dr2")
    real_cg = real_cg.loc[real_cg["probability"] >= CG_MIN_PROBABILITY]
    # the simulated lists of every cluster, each product read (and verified) once
    t22_lists, cg_lists = catalogue_lists(cfg, "t22_members"), catalogue_lists(cfg, "train_members")
    t22_per: dict[str, Any] = {}
    truth_per: dict[str, Any] = {}
    jacobi_lists: dict[str, tuple[pd.Series, pd.DataFrame, pd.DataFrame, pd.DataFrame]] = {}
    cg_per: dict[str, Any] = {}
    notes: list[str] = []
    for name in against_t22:
        row = source._row(name)
        real = real_t22.loc[real_t22["cluster"] == name]
        if not len(real):
            notes.append(f"{name}: no real T22 list")
            continue
        sim = t22_lists.get(name)
        if sim is None:
            sim = t22_like_members(source.simulated(row), row, cfg)
        t22_per[name] = compare_lists(sim, real, row)
        # the simulated truth on the same terms: whether a difference is the sky's or the
        # T22-like method's (HDBSCAN may keep only the dense part of what the sky holds)
        truth = _true_members(source.simulated(row), cfg)
        truth_per[name] = compare_lists(truth, real, row)
        jacobi_lists[name] = (row, real, sim, truth)
    jacobi = _jacobi(files, jacobi_lists)
    for name in against_cg:
        row = source._row(name)
        real = real_cg.loc[real_cg["cluster"] == name]
        if not len(real):
            notes.append(f"{name}: no real CG18 list")
            continue
        sim = cg_lists.get(name)
        if sim is None:
            sim = cg20_like_members(source.simulated(row), row, cfg)
        sim = sim.loc[sim["probability"] >= CG_MIN_PROBABILITY]
        cg_per[name] = compare_lists(sim, real, row)
    if not t22_per and not cg_per:
        raise OCMembersError(f"realism: none of the {len(names)} simulated clusters has a real T22 or CG18 list")
    report: dict[str, Any] = {
        "clusters": names, "notes": notes,
        "sky": {"structure": cfg.sim.structure, "ruwe_model": cfg.sim.ruwe_model,
                "escaper_mass_function": cfg.sim.escaper_mass_function, "tail_orbits": cfg.sim.tail_orbits,
                "tidal_field": cfg.sim.tidal_field,
                "t22_sky": cfg.sim.t22_sky, "t22_check": cfg.sim.t22_check},
        "t22": {"per_cluster": t22_per, "summary": summarise_ratios(t22_per)} if t22_per else None,
        "t22_truth": ({"per_cluster": truth_per, "summary": summarise_ratios(truth_per),
                       "definition": "true members with G < [sim] t22_g_max in the Eq. 1-2 cone"}
                      if truth_per else None),
        "cg18": {"per_cluster": cg_per, "summary": summarise_ratios(cg_per)} if cg_per else None,
        "m67": (_m67_field(cfg, source, files["m67_cone"], real_cg, t22_lists)
                if _M67 in names and files["m67_cone"].is_file() else None),
        "jacobi": jacobi,
        "fields": _plain_fields(cfg, files),
        "definitions": "ocmembers.method.realism; sim/real per statistic, median and 16-84 percentiles",
    }
    _plot(report, fig_base.with_suffix(".pdf"))
    out_json.parent.mkdir(parents=True, exist_ok=True)
    cache.write_json_product(report, out_json, source="sim", query=f"realism of {len(names)} clusters",
                             record=rec)
    _print(report, out_json)
    return report


def _print(report: dict[str, Any], path: Path) -> None:
    for key, what in (("t22", "T22-like vs T22"), ("t22_truth", "true members (G < 18) vs T22"),
                      ("cg18", "CG20-like vs CG18")):
        part = report.get(key)
        if not part:
            continue
        s = part["summary"]
        print(f"realism: {what} ({len(part['per_cluster'])} clusters), sim/real median [16-84%]:", file=sys.stderr)
        for k in ("n", "frac_r_gt_10pc", "frac_r_gt_20pc", "frac_r_gt_30pc", "sigma_pmra", "sigma_parallax",
                  "g_q50"):
            v = s.get(k, {})
            print(f"  {k:16s} {v.get('median', math.nan):7.3f} [{v.get('p16', math.nan):.3f}, "
                  f"{v.get('p84', math.nan):.3f}]", file=sys.stderr)
    j = report.get("jacobi")
    if j:
        print(f"realism: beyond Hunt & Reffert's (2024) Jacobi radius ({len(j['per_cluster'])} clusters), "
              "median [16-84%]: " + "; ".join(
                  f"{k} {v['median']:.3f} [{v['p16']:.3f}, {v['p84']:.3f}]" for k, v in j["summary"].items()),
              file=sys.stderr)
    m = report.get("m67")
    if m:
        r = m["ruwe"]
        print(f"realism: M67 RUWE > {RUWE_LIMIT}, G < 18: real CG18 members "
              f"{r['real_members_cg18']['frac_gt_1.4']:.3f}, simulated members "
              f"{r['sim_true_members_g_lt_18']['frac_gt_1.4']:.3f} "
              f"({m['ruwe_members_difference_pp']:+.1f} pp); every G < 18 source of the window: real "
              f"{r['real_all_g_lt_18']['frac_gt_1.4']:.3f}, sim {r['sim_all_g_lt_18']['frac_gt_1.4']:.3f}; "
              f"field G < 18: real "
              f"{r['real_field_g_lt_18']['frac_gt_1.4']:.3f}, sim {r['sim_field_g_lt_18']['frac_gt_1.4']:.3f}",
              file=sys.stderr)
    for name, f in (report.get("fields") or {}).items():
        edges = f["g_edges"]
        bins = ", ".join(f"{a:g}-{b:g}" for a, b in zip(edges[:-1], edges[1:]))
        print(f"realism: plain field {name}: {f['n_sim']} simulated sources against {f['n_real']} real; "
              f"RUWE > {RUWE_LIMIT} per cent in G {bins}: real {_percents(f['real']['frac_ruwe_gt_1.4'])}, "
              f"sim {_percents(f['sim']['frac_ruwe_gt_1.4'])}", file=sys.stderr)
    print(f"realism: -> {path}", file=sys.stderr)


def _percents(values: list[float]) -> str:
    return " ".join("--" if not np.isfinite(x) else f"{100 * x:.1f}" for x in values)


def _plot(report: dict[str, Any], base: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["n", "frac_r_gt_10pc", "frac_r_gt_20pc", "frac_r_gt_30pc", "sigma_pmra", "sigma_pmdec",
            "sigma_parallax", "g_q50", "frac_g_gt_17"]
    m = report.get("m67")
    fields = report.get("fields") or {}
    n_panels = 1 + (2 if m else 0) + (1 if fields else 0)
    fig, axes = plt.subplots(1, n_panels, figsize=(6 + 3.5 * (n_panels - 1), 3.8), squeeze=False)
    ax = axes[0, 0]
    rows = (("t22", "C0", "T22-like / T22"), ("t22_truth", "C2", "true members, G < 18 / T22"),
            ("cg18", "C1", "CG20-like / CG18"))
    for j, (key, colour, label) in enumerate(rows):
        part = report.get(key)
        if not part:
            continue
        for i, k in enumerate(keys):
            x = np.array([v["sim_over_real"].get(k, math.nan) for v in part["per_cluster"].values()], float)
            y = np.full(x.size, i + (j - 1) * 0.25)
            ax.plot(x, y, "o", color=colour, ms=3, alpha=0.6, label=label if i == 0 else None)
            med = part["summary"][k]["median"]
            ax.plot([med, med], [y[0] - 0.1, y[0] + 0.1] if y.size else [i, i], "-", color=colour, lw=2)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(keys)), keys, fontsize=7)
    ax.set_xlabel("simulated / real (per cluster; bar: median)")
    ax.legend(fontsize=7, loc="lower right")
    if m:
        ax = axes[0, 1]
        edges = np.asarray(m["g_edges"])
        mid = 0.5 * (edges[1:] + edges[:-1])
        ax.step(mid, m["counts_real"], where="mid", label="real M67 cone")
        ax.step(mid, m["counts_sim"], where="mid", label="simulated")
        ax.set_yscale("log")
        ax.set_xlabel("G (mag)")
        ax.set_ylabel("sources per mag")
        ax.set_title("M67: star counts in the shared window", fontsize=8)
        ax.legend(fontsize=7)
        ax = axes[0, 2]
        r = m["ruwe"]
        names = ["real_members_cg18", "sim_true_members_g_lt_18", "real_field_g_lt_18", "sim_field_g_lt_18"]
        vals = [r[n]["frac_gt_1.4"] for n in names]
        ax.bar(range(4), vals, color=["C0", "C1", "C0", "C1"], alpha=0.8)
        ax.set_xticks(range(4), ["members\nreal", "members\nsim", "field\nreal", "field\nsim"], fontsize=7)
        ax.set_ylabel(f"fraction with RUWE > {RUWE_LIMIT}")
        ax.set_title("M67: RUWE (G < 18)", fontsize=8)
    if fields:
        ax = axes[0, -1]
        for j, (name, f) in enumerate(fields.items()):
            edges = np.asarray(f["g_edges"])
            mid = 0.5 * (edges[1:] + edges[:-1])
            for who, style in (("real", "-o"), ("sim", "--s")):
                ax.plot(mid, f[who]["frac_ruwe_gt_1.4"], style, color=f"C{j}", ms=3,
                        label=f"{name} {'real' if who == 'real' else 'simulated'} "
                              f"({f['n_real'] if who == 'real' else f['n_sim']} sources)")
        ax.set_xlabel("G (mag)")
        ax.set_ylabel(f"fraction with RUWE > {RUWE_LIMIT}")
        ax.set_title("plain fields: RUWE", fontsize=8)
        ax.legend(fontsize=6)
    return save_pdf_png(fig, base)
