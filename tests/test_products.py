"""The product graph: each product's manifest records what made it, and the stages decide from that.

One small simulated cluster (NGC 188: a rich, distant, high-latitude cluster whose cone
simulates in about a second) through catalogues .. validate with a seeded random model,
driven through the command line as ``make`` drives it. Each test fails on the old,
time-based behaviour (stamps and file times) and passes with the records.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import run_sim_chain
from ocmembers.cli import main
from ocmembers.config import load_config
from ocmembers.exceptions import CacheCorruptedError, OCMembersError
from ocmembers.sources import cache
from ocmembers.stages import products

CLUSTER = "NGC_188"
CHAIN = ("catalogues", "cones", "crossmatch", "isochrones", "sets", "members", "validate")


def _flip(path, offset=None):
    """Flip one byte in the middle of ``path`` (bit rot, a bad copy)."""
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _toml(path, model, data_dir):
    path.write_text(f"""
[samples]
test_clusters = ["{CLUSTER}"]
[sim]
demo_clusters = []
[membership]
model = "{model}"
n_samples = 5
""")
    return path


@pytest.fixture
def run_dir(tmp_path):
    """A run of catalogues .. validate on NGC 188 (simulated), and how to run a stage again."""
    import torch
    from ocmembers.method.classifier import DeepSetsClassifier
    from ocmembers.method.network import DeepSetsNet
    from ocmembers.sources.models import save_classifier

    torch.manual_seed(0)
    model = tmp_path / "model" / "model.pt"
    model.parent.mkdir()
    save_classifier(DeepSetsClassifier.from_network(DeepSetsNet(), np.zeros(8), np.ones(8)), model)
    data = tmp_path / "datadir"
    data.mkdir()
    conf = _toml(tmp_path / "run.toml", model, data)
    out = tmp_path / "out"
    stage, cfg = run_sim_chain(conf, data, out, CHAIN)
    return {"stage": stage, "cfg": cfg, "data": data, "tmp": tmp_path}


def _summary(err: str, stage: str) -> str:
    return next(line for line in err.splitlines() if line.startswith(f"{stage}: ") and " done, " in line)


def test_everything_up_to_date_on_a_second_run(run_dir, capsys):
    capsys.readouterr()
    for s in CHAIN:
        assert run_dir["stage"](s) == 0
        assert " 0 done, " in _summary(capsys.readouterr().err, s), s


def test_config_change_reruns_only_the_stage_that_reads_it(run_dir, capsys):
    """(a) membership.seed redoes members only; selection.n_sigma_source redoes sets (and what follows)."""
    stage, cfg = run_dir["stage"], run_dir["cfg"]
    parquet, ecsv = products.members_paths(cfg, CLUSTER)
    before = parquet.read_bytes()
    capsys.readouterr()
    assert stage("sets", "--set", "membership.seed=7") == 0
    assert _summary(capsys.readouterr().err, "sets").startswith("sets: 0 done, 1 up to date")
    assert stage("members", "--set", "membership.seed=7") == 0
    assert _summary(capsys.readouterr().err, "members").startswith("members: 1 done, 0 up to date")
    assert cache.read_manifest(parquet)["extra"]["membership_seed"] == 7
    assert parquet.read_bytes() != before
    assert stage("members", "--set", "membership.seed=7") == 0            # and now it is up to date
    assert _summary(capsys.readouterr().err, "members").startswith("members: 0 done, 1 up to date")
    # a setting the members stage does not read: nothing to redo
    assert stage("members", "--set", "membership.seed=7", "--set", "validation.g_max=17.5") == 0
    assert _summary(capsys.readouterr().err, "members").startswith("members: 0 done, 1 up to date")
    # the selection is read by the sets stage: the sets are redone, then the members (their input)
    sel = ("--set", "selection.n_sigma_source=2.0")
    assert stage("crossmatch", *sel) == 0
    assert _summary(capsys.readouterr().err, "crossmatch").startswith("crossmatch: 0 done, 1 up to date")
    assert stage("sets", *sel) == 0
    assert _summary(capsys.readouterr().err, "sets").startswith("sets: 1 done, 0 up to date")
    assert stage("members", *sel) == 0
    assert _summary(capsys.readouterr().err, "members").startswith("members: 1 done, 0 up to date")


def test_changed_data_dir_file_is_seen(run_dir, capsys, shared_data):
    """(b) a catalogue file that appears or changes in DATA_DIR redoes the catalogues and the cone."""
    from ocmembers.stages.runner import record
    stage, cfg, data = run_dir["stage"], run_dir["cfg"], run_dir["data"]
    src = shared_data / "catalogues" / "cg20_table1.csv"      # the fixture fails under CI without it
    (data / "catalogues").mkdir()
    table = data / "catalogues" / "cg20_table1.csv"
    shutil.copy(src, table)
    capsys.readouterr()
    for s in ("catalogues", "cones"):
        assert stage(s) == 0
    err = capsys.readouterr().err
    assert "catalogues: 3 done" in err     # a new input file: the tables are read again from it
    cone_sha = cache.read_manifest(products.cone_path(cfg, CLUSTER))["sha256"]
    # the file changes in place: NGC 188 a little further away
    t = pd.read_csv(table)
    col = next(c for c in ("DistPc", "dist_pc", "plx") if c in t.columns)
    name_col = next(c for c in ("Cluster", "Name", "name") if c in t.columns)
    t.loc[t[name_col].astype(str).str.strip() == CLUSTER, col] *= 1.05
    t.to_csv(table, index=False)
    for s in ("catalogues", "cones"):
        assert stage(s) == 0
    err = capsys.readouterr().err
    assert int(_summary(err, "catalogues").split()[1]) >= 3          # the tables (and the selection)
    assert _summary(err, "cones").startswith("cones: 1 done")         # NGC 188 moved: a new cone
    assert cache.read_manifest(products.cone_path(cfg, CLUSTER))["sha256"] != cone_sha
    rec = cache.read_manifest(products.catalogue_paths(cfg)["clusters"])["record"]
    assert rec["inputs"] == {str(table.resolve()): cache.sha256_file(table)}
    assert set(record(cfg, "cones")) == {"stage", "config", "inputs", "code"}


def test_local_cone_file_change_is_seen(tmp_path, capsys, shared_data):
    """(b) the local source: a changed extract in DATA_DIR/gaia/cones refetches that cone."""
    real = shared_data / "gaia" / "cones" / "NGC_2682.csv"   # the fixture fails under CI without it
    from ocmembers.method.columns import cluster_row
    from ocmembers.sim.source import embedded_cluster_table
    from ocmembers.stages import cones
    data = tmp_path / "data"
    (data / "gaia" / "cones").mkdir(parents=True)
    extract = data / "gaia" / "cones" / "NGC_2682.csv"
    shutil.copy(real, extract)
    cfg = load_config(source="local", local_dir=str(data), output_dir=str(tmp_path / "out"), clusters="NGC_2682")
    row = cluster_row(embedded_cluster_table(), "NGC_2682")
    cache.write_table(pd.DataFrame([row]), products.catalogue_paths(cfg)["clusters"], source="local", query="t")
    assert cones.run(cfg).done == ["NGC_2682"]
    assert cones.run(cfg).skipped == ["NGC_2682"]
    n = len(products.load_cone(cfg, "NGC_2682"))
    lines = extract.read_text().splitlines(keepends=True)
    extract.write_text("".join(lines[: len(lines) // 2]))             # a new, smaller extract
    assert cones.run(cfg).done == ["NGC_2682"]
    assert len(products.load_cone(cfg, "NGC_2682")) < n


def test_corrupted_products_are_rebuilt_and_never_read(run_dir, capsys):
    """(c) a byte flipped in a members and in a sets product: its own stage rebuilds it; validate
    refuses the corrupted member list."""
    stage, cfg = run_dir["stage"], run_dir["cfg"]
    parquet, _ = products.members_paths(cfg, CLUSTER)
    good = parquet.read_bytes()
    _flip(parquet)
    with pytest.raises(CacheCorruptedError):
        products.load_members(cfg, CLUSTER)
    capsys.readouterr()
    assert stage("validate") == 1                       # refused: the only test cluster is corrupted
    err = capsys.readouterr().err
    assert "sha256" in err and CLUSTER in err
    assert stage("members") == 0
    assert _summary(capsys.readouterr().err, "members").startswith("members: 1 done")
    assert parquet.read_bytes() == good                 # rebuilt, the same bytes as before
    # the sets: the candidates flipped
    cand = products.set_path(cfg, CLUSTER, "candidates")
    good = cand.read_bytes()
    _flip(cand)
    with pytest.raises(CacheCorruptedError):
        products.load_set(cfg, CLUSTER, "candidates")
    assert stage("members") == 1                        # refuses to read it ...
    capsys.readouterr()
    assert stage("sets") == 0                           # ... and the sets stage rebuilds it
    assert _summary(capsys.readouterr().err, "sets").startswith("sets: 1 done")
    assert cand.read_bytes() == good
    assert stage("members") == 0 and stage("validate") == 0


def test_failed_refresh_keeps_the_old_product(tmp_path):
    """(d) a refetch that fails (changed request, corrupted manifest or refresh=True) loses nothing."""
    path = tmp_path / "raw" / "cones" / "X.parquet"
    old = pd.DataFrame({"source_id": [1, 2, 3]})
    cache.cached_table(path, lambda: old, source="test", query="q1")
    before = (path.read_bytes(), cache.manifest_path(path).read_bytes())

    def fail():
        raise OSError("the archive is down")

    for kw in ({"query": "q2"}, {"query": "q1", "refresh": True},
               {"query": "q1", "record": {"inputs": {"a": "new"}}}):
        with pytest.raises(OSError, match="down"):
            cache.cached_table(path, fail, source="test", **kw)
        assert (path.read_bytes(), cache.manifest_path(path).read_bytes()) == before
        pd.testing.assert_frame_equal(cache.read_table(path), old)
    assert not list(path.parent.glob(".*.tmp"))
    new = pd.DataFrame({"source_id": [4]})
    assert cache.cached_table(path, lambda: new, source="test", query="q2").equals(new)
    assert cache.read_manifest(path)["query"] == "q2"


def _bytes_of(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".manifest.json") and "reports" not in p.parts}


def test_identical_runs_identical_bytes(tmp_path, run_dir):
    """(e) the same inputs give the same bytes for every product, model.pt included."""
    import dataclasses
    from ocmembers.method.selection import ClusterParams
    from ocmembers.stages import train as train_stage

    # the simulated chain, a second time in another directory
    out2 = tmp_path / "out2"
    conf = run_dir["tmp"] / "run.toml"
    for s in CHAIN:
        assert main([s, "--source", "sim", "--data-dir", str(run_dir["data"]), "--output-dir", str(out2),
                     "--config", str(conf)]) == 0
    a, b = _bytes_of(run_dir["cfg"].out_dir), _bytes_of(out2 / "sim")
    assert set(a) == set(b) and len(a) > 15
    assert [k for k in a if a[k] != b[k]] == []
    # a tiny training, twice
    rng = np.random.default_rng(3)
    cols = ["f_r", "f_pm", "f_plx", "f_c", "f_g"]
    frames = {n: (rng.normal(0, 1, (15, 5)), rng.normal(3, 1, (60, 5))) for n in "ABC"}
    heads = []
    for run in ("t1", "t2"):
        cfg = load_config(source="sim", output_dir=str(tmp_path / run), clusters="A,B,C").replace(
            training={"max_epochs": 2, "learning_rate": 3e-3})
        for i, (name, (m, nm)) in enumerate(frames.items()):
            d = cfg.out_dir / "sets" / name
            for s, x in (("members", m), ("candidates", m), ("non_members", nm)):
                cache.write_table(pd.DataFrame(x, columns=cols), d / f"{s}.parquet", source="t", query=name)
            params = {f.name: 1.0 + i for f in dataclasses.fields(ClusterParams)}
            params.update(name=name, n_members=len(m))
            cache.write_json_product({"params": params}, d / "params.json", source="t", query=name)
        train_stage.run(cfg)
        heads.append({k: p.read_bytes() for k, p in products.model_paths(cfg).items()})
        assert train_stage.run(cfg) is None                         # up to date: nothing redone
    assert heads[0] == heads[1]


def test_orphan_temporary_files_are_swept(run_dir):
    """(f) the hidden temporary files of a killed run are removed when the stage starts again."""
    stage, cfg = run_dir["stage"], run_dir["cfg"]
    orphans = [products.sets_dir(cfg, CLUSTER) / ".candidates.parquet.k1ll3d.tmp",
               cfg.out_dir / "members" / f".{CLUSTER}.parquet.abc123.tmp",
               cfg.raw_dir / "cones" / f".{CLUSTER}.parquet.x.tmp"]
    for p in orphans:
        p.write_bytes(b"half a table")
    for s in ("cones", "sets", "members"):
        assert stage(s) == 0
    assert [p for p in orphans if p.exists()] == []


def test_verify_reports_a_corrupted_product(run_dir, capsys):
    """(g) `ocmembers verify` (make verify) re-hashes the run: one line per stage, exit 1 when bad."""
    stage, cfg = run_dir["stage"], run_dir["cfg"]
    capsys.readouterr()
    assert stage("verify") == 0
    err = capsys.readouterr().err
    assert "members: 2 ok, 0 corrupted, 0 missing manifest" in err
    assert "sets: 5 ok, 0 corrupted, 0 missing manifest" in err
    _flip(products.set_path(cfg, CLUSTER, "non_members"))
    (cfg.out_dir / "members" / "extra.parquet").write_bytes(b"no manifest")
    assert stage("verify") == 1
    err = capsys.readouterr().err
    assert "sets: 4 ok, 1 corrupted, 0 missing manifest" in err
    assert "members: 2 ok, 0 corrupted, 1 missing manifest" in err
    assert "non_members.parquet" in err


def test_code_version_follows_the_imports():
    """The members stage's code version covers what it runs, and nothing it does not."""
    from ocmembers.stages.runner import code_modules
    mods = code_modules("ocmembers.stages.members")
    assert {"ocmembers.stages.members", "ocmembers.method.membership", "ocmembers.method.classifier",
            "ocmembers.sources.member_lists"} <= set(mods)
    assert not {"ocmembers.stages.validate", "ocmembers.stages.sets", "ocmembers.sim.cluster",
                "ocmembers.stages.runner", "ocmembers.stages.plots"} & set(mods)
