"""Stage pr22 on the archive route, end to end with fake Gaia and VizieR clients (no network): the field
of NGC 5606 made of replies generated from its simulated measurements (tests/nir_replies.py)."""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from nir_replies import (FakeTap, FakeVizierRegion, capture_measurements, gaia_reply, tmass_reply, virac2_reply,
                         vista_cmd_reply)

pytestmark = pytest.mark.filterwarnings("ignore:.*Implicitly generating an ID:Warning")

FAST = {"xd_bootstrap": 10, "pr22_upmask_iterations": 3, "xd_max_iter": 30, "upmask_random_fields": 20}
CLUSTER = "NGC_5606"


@pytest.fixture(scope="module")
def replies(shared_data, tmp_path_factory):
    from ocmembers.config import load_config
    from ocmembers.method.columns import cluster_row
    from ocmembers.sim.source import SimSource
    from ocmembers.sources.pr22 import pr22_cluster_table

    cfg = load_config(source="sim", local_dir=str(shared_data),
                      output_dir=str(tmp_path_factory.mktemp("sim") / "data"))
    table = SimSource(cfg)._full_table()
    _, m = capture_measurements(cluster_row(pr22_cluster_table(table), CLUSTER), cfg)
    rng = np.random.default_rng(5)
    return {"clusters": table, "gaia": gaia_reply(m), "2mass": tmass_reply(m, rng)[0],
            "virac2": virac2_reply(m, rng)[0]}


def _run(replies, shared_data, out, *, empty_nir=False, fetch=None):
    """The stage with SOURCE=archive on NGC 5606, the clients faked; returns (cfg, report, clients)."""
    from ocmembers.config import load_config
    from ocmembers.sources import cache, nir_archive
    from ocmembers.stages import pr22, pr22_cluster
    from ocmembers.stages.products import catalogue_paths

    cfg = load_config(source="archive", local_dir=str(shared_data), output_dir=str(out / "data"),
                      clusters=[CLUSTER]).replace(methods=FAST)
    path = catalogue_paths(cfg)["clusters"]
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        cache.write_table(replies["clusters"], path, source="archive", query="test: CG20 table1")
    nir = {nir_archive.TMASS_PSC: replies["2mass"], nir_archive.VIRAC2: replies["virac2"]}
    if empty_nir:
        nir = {k: Table(v[:0]) for k, v in nir.items()}
    tap, viz = FakeTap(replies["gaia"]), FakeVizierRegion(nir)
    mp = pytest.MonkeyPatch()
    mp.setattr(pr22, "PAPER_DIR", out / "paper")
    from ocmembers.sources import cmd
    cmd_calls = []

    def fake_cmd(payload, session=None, **kw):   # the VISTA isochrone of the total mass
        cmd_calls.append(dict(payload, **{"url": kw.get("url")}))
        return vista_cmd_reply(payload)
    mp.setattr(cmd, "fetch_cmd", fake_cmd)
    viz.cmd_calls = cmd_calls
    mp.setattr(pr22_cluster, "fetch_field", fetch or functools.partial(nir_archive.fetch_field, gaia_client=tap,
                                                               vizier_client=viz))
    try:
        report = pr22.run(cfg)
    finally:
        mp.undo()
    return cfg, report, (tap, viz)


