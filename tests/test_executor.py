"""The one executor (ocmembers.sources.executor): in-process, an embedded LocalCluster, a
running Dask scheduler.

- the sim chain (catalogues, cones, crossmatch, isochrones, sets) for three small demo clusters
  writes byte-identical products with JOBS=1, JOBS=2 and SCHEDULER= (a LocalCluster started
  here, so "external" to the run);
- a failing cluster is reported and the others finish, on a scheduler as in-process;
- a task whose worker dies is rescheduled by Dask and succeeds; one that kills every worker
  it lands on fails its cluster only;
- an unreachable scheduler is one error naming the address (exit status 2 from the CLI);
- torch threads inside a task: the CPUs over the task slots of the worker's machine.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from ocmembers import load_config  # noqa: E402
from ocmembers.cli import main  # noqa: E402
from ocmembers.exceptions import OCMembersError, TooFewMembersError  # noqa: E402
from ocmembers.sources import executor  # noqa: E402
from ocmembers.sources.executor import SchedulerError, map_clusters  # noqa: E402
from ocmembers.stages.runner import for_each_cluster  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "src" / "ocmembers" / "demo.toml"
CLUSTERS = ["NGC_188", "NGC_2682", "NGC_2099"]
CHAIN = ("catalogues", "cones", "crossmatch", "isochrones", "sets")


@pytest.fixture(scope="module")
def scheduler():
    """A 2-worker LocalCluster of processes: the 'existing' Dask cluster of SCHEDULER=."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module", autouse=True)
def _close_embedded():
    yield
    executor.shutdown()


def _cfg(out: Path, **kw):
    cfg = load_config(DEMO, source="sim", output_dir=str(out), **kw)
    return cfg.replace(sim={"demo_clusters": CLUSTERS},
                       samples={"train_clusters": CLUSTERS[:1], "validation_clusters": CLUSTERS[1:2],
                                "test_clusters": CLUSTERS[2:]})


def _run_chain(cfg) -> dict[str, bytes]:
    import importlib
    for stage in CHAIN:
        importlib.import_module(f"ocmembers.stages.{stage}").run(cfg)
    products: dict[str, bytes] = {}
    for p in sorted(cfg.out_dir.rglob("*")):
        rel = str(p.relative_to(cfg.out_dir))
        if not p.is_file() or rel.startswith("reports/"):
            continue
        data = p.read_bytes()
        if p.name.endswith(".manifest.json"):  # the write time is the one field that may differ
            meta = json.loads(data)
            meta.pop("time", None)
            data = json.dumps(meta, sort_keys=True).encode()
        products[rel] = data
    return products


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return _run_chain(_cfg(tmp_path_factory.mktemp("jobs1"), jobs=1))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["jobs2", "scheduler"])
def test_products_byte_identical(mode, reference, scheduler, tmp_path, capsys):
    kw = {"jobs": 2} if mode == "jobs2" else {"scheduler": scheduler}
    got = _run_chain(_cfg(tmp_path, **kw))
    assert any(k.startswith("sets/") for k in reference), sorted(reference)
    assert sorted(got) == sorted(reference)
    different = [k for k in reference if got[k] != reference[k]]
    assert not different, f"{mode}: products differ from JOBS=1: {different}"
    err = capsys.readouterr().err
    if mode == "jobs2":
        assert "Dask LocalCluster: 2 worker(s), dashboard http" in err
    else:
        assert f"Dask scheduler {scheduler}: 2 worker(s)" in err


# ------------------------------------------------------------------ failures


def _work(cfg, name):
    if name == "bad":
        raise TooFewMembersError(f"cluster {name}: 2 members, at least 5 needed")
    if name == "ioerr":
        raise OSError(f"cluster {name}: disk gone")
    return True


