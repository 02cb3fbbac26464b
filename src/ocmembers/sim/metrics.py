r"""Precision, recall and F1 of a member list against the simulated truth.

No published membership study can report precision and recall against the
truth; on the simulated sky (``SOURCE=sim``) we can. For each cluster, the
member list (``members/<cluster>.parquet`` of the pipeline, and the T22-like
HDBSCAN list) is lined up with the truth table of its cone
(:meth:`ocmembers.sim.source.SimSource.truth`), and for each probability
threshold :math:`p_{min}` (``[membership] thresholds``: 0.1, 0.5, 0.9)

.. math::

    P = \frac{TP}{TP + FP}, \qquad R = \frac{TP}{TP + FN}, \qquad
    F_1 = \frac{2PR}{P + R},

where a source is *selected* when :math:`p \ge p_{min}` and *true* when it
is a star of the simulated cluster (``is_member``); :math:`TP, FP, FN` count
selected-true, selected-false and unselected-true sources of the cone. The
counts are made overall and in bins of the true :math:`G` (to
:math:`G = 21`) and of the projected distance from the centre (pc). The
universe is the cone (Eqs. 1-2), as for the method: true members outside it
cannot be recovered by anyone and are not counted. Empty denominators give
NaN, never 0 or 1.

The stage :mod:`ocmembers.stages.truthbench` runs it on every simulated cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ocmembers.exceptions import MissingColumnsError
from ocmembers.sim.truth import label_members

__all__ = ["G_EDGES", "R_EDGES_PC", "TABLE_COLUMNS", "precision_recall_f1", "confusion", "metrics_table",
           "benchmark_cluster", "markdown_table"]

#: Bins of true G (mag) and projected radius (pc) of the benchmark.
G_EDGES: tuple[float, ...] = (3.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0)
R_EDGES_PC: tuple[float, ...] = (0.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0)

TABLE_COLUMNS: tuple[str, ...] = ("cluster", "method", "threshold", "variable", "lo", "hi", "n_true",
                                  "n_selected", "tp", "fp", "fn", "precision", "recall", "f1")


def precision_recall_f1(tp: np.ndarray | int, fp: np.ndarray | int,
                        fn: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 from counts; NaN where a denominator is 0."""
    tp, fp, fn = (np.asarray(x, dtype=float) for x in (tp, fp, fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1), np.nan)
        r = np.where(tp + fn > 0, tp / np.where(tp + fn > 0, tp + fn, 1), np.nan)
        f1 = np.where(np.isfinite(p) & np.isfinite(r) & (p + r > 0), 2 * p * r / np.where(p + r > 0, p + r, 1),
                      np.where(np.isfinite(p) & np.isfinite(r), 0.0, np.nan))
    return p, r, f1


def confusion(is_member: np.ndarray, probability: np.ndarray, threshold: float) -> tuple[int, int, int]:
    """``(TP, FP, FN)`` of the selection ``probability >= threshold`` against ``is_member``."""
    truth = np.asarray(is_member, dtype=bool)
    sel = np.asarray(probability, dtype=float) >= threshold
    return int(np.sum(sel & truth)), int(np.sum(sel & ~truth)), int(np.sum(~sel & truth))


def metrics_table(labelled: pd.DataFrame, thresholds: Sequence[float], *,
                  g_edges: Sequence[float] = G_EDGES, r_edges: Sequence[float] = R_EDGES_PC,
                  g_column: str = "g_true", r_column: str = "r_proj_pc") -> pd.DataFrame:
    """P, R, F1 overall and per bin for a truth table with ``probability`` attached.

    Parameters
    ----------
    labelled : DataFrame
        ``is_member``, ``probability``, ``g_column``, ``r_column`` (one row per cone source).
    thresholds : sequence of float

    Returns
    -------
    DataFrame
        ``threshold, variable ("all", "g" or "r_pc"), lo, hi, n_true, n_selected,
        tp, fp, fn, precision, recall, f1``.
    """
    need = ["is_member", "probability", g_column, r_column]
    missing = [c for c in need if c not in labelled.columns]
    if missing:
        raise MissingColumnsError(f"truth benchmark: missing column(s) {', '.join(missing)}")
    truth = labelled["is_member"].to_numpy(bool)
    prob = labelled["probability"].to_numpy(float)
    rows = []
    groups = [("all", -np.inf, np.inf, np.ones(truth.size, bool))]
    for var, col, edges in (("g", g_column, g_edges), ("r_pc", r_column, r_edges)):
        x = labelled[col].to_numpy(float)
        for lo, hi in zip(edges[:-1], edges[1:]):
            groups.append((var, float(lo), float(hi), (x >= lo) & (x < hi)))
    for thr in thresholds:
        for var, lo, hi, m in groups:
            tp, fp, fn = confusion(truth[m], prob[m], float(thr))
            rows.append({"threshold": float(thr), "variable": var, "lo": lo, "hi": hi,
                         "n_true": int(truth[m].sum()), "n_selected": tp + fp, "tp": tp, "fp": fp, "fn": fn})
    out = pd.DataFrame(rows)
    p, r, f1 = precision_recall_f1(out["tp"], out["fp"], out["fn"])
    out["precision"], out["recall"], out["f1"] = p, r, f1
    return out


def benchmark_cluster(members: pd.DataFrame, truth: pd.DataFrame, *, cluster: str, method: str,
                      thresholds: Sequence[float], **kwargs) -> pd.DataFrame:
    """:func:`metrics_table` of one member list (``source_id, probability``) against one truth table."""
    labelled = label_members(members, truth, what=f"{method} members of {cluster}")
    table = metrics_table(labelled, thresholds, **kwargs)
    table.insert(0, "method", method)
    table.insert(0, "cluster", cluster)
    return table[list(TABLE_COLUMNS)]


def markdown_table(table: pd.DataFrame) -> str:
    """The overall rows (``variable == "all"``) as a Markdown table."""
    t = table.loc[table["variable"] == "all"]
    lines = ["| cluster | method | p_min | true | selected | precision | recall | F1 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for _, r in t.iterrows():
        lines.append(f"| {r['cluster']} | {r['method']} | {r['threshold']:.1f} | {r['n_true']} | {r['n_selected']} "
                     f"| {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} |")
    return "\n".join(lines) + "\n"
