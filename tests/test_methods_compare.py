"""The comparison command: ocmembers.stages.compare."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocmembers.config import load_config
from ocmembers.stages import compare
from ocmembers.sim.synthetic import synthetic_cone


def test_overlap_summary_counts_by_hand():
    probs = pd.DataFrame({"source_id": [1, 2, 3, 4, 5, 6],
                          "a": [0.9, 0.9, 0.9, 0.1, 0.0, 0.6],
                          "b": [0.0, 0.8, 0.7, 0.9, 0.0, 0.0]})
    ref = {2, 3, 4, 99}                       # 99 is not in the cone
    g18 = np.array([True, True, True, True, True, False])
    s = compare.overlap_summary(probs, 0.5, ref, g18).set_index("method")
    assert s.loc["a", "n_members"] == 4 and s.loc["b", "n_members"] == 3
    assert s.loc["a", "n_b"] == 2 and s.loc["b", "n_a"] == 2
    assert s.loc["a", "n_reference_in_cone"] == 3
    assert s.loc["a", "recovered"] == pytest.approx(2 / 3)
    assert s.loc["a", "in_reference"] == pytest.approx(2 / 4)
    assert s.loc["a", "n_members_ref_range"] == 3          # source 6 is outside the T22 range
    assert s.loc["a", "in_reference_ref_range"] == pytest.approx(2 / 3)
    assert s.loc["b", "recovered"] == pytest.approx(1.0)


def test_run_methods_records_failures_without_stopping(tmp_path):
    cone, truth, cluster = synthetic_cone(800, 100, seed=4)
    cfg = load_config(output_dir=str(tmp_path))
    probs, runs = compare.run_methods(cone, cluster, cfg, ["hdbscan_t22", "deep_sets"])
    by = {r["method"]: r for r in runs}
    assert by["hdbscan_t22"]["status"] == "ok"
    assert by["deep_sets"]["status"] == "error" and by["deep_sets"]["message"]
    assert "deep_sets" not in probs.columns
    sel = probs["hdbscan_t22"].to_numpy() > 0
    assert (sel & truth).sum() / sel.sum() > 0.8
    assert (sel & truth).sum() / truth.sum() > 0.9


def test_unknown_method_is_a_configuration_error(capsys, tmp_path):
    from ocmembers.cli import main
    assert main(["compare", "--output-dir", str(tmp_path), "--methods", "kmeans_magic"]) == 2
    assert "unknown method" in capsys.readouterr().err
