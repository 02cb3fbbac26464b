import json
import subprocess
import sys

import pytest

from ocmembers import load_config
from ocmembers.exceptions import OCMembersError, TooFewMembersError
from ocmembers.stages.runner import PipelineError, cluster_names, failed_clusters, for_each_cluster, print_failures


def _work(cfg, name):
    if name == "bad":
        raise TooFewMembersError(f"cluster {name}: 2 members, at least 5 needed")
    return name != "cached"


@pytest.mark.parametrize("jobs", [1, 2])
def test_failures_collected_others_go_on(jobs, capsys, tmp_path):
    cfg = load_config(jobs=jobs, output_dir=str(tmp_path))
    rep = for_each_cluster(cfg, ["a", "bad", "cached"], _work, "stage")
    err = capsys.readouterr().err
    assert "FAILED bad: TooFewMembersError: cluster bad: 2 members" in err
    assert rep.done == ["a"] and rep.skipped == ["cached"] and list(rep.failed) == ["bad"]
    assert failed_clusters(cfg, "stage") == {"bad": "TooFewMembersError: cluster bad: 2 members, at least 5 needed"}
    assert print_failures(cfg) == 1
    with pytest.raises(PipelineError, match="1 of 3 cluster"):
        for_each_cluster(cfg, ["a", "bad", "cached"], _work, "stage", raise_on_failure=True)
    with pytest.raises(PipelineError, match="1 of 1 cluster"):  # nothing succeeded: the chain stops
        for_each_cluster(cfg, ["bad"], _work, "stage")


def test_cluster_names_roles(tmp_path):
    cfg = load_config(output_dir=str(tmp_path), source="sim")
    with pytest.raises(OCMembersError, match="catalogues stage"):
        cluster_names(cfg, "train")
    (cfg.out_dir).mkdir(parents=True)
    (cfg.out_dir / "samples.json").write_text(json.dumps({"train": ["A", "B"], "validation": ["C"], "test": ["D"]}))
    assert cluster_names(cfg, "all") == ["A", "B", "C", "D"]
    assert cluster_names(cfg, "test") == ["D"]
    sub = load_config(output_dir=str(tmp_path), source="sim", clusters="B,D")
    assert cluster_names(sub, "train") == ["B"]
    assert cluster_names(sub, "test") == ["B", "D"]
    # a cluster whose cone failed is left out downstream, but retried by the cones stage
    (cfg.out_dir / "reports").mkdir()
    (cfg.out_dir / "reports" / "cones.json").write_text(json.dumps({"failed": {"B": "no extract"}}))
    assert cluster_names(cfg, "all") == ["A", "C", "D"]
    assert cluster_names(cfg, "all", retry_failed_cones=True) == ["A", "B", "C", "D"]


def test_cli_stage_not_built_and_bad_config(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "ocmembers.cli", *a], capture_output=True, text=True)
    r = run("snapshot", "--output-dir", str(tmp_path))
    if r.returncode == 3:  # until the snapshot stage exists
        assert "not built yet" in r.stderr
    else:
        assert r.returncode in (0, 1), r.stderr
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[cone]\nradius = 3\n")
    r = run("cones", "--config", str(cfg))
    assert r.returncode == 2 and "unknown key(s) in [cone]: radius" in r.stderr


def test_stage_times_recorded_and_reported(tmp_path, capsys):
    from ocmembers.cli import main
    from ocmembers.stages.runner import read_timings, timing_summary

    out = str(tmp_path)
    # the train stage fails (no sets): its run is recorded with its exit status
    assert main(["train", "--source", "sim", "--output-dir", out, "--clusters", "A,B"]) == 1
    assert main(["train", "--source", "sim", "--output-dir", out, "--clusters", "A,B"]) == 1
    cfg = load_config(source="sim", output_dir=out)
    recs = read_timings(cfg)
    assert [r["stage"] for r in recs] == ["train", "train"] and {r["status"] for r in recs} == {1}
    assert all(r["wall_s"] >= 0 and r["cpu_s"] >= 0 and r["clusters"] == "A,B" for r in recs)
    with (cfg.out_dir / "reports" / "timings.jsonl").open("a") as fh:
        fh.write('{"stage": "tra')                         # a run killed mid-line
    s = timing_summary(cfg)
    assert s["train"]["runs"] == 2
    assert abs(s["train"]["wall_s"] - sum(r["wall_s"] for r in recs)) < 1e-9
    capsys.readouterr()
    # the report names the failed train run and exits 1 (it used to exit 0 here)
    assert main(["report", "--source", "sim", "--output-dir", out]) == 1
    err = capsys.readouterr().err
    assert "train: its last run" in err and "total" in err and "no cluster failed" not in err
    assert len(read_timings(cfg)) == 2                    # the report itself is not timed


def test_local_catalogue_cone_crossmatch_stages(tmp_cfg):
    """`make cones SOURCE=local CLUSTERS=NGC_2682`: the real M67 extract through the stage code."""
    from ocmembers.stages import catalogues, cones, crossmatch, products
    from ocmembers.sources.cache import read_manifest
    cfg = tmp_cfg.replace(clusters={"names": ["NGC_2682"]})
    catalogues.run(cfg)
    sel = json.loads((cfg.out_dir / "samples.json").read_text())
    assert len(sel["test"]) > 100 and len(sel["train"]) + len(sel["validation"]) > 100
    rep = cones.run(cfg)
    assert rep.done == ["NGC_2682"]
    assert cones.run(cfg).skipped == ["NGC_2682"]  # cached and verified: not fetched again
    assert read_manifest(products.cone_path(cfg, "NGC_2682"))["rows"] == len(products.load_cone(cfg, "NGC_2682"))
    crossmatch.run(cfg)
    from ocmembers.sources.cache import read_table
    xm = read_table(products.crossmatch_path(cfg, "NGC_2682"))
    assert len(xm) > 700 and xm["source_id"].is_unique
