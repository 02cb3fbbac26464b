"""The information-limit section of the paper (issue 15 item 1): its numbers are generated from
the truthbench stage's tables, and the section is there only when they exist."""

import json

import numpy as np
import pandas as pd

from ocmembers.sim.metrics import benchmark_cluster
from ocmembers.stages.paper import macros
from ocmembers.stages.truthbench import calibration, ideal_table

from test_paper import REPO, _built_aux, _run_dir


def _truthbench(cfg):
    """A truthbench of one cluster: the ideal recovers every member, Deep Sets half of the 19-20 ones."""
    g = np.array([15.0, 15.5, 18.5, 19.2, 19.4, 19.6, 19.8, 20.5, 15.0, 19.5])
    truth = pd.DataFrame({"source_id": np.arange(1, 11), "is_member": [True] * 8 + [False] * 2,
                          "g_true": g, "r_proj_pc": np.ones(10)})
    ideal = pd.DataFrame({"source_id": np.arange(1, 11), "probability": [1.0] * 8 + [0.0, 0.0]})
    ds = pd.DataFrame({"source_id": [1, 2, 3, 4, 5, 9], "probability": [1.0, 1.0, 0.9, 0.8, 0.6, 0.7]})
    parts = [benchmark_cluster(m, truth, cluster="X", method=name, thresholds=(0.5,))
             for name, m in (("ideal", ideal), ("deep_sets", ds))]
    table = pd.concat(parts, ignore_index=True)
    out = cfg.out_dir / "truthbench"
    out.mkdir(parents=True, exist_ok=True)
    ideal_table(table, parts[0]).to_csv(out / "truthbench_ideal.csv", index=False)
    labelled = {name: [truth.merge(m, on="source_id", how="left").fillna({"probability": 0.0})]
                for name, m in (("ideal", ideal), ("deep_sets", ds))}
    calibration(labelled).to_csv(out / "truthbench_calibration.csv", index=False)


def test_the_information_limit_is_in_the_paper_when_truthbench_ran(tmp_path):
    cfg, stats = _run_dir(tmp_path)
    mac = macros(stats, {}, cfg)
    assert mac["hasIdeal"] == "0" and mac["idealNineteenR"] == "--"
    _truthbench(cfg)
    mac = macros(stats, {}, cfg)
    assert mac["hasIdeal"] == "1" and mac["idealClusters"] == "1 test cluster"
    assert (mac["idealBrightP"], mac["idealBrightR"]) == ("1.000", "1.000")
    # G 19-20: members 4, 5, 6, 7; Deep Sets selects 4 and 5 (p >= 0.5), the field source 10 not
    assert (mac["dsNineteenP"], mac["dsNineteenR"], mac["dsNineteenFrac"]) == ("1.000", "0.500", "0.67")
    # G < 18: Deep Sets selects 1, 2 and the field source 9
    assert (mac["dsBrightP"], mac["dsBrightR"]) == ("0.667", "1.000")
    assert mac["idealNineteenErr"] == "0.000"                     # the same table as the second draw
    assert "the method's" in mac["idealVerdict"]
    text = (REPO / "paper" / "ms.tex").read_text()
    start, table = text.index("\\ifnum\\hasIdeal=1"), text.index("\\label{tab:ideal}")
    end = text.index("\\fi\n", text.index("\\end{table}", table))
    assert start < table < end
    assert text[start:end].count("\\ifnum") == text[start:end].count("\\fi") + 1
    assert json.loads(json.dumps(mac))  # plain strings
    aux = _built_aux(tmp_path, cfg)
    if aux is not None:
        assert "tab:ideal" in aux
