"""HTTP client of the CMD web service (PARSEC isochrones; http://stev.oapd.inaf.it/cgi-bin/cmd).

The paper's isochrones (Sect. 2.3 of van Groeningen et al. 2023): PARSEC
v1.2S (Bressan et al. 2012) + COLIBRI S_37 (Pastorelli et al. 2020) tracks,
Gaia EDR3 passbands (``YBC_tab_mag_odfnew/tab_mag_gaiaEDR3.dat``, Vega
magnitudes, YBC bolometric corrections with the new Vega spectrum),
:math:`Z = 0.0152`, :math:`\\log(t/{\\rm yr})` from 6.00 to 9.99 in steps of
0.01, no extinction (it is applied per point later), Kroupa IMF.

CMD is a CGI form: a POST of the form fields answers with an HTML page that
links the result, ``../tmp/output<digits>.dat``, which is then downloaded.
An error in the request comes back as an HTML page with the message in an
element of class ``errorwarning`` (status 200), which is detected here. A long
age grid is split into requests of at most ``[source] cmd_max_ages`` ages
(:func:`cmd_age_chunks`); the replies are concatenated (each keeps its own
header lines, which :func:`ocmembers.sources.parsec.read_cmd` skips).

Form field names follow the CMD 3.x form (as used by the ezpadova client,
Fouesneau; and by the authors' ``gaia_oc_amd``).

References
----------
Bressan, A., et al. 2012, MNRAS 427, 127; Chen, Y., et al. 2014, MNRAS 444,
2525; Pastorelli, G., et al. 2020, MNRAS 498, 3283; Riello, M., et al. 2021,
A&A 649, A3 (Gaia EDR3 passbands).
"""

from __future__ import annotations

import gzip
import html
import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from ocmembers.config import Config
from ocmembers.exceptions import ArchiveError, EmptyResponseError
from ocmembers.sources.retry import ServiceUnavailableError, with_retries

__all__ = [
    "CMD_FORM_DEFAULTS", "CMDRequestError", "build_cmd_payload", "cmd_age_chunks",
    "cmd_payloads", "cmd_output_url", "check_cmd_reply", "fetch_cmd", "fetch_cmd_grid",
    "cmd_query_text",
]

log = logging.getLogger(__name__)

#: Fixed fields of the CMD form (values as the web form sends them).
CMD_FORM_DEFAULTS: dict[str, str] = {
    "cmd_version": "3.8",
    "track_parsec": "parsec_CAF09_v1.2S",
    "track_colibri": "parsec_CAF09_v1.2S_S_LMC_08_web",   # COLIBRI S_37
    "track_postagb": "no",
    "track_omegai": "0.00",
    "n_inTPC": "10",
    "eta_reimers": "0.2",
    "kind_interp": "1",
    "kind_postagb": "-1",
    "photsys_file": "YBC_tab_mag_odfnew/tab_mag_gaiaEDR3.dat",
    "photsys_version": "YBCnewVega",
    "dust_sourceM": "dpmod60alox40",
    "dust_sourceC": "AMCSIC15",
    "kind_mag": "2",
    "kind_dust": "0",
    "extinction_av": "0.0",
    "extinction_coeff": "constant",
    "extinction_curve": "cardelli",
    "kind_LPV": "3",
    "imf_file": "tab_imf/imf_kroupa_orig.dat",
    "isoc_isagelog": "1",        # ages given as log10(t/yr)
    "isoc_ismetlog": "0",        # metallicity given as Z
    "isoc_dz": "0.0",
    "output_kind": "0",          # isochrone tables
    "output_evstage": "1",       # with the evolutionary stage (label)
    "output_gzip": "0",
    "lf_maginf": "-15",
    "lf_magsup": "20",
    "lf_deltamag": "0.5",
    "sim_mtot": "1.0e4",
    "submit_form": "Submit",
}

_OUTPUT_HREF = re.compile(r"""href\s*=\s*["']?([^"'\s>]*output\d+\.dat(?:\.gz)?)""", re.I)
_OUTPUT_NAME = re.compile(r"output\d+\.dat(?:\.gz)?")
_ERROR_BLOCK = re.compile(
    r"""<(\w+)[^>]*class\s*=\s*["']?errorwarning["']?[^>]*>(.*?)(?:</\1\s*>|$)""", re.I | re.S)
_BUSY_WORDS = ("too many", "try again later", "server is busy", "temporarily unavailable",
               "overloaded")


