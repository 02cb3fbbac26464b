r"""Ground-truth benchmark on the simulated sky (``make truthbench``).

For each simulated cluster, the member list (``members/<cluster>.parquet`` of the
pipeline, and the T22-like HDBSCAN list) is lined up with the truth table of its cone
(:meth:`ocmembers.sim.source.SimSource.truth`) and scored by
:func:`ocmembers.sim.metrics.benchmark_cluster` (the metrics and their bins are
defined there) at each ``[membership] thresholds`` value.

T22-like members outside the Eq. 1-2 cone (HDBSCAN ran on the wider field)
are left out of its counts. Outputs (``<out_dir>/truthbench/``): ``truthbench.csv`` (every number),
``truthbench.md`` (the overall table), ``truthbench.png`` (P, R, F1 against G).

The information limit (issue 15)
--------------------------------
Beside the methods, the *ideal* classifier (method ``ideal``): for each cone
source the Bayes posterior :math:`\pi f_c / (\pi f_c + (1-\pi) f_f)`
(:func:`ocmembers.method.ideal.posterior`), with :math:`\pi` the true
proportion of members among the cone's sources and :math:`f_c, f_f` the
cluster and field densities in (position, parallax, proper motion, G,
BP-RP) at the source's measured values, convolved with its own error
covariance (:func:`ocmembers.method.ideal.kernel_sum`), estimated from
independent draws of the same generating model
(:func:`ocmembers.sim.ideal.ideal_draws`: ``IDEAL_CLUSTER_POINTS`` cluster
stars, the field at ``IDEAL_FIELD_CANDIDATES`` candidates' worth, within
the copy and factor bounds below). Bandwidths: Scott's rule on robust
spreads, times ``CLUSTER_H_FACTOR`` for the cluster's position and
astrometry and ``CLUSTER_H_PHOT`` (G, colour) for its thin sequence; the
field's capped at ``FIELD_H_POS_MAX`` pc and ``FIELD_MAX_H_WINDOW`` of
the Eq. 1-2 half-widths. The simulated cluster is isotropic on the sky
(``[sim] structure = "core_halo"``), so its density in position is
estimated in :math:`\ln R` (a resolution proportional to the radius:
the sparse halo is not left to a few points) and turned back into a
density per pc\ :sup:`2` with the Jacobian :math:`1/(2\pi R^2)`; with
tidal tails, in (x, y). The estimator's own error: the whole estimate
is made twice, on two independent draws; their difference in P, R, F1 per
bin (``d_*`` columns) measures it. A source near no point of either draw gets p = 0.

Further outputs: ``truthbench_ideal.csv`` (per cluster and summed over
clusters, ``all``: each method's P, R, F1 beside the ideal's, F1 as a
fraction of the ideal's, the ideal's two-draw differences),
``truthbench_calibration.csv`` (the fraction of true members per p bin
against the mean p, per method, all G and four G ranges, pooled over
clusters), ``truthbench_ideal.md`` (both at p >= 0.5, printed too) and
``ideal/<cluster>.parquet`` (the ideal p of every source, both draws).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import MissingColumnsError, OCMembersError
from ocmembers.method.ideal import calibration_table, kernel_sum, posterior, scott_bandwidth
from ocmembers.sim.ideal import FIELD_MAX_H_WINDOW, SPACE, ideal_draws, observed_space
from ocmembers.sim.metrics import (G_EDGES, R_EDGES_PC, TABLE_COLUMNS, benchmark_cluster, markdown_table,
                                   precision_recall_f1)
from ocmembers.sim.truth import label_members

__all__ = ["plot_metrics", "run", "ideal_probabilities", "ideal_table", "calibration", "ideal_markdown"]

#: Cluster stars (all copies) and field candidates (times the field factor) the ideal's draws aim at.
IDEAL_CLUSTER_POINTS = 120_000
IDEAL_FIELD_CANDIDATES = 15_000
#: Bounds on the cluster copies and the field factor of one draw.
IDEAL_COPIES = (2, 160)
IDEAL_FIELD_FACTOR = (2.0, 12.0)
#: Bandwidths (see the module docstring).
CLUSTER_H_FACTOR = 1.0
CLUSTER_H_PHOT = (0.15, 0.03)
FIELD_H_POS_MAX = 5.0
#: The two independent draws of the ideal: the first is reported, the second gives its error.
IDEAL_DRAWS = (1, 2)
#: The G ranges of the calibration table (besides all G).
CALIBRATION_G_RANGES = ((3.0, 18.0), (18.0, 19.0), (19.0, 20.0), (20.0, 21.0))

def plot_metrics(table: pd.DataFrame, path: str | Path) -> Path:
    """P, R and F1 against G (summed over clusters), one panel per metric, a line per method and threshold."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ocmembers.sources.cache import atomic_path

    t = table.loc[table["variable"] == "g"]
    agg = t.groupby(["method", "threshold", "lo", "hi"], as_index=False)[["tp", "fp", "fn"]].sum()
    p, r, f1 = precision_recall_f1(agg["tp"], agg["fp"], agg["fn"])
    agg["precision"], agg["recall"], agg["f1"] = p, r, f1
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True, constrained_layout=True)
    styles = {0: "-", 1: "--", 2: ":"}
    for ax, metric in zip(axes, ("precision", "recall", "f1")):
        for (method, thr), g in agg.groupby(["method", "threshold"]):
            i = sorted(agg["threshold"].unique()).index(thr)
            x = 0.5 * (g["lo"] + g["hi"])
            ax.plot(x, g[metric], styles.get(i % 3, "-"), marker="o", ms=3, label=f"{method} p>={thr:g}")
        ax.set_xlabel("true G (mag)")
        ax.set_title(metric)
        ax.set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    return path


