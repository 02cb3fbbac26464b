"""Metrics of the ground-truth benchmark on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocmembers.exceptions import MissingColumnsError
from ocmembers.sim.metrics import (benchmark_cluster, confusion, markdown_table, metrics_table,
                                   precision_recall_f1)
from ocmembers.stages.truthbench import plot_metrics


def test_precision_recall_f1_by_hand():
    p, r, f1 = precision_recall_f1([8, 0, 0], [2, 0, 3], [4, 0, 5])
    assert p[0] == pytest.approx(0.8) and r[0] == pytest.approx(8 / 12)
    assert f1[0] == pytest.approx(2 * 0.8 * (8 / 12) / (0.8 + 8 / 12))
    assert np.isnan(p[1]) and np.isnan(r[1]) and np.isnan(f1[1])   # nothing selected, nothing true
    assert p[2] == 0 and r[2] == 0 and f1[2] == 0


def test_confusion_threshold_inclusive():
    truth = np.array([1, 1, 1, 0, 0, 0], bool)
    prob = np.array([0.9, 0.5, 0.1, 0.5, 0.05, 1.0])
    assert confusion(truth, prob, 0.5) == (2, 2, 1)
    assert confusion(truth, prob, 0.1) == (3, 2, 0)
    assert confusion(truth, prob, 0.95) == (0, 1, 3)


@pytest.fixture
def truth():
    return pd.DataFrame({
        "source_id": np.arange(1, 9, dtype=np.int64),
        "is_member": [True, True, True, True, False, False, False, False],
        "g_true": [12.5, 15.5, 19.5, 20.5, 12.5, 15.5, 19.5, 20.5],
        "r_proj_pc": [1.0, 3.0, 6.0, 25.0, 1.0, 3.0, 6.0, 25.0],
    })


def test_metrics_per_bin(truth):
    members = pd.DataFrame({"source_id": [1, 2, 5, 3], "probability": [1.0, 0.6, 0.95, 0.2]})
    t = benchmark_cluster(members, truth, cluster="X", method="m", thresholds=(0.1, 0.5, 0.9))
    overall = t[(t.variable == "all")].set_index("threshold")
    # p >= 0.5: selected 1, 2, 5 -> TP 2, FP 1, FN 2 (sources 3 and 4)
    assert tuple(overall.loc[0.5, ["tp", "fp", "fn"]]) == (2, 1, 2)
    assert overall.loc[0.5, "precision"] == pytest.approx(2 / 3)
    assert overall.loc[0.5, "recall"] == pytest.approx(0.5)
    # p >= 0.1 also selects 3
    assert tuple(overall.loc[0.1, ["tp", "fp", "fn"]]) == (3, 1, 1)
    g = t[(t.variable == "g") & (t.threshold == 0.5)].set_index("lo")
    assert g.loc[12.0, "precision"] == pytest.approx(0.5)       # sources 1 (true) and 5 (false)
    assert g.loc[20.0, "recall"] == 0.0 and np.isnan(g.loc[20.0, "precision"])
    assert g.loc[13.0, "n_true"] == 0 and np.isnan(g.loc[13.0, "recall"])
    r = t[(t.variable == "r_pc") & (t.threshold == 0.9)].set_index("lo")
    assert r.loc[0.0, "tp"] == 1 and r.loc[0.0, "fp"] == 1
    # every true member falls in exactly one G bin and one radius bin
    for var in ("g", "r_pc"):
        s = t[(t.variable == var) & (t.threshold == 0.5)]
        assert s.tp.sum() + s.fn.sum() == 4


def test_markdown_and_plot(truth, tmp_path):
    members = pd.DataFrame({"source_id": [1, 2], "probability": [1.0, 0.6]})
    t = benchmark_cluster(members, truth, cluster="X", method="m", thresholds=(0.5,))
    md = markdown_table(t)
    assert "| X | m | 0.5 | 4 | 2 | 1.000 | 0.500 | 0.667 |" in md
    p = plot_metrics(t, tmp_path / "tb.png")
    assert p.stat().st_size > 1000


def test_unknown_ids_rejected(truth):
    with pytest.raises(MissingColumnsError, match="not in the simulated cone"):
        benchmark_cluster(pd.DataFrame({"source_id": [99], "probability": [1.0]}), truth, cluster="X", method="m",
                          thresholds=(0.5,))
    with pytest.raises(MissingColumnsError, match="probability"):
        metrics_table(truth, (0.5,))