#: CMD photometric systems (the form's ``photsys_file`` values, CMD 3.8): the Gaia EDR3 bands of
#: van Groeningen et al. (2023), and the 2MASS and VISTA bands of Peña Ramírez et al. (2022).
PHOTSYS_FILES: dict[str, str] = {
    "gaiaEDR3": "YBC_tab_mag_odfnew/tab_mag_gaiaEDR3.dat",
    "2mass": "YBC_tab_mag_odfnew/tab_mag_2mass.dat",
    "vista": "YBC_tab_mag_odfnew/tab_mag_vista.dat",
}


class CMDRequestError(ArchiveError):
    """CMD refused the request (its error page); retrying will not help."""


def _decimals(step: float) -> int:
    """Decimal places needed to write multiples of ``step`` exactly (0.01 -> 2)."""
    text = f"{step:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def _fmt_age(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


def build_cmd_payload(log_age_min: float, log_age_max: float, step: float, z: float, *,
                      cmd_version: str | None = None, photsys: str = "gaiaEDR3") -> dict[str, str]:
    """The CMD form fields for a grid of ``log_age`` at metallicity ``z`` (no network).

    Parameters
    ----------
    log_age_min, log_age_max, step : float
        The grid :math:`\\log t` = min, min + step, ..., max (inclusive).
    z : float
        Initial metal mass fraction :math:`Z` (``[isochrone] metallicity_z``).
    cmd_version : str, optional
        The form version sent along (``[source] cmd_version``).
    photsys : str
        A key of :data:`PHOTSYS_FILES`: ``gaiaEDR3`` (default), ``2mass`` or ``vista``.

    Returns
    -------
    dict of str
        ``CMD_FORM_DEFAULTS`` with ``isoc_lagelow/lageupp/dlage`` and
        ``isoc_zlow = isoc_zupp = z``.
    """
    for name, value in (("log_age_min", log_age_min), ("log_age_max", log_age_max),
                        ("step", step), ("z", z)):
        if not math.isfinite(float(value)):
            raise ValueError(f"CMD request: {name} = {value!r} is not a finite number")
    if step <= 0:
        raise ValueError(f"CMD request: log-age step must be > 0, got {step}")
    if log_age_max < log_age_min:
        raise ValueError(f"CMD request: log_age_max {log_age_max} < log_age_min {log_age_min}")
    if not 0 < z < 0.1:
        raise ValueError(f"CMD request: metallicity Z = {z} outside (0, 0.1)")
    if photsys not in PHOTSYS_FILES:
        raise ValueError(f"CMD request: photometric system {photsys!r} not one of {', '.join(PHOTSYS_FILES)}")
    d = _decimals(step)
    payload = dict(CMD_FORM_DEFAULTS)
    payload["photsys_file"] = PHOTSYS_FILES[photsys]
    if cmd_version:
        payload["cmd_version"] = str(cmd_version)
    payload.update({
        "isoc_lagelow": _fmt_age(log_age_min, d),
        "isoc_lageupp": _fmt_age(log_age_max, d),
        "isoc_dlage": _fmt_age(step, d),
        "isoc_zlow": f"{z:g}",
        "isoc_zupp": f"{z:g}",
    })
    return payload


def cmd_age_chunks(log_age_min: float, log_age_max: float, step: float,
                   max_ages: int) -> list[tuple[float, float]]:
    """Split the grid min..max (step) into ranges of at most ``max_ages`` grid ages.

    The ranges start and end on grid points and together cover every point
    once: ``cmd_age_chunks(6.0, 9.99, 0.01, 400) == [(6.0, 9.99)]``.
    """
    if max_ages < 1:
        raise ValueError(f"cmd_max_ages must be >= 1, got {max_ages}")
    n = int(round((log_age_max - log_age_min) / step)) + 1
    d = _decimals(step)
    chunks = []
    for first in range(0, n, max_ages):
        last = min(first + max_ages, n) - 1
        chunks.append((round(log_age_min + first * step, d), round(log_age_min + last * step, d)))
    return chunks


def cmd_payloads(cfg: Config) -> list[dict[str, str]]:
    """The CMD requests of the ``[isochrone]`` grid, split by ``[source] cmd_max_ages``."""
    iso = cfg.isochrone
    return [build_cmd_payload(lo, hi, iso.log_age_step, iso.metallicity_z,
                              cmd_version=cfg.source.cmd_version)
            for lo, hi in cmd_age_chunks(iso.log_age_min, iso.log_age_max, iso.log_age_step,
                                         cfg.source.cmd_max_ages)]


