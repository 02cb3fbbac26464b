"""Gaia archive requests (ocmembers.sources.gaia): ADQL builders, a dummy TAP client, no network."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from astropy.io.votable import parse_single_table
from astropy.table import Table

from ocmembers import load_config
from ocmembers.exceptions import (ArchiveError, EmptyConeError, MissingColumnsError,
                                  TableParseError)
from ocmembers.sources import gaia
from ocmembers.method.columns import GAIA_COLUMNS, cluster_row

DATA = Path(__file__).parent / "data"

#: NGC 2682 (M67) in CG20 table1: RA, DEC, pmRA, e_pmRA, pmDE, e_pmDE, plx, e_plx, D_pc.
NGC_2682 = pd.Series({"name": "NGC_2682", "ra": 132.846, "dec": 11.814, "pmra": -10.986,
                      "pmra_std": 0.193, "pmdec": -2.964, "pmdec_std": 0.201, "parallax": 1.135,
                      "parallax_std": 0.051, "dist_pc": 889.0})

# Written out by hand: radius = degrees(arctan(50 / 889)) = 3.21909335659 deg;
# Eq. 1: 10 * sqrt((0.193**2 + 0.201**2) / 2) = 10 * sqrt(0.038825) = 1.97040604952 mas/yr;
# Eq. 2: 10 * 0.051 = 0.51 mas.
EXPECTED_NGC_2682 = (
    "SELECT source_id, ra, dec, ra_error, dec_error, parallax, parallax_error, pmra, pmra_error, "
    "pmdec, pmdec_error, ra_dec_corr, ra_parallax_corr, ra_pmra_corr, ra_pmdec_corr, "
    "dec_parallax_corr, dec_pmra_corr, dec_pmdec_corr, parallax_pmra_corr, parallax_pmdec_corr, "
    "pmra_pmdec_corr, phot_g_mean_mag, phot_bp_mean_mag, phot_rp_mean_mag, phot_g_mean_flux, "
    "phot_g_mean_flux_error, phot_bp_mean_flux, phot_bp_mean_flux_error, phot_rp_mean_flux, "
    "phot_rp_mean_flux_error, phot_g_n_obs, phot_bp_n_obs, phot_rp_n_obs, l, b, ruwe, "
    "nu_eff_used_in_astrometry, pseudocolour, ecl_lat, astrometric_params_solved\n"
    "FROM gaiadr3.gaia_source\n"
    "WHERE 1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 132.846, 11.814, 3.21909335659))\n"
    "AND SQRT(POWER(pmra - (-10.986), 2) + POWER(pmdec - (-2.964), 2)) <= 1.97040604952\n"
    "AND ABS(parallax - (1.135)) <= 0.51"
)


@pytest.fixture
def cfg(tmp_path):
    return load_config(output_dir=str(tmp_path / "data"))


@pytest.fixture
def cone_table() -> Table:
    """25 real M67 sources in the Gaia TAP reply format (scripts/record_test_data.py)."""
    return parse_single_table(DATA / "archive_gaia_cone_NGC_2682.xml").to_table()


class DummyJob:
    def __init__(self, result):
        self.result = result

    def get_results(self):
        return self.result


class DummyGaia:
    """Stands in for astroquery's ``Gaia``: records the calls, serves tables or faults."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.calls: list[tuple[str, dict]] = []

    def launch_job_async(self, query, **kwargs):
        self.calls.append((query, kwargs))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            return DummyJob(reply(query, **kwargs))
        return DummyJob(reply)


# -- ADQL ---------------------------------------------------------------------

def test_cone_adql_ngc_2682_by_hand(cfg):
    assert gaia.build_cone_adql(NGC_2682, cfg) == EXPECTED_NGC_2682


def test_cone_adql_from_the_real_cluster_table(cfg, shared_data):
    from ocmembers.sources.vizier import parse_cg20_table1

    table = parse_cg20_table1(pd.read_csv(shared_data / "catalogues" / "cg20_table1.csv"))
    assert gaia.build_cone_adql(cluster_row(table, "NGC 2682"), cfg) == EXPECTED_NGC_2682


def test_cone_adql_follows_the_config(tmp_path):
    cfg = load_config(output_dir=str(tmp_path)).replace(
        cone={"radius_pc": 20.0, "n_sigma": 3.0}, source={"gaia_table": "gaiaedr3.gaia_source"})
    adql = gaia.build_cone_adql(NGC_2682, cfg)
    assert "FROM gaiaedr3.gaia_source\n" in adql
    # arctan(20/889) = 0.02249339 rad = 1.288777 deg; 3 * 0.197040605 = 0.591121815; 3 * 0.051 = 0.153
    assert "CIRCLE('ICRS', 132.846, 11.814, 1.288776517" in adql
    assert "<= 0.591121814857\n" in adql
    assert adql.endswith("<= 0.153")


def test_cone_radius_is_arctan_not_small_angle():
    assert gaia.cone_radius_deg(50.0, 50.0) == pytest.approx(45.0)
    assert gaia.cone_radius_deg(50.0, 5000.0) == pytest.approx(math.degrees(0.01), rel=1e-4)


