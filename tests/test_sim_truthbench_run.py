"""The truthbench stage end to end on one simulated cluster (no pipeline members yet), with the
ideal classifier on small draws."""

from __future__ import annotations

import pandas as pd
import pytest

from ocmembers.stages import truthbench
from ocmembers.config import load_config


def test_run_writes_table_markdown_and_figure(tmp_path, monkeypatch):
    # small draws for the ideal classifier (the defaults take minutes)
    monkeypatch.setattr(truthbench, "IDEAL_CLUSTER_POINTS", 3000)
    monkeypatch.setattr(truthbench, "IDEAL_FIELD_CANDIDATES", 500)
    monkeypatch.setattr(truthbench, "IDEAL_COPIES", (1, 1))
    monkeypatch.setattr(truthbench, "IDEAL_FIELD_FACTOR", (0.3, 0.3))
    cfg = load_config(source="sim", local_dir=str(tmp_path / "nodata"), output_dir=str(tmp_path / "out"),
                      clusters="NGC_188").replace(sim={"demo_clusters": []})
    table = truthbench.run(cfg)
    out = cfg.out_dir / "truthbench"
    for name in ("truthbench.csv", "truthbench.md", "truthbench.png", "truthbench_ideal.csv",
                 "truthbench_calibration.csv", "truthbench_ideal.md", "truthbench_ideal.json",
                 "ideal/NGC_188.parquet"):
        assert (out / name).is_file(), name
    assert set(table["method"]) == {"t22_hdbscan", "ideal"}  # no members/ written: T22 and the ideal
    t22 = table[table.method == "t22_hdbscan"]
    overall = t22[(t22.variable == "all") & (t22.threshold == 0.1)].iloc[0]
    # HDBSCAN on the bright field of a rich, high-latitude cluster: few false positives
    assert overall["precision"] > 0.8
    # T22 stops at G = 18: it recovers nobody fainter
    faint = t22[(t22.variable == "g") & (t22.lo >= 18.0)]
    assert (faint["tp"] == 0).all()
    again = pd.read_csv(out / "truthbench.csv")
    assert len(again) == len(table)

    # the ideal classifier beside the methods
    versus = pd.read_csv(out / "truthbench_ideal.csv")
    for c in ("ideal_precision", "ideal_recall", "ideal_f1", "f1_frac_ideal", "d_precision", "d_recall", "d_f1"):
        assert c in versus.columns
    summed = versus[(versus.cluster == "all") & (versus.variable == "all") & (versus.threshold == 0.5)]
    ideal = summed[summed.method == "ideal"].iloc[0]
    hdb = summed[summed.method == "t22_hdbscan"].iloc[0]
    assert ideal["f1_frac_ideal"] == pytest.approx(1.0)
    assert ideal["f1"] > hdb["f1"] and ideal["recall"] > 0.8    # the limit is above the T22-like list
    assert abs(ideal["d_f1"]) < 0.05                             # two independent draws agree
    calib = pd.read_csv(out / "truthbench_calibration.csv")
    assert set(calib["method"]) == {"ideal", "t22_hdbscan"}
    p = pd.read_parquet(out / "ideal" / "NGC_188.parquet")
    allg = calib[(calib.method == "ideal") & (calib.g_lo == float("-inf"))]
    assert allg["n"].sum() == len(p)                            # every cone source in one p bin
    md = (out / "truthbench_ideal.md").read_text()
    assert "ideal P" in md and "Calibration" in md
    assert p["probability"].between(0, 1).all() and {"probability_1", "probability_2"} <= set(p.columns)
