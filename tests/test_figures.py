"""The figures stage: which figures a run's products allow, and with which inputs."""

from __future__ import annotations

import json

from ocmembers import load_config
from ocmembers.sources import cache
from ocmembers.stages.figures import figure_jobs


def test_fig1_of_a_cluster_without_member_list_needs_only_its_sets(tmp_path):
    # the demo's NGC 2527 is a training cluster: it has sets but no member list; Fig. 1 then
    # shows the sets without probabilities (make demo failed on this once)
    cfg = load_config(source="sim", output_dir=str(tmp_path))
    sets = cfg.out_dir / "sets" / "NGC_2527"
    sets.mkdir(parents=True)
    cache.write_json({"test": ["NGC_752"], "train": ["NGC_2527"], "validation": []}, cfg.out_dir / "samples.json")
    (sets / "params.json").write_text(json.dumps({"params": {}}))
    jobs = {j.name: j for j in figure_jobs(cfg)}
    fig1 = jobs["fig1_sets"]
    members = cfg.out_dir / "members" / "NGC_2527.parquet"
    assert members not in fig1.inputs
    members.parent.mkdir(parents=True)
    members.write_bytes(b"x")
    assert members in {j.name: j for j in figure_jobs(cfg)}["fig1_sets"].inputs
