"""Compare the membership methods on the same clusters (issue 6).

``python -m ocmembers.stages.compare [--source sim|local|archive] [--clusters A,B]``
(``make compare``) runs, on each cluster's (preprocessed) cone:

* ``hdbscan_t22``  - HDBSCAN as Tarricq et al. (2022) (:mod:`.hdbscan_t22`);
* ``upmask``       - UPMASK (Krone-Martins & Moitinho 2014; astrometric set-up of
  Cantat-Gaudin et al. 2018) (:mod:`.upmask`);
* ``xdgmm_upmask`` - XDGMM + UPMASK of Peña Ramírez et al. (2022) (:mod:`.penaramirez22`),
  ten components as they did;
* ``xdgmm_upmask_bic`` - the same with the number of components (2-10) chosen by BIC;
* ``deep_sets``    - the Deep Sets model of van Groeningen et al. (2023)
  (:func:`ocmembers.stages.members.members_from_cone`), when a model is available;
  otherwise its rows say why not.

With ``SOURCE=sim`` the truth of the simulated sky gives precision, recall
and F1 at ``p >= compare_threshold`` overall, by true G bin (to G = 21) and
by projected radius (pc), computed as :mod:`ocmembers.stages.truthbench` does (the
cone is the universe), and the wall time per cluster and method. With a real source (``local``/``archive``) it reports
member counts, the overlaps between the methods and the agreement with the
T22 member list of the cluster.

Products under ``<out_dir>/compare/``: ``metrics.csv`` (sim), ``timing.csv``,
``summary.csv`` (real), ``probabilities_<cluster>.parquet`` (every method's
probability per source) and the figures ``compare_<source>.png`` /
``overlap_<cluster>.png``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.sources.cache import atomic_path, write_json, write_table
from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError
from ocmembers.api import members_from_cone
from ocmembers.method.member_table import MethodError
from ocmembers.sim.metrics import benchmark_cluster
from ocmembers.stages.products import model_paths

__all__ = ["METHODS", "run_methods", "overlap_summary", "compare_sim", "compare_real",
           "main", "run"]

log = logging.getLogger(__name__)


def _hdbscan(cone, cluster, cfg):
    from ocmembers.method.hdbscan_t22 import t22_members
    return t22_members(cone, cluster, cfg)


def _upmask(cone, cluster, cfg):
    from ocmembers.method.upmask import upmask_members
    return upmask_members(cone, cluster, cfg)


def _xdgmm_upmask(cone, cluster, cfg):
    from ocmembers.method.penaramirez22 import penaramirez22_members
    return penaramirez22_members(cone, cluster, cfg)


def _xdgmm_upmask_bic(cone, cluster, cfg):
    from ocmembers.method.penaramirez22 import penaramirez22_members
    res = penaramirez22_members(cone, cluster, cfg.replace(methods={"xd_components_select": "bic"}))
    res["method"] = "xdgmm_upmask_bic"
    res.attrs["method"] = "xdgmm_upmask_bic"
    return res


def _deep_sets(cone, cluster, cfg, model: str | None = None):
    """Deep Sets probabilities for every cone source (0 for non-candidates)."""
    spec = model or cfg.membership.model
    if spec == "trained":           # this run's model
        spec = model_paths(cfg)["weights"]
        if not spec.is_file():
            raise MethodError(f"no trained model at {spec}: run `ocmembers train`, or use "
                              "--deep-sets-model vg23")
    table = members_from_cone(cone, str(cluster["name"]), spec, cfg)
    ids = cone["source_id"].to_numpy(dtype=np.int64)
    p = pd.Series(table["probability"].to_numpy(dtype=float),
                  index=table["source_id"].to_numpy(dtype=np.int64))
    p = p[~p.index.duplicated()]
    from ocmembers.method.member_table import member_table
    return member_table(ids, p.reindex(ids).fillna(0.0).to_numpy(), "deep_sets", {"model": model})


#: name -> function(cone, cluster, cfg) returning the common member table
METHODS: dict[str, Callable[..., pd.DataFrame]] = {
    "hdbscan_t22": _hdbscan,
    "upmask": _upmask,
    "xdgmm_upmask": _xdgmm_upmask,
    "xdgmm_upmask_bic": _xdgmm_upmask_bic,
    "deep_sets": _deep_sets,
}


def prepare_cone(cone: pd.DataFrame, name: str, zero_point: str = "lindegren21") -> pd.DataFrame:
    """The preprocessed cone (:func:`ocmembers.method.preprocessing.preprocess_cone`), or the raw one
    when preprocessing is unavailable for this input (logged)."""
    try:
        from ocmembers.method.preprocessing import preprocess_cone
    except ImportError:
        log.warning("ocmembers.method.preprocessing is not available; the methods use the raw cone of %s", name)
        return cone.reset_index(drop=True)
    return preprocess_cone(cone, cluster=name, zero_point=zero_point)


def run_methods(cone: pd.DataFrame, cluster: pd.Series, cfg: Config,
                methods: list[str], deep_sets_model: str | None = None
                ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Run ``methods`` on one cone.

    Returns
    -------
    probabilities : DataFrame
        ``source_id`` and one probability column per method that ran.
    runs : list of dict
        Per method: ``cluster, method, status ("ok" / "empty" / "error"), message, wall_s, n_members``.
    """
    name = str(cluster["name"])
    probs = pd.DataFrame({"source_id": cone["source_id"].to_numpy(dtype=np.int64)})
    runs = []
    for m in methods:
        func = METHODS[m]
        t0 = time.perf_counter()
        try:
            res = func(cone, cluster, cfg, deep_sets_model) if m == "deep_sets" else func(cone, cluster, cfg)
        except OCMembersError as exc:   # includes MethodError; clear, per method, never fatal
            runs.append({"cluster": name, "method": m, "status": "error", "message": str(exc),
                         "wall_s": time.perf_counter() - t0, "n_members": 0})
            log.warning("cluster %s, method %s: %s", name, m, exc)
            continue
        wall = time.perf_counter() - t0
        p = res["probability"].to_numpy(dtype=float)
        probs[m] = p
        status = "empty" if res.attrs.get("empty_reason") else "ok"
        runs.append({"cluster": name, "method": m, "status": status,
                     "message": res.attrs.get("empty_reason", ""), "wall_s": wall,
                     "n_members": int((p >= cfg.methods.compare_threshold).sum())})
    return probs, runs


