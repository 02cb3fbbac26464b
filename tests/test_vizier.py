"""VizieR requests and parsers (ocmembers.sources.vizier) on recorded-format replies, no network.

The fixtures ``tests/data/archive_vizier_*.xml`` are VOTables in VizieR's
layout built by ``scripts/record_test_data.py`` from rows of the reference
CSV files; astroquery's own HTTP path is exercised by monkeypatching
``requests.Session.request``, as astroquery's tests do.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from astropy.io.votable import parse_single_table

from ocmembers import load_config
from ocmembers.exceptions import (ArchiveError, EmptyResponseError, MissingColumnsError,
                                  TableParseError)
from ocmembers.sources import vizier
from ocmembers.method.columns import CLUSTER_COLUMNS, MEMBER_COLUMNS

DATA = Path(__file__).parent / "data"
FIXTURES = {
    vizier.CG20_TABLE1: DATA / "archive_vizier_cg20_table1.xml",
    vizier.CG20_MEMBERS: DATA / "archive_vizier_cg20_nodup.xml",
    vizier.T22_MEMBERS: DATA / "archive_vizier_t22_table2.xml",
}


def votable(path: Path):
    """Read a fixture as astroquery does (field names, not IDs)."""
    return parse_single_table(path, verify="ignore").to_table(use_names_over_ids=True)


@pytest.fixture
def cfg(tmp_path):
    return load_config(output_dir=str(tmp_path / "data"))


# -- requests -----------------------------------------------------------------

def test_build_query_is_a_plain_dict():
    payload = vizier.build_vizier_query(vizier.CG20_MEMBERS, ["Cluster", "GaiaDR2"],
                                        constraints={"Cluster": "NGC_2682"})
    assert payload == {"service": "VizieR", "catalog": "J/A+A/640/A1/nodup",
                       "columns": ["Cluster", "GaiaDR2"], "constraints": {"Cluster": "NGC_2682"},
                       "row_limit": -1}
    assert vizier.query_text(payload) == (
        '{"catalog":"J/A+A/640/A1/nodup","columns":["Cluster","GaiaDR2"],'
        '"constraints":{"Cluster":"NGC_2682"},"row_limit":-1,"service":"VizieR"}')


def test_catalogue_queries_name_the_three_tables():
    q = vizier.catalogue_queries()
    assert {k: v["catalog"] for k, v in q.items()} == {
        "clusters": "J/A+A/640/A1/table1", "train_members": "J/A+A/640/A1/nodup",
        "t22_members": "J/A+A/659/A59/table2"}
    assert "pmRA*" in q["clusters"]["columns"] and "e_pmRA*" in q["clusters"]["columns"]


@pytest.mark.parametrize("catalog, columns", [("table1", ["a"]), ("", ["a"]),
                                              ("J/A+A/640/A1/table1", [])])
def test_build_query_rejects_bad_requests(catalog, columns):
    with pytest.raises(ValueError):
        vizier.build_vizier_query(catalog, columns)


# -- CG20 table1 --------------------------------------------------------------

def test_parse_cg20_table1_reply():
    table = vizier.parse_cg20_table1(votable(FIXTURES[vizier.CG20_TABLE1]))
    assert list(table.columns) == list(CLUSTER_COLUMNS)
    assert table["name"].tolist() == ["NGC_2682", "NGC_752", "Blanco_1", "IC_4756", "NGC_2516"]
    m67 = table.set_index("name").loc["NGC_2682"]
    # CG20 table1, NGC 2682
    expected = {"ra": 132.846, "dec": 11.814, "l": 215.691, "b": 31.921, "r50": 0.166,
                "n_members": 598, "pmra": -10.986, "pmra_std": 0.193, "pmdec": -2.964,
                "pmdec_std": 0.201, "parallax": 1.135, "parallax_std": 0.051, "log_age": 9.63,
                "a0": 0.07, "dist_mod": 9.75, "dist_pc": 889.0}
    for key, value in expected.items():
        assert m67[key] == pytest.approx(value), key
    assert table["n_members"].dtype == np.int64
    # the recorded reply has AgeNN masked for IC_4756
    assert np.isnan(table.set_index("name").loc["IC_4756", "log_age"])


def test_parse_cg20_table1_matches_the_csv_release(shared_data):
    reply = vizier.parse_cg20_table1(votable(FIXTURES[vizier.CG20_TABLE1]))
    csv = vizier.parse_cg20_table1(pd.read_csv(shared_data / "catalogues" / "cg20_table1.csv"))
    csv = csv.set_index("name").loc[reply["name"]].reset_index()
    csv.loc[csv["name"] == "IC_4756", "log_age"] = np.nan
    pd.testing.assert_frame_equal(reply, csv, check_dtype=False)


def test_old_astroquery_underscore_names_and_spaces():
    frame = votable(FIXTURES[vizier.CG20_TABLE1]).to_pandas()
    frame = frame.rename(columns={"pmRA*": "pmRA_", "e_pmRA*": "e_pmRA_"})
    frame["Cluster"] = frame["Cluster"].str.replace("_", " ")
    table = vizier.parse_cg20_table1(frame)
    assert table["name"].iloc[0] == "NGC_2682"
    assert table["pmra"].iloc[0] == pytest.approx(-10.986)
    assert table["pmra_std"].iloc[0] == pytest.approx(0.193)


def test_galactic_coordinates_computed_when_absent():
    frame = votable(FIXTURES[vizier.CG20_TABLE1]).to_pandas()
    table = vizier.parse_cg20_table1(frame.drop(columns=["GLON", "GLAT"]))
    # CG20 GLON/GLAT are means of the members, so agree with the transform of the mean
    # position to ~0.01 deg
    np.testing.assert_allclose(table["l"], frame["GLON"], atol=0.02)
    np.testing.assert_allclose(table["b"], frame["GLAT"], atol=0.02)


def test_vizier_tsv_subset_lacks_dispersions(shared_data):
    path = shared_data / "catalogues" / "cg20_table1_vizier_subset.tsv"
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    from io import StringIO
    frame = pd.read_csv(StringIO("\n".join([lines[0]] + lines[3:])), sep="\t")
    with pytest.raises(MissingColumnsError, match="pmra_std.*pmdec_std.*parallax_std"):
        vizier.parse_cg20_table1(frame)


def test_parse_cg20_table1_errors():
    frame = votable(FIXTURES[vizier.CG20_TABLE1]).to_pandas()
    with pytest.raises(TableParseError, match="duplicate.*NGC_2682"):
        vizier.parse_cg20_table1(pd.concat([frame, frame.iloc[:1]]))
    bad = frame.astype({"plx": object})
    bad.loc[0, "plx"] = "one"
    with pytest.raises(TableParseError, match="plx|parallax"):
        vizier.parse_cg20_table1(bad)
    with pytest.raises(TableParseError, match="no rows"):
        vizier.parse_cg20_table1(frame.iloc[:0])


# -- member lists ---------------------------------------------------------------

def test_parse_cg20_members():
    raw = votable(FIXTURES[vizier.CG20_MEMBERS])
    members = vizier.parse_members(raw, id_column="GaiaDR2", id_name="source_id_dr2")
    assert list(members.columns) == list(MEMBER_COLUMNS) + ["source_id_dr2"]
    assert members["source_id_dr2"].dtype == np.int64
    assert members["source_id_dr2"].tolist() == [int(x) for x in raw["GaiaDR2"]]
    np.testing.assert_allclose(members["probability"], np.asarray(raw["proba"]))
    np.testing.assert_allclose(members["parallax"], np.asarray(raw["Plx"]))
    assert set(members["cluster"]) == {"NGC_2682"}


def test_parse_t22_members_against_the_csv(shared_data):
    members = vizier.parse_members(votable(FIXTURES[vizier.T22_MEMBERS]), id_column="GaiaEDR3",
                                   id_name="source_id")
    csv = pd.read_csv(shared_data / "catalogues" / "t22_members_edr3.csv.gz")
    csv = csv.set_index("Source").loc[members["source_id"]]
    np.testing.assert_allclose(members["pmra"], csv["pmra"])
    np.testing.assert_allclose(members["phot_g_mean_mag"], csv["phot_g_mean_mag"], rtol=1e-6)
    np.testing.assert_allclose(members["probability"], csv["PMemb"])


def test_members_missing_columns(caplog):
    raw = votable(FIXTURES[vizier.CG20_MEMBERS]).to_pandas()
    with pytest.raises(MissingColumnsError, match="GaiaDR2"):
        vizier.parse_members(raw.drop(columns="GaiaDR2"), id_column="GaiaDR2")
    with pytest.raises(MissingColumnsError, match="probability"):
        vizier.parse_members(raw.drop(columns="proba"), id_column="GaiaDR2")
    with caplog.at_level(logging.WARNING):
        out = vizier.parse_members(raw.drop(columns=["Plx", "Gmag"]), id_column="GaiaDR2")
    assert out["parallax"].isna().all() and out["phot_g_mean_mag"].isna().all()
    assert "parallax" in caplog.text


# -- through astroquery, HTTP monkeypatched -------------------------------------

class FakeVizierServer:
    """Replaces ``requests.Session.request``: serves a fixture per ``-source``."""

    def __init__(self, *statuses: int, body: bytes | None = None):
        self.statuses = list(statuses)
        self.body = body
        self.requests: list[tuple[str, str, str]] = []

    def __call__(self, session, method, url, data=None, **kwargs):
        text = data if isinstance(data, str) else (data or b"").decode()
        self.requests.append((method, url, text))
        source = next(ln.split("=", 1)[1] for ln in text.splitlines() if ln.startswith("-source="))
        response = requests.Response()
        response.status_code = self.statuses.pop(0) if self.statuses else 200
        response.url = url
        response._content = self.body if self.body is not None else FIXTURES[source].read_bytes()
        return response

    def install(self, monkeypatch) -> "FakeVizierServer":
        server = self

        def request(session, method, url, **kwargs):
            return server(session, method, url, **kwargs)

        monkeypatch.setattr(requests.Session, "request", request)
        return self


def test_fetch_vizier_through_astroquery(monkeypatch, cfg):
    server = FakeVizierServer().install(monkeypatch)
    payload = vizier.catalogue_queries()["clusters"]
    table = vizier.fetch_vizier(payload, cfg=cfg)
    assert len(server.requests) == 1
    method, url, body = server.requests[0]
    assert method == "POST" and "vizier" in url
    assert "-source=J/A+A/640/A1/table1" in body
    assert "-out=Cluster,RA_ICRS,DE_ICRS,GLON,GLAT,r50,nbstars07,pmRA*,e_pmRA*" in body
    assert "-out.max=unlimited" in body
    parsed = vizier.parse_cg20_table1(table)
    assert parsed.loc[0, "name"] == "NGC_2682" and parsed.loc[0, "pmra"] == pytest.approx(-10.986)


def test_fetch_vizier_retries_a_503(monkeypatch, cfg):
    server = FakeVizierServer(503).install(monkeypatch)
    waits: list[float] = []
    table = vizier.fetch_vizier(vizier.catalogue_queries()["t22_members"], cfg=cfg, sleep=waits.append)
    assert len(server.requests) == 2 and waits == [cfg.source.backoff_s]
    assert "GaiaEDR3" in table.colnames


def test_fetch_vizier_gives_up_naming_the_catalogue(monkeypatch, cfg):
    FakeVizierServer(*[502] * 4).install(monkeypatch)
    with pytest.raises(ArchiveError, match="J/A\\+A/640/A1/nodup.*4 tries"):
        vizier.fetch_vizier(vizier.catalogue_queries()["train_members"], cfg=cfg,
                            sleep=lambda s: None)


def test_fetch_vizier_empty_reply(monkeypatch, cfg):
    empty = (b'<?xml version="1.0" encoding="utf-8"?>\n<VOTABLE version="1.4" '
             b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE/></VOTABLE>')
    FakeVizierServer(body=empty).install(monkeypatch)
    with pytest.raises(EmptyResponseError, match="no rows"):
        vizier.fetch_vizier(vizier.build_vizier_query(vizier.CG20_MEMBERS, ["Cluster"],
                                                      constraints={"Cluster": "NGC_0000"}), cfg=cfg)
