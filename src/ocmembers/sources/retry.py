"""Retries with exponential backoff for the live services (Gaia TAP, VizieR, CMD).

A call is tried up to ``retries`` times. After failed try :math:`k`
(:math:`k = 0, 1, \\ldots`) the wait is

.. math::

    t_k = b \\, 2^{k},

with :math:`b` = ``[source] backoff_s``, so the defaults (4 tries, 2 s) wait
2, 4 and 8 s. Only *transient* failures are retried: lost connections,
timeouts, HTTP 429 and 5xx, and service errors without a client-side cause
(astroquery/pyvo ``DALServiceError``-like errors with a 5xx or no status).
Anything that a second try cannot fix (HTTP 4xx, a bad ADQL query, a reply
that cannot be parsed, an empty result) fails at once. Either way the error
that leaves :func:`with_retries` is an :class:`~ocmembers.exceptions.ArchiveError`
naming what was being fetched (the cluster, catalogue or isochrone grid) and
the last cause, so that :func:`ocmembers.stages.runner.for_each_cluster` reports it
against the right cluster and goes on with the others. Once every try of a
transient failure is spent, the message also names the routes that need no
network (:data:`OFFLINE_HINT`: ``make demo``, ``SOURCE=sim``, ``SOURCE=local``).

Errors of ocmembers itself (:class:`~ocmembers.exceptions.OCMembersError`,
e.g. :class:`~ocmembers.exceptions.EmptyConeError`) pass through unchanged,
and programming errors (``TypeError``...) are not caught at all.
"""

from __future__ import annotations

import errno
import http.client
import logging
import re
import socket
import time
from collections.abc import Callable
from typing import TypeVar

import requests

from ocmembers.exceptions import ArchiveError, OCMembersError

__all__ = [
    "ServiceUnavailableError", "with_retries", "is_transient", "is_service_error",
    "http_status", "OFFLINE_HINT",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: HTTP statuses worth another try (RFC 9110: the server's fault, or "slow down").
RETRY_STATUSES: frozenset[int] = frozenset({408, 425, 429})

_STATUS_IN_TEXT = re.compile(r"(?<![\d.])([45]\d\d)(?![\d.])")
#: Appended to the error once every try failed: the routes that need no network.
OFFLINE_HINT = ("; offline? `make demo` (the simulated sky), or SOURCE=sim, or SOURCE=local "
                "DATA_DIR=<the files at hand> need no network")

#: errno values of a network that is down or unreachable (worth another try, as a lost connection).
_NETWORK_ERRNOS: frozenset[int] = frozenset({errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTUNREACH,
                                             errno.EHOSTDOWN, errno.ETIMEDOUT, errno.ECONNRESET,
                                             errno.ECONNREFUSED})

#: Phrases of TAP/ADQL errors that no retry can fix.
_QUERY_ERROR_WORDS = ("adql", "syntax", "parse error", "cannot parse", "unknown column",
                      "column not found", "table not found", "does not exist", "invalid query")


class ServiceUnavailableError(ArchiveError):
    """A service answered with a page saying it is busy or down (worth another try)."""


def http_status(exc: BaseException) -> int | None:
    """The HTTP status carried by ``exc``, if any.

    Looks at ``exc.response.status_code`` (requests), ``exc.code`` (pyvo
    ``DALServiceError``, ``urllib``) and, as a last resort, a three-digit
    4xx/5xx number in the message (astroquery's TAP client raises
    ``requests.HTTPError`` with only the server's text).
    """
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        return status
    code = getattr(exc, "code", None)
    if isinstance(code, int) and 100 <= code < 600:
        return code
    if isinstance(exc, requests.HTTPError) or type(exc).__name__ in {"HTTPError", "DALServiceError"}:
        match = _STATUS_IN_TEXT.search(str(exc))
        if match:
            return int(match.group(1))
    return None


def _status_is_transient(status: int) -> bool:
    return status >= 500 or status in RETRY_STATUSES


def _mentions_bad_query(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _QUERY_ERROR_WORDS)


def is_transient(exc: BaseException) -> bool:
    """True when a new try of the same request may succeed.

    Transient: :class:`ServiceUnavailableError`, connection and timeout errors
    (``requests``, ``socket``, ``http.client``, built-in), HTTP 408/425/429/5xx,
    and DAL/remote-service errors with such a status or with none that do not
    point at the query itself. Not transient: other ocmembers errors, HTTP
    4xx, ``DALQueryError``/``DALFormatError``, bad ADQL, everything else.
    """
    if isinstance(exc, ServiceUnavailableError):
        return True
    if isinstance(exc, OCMembersError):
        return False
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError,
                        socket.timeout, http.client.IncompleteRead, http.client.RemoteDisconnected,
                        requests.exceptions.ChunkedEncodingError)):
        return True
    # astroquery's Gaia TAP client speaks http.client directly, so a failed DNS lookup or an
    # unreachable network arrives as a bare OSError, not as requests' ConnectionError
    if isinstance(exc, socket.gaierror) or (type(exc) is OSError and exc.errno in _NETWORK_ERRNOS):
        return True
    name = type(exc).__name__
    if name in {"DALQueryError", "DALFormatError", "InvalidQueryError", "TableParseError"}:
        return False
    status = http_status(exc)
    if status is not None:
        return _status_is_transient(status)
    if isinstance(exc, requests.HTTPError) or name in {"HTTPError", "DALServiceError",
                                                       "RemoteServiceError"}:
        # no status: a dropped job or an overloaded server, unless the text
        # says the query itself is wrong
        return not _mentions_bad_query(exc)
    # astroquery.exceptions.TimeoutError does not derive from the built-in one
    return name == "TimeoutError"