@pytest.fixture(scope="module")
def archive_run(replies, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("pr22_archive")
    return (*_run(replies, shared_data, out), out)


def test_the_archive_field_runs_the_method(archive_run, replies):
    from ocmembers.sources import cache
    from ocmembers.sources.nir_archive import FIELD_COLUMNS, build_gaia_field_adql

    cfg, report, (tap, viz), _ = archive_run
    assert report.done == [CLUSTER] and not report.failed
    assert len(tap.queries) == 1 and [c["catalog"] for c in viz.calls] == ["II/246/out", "II/387/virac2"]
    cone_p = cfg.raw_dir / "vvv" / f"{CLUSTER}.cone.parquet"
    field = cache.read_table(cone_p)
    assert list(field.columns) == list(FIELD_COLUMNS) and not (cfg.raw_dir / "vvv" / f"{CLUSTER}.truth.parquet").exists()
    # the product records its requests: the manifest holds their text, the record their digest
    man = cache.read_manifest(cone_p)
    assert man["source"] == "archive" and "II/387/virac2" in man["query"] and "CIRCLE('ICRS'" in man["query"]
    assert "queries" in man["record"]["inputs"] and f"cluster[{CLUSTER}]" in man["record"]["inputs"]
    from ocmembers.method.columns import cluster_row
    from ocmembers.sources.pr22 import pr22_cluster_table
    assert tap.queries[0] == build_gaia_field_adql(cluster_row(pr22_cluster_table(replies["clusters"]), CLUSTER), cfg)
    s = json.loads((cfg.out_dir / "pr22" / "clusters" / f"{CLUSTER}.json").read_text())
    assert s["photometry"] == "J,H,Ks" and s["nir_coverage"] == "2MASS+VIRAC2" and s["source"] == "archive"
    assert s["metrics"] == [] and s["n_true_members"] is None and s["n_sources"] == len(field)
    assert not (cfg.out_dir / "pr22" / "compare" / f"{CLUSTER}.json").exists()   # no truth: no comparison
    table = pd.read_csv(cfg.out_dir / "pr22" / "clusters.csv")
    assert table.loc[0, "photometry"] == "J,H,Ks" and table.loc[0, "nir_coverage"] == "2MASS+VIRAC2"
    st = json.loads((cfg.out_dir / "pr22" / "statistics.json").read_text())
    assert st["source"] == "archive" and st["n_clusters_run"] == 1 and st["n_gaia_only"] == []
    meta = json.loads((cfg.raw_dir / "vvv" / f"{CLUSTER}.meta.json").read_text())
    assert sum(meta["counts"]["ks"]) == int(np.isfinite(field["Ksmag"]).sum()) and meta["empty_catalogues"] == []
    # the total mass on the VISTA isochrone of CMD: one single-age request, kept with its request
    assert len(viz.cmd_calls) == 1 and viz.cmd_calls[0]["photsys_file"] == "YBC_tab_mag_odfnew/tab_mag_vista.dat"
    assert viz.cmd_calls[0]["url"] == cfg.source.cmd_url
    raw = list((cfg.raw_dir / "isochrones").glob("cmd_vista_*.dat"))
    assert len(raw) == 1 and "tab_mag_vista.dat" in cache.read_manifest(raw[0])["query"]
    assert table.loc[0, "mass_isochrone"].startswith("CMD ") and ", vista," in table.loc[0, "mass_isochrone"]


def test_a_rerun_fetches_nothing(archive_run, replies, shared_data):
    cfg, _, _, out = archive_run
    _, report, _ = _run(replies, shared_data, out, fetch=lambda *a, **k: pytest.fail("fetched again"))
    assert report.skipped == [CLUSTER]


def test_no_nir_coverage_runs_on_the_gaia_dimensions_and_says_so(replies, shared_data, tmp_path):
    cfg, report, _ = _run(replies, shared_data, tmp_path, empty_nir=True)
    assert report.done == [CLUSTER]
    s = json.loads((cfg.out_dir / "pr22" / "clusters" / f"{CLUSTER}.json").read_text())
    assert s["photometry"] == "gaia only (no J, H, Ks)"
    assert s["nir_coverage"] == "none (2MASS and VIRAC2 answered with no rows)"
    table = pd.read_csv(cfg.out_dir / "pr22" / "clusters.csv")
    assert table.loc[0, "photometry"].startswith("gaia only") and table.loc[0, "nir_coverage"].startswith("none")
    st = json.loads((cfg.out_dir / "pr22" / "statistics.json").read_text())
    assert st["n_gaia_only"] == [CLUSTER]
    rows = (tmp_path / "paper" / "build" / "clusters_table.tex").read_text()
    assert rows.strip().endswith(r"Gaia \\")