@pytest.mark.parametrize("key", ["pmra_std", "parallax_std", "dist_pc", "ra"])
def test_nan_parameter_names_cluster_and_column(cfg, key):
    row = NGC_2682.copy()
    row[key] = np.nan
    with pytest.raises(TableParseError, match=rf"NGC_2682.*{key}"):
        gaia.build_cone_adql(row, cfg)


def test_missing_parameter_column(cfg):
    with pytest.raises(MissingColumnsError, match="NGC_2682.*dist_pc"):
        gaia.build_cone_adql(NGC_2682.drop("dist_pc"), cfg)


@pytest.mark.parametrize("key, value", [("dist_pc", 0.0), ("dist_pc", -10.0),
                                        ("parallax_std", 0.0), ("pmra_std", -0.1), ("dec", 91.0)])
def test_unphysical_parameters(cfg, key, value):
    row = NGC_2682.copy()
    row[key] = value
    with pytest.raises(TableParseError, match="NGC_2682"):
        gaia.build_cone_adql(row, cfg)


def test_format_number_is_plain_and_deterministic():
    assert gaia.format_number(132.846) == "132.846"
    assert gaia.format_number(-0.0) == "0"
    assert gaia.format_number(1e-7) == "0.0000001"
    assert gaia.format_number(np.float32(0.5)) == "0.5"
    with pytest.raises(ValueError):
        gaia.format_number(float("inf"))


def test_neighbourhood_adql(cfg):
    assert gaia.build_neighbourhood_adql(cfg) == (
        "SELECT n.dr2_source_id, n.dr3_source_id, n.angular_distance, n.magnitude_difference, "
        "n.proper_motion_propagation\n"
        "FROM gaiadr3.dr2_neighbourhood AS n\n"
        "JOIN tap_upload.dr2_ids AS u ON n.dr2_source_id = u.source_id_dr2")


# -- fetching cones with a dummy client ---------------------------------------

def test_fetch_cone_returns_archive_columns(cfg, cone_table):
    client = DummyGaia(cone_table)
    cone = gaia.fetch_cone(EXPECTED_NGC_2682, cfg=cfg, client=client)
    assert client.calls == [(EXPECTED_NGC_2682, {})]
    assert list(cone.columns) == list(GAIA_COLUMNS)
    assert len(cone) == 25
    assert cone["source_id"].dtype == np.int64
    np.testing.assert_array_equal(cone["source_id"].to_numpy(),
                                  np.asarray(cone_table["source_id"], dtype=np.int64))


def test_fetch_cone_lower_cases_column_names(cfg, cone_table):
    upper = cone_table.copy()
    upper.rename_columns(upper.colnames, [c.upper() for c in upper.colnames])
    cone = gaia.fetch_cone("q", cfg=cfg, client=DummyGaia(upper))
    assert list(cone.columns) == list(GAIA_COLUMNS)


def test_fetch_cone_missing_column(cfg, cone_table):
    cone_table.remove_column("ruwe")
    with pytest.raises(MissingColumnsError, match="ruwe"):
        gaia.fetch_cone("q", cfg=cfg, client=DummyGaia(cone_table), what="cluster NGC_2682: Gaia cone")


def test_empty_cone(cfg, cone_table):
    with pytest.raises(EmptyConeError, match="NGC_2682"):
        gaia.fetch_cone("q", cfg=cfg, client=DummyGaia(cone_table[:0]),
                        what="cluster NGC_2682: Gaia cone")


def test_fetch_cone_retries_transient_failures(cfg, cone_table):
    waits: list[float] = []
    client = DummyGaia(requests.ConnectionError("reset"),
                       requests.HTTPError("Error 503: Service Unavailable"), cone_table)
    cone = gaia.fetch_cone("q", cfg=cfg, client=client, sleep=waits.append)
    assert len(cone) == 25 and len(client.calls) == 3
    assert waits == [cfg.source.backoff_s, 2 * cfg.source.backoff_s]


def test_fetch_cone_gives_up_naming_the_cluster(cfg):
    waits: list[float] = []
    client = DummyGaia(requests.ConnectionError("Connection refused"))
    with pytest.raises(ArchiveError, match=r"cluster NGC_2682: Gaia cone from the Gaia archive: failed after 4 tries.*"
                                           r"Connection refused"):
        gaia.fetch_cone("q", cfg=cfg, client=client, what="cluster NGC_2682: Gaia cone",
                        sleep=waits.append)
    assert len(client.calls) == cfg.source.retries == 4
    assert waits == [2.0, 4.0, 8.0]


def test_dns_and_network_errors_of_the_tap_client_are_retried_naming_the_host(cfg):
    """Issue 11 item 5: astroquery's TAP client raises a bare socket.gaierror for a failed DNS
    lookup (checked on this network-less machine); it is retried like VizieR's lost connections
    and the message names the host."""
    import errno
    import socket
    waits: list[float] = []
    client = DummyGaia(socket.gaierror(-2, "Name or service not known"),
                       OSError(errno.ENETUNREACH, "Network is unreachable"),
                       socket.gaierror(-3, "Temporary failure in name resolution"))
    client.host = "gea.esac.esa.int"
    with pytest.raises(ArchiveError, match=r"cluster NGC_2682: Gaia cone from gea.esac.esa.int: failed "
                                           r"after 4 tries.*host name could not be resolved.*make demo"):
        gaia.fetch_cone("q", cfg=cfg, client=client, what="cluster NGC_2682: Gaia cone", sleep=waits.append)
    assert len(client.calls) == 4 and waits == [2.0, 4.0, 8.0]


