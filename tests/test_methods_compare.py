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


def _fake_sim_run(monkeypatch, n_clusters_run):
    """compare_sim as it returns for a method that selected nothing (precision undefined) and a
    method that failed with a long message; the printing is what is tested."""
    names = [f"C_{i}" for i in range(n_clusters_run)]
    metrics = pd.DataFrame([{"cluster": c, "method": m, "variable": "all", "lo": np.nan, "hi": np.nan,
                             "threshold": 0.5, "n_true": 50, "n_selected": k, "tp": k,
                             "precision": np.nan if k == 0 else 1.0, "recall": k / 50,
                             "f1": np.nan if k == 0 else 2 * k / (k + 50)}
                            for c in names for m, k in (("upmask", 0), ("hdbscan_t22", 40))])
    long = "no trained model at data/sim/model/model.pt: run `ocmembers train`, or use " + "x" * 300
    timing = pd.DataFrame([{"cluster": c, "method": m, "status": st, "message": msg, "wall_s": 1.5,
                            "n_members": k} for c in names
                           for m, st, msg, k in (("upmask", "empty", "", 0), ("hdbscan_t22", "ok", "", 40),
                                                 ("deep_sets", "error", long, 0))])
    monkeypatch.setattr(compare, "compare_sim", lambda cfg, names, methods, model: (metrics, timing))
    monkeypatch.setattr(compare, "_sim_figure", lambda metrics, path: None)


def test_compare_table_states_the_threshold_and_prints_no_nan_or_padding(tmp_path, monkeypatch, capsys):
    import argparse
    _fake_sim_run(monkeypatch, 2)
    cfg = load_config(source="sim", output_dir=str(tmp_path), clusters="C_0,C_1")
    compare.main(argparse.Namespace(methods="upmask,hdbscan_t22,deep_sets", deep_sets_model=None), cfg)
    out = capsys.readouterr().out
    assert "p >= 0.5" in out and "compare_threshold" in out
    assert "nan" not in out.lower()
    upmask = [line.split() for line in out.splitlines() if line.split()[1:2] == ["upmask"]]
    assert upmask[0][:4] == ["C_0", "upmask", "50", "0"] and upmask[0][4] == "--"   # precision undefined
    assert max(len(line) for line in out.splitlines()) <= 120, max(out.splitlines(), key=len)
    assert "C_0 deep_sets: no trained model" in out and "2 clusters" in out
    assert (tmp_path / "sim" / "compare" / "timing.csv").read_text().count("x" * 300) == 2  # in full there


def test_cluster_counts_are_worded_in_the_singular_and_plural():
    from ocmembers.stages.runner import n_clusters
    assert n_clusters(1) == "1 cluster" and n_clusters(264, "all") == "264 clusters"
    assert n_clusters(1, "test") == "1 test cluster" and n_clusters(3, "train") == "3 train clusters"


def test_compare_help_is_plain_text(capsys):
    from ocmembers.cli import main
    for argv in (["--help"], ["compare", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "``" not in text and ":func:" not in text and ":data:" not in text, text
    main_help = text
    assert "compare_threshold" in main_help
