"""Run reports and cluster names (issue 11, item 5 and the path check of item 3)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ocmembers import load_config
from ocmembers.exceptions import ConfigError, TooFewMembersError
from ocmembers.stages import report
from ocmembers.stages.runner import (PipelineError, failed_clusters, for_each_cluster, print_failures,
                                     record_timing)

SRC = Path(__file__).resolve().parents[1] / "src"


def _work(cfg, name):
    if name.startswith("bad"):
        raise TooFewMembersError(f"cluster {name}: 2 members, at least 5 needed")
    return True


def test_a_clusters_subset_keeps_the_failures_of_other_runs(tmp_path):
    cfg = load_config(output_dir=str(tmp_path))
    for_each_cluster(cfg, ["a", "bad1"], _work, "stage")
    for_each_cluster(cfg.replace(clusters={"names": ["b"]}), ["b"], _work, "stage")   # another subset
    assert list(failed_clusters(cfg, "stage")) == ["bad1"]
    # the cluster itself, run again and now fine, is no longer a failure
    for_each_cluster(cfg, ["bad1"], lambda c, n: True, "stage")
    assert failed_clusters(cfg, "stage") == {}


def test_report_exits_non_zero_after_failures(tmp_path, capsys):
    cfg = load_config(output_dir=str(tmp_path))
    for_each_cluster(cfg, ["a", "bad1"], _work, "stage")
    with pytest.raises(PipelineError, match="1 failure"):
        report.run(cfg)
    assert "no cluster failed" not in capsys.readouterr().err


def test_a_stage_that_failed_as_a_whole_is_reported(tmp_path, capsys):
    cfg = load_config(output_dir=str(tmp_path))
    record_timing(cfg, "train", wall_s=1.0, cpu_s=1.0, status=1, started="2026-12-02T00:00:00Z")
    assert print_failures(cfg) == 1
    err = capsys.readouterr().err
    assert "train: its last run" in err and "status 1" in err and "no cluster failed" not in err
    record_timing(cfg, "train", wall_s=1.0, cpu_s=1.0, status=0, started="2026-12-02T00:01:00Z")
    assert print_failures(cfg) == 0


@pytest.mark.parametrize("name", ["../../x", "../x", "a/b", ".hidden", "x\\y", "bad\nname", " "])
def test_cluster_names_that_could_leave_the_output_dir_are_refused(name):
    with pytest.raises(ConfigError, match="CLUSTERS"):
        load_config(clusters=[name])
    assert load_config(clusters=["NGC_2682", "COIN-Gaia_4"]).clusters.names == ("NGC_2682", "COIN-Gaia_4")


def test_cli_refuses_a_path_as_cluster_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "ocmembers.cli", "cones", "--source", "sim",
                        "--output-dir", str(out), "--clusters", "../../escaped"],
                       capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2, r.stderr
    assert "not a cluster name" in r.stderr
    assert not out.exists() and not (tmp_path.parent / "escaped").exists()


def test_peak_memory_counts_the_child_processes():
    """The sampled peak holds this process and its children together: a child that holds
    300 MB raises it by about that much (``ru_maxrss`` of the parent would not)."""
    import subprocess
    import sys
    import time as _time
    from ocmembers.sources.resources import PeakMemory, tree_rss_bytes
    base = tree_rss_bytes() / 2 ** 20
    code = "import numpy as np, time; a = np.ones(300 * 2**20 // 8); time.sleep(2.5)"
    with PeakMemory(interval=0.1) as mem:
        child = subprocess.Popen([sys.executable, "-c", code])
        child.wait()
        _time.sleep(0.2)
    assert mem.peak_mb >= base + 250, (base, mem.peak_mb)


def test_the_peak_memory_is_recorded_and_the_report_names_its_stage(tmp_path, capsys):
    from ocmembers.stages.runner import print_timings, timing_summary
    cfg = load_config(output_dir=str(tmp_path))
    record_timing(cfg, "cones", wall_s=1.0, cpu_s=1.0, status=0, started="t", peak_rss_mb=900.0)
    record_timing(cfg, "members", wall_s=2.0, cpu_s=3.0, status=0, started="t", peak_rss_mb=5120.0)
    record_timing(cfg, "members", wall_s=2.0, cpu_s=3.0, status=0, started="t", peak_rss_mb=2048.0)
    record_timing(cfg, "train", wall_s=2.0, cpu_s=3.0, status=0, started="t")      # an older record
    s = timing_summary(cfg)
    assert s["members"]["peak_rss_mb"] == 5120.0 and s["cones"]["peak_rss_mb"] == 900.0
    assert s["train"]["peak_rss_mb"] != s["train"]["peak_rss_mb"]                     # NaN: none recorded
    capsys.readouterr()
    print_timings(cfg)
    err = capsys.readouterr().err
    assert "5.00" in err and "peak memory in members" in err