def overlap_summary(probs: pd.DataFrame, threshold: float,
                    reference: set[int] | None = None,
                    reference_mask: np.ndarray | None = None) -> pd.DataFrame:
    """Member counts per method, pairwise overlaps and agreement with a reference list.

    Returns one row per method: ``n_members``, ``n_<other>`` (members shared with
    each other method), and with a reference: ``n_reference_in_cone``,
    ``n_in_reference``, ``recovered`` (fraction of the reference members in the
    cone found), ``in_reference`` (fraction of the method's members that are in it).
    ``reference_mask`` (bool per row) restricts ``in_reference`` to the sources the
    reference could contain (T22: G < 18 and RUWE < 1.4), reported as ``n_members_ref_range``
    and ``in_reference_ref_range``.
    """
    methods = [c for c in probs.columns if c != "source_id"]
    ids = probs["source_id"].to_numpy()
    sets = {m: set(ids[probs[m].to_numpy() >= threshold].tolist()) for m in methods}
    rows = []
    ref_in = (reference & set(ids.tolist())) if reference is not None else None
    for m in methods:
        row: dict[str, Any] = {"method": m, "n_members": len(sets[m])}
        for o in methods:
            row[f"n_{o}"] = len(sets[m] & sets[o])
        if ref_in is not None:
            k = len(sets[m] & ref_in)
            row.update({"n_reference_in_cone": len(ref_in), "n_in_reference": k,
                        "recovered": k / len(ref_in) if ref_in else np.nan,
                        "in_reference": k / len(sets[m]) if sets[m] else np.nan})
            if reference_mask is not None:
                inr = sets[m] & set(ids[np.asarray(reference_mask, bool)].tolist())
                row.update({"n_members_ref_range": len(inr),
                            "in_reference_ref_range": len(inr & ref_in) / len(inr) if inr else np.nan})
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
def _out_dir(cfg: Config) -> Path:
    d = cfg.out_dir / "compare"
    d.mkdir(parents=True, exist_ok=True)
    return d