def _pipeline_members(cfg: Config, name: str) -> pd.DataFrame | None:
    path = cfg.out_dir / "members" / f"{name}.parquet"
    if not path.is_file():
        return None
    from ocmembers.sources.cache import read_table
    return read_table(path)


def _t22_members(cfg: Config, source, name: str) -> pd.DataFrame:
    from ocmembers.stages.products import catalogue_list
    listed = catalogue_list(cfg, "t22_members", name)
    if listed is not None:
        return listed
    from ocmembers.sim.catalogues import t22_like_members
    row = source._row(name)
    return t22_like_members(source.simulated(row), row, cfg)


def _bandwidths(cluster_points: np.ndarray, field_points: np.ndarray, row: pd.Series,
                cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """The cluster's and the field's kernel bandwidths in :data:`ocmembers.sim.ideal.SPACE`."""
    from ocmembers.method.cuts import parallax_half_width, pm_radius
    h_c = scott_bandwidth(cluster_points, CLUSTER_H_FACTOR, floor=1e-4)
    h_c[SPACE.index("g")], h_c[SPACE.index("bp_rp")] = CLUSTER_H_PHOT
    h_f = scott_bandwidth(field_points, 1.0, floor=1e-3)
    plx_w = FIELD_MAX_H_WINDOW * parallax_half_width(row["parallax_std"], cfg.cone.n_sigma)
    pm_w = FIELD_MAX_H_WINDOW * pm_radius(row["pmra_std"], row["pmdec_std"], cfg.cone.n_sigma)
    caps = {"x_pc": FIELD_H_POS_MAX, "y_pc": FIELD_H_POS_MAX, "parallax": plx_w, "pmra": pm_w, "pmdec": pm_w}
    for k, cap in caps.items():
        i = SPACE.index(k)
        h_f[i] = min(h_f[i], cap)
    return h_c, h_f


def _log_radius(points: np.ndarray) -> np.ndarray:
    """``(x_pc, y_pc, rest...)`` -> ``(ln R, rest...)`` (R at least 1e-3 pc)."""
    r = np.maximum(np.hypot(points[:, 0], points[:, 1]), 1e-3)
    return np.column_stack([np.log(r), points[:, 2:]])


def ideal_probabilities(cfg: Config, source, name: str) -> tuple[pd.DataFrame, dict]:
    """The ideal classifier's p of every cone source of ``name``, for each of :data:`IDEAL_DRAWS`.

    Returns
    -------
    table : DataFrame
        ``source_id, probability`` (the first draw), ``probability_<k>``, ``f_c_<k>``,
        ``f_f_<k>``, ``n_near_c_<k>``, ``n_near_f_<k>`` (draw ``k``).
    info : dict
        Per draw: copies, field factor, draw sizes, normalisations, bandwidths, the
        proportion the draws imply against the true one.
    """
    row = source._row(name)
    cone, truth = source.cone(row), source.truth(row)
    x, cov = observed_space(cone, row)
    n_true = int(truth["is_member"].sum())
    n_field = len(truth) - n_true
    pi = n_true / max(len(truth), 1)
    copies = int(np.clip(round(IDEAL_CLUSTER_POINTS / max(n_true, 1)), *IDEAL_COPIES))
    factor = float(np.clip(round(IDEAL_FIELD_CANDIDATES / max(n_field, 1)), *IDEAL_FIELD_FACTOR))
    out = pd.DataFrame({"source_id": cone["source_id"].to_numpy()})
    isotropic = cfg.sim.structure == "core_halo"
    info: dict = {"cluster": name, "pi_true": pi, "n_sources": len(truth), "draws": {},
                  "cluster_position": "ln R (isotropic)" if isotropic else "x, y"}
    for k in IDEAL_DRAWS:
        cl, fl = ideal_draws(row, cfg, draw=k, copies=copies, field_factor=factor)
        h_c, h_f = _bandwidths(cl.points, fl.points, row, cfg)
        if isotropic:    # the cluster's density in (ln R, ...): resolution relative to R at every radius
            u_c, u_x = _log_radius(cl.points), _log_radius(x)
            h_c = np.concatenate([[scott_bandwidth(u_c, CLUSTER_H_FACTOR)[0]], h_c[2:]])
            kc, nc = kernel_sum(u_c, u_x, cov[:, 1:, 1:], h_c, seed=k)
            kc = kc / (2 * np.pi * np.exp(2 * u_x[:, 0]))          # d(ln R) dtheta = dx dy / R^2
        else:
            kc, nc = kernel_sum(cl.points, x, cov, h_c, seed=k)
        kf, nf = kernel_sum(fl.points, x, cov, h_f, seed=k)
        if fl.weight != 1.0:               # a thinned field draw: each point stands for fl.weight stars
            kf, nf = kf * fl.weight, np.rint(nf * fl.weight).astype(np.int64)
        f_c = kc / max(cl.n_cut, 1)
        f_f = kf / max(fl.n_cut, 1)
        p = posterior(pi, f_c, f_f)
        out[f"probability_{k}"], out[f"f_c_{k}"], out[f"f_f_{k}"] = p, f_c, f_f
        out[f"n_near_c_{k}"], out[f"n_near_f_{k}"] = nc, nf
        n_c, n_f = cl.n_cut / cl.scale, fl.n_cut / fl.scale
        info["draws"][k] = {"copies": copies, "field_factor": factor, "cluster_points": len(cl.points),
                            "field_points": len(fl.points), "field_point_weight": fl.weight, "cluster_n_cut": cl.n_cut, "field_n_cut": fl.n_cut,
                            "expected_members": n_c, "expected_field": n_f, "pi_draws": n_c / max(n_c + n_f, 1e-300),
                            "h_cluster": [float(v) for v in h_c], "h_field": [float(v) for v in h_f],
                            "no_support": int(np.sum((kc <= 0) & (kf <= 0)))}
        print(f"truthbench: {name}: ideal draw {k}: {copies} cluster copies ({len(cl.points)} points), field x{factor:g} "
              f"({len(fl.points)} points); expected {n_c:.0f} members and {n_f:.0f} field in the cone "
              f"(true {n_true}, {n_field}); {info['draws'][k]['no_support']} sources without support (p = 0)",
              file=sys.stderr)
    out["probability"] = out[f"probability_{IDEAL_DRAWS[0]}"]
    return out, info


def _summed(table: pd.DataFrame) -> pd.DataFrame:
    """P, R, F1 of the counts summed over clusters (``cluster = "all"``)."""
    keys = ["method", "threshold", "variable", "lo", "hi"]
    agg = table.groupby(keys, as_index=False, sort=False)[["n_true", "n_selected", "tp", "fp", "fn"]].sum()
    p, r, f1 = precision_recall_f1(agg["tp"], agg["fp"], agg["fn"])
    agg["precision"], agg["recall"], agg["f1"] = p, r, f1
    agg.insert(0, "cluster", "all")
    return agg


def ideal_table(table: pd.DataFrame, second: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each method's P, R, F1 beside the ideal's, per cluster and summed (``all``).

    ``table`` holds method ``ideal`` (the first draw) among the others; ``second`` the same
    rows of the second draw (method ``ideal``), whose differences ``d_precision, d_recall,
    d_f1`` (first minus second) are the estimator's own error.
    """
    both = pd.concat([table, _summed(table)], ignore_index=True)
    keys = ["cluster", "threshold", "variable", "lo", "hi"]
    ideal = both.loc[both["method"] == "ideal", keys + ["precision", "recall", "f1"]].rename(
        columns={"precision": "ideal_precision", "recall": "ideal_recall", "f1": "ideal_f1"})
    if second is not None:
        s2 = pd.concat([second, _summed(second)], ignore_index=True)
        s2 = s2.loc[s2["method"] == "ideal", keys + ["precision", "recall", "f1"]]
        ideal = ideal.merge(s2, on=keys, how="left")
        for m in ("precision", "recall", "f1"):
            ideal[f"d_{m}"] = ideal[f"ideal_{m}"] - ideal.pop(m)
    out = both.merge(ideal, on=keys, how="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["f1_frac_ideal"] = np.where(out["ideal_f1"] > 0, out["f1"] / out["ideal_f1"], np.nan)
    return out


def calibration(labelled: dict[str, list[pd.DataFrame]]) -> pd.DataFrame:
    """The calibration table of each method's p, pooled over clusters, all G and per
    :data:`CALIBRATION_G_RANGES` (columns ``method, g_lo, g_hi`` and those of
    :func:`ocmembers.method.ideal.calibration_table`)."""
    parts = []
    for method, tables in labelled.items():
        t = pd.concat(tables, ignore_index=True)
        g = t["g_true"].to_numpy(float)
        for lo, hi in ((-np.inf, np.inf), *CALIBRATION_G_RANGES):
            m = (g >= lo) & (g < hi)
            c = calibration_table(t["probability"].to_numpy(float)[m], t["is_member"].to_numpy(bool)[m])
            c.insert(0, "g_hi", hi)
            c.insert(0, "g_lo", lo)
            c.insert(0, "method", method)
            parts.append(c)
    return pd.concat(parts, ignore_index=True)


def _fmt(v: float, nd: int = 3) -> str:
    return "-" if not np.isfinite(v) else f"{v:.{nd}f}"


def ideal_markdown(table: pd.DataFrame, calib: pd.DataFrame, threshold: float = 0.5) -> str:
    """The summed rows at ``threshold``: ideal and methods per G bin and per radius, and the calibration."""
    t = table.loc[(table["cluster"] == "all") & np.isclose(table["threshold"], threshold)]
    methods = [m for m in t["method"].unique() if m != "ideal"]
    lines = []
    for var, unit in (("g", "G"), ("r_pc", "R (pc)")):
        s = t.loc[t["variable"] == var]
        head = f"| {unit} | true | ideal P | ideal R | ideal F1 | dR (2 draws) |"
        sep = "|---|---:|---:|---:|---:|---:|"
        for m in methods:
            head += f" {m} P | {m} R | {m} F1/ideal |"
            sep += "---:|---:|---:|"
        lines += [f"Ideal classifier against the methods, p >= {threshold:g}, summed over clusters, by {unit}:", "",
                  head, sep]
        ideal = s.loc[s["method"] == "ideal"].set_index(["lo", "hi"])
        for (lo, hi), r in ideal.iterrows():
            line = (f"| {lo:g}-{hi:g} | {int(r['n_true'])} | {_fmt(r['precision'])} | {_fmt(r['recall'])} "
                    f"| {_fmt(r['f1'])} | {_fmt(r.get('d_recall', np.nan))} |")
            for m in methods:
                q = s.loc[(s["method"] == m) & (s["lo"] == lo) & (s["hi"] == hi)]
                if len(q):
                    q = q.iloc[0]
                    line += f" {_fmt(q['precision'])} | {_fmt(q['recall'])} | {_fmt(q['f1_frac_ideal'], 2)} |"
                else:
                    line += " - | - | - |"
            lines.append(line)
        lines.append("")
    lines += ["Calibration (all G, pooled): fraction of true members against the mean p, per p bin:", "",
              "| method | " + " | ".join(f"{lo:.1f}-{hi:.1f}" for lo, hi in
                                        calib[["lo", "hi"]].drop_duplicates().itertuples(index=False)) + " |",
              "|---|" + "---|" * calib[["lo", "hi"]].drop_duplicates().shape[0]]
    for m, c in calib.loc[~np.isfinite(calib["g_lo"])].groupby("method", sort=False):
        cells = [f"{_fmt(r.mean_p, 2)}: {_fmt(r.frac_true, 2)} ({r.n})" if r.n else "-" for r in c.itertuples()]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_manifests(cfg: Config, names: Sequence[str], paths: Sequence[Path]) -> None:
    """What made the tables (the release, the clusters, the member lists scored), so that
    a reader of them (``make forecast``) can check which sky they describe."""
    from ocmembers.sources import cache
    from ocmembers.stages.runner import input_shas, record
    members = {f"members/{n}.parquet": cfg.out_dir / "members" / f"{n}.parquet" for n in names}
    rec = record(cfg, "truthbench", sections=("sim", "cone", "membership", "samples"),
                 inputs=input_shas({k: p for k, p in members.items() if p.is_file()}),
                 extra_config={"clusters": list(names)})
    for p in paths:
        cache.write_manifest(p, source="sim", query=f"truthbench of {len(names)} clusters",
                             extra={"release": cfg.sim.release, "clusters": list(names)}, record=rec)


def run(cfg: Config) -> pd.DataFrame:
    """The benchmark for the clusters of ``cfg`` (``SOURCE=sim`` only); see the module docstring.

    Uses the pipeline's ``members/<cluster>.parquet`` where the ``members``
    stage has written them (clusters without say so and are benchmarked for
    the T22-like list only).
    """
    from ocmembers.stages.runner import cluster_names
    from ocmembers.sim.source import SimSource

    if cfg.source.name != "sim":
        raise OCMembersError(f"truthbench needs SOURCE=sim (the truth exists only for the simulated sky), "
                             f"got {cfg.source.name!r}")
    source = SimSource(cfg)
    try:
        names = cluster_names(cfg, "test")
    except OCMembersError:
        names = source.cluster_names()
    thresholds = tuple(cfg.membership.thresholds)
    parts, notes, second, infos = [], [], [], []
    labelled: dict[str, list[pd.DataFrame]] = {}
    out = cfg.out_dir / "truthbench"
    from ocmembers.sources.cache import atomic_path
    (out / "ideal").mkdir(parents=True, exist_ok=True)

    def add(members: pd.DataFrame, truth: pd.DataFrame, name: str, method: str) -> None:
        parts.append(benchmark_cluster(members, truth, cluster=name, method=method, thresholds=thresholds))
        labelled.setdefault(method, []).append(label_members(members, truth, what=f"{method} members of {name}"))

    for name in names:
        row = source._row(name)
        truth = source.truth(row)
        ideal, info = ideal_probabilities(cfg, source, name)
        infos.append(info)
        with atomic_path(out / "ideal" / f"{name}.parquet") as tmp:
            ideal.to_parquet(tmp, index=False)
        add(ideal[["source_id", "probability"]], truth, name, "ideal")
        k2 = IDEAL_DRAWS[-1]
        second.append(benchmark_cluster(ideal[["source_id", f"probability_{k2}"]].rename(
            columns={f"probability_{k2}": "probability"}), truth, cluster=name, method="ideal", thresholds=thresholds))
        ours = _pipeline_members(cfg, name)
        if ours is not None:
            add(ours, truth, name, "deep_sets")
            if "probability_deep_sets" in ours.columns:   # the calibrated variant: the paper's p beside it
                add(ours[["source_id", "probability_deep_sets"]].rename(
                    columns={"probability_deep_sets": "probability"}), truth, name, "deep_sets_paper")
        else:
            notes.append(f"{name}: no members/{name}.parquet (run `make members SOURCE=sim`)")
        t22 = _t22_members(cfg, source, name)
        t22 = t22.loc[t22["source_id"].isin(truth["source_id"])]  # T22 members outside the cone: not comparable
        add(t22, truth, name, "t22_hdbscan")
        print(f"truthbench: {name}: {int(truth['is_member'].sum())} true members in the cone", file=sys.stderr)
    for n in notes:
        print(f"truthbench: {n}", file=sys.stderr)
    table = pd.concat(parts, ignore_index=True)
    versus = ideal_table(table, pd.concat(second, ignore_index=True))
    calib = calibration(labelled)
    md = ideal_markdown(versus, calib)
    with atomic_path(out / "truthbench_ideal.csv") as tmp:
        versus.to_csv(tmp, index=False)
    with atomic_path(out / "truthbench_calibration.csv") as tmp:
        calib.to_csv(tmp, index=False)
    with atomic_path(out / "truthbench_ideal.md") as tmp:
        tmp.write_text(md)
    import json
    with atomic_path(out / "truthbench_ideal.json") as tmp:
        tmp.write_text(json.dumps(infos, indent=1, default=float))
    print(md)
    with atomic_path(out / "truthbench.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "truthbench.md") as tmp:
        tmp.write_text(markdown_table(table))
    plot_metrics(table, out / "truthbench.png")
    _write_manifests(cfg, names, [out / "truthbench_ideal.csv", out / "truthbench_calibration.csv",
                                  out / "truthbench.csv"])
    print(f"truthbench: {len(table)} rows -> {out}/truthbench.{{csv,md,png}}, truthbench_ideal.{{csv,md,json}}, "
          f"truthbench_calibration.csv", file=sys.stderr)
    return table
