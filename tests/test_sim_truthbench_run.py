"""The truthbench stage end to end on one simulated cluster (no pipeline members yet)."""

from __future__ import annotations

import pandas as pd

from ocmembers.stages import truthbench
from ocmembers.config import load_config


def test_run_writes_table_markdown_and_figure(tmp_path):
    cfg = load_config(source="sim", local_dir=str(tmp_path / "nodata"), output_dir=str(tmp_path / "out"),
                      clusters="NGC_188").replace(sim={"demo_clusters": []})
    table = truthbench.run(cfg)
    out = cfg.out_dir / "truthbench"
    for name in ("truthbench.csv", "truthbench.md", "truthbench.png"):
        assert (out / name).is_file()
    assert set(table["method"]) == {"t22_hdbscan"}           # no members/ written: T22 only
    overall = table[(table.variable == "all") & (table.threshold == 0.1)].iloc[0]
    # HDBSCAN on the bright field of a rich, high-latitude cluster: few false positives
    assert overall["precision"] > 0.8
    # T22 stops at G = 18: it recovers nobody fainter
    faint = table[(table.variable == "g") & (table.lo >= 18.0)]
    assert (faint["tp"] == 0).all()
    again = pd.read_csv(out / "truthbench.csv")
    assert len(again) == len(table)
