"""CMD web-service client (ocmembers.sources.cmd) with a fake HTTP session, no network."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import requests

from ocmembers import load_config
from ocmembers.exceptions import ArchiveError
from ocmembers.sources import cmd

DATA = Path(__file__).parent / "data"
URL = "https://stev.oapd.inaf.it/cgi-bin/cmd"
OUTPUT_URL = "https://stev.oapd.inaf.it/tmp/output1700000000123.dat"
PAGE = (DATA / "archive_cmd_reply.html").read_bytes()
ERROR_PAGE = (DATA / "archive_cmd_error.html").read_bytes()
OUTPUT = (DATA / "archive_cmd_output.dat").read_bytes()


def response(content: bytes, url: str, status: int = 200) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = content
    r.url = url
    r.encoding = "utf-8"
    return r


class FakeSession:
    """Serves CMD: POST answers with ``pages`` in turn, GET of the output with ``outputs``."""

    def __init__(self, pages=(PAGE,), outputs=(OUTPUT,)):
        self.pages = list(pages)
        self.outputs = list(outputs)
        self.posts: list[tuple[str, dict]] = []
        self.gets: list[str] = []

    @staticmethod
    def _next(items):
        item = items.pop(0) if len(items) > 1 else items[0]
        if isinstance(item, BaseException):
            raise item
        return item

    def post(self, url, data=None, timeout=None):
        self.posts.append((url, dict(data)))
        item = self._next(self.pages)
        return item if isinstance(item, requests.Response) else response(item, url)

    def get(self, url, timeout=None):
        self.gets.append(url)
        item = self._next(self.outputs)
        return item if isinstance(item, requests.Response) else response(item, url)


@pytest.fixture
def payload():
    return cmd.build_cmd_payload(7.0, 7.05, 0.05, 0.0105)


def test_payload_fields_for_the_paper_grid():
    p = cmd.build_cmd_payload(6.0, 9.99, 0.01, 0.0152)
    assert p["isoc_lagelow"] == "6.00"
    assert p["isoc_lageupp"] == "9.99"
    assert p["isoc_dlage"] == "0.01"
    assert p["isoc_zlow"] == p["isoc_zupp"] == "0.0152"
    assert p["isoc_isagelog"] == "1" and p["isoc_ismetlog"] == "0"
    assert p["track_parsec"] == "parsec_CAF09_v1.2S"
    assert p["track_colibri"] == "parsec_CAF09_v1.2S_S_LMC_08_web"
    assert p["photsys_file"] == "YBC_tab_mag_odfnew/tab_mag_gaiaEDR3.dat"
    assert p["extinction_av"] == "0.0"
    assert all(isinstance(v, str) for v in p.values())


@pytest.mark.parametrize("args", [(6.0, 5.0, 0.01, 0.0152), (6.0, 9.0, 0.0, 0.0152),
                                  (6.0, 9.0, 0.01, 0.0), (float("nan"), 9.0, 0.01, 0.0152)])
def test_payload_rejects_bad_grids(args):
    with pytest.raises(ValueError, match="CMD request"):
        cmd.build_cmd_payload(*args)


def test_age_chunks_cover_the_grid_once():
    assert cmd.cmd_age_chunks(6.0, 9.99, 0.01, 400) == [(6.0, 9.99)]
    assert cmd.cmd_age_chunks(6.0, 9.99, 0.01, 150) == [(6.0, 7.49), (7.5, 8.99), (9.0, 9.99)]
    assert cmd.cmd_age_chunks(7.0, 7.05, 0.05, 1) == [(7.0, 7.0), (7.05, 7.05)]


def test_payloads_follow_the_config(tmp_path):
    cfg = load_config(output_dir=str(tmp_path)).replace(source={"cmd_max_ages": 150})
    payloads = cmd.cmd_payloads(cfg)
    assert [(p["isoc_lagelow"], p["isoc_lageupp"]) for p in payloads] == [
        ("6.00", "7.49"), ("7.50", "8.99"), ("9.00", "9.99")]


def test_fetch_downloads_the_linked_output(payload):
    session = FakeSession()
    data = cmd.fetch_cmd(payload, session, url=URL)
    assert data == OUTPUT
    assert session.posts == [(URL, payload)]
    assert session.gets == [OUTPUT_URL]


def test_gzipped_output_is_decompressed(payload):
    data = cmd.fetch_cmd(payload, FakeSession(outputs=[gzip.compress(OUTPUT)]), url=URL)
    assert data == OUTPUT


def test_error_page_fails_at_once(payload):
    session = FakeSession(pages=[ERROR_PAGE])
    with pytest.raises(cmd.CMDRequestError, match="Metallicity Z=0.9 outside"):
        cmd.fetch_cmd(payload, session, url=URL, sleep=lambda s: None)
    assert len(session.posts) == 1 and session.gets == []


def test_server_error_then_success(payload):
    waits: list[float] = []
    session = FakeSession(pages=[response(b"<html>Internal Server Error</html>", URL, 500), PAGE])
    assert cmd.fetch_cmd(payload, session, url=URL, backoff_s=1.5, sleep=waits.append) == OUTPUT
    assert len(session.posts) == 2 and waits == [1.5]


def test_connection_errors_give_up_with_the_ages(payload):
    session = FakeSession(pages=[requests.ConnectionError("Name or service not known")])
    with pytest.raises(ArchiveError, match=r"CMD isochrones \(logAge 7.00-7.05, Z=0.0105\).*"
                                           r"3 tries.*Name or service not known"):
        cmd.fetch_cmd(payload, session, url=URL, retries=3, sleep=lambda s: None)
    assert len(session.posts) == 3


def test_page_without_output_link_is_retried(payload):
    session = FakeSession(pages=[b"<html><body>Please wait...</body></html>", PAGE])
    assert cmd.fetch_cmd(payload, session, url=URL, sleep=lambda s: None) == OUTPUT
    assert len(session.posts) == 2


def test_html_instead_of_output_is_retried(payload):
    session = FakeSession(outputs=[b"<!DOCTYPE html><html>Not Found</html>", OUTPUT])
    assert cmd.fetch_cmd(payload, session, url=URL, sleep=lambda s: None) == OUTPUT
    assert len(session.gets) == 2


def test_output_url_forms():
    assert cmd.cmd_output_url('<a href="../tmp/output42.dat">x</a>', URL) == (
        "https://stev.oapd.inaf.it/tmp/output42.dat")
    assert cmd.cmd_output_url("file output42.dat ready", URL) == (
        "https://stev.oapd.inaf.it/tmp/output42.dat")


def test_grid_in_chunks_is_concatenated(tmp_path):
    cfg = load_config(output_dir=str(tmp_path)).replace(
        isochrone={"log_age_min": 7.0, "log_age_max": 7.05, "log_age_step": 0.05,
                   "metallicity_z": 0.0105}, source={"cmd_max_ages": 1})
    session = FakeSession()
    data = cmd.fetch_cmd_grid(cfg, session)
    assert data == OUTPUT + OUTPUT
    assert [p["isoc_lagelow"] for _, p in session.posts] == ["7.00", "7.05"]


def test_recorded_output_is_readable_by_read_cmd():
    parsec = pytest.importorskip("ocmembers.sources.parsec")
    table = parsec.read_cmd(OUTPUT)
    assert sorted(set(table["logAge"].round(2))) == [7.0, 7.05]
    assert len(table) == 40


def test_query_text_lists_the_varying_fields(payload):
    text = cmd.cmd_query_text(URL, [payload])
    assert text.startswith(f"POST {URL} [isoc_dlage=0.05, isoc_lagelow=7.00, isoc_lageupp=7.05, "
                           "isoc_zlow=0.0105, isoc_zupp=0.0105]")
    assert "photsys_file=YBC_tab_mag_odfnew/tab_mag_gaiaEDR3.dat" in text


def test_payload_photometric_systems_of_the_two_papers():
    """Gaia EDR3 (vG23) by default; 2MASS and VISTA (PR22) by name, the CMD 3.8 form values."""
    base = cmd.build_cmd_payload(9.0, 9.1, 0.05, 0.0152)
    assert base["photsys_file"] == "YBC_tab_mag_odfnew/tab_mag_gaiaEDR3.dat"
    tm = cmd.build_cmd_payload(9.0, 9.1, 0.05, 0.0152, photsys="2mass")
    vi = cmd.build_cmd_payload(9.0, 9.1, 0.05, 0.0152, photsys="vista")
    assert tm["photsys_file"] == "YBC_tab_mag_odfnew/tab_mag_2mass.dat"
    assert vi["photsys_file"] == "YBC_tab_mag_odfnew/tab_mag_vista.dat"
    assert {k: v for k, v in tm.items() if k != "photsys_file"} == {k: v for k, v in base.items()
                                                                       if k != "photsys_file"}
    with pytest.raises(ValueError, match="'ukidss' not one of"):
        cmd.build_cmd_payload(9.0, 9.1, 0.05, 0.0152, photsys="ukidss")
