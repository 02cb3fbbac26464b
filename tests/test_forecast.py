"""What Gaia DR4 will add (issue 15 item 3): configuration files in layers, the forecast stage's
tables from two truth benchmarks, its refusals, and the paper section that quotes it."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from ocmembers.cli import build_parser
from ocmembers.config import load_config
from ocmembers.exceptions import OCMembersError
from ocmembers.sim.metrics import benchmark_cluster
from ocmembers.sources import cache
from ocmembers.stages import forecast
from ocmembers.stages.paper import forecast_rows, macros
from ocmembers.stages.products import figures_dir, forecast_path
from ocmembers.stages.truthbench import ideal_table

from test_paper import REPO, _built_aux, _run_dir

PKG = REPO / "src" / "ocmembers"

# One cluster's cone: 8 members (G 15, 15.5, 18.5, 19.2, 19.4, 19.6, 19.8, 20.5) and 2 field stars.
G = np.array([15.0, 15.5, 18.5, 19.2, 19.4, 19.6, 19.8, 20.5, 15.0, 19.5])
TRUTH = pd.DataFrame({"source_id": np.arange(1, 11), "is_member": [True] * 8 + [False] * 2,
                      "g_true": G, "r_proj_pc": np.ones(10)})
#: the ids each method selects at p >= 0.5, per release
SELECTED = {"dr3": {"deep_sets": [1, 2, 3, 9], "ideal": [1, 2, 3, 4]},
            "dr4": {"deep_sets": [1, 2, 3, 4, 5, 6], "ideal": [1, 2, 3, 4, 5, 6, 7, 10]}}


def _table(release: str, clusters=("X", "Y")) -> pd.DataFrame:
    """A truthbench_ideal.csv-like table: the same cone for each cluster."""
    parts = []
    for c in clusters:
        for method, ids in SELECTED[release].items():
            p = pd.DataFrame({"source_id": ids, "probability": 0.9})
            parts.append(benchmark_cluster(p, TRUTH, cluster=c, method=method, thresholds=(0.1, 0.5)))
    return ideal_table(pd.concat(parts, ignore_index=True))


def _write_release(cfg, release: str, *, recorded=None, clusters=("X", "Y")) -> None:
    out = forecast.release_dir(cfg, release) / "truthbench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "truthbench_ideal.csv"
    _table(release, clusters).to_csv(path, index=False)
    cache.write_manifest(path, source="sim", query="test",
                         extra={"release": recorded or release, "clusters": list(clusters)})


def _cfg(tmp_path):
    cfg = load_config(source="sim", output_dir=str(tmp_path / "data"))
    return cfg.replace(paths={"output_dir": str(tmp_path / "data"), "figures_dir": str(tmp_path / "figures")})


def test_configuration_files_apply_in_order(tmp_path):
    cfg = load_config([PKG / "forecast.toml", PKG / "dr4.toml"], source="sim")
    assert cfg.sim.release == "dr4" and cfg.cone.epoch == 2017.5 and cfg.crossmatch.method == "positional"
    assert "NGC_6791" in cfg.samples.test_clusters and cfg.training.max_epochs == 60
    assert not set(cfg.samples.test_clusters) & set(cfg.samples.train_clusters + cfg.samples.validation_clusters)
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text("[training]\nmax_epochs = 7\npatience = 3\n")
    b.write_text("[training]\nmax_epochs = 9\n")
    cfg = load_config([a, b])
    assert (cfg.training.max_epochs, cfg.training.patience) == (9, 3)       # the later file wins, key by key
    assert load_config([b, a]).training.max_epochs == 7
    assert load_config(str(a)).training.max_epochs == 7                      # one file as before
    args = build_parser().parse_args(["train", "--config", str(a), "--config", str(b)])
    assert args.config == [str(a), str(b)]
    with pytest.raises(OCMembersError, match="missing.toml does not exist"):
        load_config([a, tmp_path / "missing.toml"])


def test_forecast_table_sums_the_clusters_and_gives_the_gain():
    t = forecast.forecast_table(_table("dr3"), _table("dr4"))
    b = t.set_index(["lo", "hi"])
    # G 19-20: members 4, 5, 6, 7 in each of 2 clusters
    r = b.loc[(19.0, 20.0)]
    assert r["n_true_dr3"] == r["n_true_dr4"] == 8
    assert (r["ds_tp_dr3"], r["ds_tp_dr4"], r["ds_gain"]) == (0, 6, 6)
    assert r["ds_recall_dr4"] == pytest.approx(0.75) and r["ds_recall_dr3"] == 0
    assert (r["ideal_tp_dr3"], r["ideal_tp_dr4"]) == (2, 8)
    assert r["ideal_precision_dr4"] == pytest.approx(8 / 10)                # field source 10 is at G 19.5
    assert r["ideal_gain_frac"] == pytest.approx(3.0)
    assert math.isnan(r["ds_gain_frac"])                                    # DR3 found none: no fraction
    # G 15-16: the field source 9 selected by Deep Sets with DR3 only
    r = b.loc[(15.0, 16.0)]
    assert r["ds_precision_dr3"] == pytest.approx(4 / 6) and r["ds_precision_dr4"] == 1.0
    c = forecast.coarse(t, forecast.COARSE_EDGES).set_index(["lo", "hi"])
    assert c.loc[(-math.inf, math.inf), "n_true_dr3"] == 16
    assert c.loc[(-math.inf, math.inf), "ds_tp_dr4"] == 12
    assert c.loc[(3.0, 17.0), "ds_tp_dr3"] == 4 and c.loc[(20.0, 21.0), "ds_tp_dr4"] == 0
    per = forecast.cluster_table(_table("dr3"), _table("dr4")).set_index(["cluster", "g_range"])
    assert per.loc[("X", "G>=18"), "ds_tp_dr3"] == 1 and per.loc[("X", "G>=18"), "ds_tp_dr4"] == 4
    assert per.loc[("Y", "G<18"), "ds_tp_dr4"] == 2


def test_forecast_stage_writes_its_products_and_refuses_a_wrong_pair(tmp_path, capsys):
    cfg = _cfg(tmp_path)
    with pytest.raises(OCMembersError, match="dr3.*missing; run `make forecast`"):
        forecast.run(cfg)
    _write_release(cfg, "dr3")
    _write_release(cfg, "dr4", recorded="dr3")
    with pytest.raises(OCMembersError, match="benchmark of the 'dr3' sky, not 'dr4'"):
        forecast.run(cfg)
    _write_release(cfg, "dr4", clusters=("X", "Z"))
    with pytest.raises(OCMembersError, match="different clusters"):
        forecast.run(cfg)
    assert not forecast_path(cfg).exists()                                   # nothing half-written
    _write_release(cfg, "dr4")
    rep = forecast.run(cfg)
    assert rep["clusters"] == ["X", "Y"]
    assert forecast_path(cfg).is_file() and cache.verify(forecast_path(cfg))
    assert (figures_dir(cfg) / "forecast.pdf").is_file() and (figures_dir(cfg) / "forecast.png").is_file()
    md = (forecast_path(cfg).parent / "forecast.md").read_text()
    assert "| 19-20 | 8 | 0.000 | 0.750 |" in md and "| all | 16 |" in md
    back = json.loads(forecast_path(cfg).read_text())
    assert back["ranges"][-1]["lo"] == "-inf" and back["ranges"][-1]["ds_tp_dr4"] == 12
    capsys.readouterr()
    forecast.run(cfg)
    assert "up to date" in capsys.readouterr().err
    # a changed input is a new forecast
    _write_release(cfg, "dr3", clusters=("X", "Y"))
    t = pd.read_csv(forecast.release_dir(cfg, "dr3") / "truthbench" / "truthbench_ideal.csv")
    t.loc[t["method"] == "deep_sets", "tp"] = 0
    t.to_csv(forecast.release_dir(cfg, "dr3") / "truthbench" / "truthbench_ideal.csv", index=False)
    with pytest.raises(cache.CacheCorruptedError):                           # edited without its manifest
        forecast.run(cfg)


def test_the_forecast_is_in_the_paper_when_it_ran(tmp_path):
    cfg, stats = _run_dir(tmp_path)
    mac = macros(stats, {}, cfg)
    assert mac["hasForecast"] == "0" and mac["forecastDsFaintNFour"] == "--"
    assert forecast_rows(cfg) == []
    _write_release(cfg, "dr3")
    _write_release(cfg, "dr4")
    forecast.run(cfg)
    mac = macros(stats, {}, cfg)
    assert mac["hasForecast"] == "1" and mac["forecastClusters"] == "2 test clusters"
    # G >= 18 in 2 clusters: 6 members each; Deep Sets finds 1 (DR3) and 4 (DR4) per cluster
    assert (mac["forecastFaintTrue"], mac["forecastDsFaintNThree"], mac["forecastDsFaintNFour"]) == ("12", "2", "8")
    assert mac["forecastDsFaintGain"] == "+300.0\\,\\%"
    assert (mac["forecastIdealNineteenRThree"], mac["forecastIdealNineteenRFour"]) == ("0.250", "1.000")
    rows = forecast_rows(cfg)
    assert [r[0] for r in rows] == ["$<17$", "17--18", "18--19", "19--20", "20--21", "all"]
    assert rows[-1][1] == "16" and rows[-1][-2:] == ["6", "12"]
    text = (REPO / "paper" / "ms.tex").read_text()
    start, table = text.index("\\ifnum\\hasForecast=1"), text.index("\\label{tab:dr4}")
    end = text.index("\\fi\n", text.index("\\end{figure*}", table))
    assert start < table < end and "forecast.pdf" in text[start:end]
    aux = _built_aux(tmp_path, cfg)
    if aux is not None:
        assert "tab:dr4" in aux and "fig:dr4" in aux