def cmd_query_text(url: str, payloads: Sequence[Mapping[str, str]]) -> str:
    """Manifest text of CMD requests: the URL and the fields that vary, then the fixed ones."""
    parts = []
    for p in payloads:
        varying = ", ".join(f"{k}={p[k]}" for k in sorted(p) if CMD_FORM_DEFAULTS.get(k) != p[k])
        parts.append(f"POST {url} [{varying}]")
    fixed = ", ".join(f"{k}={v}" for k, v in sorted(CMD_FORM_DEFAULTS.items()))
    return "; ".join(parts) + f"; fixed fields: {fixed}"


def _strip_tags(text: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def check_cmd_reply(page: str, url: str) -> None:
    """Raise on an error page of CMD (class ``errorwarning`` or a "busy" notice)."""
    match = _ERROR_BLOCK.search(page)
    if match:
        message = _strip_tags(match.group(2))[:300] or "(no message)"
        if any(w in message.lower() for w in _BUSY_WORDS):
            raise ServiceUnavailableError(f"CMD {url}: {message}")
        raise CMDRequestError(f"CMD {url} refused the request: {message}")
    low = page.lower()
    if any(w in low for w in _BUSY_WORDS) and not _OUTPUT_NAME.search(page):
        raise ServiceUnavailableError(f"CMD {url}: service busy: {_strip_tags(page)[:200]}")


def cmd_output_url(page: str, url: str) -> str:
    """The URL of the output ``.dat`` linked from a CMD reply page."""
    check_cmd_reply(page, url)
    href = _OUTPUT_HREF.search(page)
    if href:
        return urljoin(url, href.group(1))
    name = _OUTPUT_NAME.search(page)
    if name:  # a bare file name: CMD puts its outputs under /tmp/ of the server
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}/tmp/{name.group(0)}"
    raise ServiceUnavailableError(f"CMD {url}: the reply links no output file "
                                  f"(page starts {_strip_tags(page)[:160]!r})")


def _check_output(data: bytes, out_url: str) -> bytes:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    head = data[:2000].lstrip().lower()
    if not head:
        raise EmptyResponseError(f"CMD output {out_url} is empty")
    if head.startswith((b"<!doctype", b"<html", b"<?xml")):
        raise ServiceUnavailableError(f"CMD output {out_url} is an HTML page, not a table")
    if b"logage" not in head and b"zini" not in head:
        raise CMDRequestError(f"CMD output {out_url} has no isochrone header (Zini ... logAge)")
    return data


def fetch_cmd(payload: Mapping[str, str], session: requests.Session | None = None, *,
              url: str = "https://stev.oapd.inaf.it/cgi-bin/cmd", timeout: float = 600.0,
              retries: int = 4, backoff_s: float = 2.0, sleep: Any = None) -> bytes:
    """POST one CMD request and download its output file, with retries.

    Parameters
    ----------
    payload : dict
        From :func:`build_cmd_payload`.
    session : requests.Session, optional
        Anything with ``post`` and ``get`` returning ``requests.Response``-like
        objects (tests pass a fake); default a new session.
    url : str
        The form's URL (``[source] cmd_url``).

    Returns
    -------
    bytes
        The CMD output text as served (gzip replies are decompressed).

    Raises
    ------
    CMDRequestError
        CMD answered with its error page (not retried).
    ArchiveError
        Connection failures, HTTP 5xx or busy pages, after the last try.
    """
    http = session if session is not None else requests.Session()
    ages = f"logAge {payload.get('isoc_lagelow')}-{payload.get('isoc_lageupp')}"
    what = f"CMD isochrones ({ages}, Z={payload.get('isoc_zlow')})"

    def attempt() -> bytes:
        reply = http.post(url, data=dict(payload), timeout=timeout)
        reply.raise_for_status()
        out_url = cmd_output_url(reply.text, getattr(reply, "url", None) or url)
        log.info("%s: downloading %s", what, out_url)
        data = http.get(out_url, timeout=timeout)
        data.raise_for_status()
        return _check_output(data.content, out_url)

    kwargs: dict[str, Any] = {"what": what, "retries": retries, "backoff_s": backoff_s}
    if sleep is not None:
        kwargs["sleep"] = sleep
    return with_retries(attempt, **kwargs)


def fetch_cmd_grid(cfg: Config, session: requests.Session | None = None, *,
                   sleep: Any = None) -> bytes:
    """The whole ``[isochrone]`` grid from CMD: one request per chunk, concatenated."""
    parts = [fetch_cmd(p, session, url=cfg.source.cmd_url, timeout=cfg.source.timeout_s,
                       retries=cfg.source.retries, backoff_s=cfg.source.backoff_s, sleep=sleep)
             for p in cmd_payloads(cfg)]
    return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts)
