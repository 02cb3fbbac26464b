"""Retries with backoff (ocmembers.sources.retry): injected faults, no network."""

from __future__ import annotations

import pytest
import requests

from ocmembers.exceptions import ArchiveError, EmptyConeError
from ocmembers.sources.retry import (ServiceUnavailableError, http_status, is_transient,
                                     with_retries)


class Faulty:
    """Raises the given exceptions in turn, then returns ``value``."""

    def __init__(self, *faults: BaseException, value: object = "ok") -> None:
        self.faults = list(faults)
        self.value = value
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.faults:
            raise self.faults.pop(0)
        return self.value


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} Server says no", response=response)


@pytest.fixture
def waits() -> list[float]:
    return []


def test_transient_then_success_backs_off_exponentially(waits):
    func = Faulty(requests.ConnectionError("reset"), requests.Timeout("slow"), http_error(503))
    out = with_retries(func, what="cluster NGC_2682: Gaia cone", retries=4, backoff_s=2.0,
                       sleep=waits.append)
    assert out == "ok"
    assert func.calls == 4
    assert waits == [2.0, 4.0, 8.0]


def test_all_transient_raises_archive_error_naming_cluster_and_cause(waits):
    func = Faulty(*[requests.ConnectionError("connection reset by peer")] * 3)
    with pytest.raises(ArchiveError) as info:
        with_retries(func, what="cluster NGC_2682: Gaia cone", retries=3, backoff_s=0.5,
                     sleep=waits.append)
    message = str(info.value)
    assert "cluster NGC_2682" in message
    assert "3 tries" in message
    assert "ConnectionError" in message and "connection reset by peer" in message
    assert isinstance(info.value.__cause__, requests.ConnectionError)
    assert func.calls == 3
    assert waits == [0.5, 1.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_fail_at_once(waits, status):
    func = Faulty(http_error(status))
    with pytest.raises(ArchiveError) as info:
        with_retries(func, what="catalogue clusters", retries=5, backoff_s=1.0, sleep=waits.append)
    assert func.calls == 1
    assert waits == []
    assert "catalogue clusters" in str(info.value)
    assert str(status) in str(info.value)


def test_bad_adql_in_text_only_error_is_not_retried(waits):
    # astroquery's TAP client raises HTTPError with only the server's text
    func = Faulty(requests.HTTPError("Error 400: Cannot parse query: ADQL syntax error at line 2"))
    with pytest.raises(ArchiveError):
        with_retries(func, what="q", retries=4, backoff_s=1.0, sleep=waits.append)
    assert func.calls == 1


def test_own_errors_pass_through_unchanged(waits):
    func = Faulty(EmptyConeError("cluster X: empty"))
    with pytest.raises(EmptyConeError, match="cluster X"):
        with_retries(func, what="cluster X: Gaia cone", retries=4, backoff_s=1.0, sleep=waits.append)
    assert func.calls == 1


def test_programming_errors_are_not_wrapped(waits):
    func = Faulty(TypeError("bug"))
    with pytest.raises(TypeError):
        with_retries(func, what="q", retries=4, backoff_s=1.0, sleep=waits.append)
    assert func.calls == 1


def test_busy_page_is_retried_then_wrapped(waits):
    func = Faulty(ServiceUnavailableError("CMD: server is busy"), value=b"data")
    assert with_retries(func, what="CMD", retries=2, backoff_s=3.0, sleep=waits.append) == b"data"
    assert waits == [3.0]


def test_tuple_of_transient_types(waits):
    func = Faulty(KeyError("flaky"), value=1)
    assert with_retries(func, what="q", retries=2, backoff_s=1.0, transient=(KeyError,),
                        sleep=waits.append) == 1
    other = Faulty(requests.ConnectionError("x"))
    with pytest.raises(ArchiveError, match="not retried"):
        with_retries(other, what="q", retries=3, backoff_s=1.0, transient=(KeyError,),
                     sleep=waits.append)
    assert other.calls == 1


class DALServiceError(Exception):
    """Stand-in with pyvo's name and attributes."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.code = code


class DALQueryError(Exception):
    pass


@pytest.mark.parametrize("exc, expected", [
    (DALServiceError("Service Unavailable", 503), True),
    (DALServiceError("connection dropped", None), True),
    (DALServiceError("Bad Request", 400), False),
    (DALQueryError("ADQL error"), False),
    (http_error(429), True),
    (http_error(500), True),
    (http_error(404), False),
    (requests.HTTPError("Error 502: Proxy Error"), True),
    (TimeoutError("timed out"), True),
    (ConnectionResetError("reset"), True),
    (ValueError("x"), False),
    (EmptyConeError("x"), False),
])
def test_is_transient(exc, expected):
    assert is_transient(exc) is expected


def test_http_status_sources():
    assert http_status(http_error(503)) == 503
    assert http_status(DALServiceError("x", 504)) == 504
    assert http_status(requests.HTTPError("Error 500: boom")) == 500
    assert http_status(ValueError("500")) is None


def test_retries_must_be_positive():
    with pytest.raises(ValueError, match="retries"):
        with_retries(lambda: 1, what="q", retries=0, backoff_s=1.0)


def test_exhausted_retries_point_to_the_offline_routes(waits):
    func = Faulty(*[requests.ConnectionError("Name or service not known")] * 4)
    with pytest.raises(ArchiveError) as err:
        with_retries(func, what="VizieR J/A+A/640/A1/table1", retries=4, backoff_s=1.0,
                     sleep=waits.append)
    msg = str(err.value)
    assert "\n" not in msg and "failed after 4 tries" in msg and "VizieR" in msg
    for route in ("make demo", "SOURCE=sim", "SOURCE=local"):
        assert route in msg, route


def test_a_refused_request_gives_no_offline_hint(waits):
    with pytest.raises(ArchiveError) as err:
        with_retries(Faulty(http_error(400)), what="x", retries=4, backoff_s=1.0, sleep=waits.append)
    assert "make demo" not in str(err.value)


def test_make_all_offline_stops_at_the_catalogues_with_the_hint(tmp_path, monkeypatch, capsys):
    # `make all` without network: the first stage (VizieR) gives up after its tries, one line,
    # exit status 1, naming the routes that work offline
    import astroquery.vizier

    class NoNetwork:
        def __init__(self, *args, **kwargs):
            pass

        def query_constraints(self, **kwargs):
            raise requests.ConnectionError("Failed to resolve 'vizier.cds.unistra.fr'")

    monkeypatch.setattr(astroquery.vizier, "Vizier", NoNetwork)
    from ocmembers.cli import main
    status = main(["catalogues", "--source", "archive", "--output-dir", str(tmp_path),
                   "--set", "source.backoff_s=0"])
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("ocmembers catalogues")]
    assert status == 1 and len(lines) == 1, lines
    assert "failed after 4 tries" in lines[0] and "vizier.cds.unistra.fr" in lines[0]
    assert "make demo" in lines[0] and "SOURCE=sim" in lines[0] and "SOURCE=local" in lines[0]
