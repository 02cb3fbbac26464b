r"""Ground-truth benchmark on the simulated sky (``make truthbench``).

For each simulated cluster, the member list (``members/<cluster>.parquet`` of the
pipeline, and the T22-like HDBSCAN list) is lined up with the truth table of its cone
(:meth:`ocmembers.sim.source.SimSource.truth`) and scored by
:func:`ocmembers.sim.metrics.benchmark_cluster` (the metrics and their bins are
defined there) at each ``[membership] thresholds`` value.

T22-like members outside the Eq. 1-2 cone (HDBSCAN ran on the wider field)
are left out of its counts. Outputs (``<out_dir>/truthbench/``): ``truthbench.csv`` (every number),
``truthbench.md`` (the overall table), ``truthbench.png`` (P, R, F1 against G).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import MissingColumnsError, OCMembersError
from ocmembers.sim.metrics import (G_EDGES, R_EDGES_PC, TABLE_COLUMNS, benchmark_cluster, markdown_table,
                                   precision_recall_f1)

__all__ = ["plot_metrics", "run"]

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
    parts, notes = [], []
    for name in names:
        row = source._row(name)
        truth = source.truth(row)
        ours = _pipeline_members(cfg, name)
        if ours is not None:
            parts.append(benchmark_cluster(ours, truth, cluster=name, method="deep_sets", thresholds=thresholds))
        else:
            notes.append(f"{name}: no members/{name}.parquet (run `make members SOURCE=sim`)")
        t22 = _t22_members(cfg, source, name)
        t22 = t22.loc[t22["source_id"].isin(truth["source_id"])]  # T22 members outside the cone: not comparable
        parts.append(benchmark_cluster(t22, truth, cluster=name, method="t22_hdbscan", thresholds=thresholds))
        print(f"truthbench: {name}: {int(truth['is_member'].sum())} true members in the cone", file=sys.stderr)
    for n in notes:
        print(f"truthbench: {n}", file=sys.stderr)
    table = pd.concat(parts, ignore_index=True)
    out = cfg.out_dir / "truthbench"
    from ocmembers.sources.cache import atomic_path
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "truthbench.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "truthbench.md") as tmp:
        tmp.write_text(markdown_table(table))
    plot_metrics(table, out / "truthbench.png")
    print(f"truthbench: {len(table)} rows -> {out}/truthbench.{{csv,md,png}}", file=sys.stderr)
    return table