@pytest.mark.parametrize("mode", ["jobs1", "scheduler"])
def test_failing_cluster_reported_others_finish(mode, scheduler, tmp_path, capsys):
    cfg = load_config(output_dir=str(tmp_path), **({"scheduler": scheduler} if mode == "scheduler" else {}))
    rep = for_each_cluster(cfg, ["a", "bad", "b", "ioerr"], _work, "stage")
    assert sorted(rep.done) == ["a", "b"]
    assert rep.failed == {"bad": "TooFewMembersError: cluster bad: 2 members, at least 5 needed",
                          "ioerr": "OSError: cluster ioerr: disk gone"}
    assert "FAILED bad: TooFewMembersError" in capsys.readouterr().err


def _bug(cfg, name):
    raise RuntimeError(f"a bug in {name}")


def test_a_bug_propagates(scheduler, tmp_path):
    cfg = load_config(output_dir=str(tmp_path), scheduler=scheduler)
    with pytest.raises(RuntimeError, match="a bug in a"):
        for_each_cluster(cfg, ["a"], _bug, "stage")


def _dies_once(cfg, name, marker_dir):
    """Kills its worker process on its first attempt (a marker file remembers it), then succeeds."""
    marker = Path(marker_dir) / f"{name}.attempted"
    if name == "victim" and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
    return name, os.getpid()


def test_killed_worker_task_is_rescheduled(scheduler, tmp_path):
    cfg = load_config(output_dir=str(tmp_path), scheduler=scheduler)
    outs = {o.name: o for o in map_clusters(cfg, ["victim", "other"], _dies_once, str(tmp_path))}
    assert outs["victim"].lost is None and outs["other"].lost is None
    name, pid = outs["victim"].value
    assert name == "victim"
    assert pid != int((tmp_path / "victim.attempted").read_text()), "ran again in a new worker process"


def _always_dies(cfg, name):
    if name == "poison":
        os._exit(1)
    return name, None, True


def test_a_task_that_kills_every_worker_fails_its_cluster_only(tmp_path, capsys):
    import dask
    # no retry; one task per worker, so that the poison shares its worker with no other task
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.scheduler.worker-saturation": 1.0}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as cluster:
            cfg = load_config(output_dir=str(tmp_path), scheduler=cluster.scheduler_address)
            rep = for_each_cluster(cfg, ["poison", "fine"], _always_dies, "stage")
    assert rep.done == ["fine"]
    assert list(rep.failed) == ["poison"] and rep.failed["poison"].startswith("KilledWorker")


# ------------------------------------------------------------- the scheduler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_names_the_address(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(executor, "CONNECT_TIMEOUT_S", 1.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    cfg = load_config(output_dir=str(tmp_path), scheduler=address)
    with pytest.raises(SchedulerError, match=f"cannot reach the Dask scheduler {address}"):
        for_each_cluster(cfg, ["a"], _work, "stage")
    assert isinstance(SchedulerError("x"), OCMembersError)
    status = main(["cones", "--source", "sim", "--output-dir", str(tmp_path), "--clusters", "NGC_188",
                   "--scheduler", address])
    assert status == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Dask scheduler {address}" in err and err.count("cannot reach") == 1


def _threads(cfg, name):
    from ocmembers.stages.membership_run import torch_threads
    return executor.worker_threads(), torch_threads(cfg), os.cpu_count()


def test_torch_threads_shared_among_the_workers_of_a_machine(scheduler, tmp_path):
    cfg = load_config(output_dir=str(tmp_path), scheduler=scheduler)
    for out in map_clusters(cfg, ["a", "b"], _threads):
        share, threads, cpus = out.value
        assert share == threads == max(1, cpus // 2)  # 2 one-thread workers on this machine
    assert executor.worker_threads() is None  # in the client: torch's default
    pinned = cfg.replace(membership={"torch_threads": 3})
    assert {o.value[1] for o in map_clusters(pinned, ["a"], _threads)} == {3}


def test_jobs1_starts_no_cluster(tmp_path, monkeypatch):
    monkeypatch.setattr(executor, "_local_client", lambda n: pytest.fail("a LocalCluster was started"))
    cfg = load_config(output_dir=str(tmp_path), jobs=1)
    assert [o.value for o in map_clusters(cfg, ["a", "b"], _work)] == [True, True]
    assert executor.in_process(cfg, 2) and not executor.in_process(cfg.replace(clusters={"jobs": 2}), 2)