def test_the_tap_host_is_read_from_astroquery():
    from astroquery.gaia import Gaia
    assert gaia.tap_host(Gaia) == "gea.esac.esa.int"


def test_bad_query_fails_at_once(cfg):
    client = DummyGaia(requests.HTTPError("Error 400: Cannot parse query: unknown column 'rwue'"))
    with pytest.raises(ArchiveError, match="not retried"):
        gaia.fetch_cone("q", cfg=cfg, client=client, sleep=lambda s: None)
    assert len(client.calls) == 1


# -- DR2 -> DR3 -----------------------------------------------------------------

def neighbourhood_rows(rows):
    return pd.DataFrame(rows, columns=list(gaia.NEIGHBOURHOOD_COLUMNS[:4]))


def test_best_match_rules():
    nb = neighbourhood_rows([
        (1, 10, 5.0, 0.01), (1, 11, 300.0, 2.5),          # clear best
        (2, 21, 150.0, 0.08), (2, 20, 100.0, 0.05),       # competitor within 0.1 mag: ambiguous
        (3, 30, 2000.0, 0.0),                             # 2 arcsec: no counterpart
        (4, 40, 50.0, np.nan), (4, 41, 50.0, 0.02),       # tie in distance: smaller |dG| wins
        (5, 50, 10.0, 0.0), (6, 50, 20.0, 0.1),           # two DR2 on one DR3: both ambiguous
    ])
    out = gaia.best_dr2_dr3_match(nb, max_sep_arcsec=1.0, ambiguous_dmag=0.1)
    assert list(out.columns) == list(gaia.CROSSMATCH_COLUMNS)
    assert out["source_id_dr2"].tolist() == [1, 2, 4, 5, 6]
    assert out["source_id"].tolist() == [10, 20, 41, 50, 50]
    assert out["ambiguous"].tolist() == [False, True, False, True, True]
    np.testing.assert_allclose(out["angular_distance"], [0.005, 0.1, 0.05, 0.01, 0.02])
    assert out.attrs["n_ambiguous"] == 3
    assert out.attrs["n_unmatched_dr2"] == 1
    assert out["source_id"].dtype == np.int64 and out["ambiguous"].dtype == bool


def test_best_match_thresholds_from_arguments():
    nb = neighbourhood_rows([(2, 20, 100.0, 0.05), (2, 21, 150.0, 0.08)])
    strict = gaia.best_dr2_dr3_match(nb, max_sep_arcsec=0.12, ambiguous_dmag=0.1)
    assert strict["ambiguous"].tolist() == [False]       # the competitor is beyond 0.12"
    tight = gaia.best_dr2_dr3_match(nb, max_sep_arcsec=1.0, ambiguous_dmag=0.01)
    assert tight["ambiguous"].tolist() == [False]        # 0.08 > 0.05 + 0.01


def test_fetch_neighbourhood_uploads_unique_ids_in_chunks(cfg):
    def reply(query, upload_resource=None, upload_table_name=None):
        ids = np.asarray(upload_resource["source_id_dr2"])
        return Table({"dr2_source_id": ids, "dr3_source_id": ids + 1,
                      "angular_distance": np.full(len(ids), 3.0),
                      "magnitude_difference": np.zeros(len(ids), dtype=np.float32),
                      "proper_motion_propagation": np.ones(len(ids), dtype=bool)})

    client = DummyGaia(reply)
    nb = gaia.fetch_dr2_neighbourhood(pd.Series([5, 3, 5, 9, 1]), cfg=cfg, client=client, chunk=2)
    assert len(client.calls) == 2
    for query, kwargs in client.calls:
        assert query == gaia.build_neighbourhood_adql(cfg)
        assert kwargs["upload_table_name"] == "dr2_ids"
    uploaded = np.concatenate([np.asarray(k["upload_resource"]["source_id_dr2"])
                               for _, k in client.calls])
    assert uploaded.tolist() == [1, 3, 5, 9]
    assert nb["dr3_source_id"].tolist() == [2, 4, 6, 10]
    assert list(nb.columns) == list(gaia.NEIGHBOURHOOD_COLUMNS)


def test_fetch_neighbourhood_rejects_missing_ids(cfg):
    with pytest.raises(TableParseError, match="missing"):
        gaia.fetch_dr2_neighbourhood(pd.Series([1, None], dtype="Int64"), cfg=cfg,
                                     client=DummyGaia(Table()))


def test_login_needs_a_credentials_file(tmp_path):
    from ocmembers.exceptions import ConfigError

    cfg = load_config(output_dir=str(tmp_path)).replace(source={"gaia_login": True})
    with pytest.raises(ConfigError, match="gaia_credentials_file"):
        gaia.gaia_client(cfg)