def is_service_error(exc: BaseException) -> bool:
    """True for a failure reported by a service (wrapped into ArchiveError), as
    opposed to a bug in the caller (left to propagate)."""
    if isinstance(exc, (requests.RequestException, OSError, http.client.HTTPException)):
        return True
    return type(exc).__name__ in {"DALServiceError", "DALQueryError", "DALFormatError",
                                  "RemoteServiceError", "InvalidQueryError", "HTTPError",
                                  "TimeoutError", "TableParseError"}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"{type(exc).__name__}: {exc.strerror or exc} (the host name could not be resolved: no DNS or no network)"
    status = http_status(exc)
    where = f" (HTTP {status})" if status is not None and str(status) not in str(exc) else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}{where}: {text}" if text else f"{type(exc).__name__}{where}"


def with_retries(func: Callable[[], T], *, what: str, retries: int, backoff_s: float,
                 transient: Callable[[BaseException], bool] | tuple[type[BaseException], ...] = is_transient,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``func()`` up to ``retries`` times, waiting ``backoff_s * 2**k`` after try ``k``.

    Parameters
    ----------
    func : callable
        The request, without arguments (``lambda: client.launch_job_async(adql)``).
    what : str
        What is fetched, for the messages: ``"cluster NGC_2682: Gaia cone"``.
    retries : int
        Number of tries (``[source] retries``), at least 1.
    backoff_s : float
        The first wait in seconds (``[source] backoff_s``); it doubles each time.
    transient : callable or tuple of exception types
        Which failures are retried: a predicate (default :func:`is_transient`)
        or a tuple of exception classes.
    sleep : callable
        ``time.sleep``; tests pass a recorder.

    Returns
    -------
    The value of ``func()``.

    Raises
    ------
    ArchiveError
        After the last failed try of a transient failure, or at once for a
        non-transient service failure (HTTP 4xx, bad query); the message names
        ``what`` and the last cause, which is chained as ``__cause__``.
    OCMembersError
        Raised by ``func`` itself (e.g. an empty cone): passed on unchanged.
    """
    if retries < 1:
        raise ValueError(f"{what}: retries must be >= 1, got {retries}")
    retry_if = transient if callable(transient) else (lambda exc: isinstance(exc, transient))
    for attempt in range(retries):
        try:
            return func()
        except Exception as exc:  # noqa: BLE001 - classified below
            if not retry_if(exc):
                if isinstance(exc, OCMembersError) or not is_service_error(exc):
                    raise
                raise ArchiveError(f"{what}: {_describe(exc)} (not retried: the request "
                                   "itself was refused)") from exc
            if attempt == retries - 1:
                raise ArchiveError(f"{what}: failed after {retries} tries; last error: "
                                   f"{_describe(exc)}{OFFLINE_HINT}") from exc
            wait = backoff_s * 2.0 ** attempt
            log.warning("%s: try %d of %d failed (%s); retrying in %.1f s", what, attempt + 1,
                        retries, _describe(exc), wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