def compare_sim(cfg: Config, names: list[str], methods: list[str],
                deep_sets_model: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Precision/recall/F1 against the simulated truth (``SOURCE=sim``)."""
    from ocmembers.sources import get_source

    src = get_source(cfg)
    if not hasattr(src, "truth"):
        raise OCMembersError(f"source {cfg.source.name!r} has no truth; use --source sim")
    table = src.cluster_table()
    from ocmembers.method.columns import cluster_row
    mc = cfg.methods

    metrics, timing = [], []
    for name in names:
        row = cluster_row(table, name)
        raw = src.cone(row)
        truth_t = src.truth(row)
        cone = prepare_cone(raw, name, cfg.cone.parallax_zero_point)
        probs, runs = run_methods(cone, row, cfg, methods, deep_sets_model)
        timing += runs
        write_table(probs, _out_dir(cfg) / f"probabilities_{name}.parquet", source=cfg.source.name,
                    query=f"compare {','.join(methods)}")
        for m in [c for c in probs.columns if c != "source_id"]:
            # the universe is the simulated cone; sources the preprocessing dropped count as p = 0
            metrics.append(benchmark_cluster(
                probs[["source_id", m]].rename(columns={m: "probability"}), truth_t, cluster=name,
                method=m, thresholds=(mc.compare_threshold,), g_edges=tuple(mc.compare_g_bins),
                r_edges=tuple(mc.compare_radius_bins_pc)))
    return (pd.concat(metrics, ignore_index=True) if metrics else pd.DataFrame()), pd.DataFrame(timing)


def compare_real(cfg: Config, names: list[str], methods: list[str],
                 deep_sets_model: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts, overlaps and T22 agreement on real cones (``SOURCE=local`` or ``archive``)."""
    from ocmembers.sources import get_source
    from ocmembers.method.columns import cluster_row

    src = get_source(cfg)
    table = src.cluster_table()
    t22 = src.comparison_members()
    summaries, timing = [], []
    for name in names:
        row = cluster_row(table, name)
        cone = prepare_cone(src.cone(row), name, cfg.cone.parallax_zero_point)
        probs, runs = run_methods(cone, row, cfg, methods, deep_sets_model)
        timing += runs
        write_table(probs, _out_dir(cfg) / f"probabilities_{name}.parquet", source=cfg.source.name,
                    query=f"compare {','.join(methods)}")
        ref = set(t22.loc[t22["cluster"] == name, "source_id"].astype("int64").tolist())
        t22_range = cone["phot_g_mean_mag"].to_numpy(float) < cfg.methods.hdbscan_g_max   # T22: G < 18
        if "ruwe" in cone and np.isfinite(cfg.methods.hdbscan_ruwe_max):                  # and RUWE < 1.4
            t22_range &= cone["ruwe"].to_numpy(float) < cfg.methods.hdbscan_ruwe_max
        s = overlap_summary(probs, cfg.methods.compare_threshold, ref if ref else None, t22_range)
        s.insert(0, "cluster", name)
        # T22 itself lists every HDBSCAN member (p > 0); report that reading too
        if "hdbscan_t22" in probs.columns:
            hp = probs[["source_id", "hdbscan_t22"]].rename(columns={"hdbscan_t22": "hdbscan_t22_p>0"})
            hp["hdbscan_t22_p>0"] = (hp["hdbscan_t22_p>0"] > 0).astype(float)
            s2 = overlap_summary(hp, 0.5, ref if ref else None, t22_range)
            s2.insert(0, "cluster", name)
            s = pd.concat([s, s2], ignore_index=True)
        summaries.append(s)
        _overlap_figure(probs, cfg.methods.compare_threshold, ref, name,
                        _out_dir(cfg) / f"overlap_{name}.png", t22_range)
    return pd.concat(summaries, ignore_index=True), pd.DataFrame(timing)


# ---------------------------------------------------------------------------
def _overlap_figure(probs: pd.DataFrame, threshold: float, reference: set[int], name: str,
                    path: Path, ref_range: np.ndarray | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [c for c in probs.columns if c != "source_id"]
    ids = probs["source_id"].to_numpy()
    sets = {m: set(ids[probs[m].to_numpy() >= threshold].tolist()) for m in methods}
    ref_in = reference & set(ids.tolist()) if reference else set()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    nonempty = [m for m in methods if sets[m]]
    try:
        from matplotlib_venn import venn2, venn3
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # "Circle has zero area" for tiny sets
            if len(nonempty) >= 3:
                venn3([sets[m] for m in nonempty[:3]], set_labels=nonempty[:3], ax=axes[0])
            elif len(nonempty) == 2:
                venn2([sets[m] for m in nonempty], set_labels=nonempty, ax=axes[0])
            else:
                raise ImportError
    except ImportError:
        axes[0].bar(range(len(methods)), [len(sets[m]) for m in methods], tick_label=methods)
        axes[0].tick_params(axis="x", rotation=20)
    axes[0].set_title(f"{name}: members (p >= {threshold})")
    if ref_in:
        x = np.arange(len(methods))
        rec = [len(sets[m] & ref_in) / len(ref_in) for m in methods]
        in_range = set(ids[ref_range].tolist()) if ref_range is not None else set(ids.tolist())
        pur = [len(sets[m] & ref_in) / max(len(sets[m] & in_range), 1) for m in methods]
        axes[1].bar(x - 0.2, rec, 0.4, label="T22 members recovered")
        axes[1].bar(x + 0.2, pur, 0.4, label="members in T22 (G < 18)")
        axes[1].set_xticks(x, methods, rotation=20)
        axes[1].set_ylim(0, 1.05)
        axes[1].legend(loc="lower right")
        axes[1].set_title(f"agreement with T22 ({len(ref_in)} T22 members in the cone)")
    else:
        axes[1].set_axis_off()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _sim_figure(metrics: pd.DataFrame, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, kind, label in ((axes[0], "g", "true G [mag]"), (axes[1], "r_pc", "projected radius [pc]")):
        sub = metrics.loc[metrics["variable"] == kind]
        for m, grp in sub.groupby("method", sort=False):
            agg = grp.groupby(["lo", "hi"], as_index=False)[["tp", "n_selected", "n_true"]].sum()
            agg = agg.sort_values("lo")
            f1 = (2 * agg["tp"] / (agg["n_selected"] + agg["n_true"]).replace(0, np.nan)).to_numpy(float)
            edges = np.r_[agg["lo"].to_numpy(float), agg["hi"].to_numpy(float)[-1]]
            ax.stairs(np.nan_to_num(f1), edges, label=m, linewidth=1.5)
        ax.set_xlabel(label)
    axes[0].set_ylabel("F1 (all clusters pooled)")
    axes[0].set_ylim(0, 1.02)
    axes[1].legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4g")


#: the widest a message is printed in the run table (the whole text is in ``timing.csv``)
MESSAGE_WIDTH = 100


def format_table(table: pd.DataFrame, float_format: str = "%.3f") -> str:
    """``table`` as text for the terminal: undefined values (a method that selected nothing has no
    precision) as ``--``, never ``NaN``; no column padded to the width of a long message."""
    if table.empty:
        return "(none)"
    return table.to_string(index=False, na_rep="--", float_format=lambda x: float_format % x)


def format_runs(timing: pd.DataFrame) -> str:
    """The run table (cluster, method, status, wall time, members), then each method's message on a
    line of its own (cut at :data:`MESSAGE_WIDTH` characters)."""
    if timing.empty:
        return "(no method ran)"
    lines = [format_table(timing[["cluster", "method", "status", "wall_s", "n_members"]], "%.2f")]
    for r in timing.itertuples():
        msg = " ".join(str(r.message or "").split())
        if msg:
            cut = msg if len(msg) <= MESSAGE_WIDTH else msg[:MESSAGE_WIDTH - 3] + "..."
            lines.append(f"  {r.cluster} {r.method}: {cut}")
    return "\n".join(lines)


def threshold_line(cfg: Config, names: list[str]) -> str:
    """What the tables count: the threshold, and over how many clusters."""
    from ocmembers.stages.runner import n_clusters
    against = "against the simulated truth" if cfg.source.name == "sim" else "overlaps and agreement with T22"
    return (f"compare: {n_clusters(len(names))}; members at p >= {cfg.methods.compare_threshold:g} "
            f"([methods] compare_threshold); {against}")


def main(args: argparse.Namespace, cfg: Config) -> None:
    """Run the comparison (``ocmembers compare``); errors are raised as :class:`OCMembersError`."""
    from ocmembers.exceptions import ConfigError

    methods = [m.strip() for m in str(getattr(args, "methods", None) or ",".join(METHODS)).split(",")
               if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    model = getattr(args, "deep_sets_model", None)
    names = list(cfg.clusters.names) or list(cfg.sim.demo_clusters)
    out = _out_dir(cfg)
    if cfg.source.name == "sim":
        metrics, timing = compare_sim(cfg, names, methods, model)
        _write_csv(metrics, out / "metrics.csv")
        _sim_figure(metrics, out / f"compare_{cfg.source.name}.png")
        print(threshold_line(cfg, names))
        overall = metrics.loc[metrics["variable"] == "all"] if len(metrics) else metrics
        cols = ["cluster", "method", "n_true", "n_selected", "precision", "recall", "f1"]
        print(format_table(overall[cols] if len(overall) else overall))
    else:
        summary, timing = compare_real(cfg, names, methods, model)
        _write_csv(summary, out / "summary.csv")
        print(threshold_line(cfg, names))
        print(format_table(summary))
    _write_csv(timing, out / "timing.csv")
    print(format_runs(timing))
    write_json({"methods": methods, "clusters": names, "config": cfg.to_dict()["methods"],
                "source": cfg.source.name}, out / "compare.json")


def run(cfg: Config) -> None:
    """All methods with the configured settings."""
    main(argparse.Namespace(methods=",".join(METHODS), deep_sets_model=None, set=[]), cfg)

