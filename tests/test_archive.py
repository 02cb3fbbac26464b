"""ArchiveSource (ocmembers.sources.archive) with injected clients: every method, no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from astropy.io.votable import parse_single_table
from astropy.table import Table

from ocmembers import load_config
from ocmembers.sources.cache import read_manifest
from ocmembers.exceptions import ArchiveError, ConfigError, IsochroneRangeError
from ocmembers.sources import get_source, gaia, vizier
from ocmembers.sources.archive import ArchiveSource, cmd_grid_path, nearest_grid_age
from ocmembers.method.columns import CLUSTER_COLUMNS, GAIA_COLUMNS

from test_cmd import OUTPUT, FakeSession
from test_gaia import NGC_2682, DummyGaia

DATA = Path(__file__).parent / "data"


@pytest.fixture
def cfg(tmp_path):
    return load_config(output_dir=str(tmp_path / "data")).replace(
        isochrone={"log_age_min": 7.0, "log_age_max": 7.05, "log_age_step": 0.05,
                   "metallicity_z": 0.0105})


class FakeVizier:
    """A ``Vizier``-like client serving the recorded VOTables by catalogue."""

    files = {vizier.CG20_TABLE1: "archive_vizier_cg20_table1.xml",
             vizier.CG20_MEMBERS: "archive_vizier_cg20_nodup.xml",
             vizier.T22_MEMBERS: "archive_vizier_t22_table2.xml"}

    def __init__(self):
        self.calls: list[str] = []

    def query_constraints(self, catalog, cache=True, **constraints):
        self.calls.append(catalog)
        table = parse_single_table(DATA / self.files[catalog], verify="ignore")
        return {catalog: table.to_table(use_names_over_ids=True)}


def test_get_source_gives_the_archive(cfg):
    source = get_source(cfg)
    assert isinstance(source, ArchiveSource) and source.name == "archive"


def test_catalogues(cfg):
    client = FakeVizier()
    source = ArchiveSource(cfg, vizier_client=client)
    clusters = source.cluster_table()
    assert list(clusters.columns) == list(CLUSTER_COLUMNS)
    assert "NGC_2682" in set(clusters["name"])
    train = source.training_members()
    assert "source_id_dr2" in train.columns and train["source_id_dr2"].dtype == np.int64
    t22 = source.comparison_members()
    assert "source_id" in t22.columns
    source.cluster_table()  # kept in memory: no second request
    assert client.calls == [vizier.CG20_TABLE1, vizier.CG20_MEMBERS, vizier.T22_MEMBERS]


def test_catalogue_query_without_network(cfg):
    source = ArchiveSource(cfg, vizier_client=object())
    text = source.catalogue_query("clusters")
    assert '"catalog":"J/A+A/640/A1/table1"' in text
    assert source.catalogue_query("t22_members") != source.catalogue_query("train_members")
    with pytest.raises(ConfigError, match="unknown catalogue product"):
        source.catalogue_query("members")


def test_cone_and_its_query(cfg):
    table = parse_single_table(DATA / "archive_gaia_cone_NGC_2682.xml").to_table()
    client = DummyGaia(table)
    source = ArchiveSource(cfg, gaia_client=client)
    assert source.cone_query(NGC_2682) == gaia.build_cone_adql(NGC_2682, cfg)
    cone = source.cone(NGC_2682)
    assert list(cone.columns) == list(GAIA_COLUMNS) and len(cone) == 25
    assert client.calls[0][0] == source.cone_query(NGC_2682)


def test_cone_failure_names_the_cluster(cfg):
    source = ArchiveSource(cfg, gaia_client=DummyGaia(requests.ConnectionError("down")),
                           sleep=lambda s: None)
    with pytest.raises(ArchiveError, match="cluster NGC_2682: Gaia cone"):
        source.cone(NGC_2682)


def test_crossmatch_restricted_to_the_cone(cfg):
    neighbourhood = Table({"dr2_source_id": [1, 1, 2, 3], "dr3_source_id": [11, 12, 21, 31],
                           "angular_distance": [2.0, 400.0, 5.0, 1.0],
                           "magnitude_difference": [0.0, 1.5, 0.02, 0.0],
                           "proper_motion_propagation": [True, True, True, False]})
    client = DummyGaia(neighbourhood)
    source = ArchiveSource(cfg, gaia_client=client)
    members = pd.DataFrame({"cluster": ["NGC_2682"] * 3, "source_id_dr2": [3, 1, 2]})
    cone = pd.DataFrame({"source_id": [11, 21, 99]})
    xm = source.crossmatch(members, cone, NGC_2682)
    assert list(xm.columns) == list(gaia.CROSSMATCH_COLUMNS)
    assert xm["source_id_dr2"].tolist() == [1, 2]       # 31 is outside the cone
    assert xm["source_id"].tolist() == [11, 21]
    assert not xm["ambiguous"].any()
    query, kwargs = client.calls[0]
    assert query == gaia.build_neighbourhood_adql(cfg)
    assert sorted(kwargs["upload_resource"]["source_id_dr2"]) == [1, 2, 3]
    assert "3 DR2 ids of NGC_2682" in source.crossmatch_query(members, NGC_2682)


def test_crossmatch_without_members(cfg):
    source = ArchiveSource(cfg, gaia_client=DummyGaia(RuntimeError("must not be called")))
    xm = source.crossmatch(pd.DataFrame({"source_id_dr2": pd.Series([], dtype=np.int64)}),
                           pd.DataFrame(), NGC_2682)
    assert len(xm) == 0 and list(xm.columns) == list(gaia.CROSSMATCH_COLUMNS)


def fake_read_cmd(data, name="x"):
    """A minimal CMD reader for these tests (the real one is ocmembers.sources.parsec.read_cmd)."""
    text = data.decode() if isinstance(data, bytes) else data
    header = next(ln for ln in text.splitlines() if "Zini" in ln).lstrip("# ").split()
    rows = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return pd.DataFrame(np.array(rows, dtype=float), columns=header)


def test_isochrone_fetches_the_grid_once_and_caches_it(cfg, monkeypatch):
    monkeypatch.setattr("ocmembers.sources.archive._read_cmd", fake_read_cmd)
    monkeypatch.setattr("ocmembers.sources.archive._GRIDS", {})
    session = FakeSession()
    source = ArchiveSource(cfg, session=session)
    iso = source.isochrone(7.04)
    assert set(iso["logAge"].round(2)) == {7.05}
    assert len(iso) == 20
    assert "nearest grid logAge 7.05" in iso.attrs["provenance"]
    source.isochrone(7.0)
    assert len(session.posts) == 1                       # one CMD request for the grid
    path = cmd_grid_path(cfg)
    assert path.name == "cmd_0.0105_7.00_7.05_0.05.dat"
    assert path.read_bytes() == OUTPUT
    manifest = read_manifest(path)
    assert manifest["source"] == "archive" and "isoc_lagelow=7.00" in manifest["query"]
    # a new source (another process) reads the verified raw grid: no request
    offline = FakeSession(pages=[requests.ConnectionError("no network")])
    iso2 = ArchiveSource(cfg, session=offline).isochrone(7.0)
    assert offline.posts == [] and set(iso2["logAge"].round(2)) == {7.0}


def test_isochrone_with_the_real_reader(cfg):
    pytest.importorskip("ocmembers.method.isochrones")
    iso = ArchiveSource(cfg, session=FakeSession()).isochrone(7.02)
    assert set(iso["logAge"].round(2)) == {7.0}
    assert {"Mini", "label", "Gmag", "G_BPmag", "G_RPmag"} <= set(iso.columns)


def test_isochrone_query_and_range_without_network(cfg):
    source = ArchiveSource(cfg, session=FakeSession(pages=[RuntimeError("no requests")]))
    assert source.isochrone_query(7.04).endswith("logAge 7.05 (nearest grid age to 7.04)")
    assert nearest_grid_age(7.024, cfg) == 7.0
    for bad in (6.9, 7.2, float("nan")):
        with pytest.raises(IsochroneRangeError):
            source.isochrone_query(bad)
