"""Gaia archive (TAP) access: the cone of each cluster and the DR2 -> DR3 match.

Cone (Sect. 2.1 of van Groeningen et al. 2023)
----------------------------------------------
Centred on the mean position of the CG20 members :math:`(\\alpha_0, \\delta_0)`,
with the angular radius that a projected radius :math:`R` = ``[cone]
radius_pc`` (50 pc) subtends at the cluster distance :math:`d` (``DistPc``):

.. math::

    \\rho = \\arctan(R / d).

Only sources with

.. math::

    \\sqrt{(\\mu_{\\alpha^*} - \\mu_{\\alpha^*,\\rm CG})^2 + (\\mu_\\delta - \\mu_{\\delta,\\rm CG})^2}
    \\le n \\sqrt{\\frac{\\sigma_{\\mu_{\\alpha^*},\\rm CG}^2 + \\sigma_{\\mu_\\delta,\\rm CG}^2}{2}}
    \\qquad (1)

.. math::

    |\\varpi - \\varpi_{\\rm CG}| \\le n \\, \\sigma_{\\varpi,\\rm CG} \\qquad (2)

are kept, with :math:`n` = ``[cone] n_sigma`` (10) and the CG20 member means
and standard deviations. Both cuts go into the ADQL ``WHERE`` clause, so the
archive does the work; sources without proper motions or parallax (2-parameter
solutions) fail them and are not returned.

DR2 -> DR3 (Sect. 2.2)
----------------------
The CG20 training members carry Gaia DR2 identifiers, which are not
guaranteed to survive into DR3. ``gaiadr3.dr2_neighbourhood`` lists for each
DR2 source its DR3 neighbours with their angular distance (mas, after
propagating the DR3 position to the DR2 epoch with the DR3 proper motion) and
magnitude difference. :func:`best_dr2_dr3_match` keeps the nearest neighbour
(ties broken by the smaller :math:`|\\Delta G|`) within ``[crossmatch]
max_sep_arcsec`` and flags the match as ambiguous when another candidate lies
within that separation with :math:`|\\Delta G|` no worse than the best one's
plus ``[crossmatch] ambiguous_dmag``, or when two DR2 sources end on the same
DR3 source.

Requests are built by pure functions (:func:`build_cone_adql`,
:func:`build_neighbourhood_adql`) and sent by thin ones (:func:`fetch_cone`,
:func:`fetch_dr2_neighbourhood`) that accept any client with astroquery's
``launch_job_async`` (tests pass a dummy).

References
----------
van Groeningen, M. G. J., Castro-Ginard, A., Brown, A. G. A., et al. 2023,
A&A 675, A68. Gaia Collaboration, Vallenari, A., et al. 2023, A&A 674, A1
(``dr2_neighbourhood``: Torra, F., et al. 2021, A&A 649, A10).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ocmembers.config import Config, gaia_column_map
from ocmembers.exceptions import (ConfigError, EmptyConeError, EmptyResponseError, MissingColumnsError,
                          TableParseError)
from ocmembers.method.columns import GAIA_COLUMNS, require_columns
from ocmembers.method.cuts import CONE_PARAMETERS, cone_radius_deg, cone_window
from ocmembers.sources.retry import with_retries

__all__ = [
    "CONE_PARAMETERS", "NEIGHBOURHOOD_COLUMNS", "CROSSMATCH_COLUMNS", "UPLOAD_TABLE",
    "cone_radius_deg", "build_cone_adql", "fetch_cone", "gaia_client",
    "build_neighbourhood_adql", "fetch_dr2_neighbourhood", "best_dr2_dr3_match",
    "run_adql", "format_number", "restrict_to_ids",
]

log = logging.getLogger(__name__)

#: Columns of ``gaiadr3.dr2_neighbourhood`` that are fetched.
NEIGHBOURHOOD_COLUMNS: tuple[str, ...] = ("dr2_source_id", "dr3_source_id", "angular_distance",
                                          "magnitude_difference", "proper_motion_propagation")

#: Columns of a crossmatch product (docs/architecture.md).
CROSSMATCH_COLUMNS: tuple[str, ...] = ("source_id_dr2", "source_id", "angular_distance",
                                       "magnitude_difference", "ambiguous")

#: Name of the uploaded table of DR2 ids (``tap_upload.<name>`` in ADQL).
UPLOAD_TABLE = "dr2_ids"
#: Ids per uploaded table: the Gaia archive limits the size of an upload.
UPLOAD_CHUNK = 20_000


class TapClient(Protocol):  # pragma: no cover - typing only
    def launch_job_async(self, query: str, **kwargs: Any) -> Any: ...


def format_number(x: float) -> str:
    """A float as ADQL text: 12 significant digits, no exponent for usual values.

    Deterministic (the same input gives the same text on every platform), so
    the query text can serve as a cache key.
    """
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"cannot write {x!r} into an ADQL query")
    text = f"{x:.12g}"
    if "e" in text:  # very small or large numbers: plain decimal, as ADQL parsers prefer
        text = np.format_float_positional(x, precision=12, unique=True, trim="-")
    return "0" if text == "-0" else text


def build_cone_adql(cluster: pd.Series, cfg: Config) -> str:
    """The ADQL of the Gaia DR3 cone of ``cluster``, with the cuts of Eqs. 1-2.

    Parameters
    ----------
    cluster : pandas.Series
        A row of the canonical cluster table (``columns.cluster_row``).
    cfg : Config
        ``[cone] radius_pc, n_sigma``, ``[source] gaia_table`` and ``gaia_columns`` (a release's
        names for our columns, selected ``AS`` ours) are used.

    Returns
    -------
    str
        ``SELECT <GAIA_COLUMNS> FROM <gaia_table> WHERE 1=CONTAINS(...) AND
        <Eq. 1> AND <Eq. 2>``, numbers written by :func:`format_number`.

    Raises
    ------
    MissingColumnsError, TableParseError
        When a needed parameter is missing, NaN or not physical; the message
        names the cluster.
    """
    w = cone_window(cluster, radius_pc=cfg.cone.radius_pc, n_sigma=cfg.cone.n_sigma)
    f = format_number
    theirs = gaia_column_map(cfg)           # [source] gaia_columns: a release's other names
    cols = [f"{theirs[c]} AS {c}" if c in theirs else c for c in GAIA_COLUMNS]
    ra, dec, plx, pmra, pmdec = (theirs.get(c, c) for c in ("ra", "dec", "parallax", "pmra", "pmdec"))
    return (
        f"SELECT {', '.join(cols)}\n"
        f"FROM {cfg.source.gaia_table}\n"
        f"WHERE 1=CONTAINS(POINT('ICRS', {ra}, {dec}), "
        f"CIRCLE('ICRS', {f(w.ra)}, {f(w.dec)}, {f(w.radius_deg)}))\n"
        f"AND SQRT(POWER({pmra} - ({f(w.pmra)}), 2) + POWER({pmdec} - ({f(w.pmdec)}), 2)) "
        f"<= {f(w.pm_max)}\n"                                                  # Eq. 1
        f"AND ABS({plx} - ({f(w.parallax)})) <= {f(w.parallax_max)}"            # Eq. 2
    )


def gaia_client(cfg: Config) -> TapClient:
    """astroquery's ``Gaia``, anonymous unless ``[source] gaia_login``.

    With ``gaia_login = true`` it logs in with ``[source] gaia_credentials_file``
    (astroquery's format: user name on the first line, password on the second).
    """
    from astroquery.gaia import Gaia  # lazy: importing astroquery is slow

    Gaia.MAIN_GAIA_TABLE = cfg.source.gaia_table
    if cfg.source.gaia_login:
        path = Path(cfg.source.gaia_credentials_file).expanduser()
        if not cfg.source.gaia_credentials_file or not path.is_file():
            raise ConfigError("source.gaia_login is true but source.gaia_credentials_file "
                              f"({cfg.source.gaia_credentials_file!r}) is not a readable file")
        Gaia.login(credentials_file=str(path))
    return Gaia


def _result_to_frame(result: Any) -> pd.DataFrame:
    """An astropy Table (or DataFrame) from TAP as a DataFrame with lower-case names."""
    frame = result.to_pandas() if hasattr(result, "to_pandas") else pd.DataFrame(result)
    frame.columns = [str(c).lower() for c in frame.columns]
    return frame.reset_index(drop=True)


def tap_host(client: Any) -> str:
    """The host a TAP client talks to (astroquery's ``gea.esac.esa.int``), for messages.

    Read from astroquery's connection handler, or a ``host`` attribute of another
    client; ``"the Gaia archive"`` when neither says.
    """
    host = getattr(client, "host", None)
    if not host:
        getter = getattr(client, "_TapPlus__getconnhandler", None)   # astroquery's TapPlus
        try:
            host = getter().get_host_url().split("/")[0].split(":")[0] if getter else None
        except Exception:  # noqa: BLE001 - only for a message
            host = None
    return str(host) if host else "the Gaia archive"


def run_adql(adql: str, *, cfg: Config, what: str, client: TapClient | None = None,
             sleep: Any = None, **job_kwargs: Any) -> pd.DataFrame:
    """Run ``adql`` as an asynchronous TAP job, with retries; the result as a DataFrame.

    Connection, timeout and DNS failures are retried (:func:`ocmembers.sources.retry.is_transient`);
    the messages name the TAP host.
    """
    tap = client if client is not None else gaia_client(cfg)
    what = f"{what} from {tap_host(tap)}"

    def attempt() -> pd.DataFrame:
        job = tap.launch_job_async(adql, **job_kwargs)
        return _result_to_frame(job.get_results())

    kwargs: dict[str, Any] = {"what": what, "retries": cfg.source.retries,
                              "backoff_s": cfg.source.backoff_s}
    if sleep is not None:
        kwargs["sleep"] = sleep
    return with_retries(attempt, **kwargs)


def fetch_cone(adql: str, *, cfg: Config, client: TapClient | None = None,
               what: str = "Gaia cone", sleep: Any = None) -> pd.DataFrame:
    """Run a cone query (:func:`build_cone_adql`) on the Gaia archive.

    Parameters
    ----------
    adql : str
        The query.
    cfg : Config
        Retries, backoff and login settings of ``[source]``.
    client : optional
        Anything with astroquery's ``launch_job_async``; default
        :func:`gaia_client`.
    what : str
        Names the cluster in messages (``"cluster NGC_2682: Gaia cone"``).

    Returns
    -------
    pandas.DataFrame
        The columns of ``GAIA_COLUMNS`` (archive names, lower case).

    Raises
    ------
    EmptyConeError
        The archive returned no rows.
    MissingColumnsError
        The reply lacks some of ``GAIA_COLUMNS``.
    ArchiveError
        The query failed (after retries for transient failures).
    """
    cone = run_adql(adql, cfg=cfg, what=what, client=client, sleep=sleep)
    if len(cone) == 0:
        raise EmptyConeError(f"{what}: the Gaia archive returned no sources "
                             "(check the cluster parameters and the cuts of Eqs. 1-2)")
    require_columns(cone, GAIA_COLUMNS, f"{what}: Gaia archive reply")
    cone = cone.loc[:, list(GAIA_COLUMNS)]
    cone["source_id"] = cone["source_id"].astype(np.int64)
    return cone


def build_neighbourhood_adql(cfg: Config, upload_table: str = UPLOAD_TABLE) -> str:
    """ADQL joining an uploaded table of DR2 ids (column ``source_id_dr2``) to
    ``gaiadr3.dr2_neighbourhood`` (``[source] neighbourhood_table``)."""
    cols = ", ".join(f"n.{c}" for c in NEIGHBOURHOOD_COLUMNS)
    return (
        f"SELECT {cols}\n"
        f"FROM {cfg.source.neighbourhood_table} AS n\n"
        f"JOIN tap_upload.{upload_table} AS u ON n.dr2_source_id = u.source_id_dr2"
    )


def _dr2_id_array(dr2_ids: Iterable[int] | pd.Series | np.ndarray) -> np.ndarray:
    ids = pd.Series(dr2_ids if isinstance(dr2_ids, (pd.Series, np.ndarray)) else list(dr2_ids))
    if ids.isna().any():
        raise TableParseError(f"{int(ids.isna().sum())} DR2 source id(s) are missing (NaN)")
    return np.unique(ids.to_numpy(dtype=np.int64))


def fetch_dr2_neighbourhood(dr2_ids: Iterable[int] | pd.Series | np.ndarray, *, cfg: Config,
                            client: TapClient | None = None, what: str = "DR2 -> DR3 crossmatch",
                            chunk: int = UPLOAD_CHUNK, sleep: Any = None) -> pd.DataFrame:
    """The ``dr2_neighbourhood`` rows of ``dr2_ids`` (uploaded as a table).

    The ids are de-duplicated and uploaded in chunks of ``chunk`` with
    astroquery's ``upload_resource``/``upload_table_name``; each chunk is one
    job with retries.

    Returns
    -------
    pandas.DataFrame
        The columns of ``NEIGHBOURHOOD_COLUMNS``; ``angular_distance`` in mas.

    Raises
    ------
    EmptyResponseError
        No DR2 id given.
    ArchiveError
        A job failed after retries.
    """
    from astropy.table import Table

    ids = _dr2_id_array(dr2_ids)
    if len(ids) == 0:
        raise EmptyResponseError(f"{what}: no DR2 source ids to match")
    adql = build_neighbourhood_adql(cfg)
    parts = []
    for start in range(0, len(ids), chunk):
        upload = Table({"source_id_dr2": ids[start:start + chunk]})
        part_what = what if len(ids) <= chunk else f"{what} (ids {start}-{start + len(upload) - 1})"
        parts.append(run_adql(adql, cfg=cfg, what=part_what, client=client, sleep=sleep,
                              upload_resource=upload, upload_table_name=UPLOAD_TABLE))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    require_columns(frame, NEIGHBOURHOOD_COLUMNS, f"{what}: dr2_neighbourhood reply")
    return frame.loc[:, list(NEIGHBOURHOOD_COLUMNS)]


def best_dr2_dr3_match(neighbourhood: pd.DataFrame, *, max_sep_arcsec: float,
                       ambiguous_dmag: float) -> pd.DataFrame:
    """The best DR3 counterpart of each DR2 source in ``neighbourhood``.

    Parameters
    ----------
    neighbourhood : pandas.DataFrame
        Rows of ``gaiadr3.dr2_neighbourhood`` (``dr2_source_id, dr3_source_id,
        angular_distance`` in mas, ``magnitude_difference`` in mag).
    max_sep_arcsec : float
        Candidates farther than this are not counterparts
        (``[crossmatch] max_sep_arcsec``).
    ambiguous_dmag : float
        A second candidate within ``max_sep_arcsec`` whose :math:`|\\Delta G|`
        is at most the best one's plus this margin makes the match ambiguous
        (``[crossmatch] ambiguous_dmag``).

    Returns
    -------
    pandas.DataFrame
        One row per matched DR2 source, sorted by DR2 id, with
        ``source_id_dr2, source_id, angular_distance`` (arcsec),
        ``magnitude_difference`` and ``ambiguous``; ``attrs["n_ambiguous"]``
        and ``attrs["n_unmatched_dr2"]`` count the ambiguous matches and the
        DR2 sources without a counterpart within ``max_sep_arcsec``.
        The best candidate is the nearest, then the one with the smaller
        :math:`|\\Delta G|` (a missing :math:`\\Delta G` counts as worst).
        Two DR2 sources matched to one DR3 source are both flagged ambiguous.
    """
    require_columns(neighbourhood, NEIGHBOURHOOD_COLUMNS[:4], "dr2_neighbourhood table")
    nb = pd.DataFrame({
        "source_id_dr2": neighbourhood["dr2_source_id"].to_numpy(dtype=np.int64),
        "source_id": neighbourhood["dr3_source_id"].to_numpy(dtype=np.int64),
        "angular_distance": neighbourhood["angular_distance"].to_numpy(dtype=float) / 1000.0,
        "magnitude_difference": neighbourhood["magnitude_difference"].to_numpy(dtype=float),
    })
    n_dr2 = nb["source_id_dr2"].nunique()
    nb = nb.loc[nb["angular_distance"] <= max_sep_arcsec]
    abs_dmag = nb["magnitude_difference"].abs().fillna(np.inf)
    nb = nb.assign(_abs_dmag=abs_dmag).sort_values(
        ["source_id_dr2", "angular_distance", "_abs_dmag"], kind="mergesort")
    rank = nb.groupby("source_id_dr2", sort=False).cumcount()
    best = nb.loc[rank == 0]
    others = nb.loc[rank > 0]
    best_dmag = others["source_id_dr2"].map(best.set_index("source_id_dr2")["_abs_dmag"])
    competing = others.loc[others["_abs_dmag"] <= best_dmag + ambiguous_dmag, "source_id_dr2"]
    ambiguous = best["source_id_dr2"].isin(competing.unique())
    ambiguous |= best["source_id"].duplicated(keep=False)
    out = best.drop(columns="_abs_dmag").assign(ambiguous=ambiguous.to_numpy(dtype=bool))
    out = out.reset_index(drop=True).loc[:, list(CROSSMATCH_COLUMNS)]
    out.attrs["n_ambiguous"] = int(out["ambiguous"].sum())
    out.attrs["n_unmatched_dr2"] = int(n_dr2 - len(out))
    log.info("DR2 -> DR3: %d matched, %d ambiguous, %d DR2 source(s) without a counterpart "
             "within %.3g arcsec", len(out), out.attrs["n_ambiguous"],
             out.attrs["n_unmatched_dr2"], max_sep_arcsec)
    return out


def restrict_to_ids(matches: pd.DataFrame, dr3_ids: Sequence[int] | np.ndarray | pd.Series) -> pd.DataFrame:
    """Keep the matches whose DR3 ``source_id`` is in ``dr3_ids`` (e.g. inside a cone)."""
    keep = matches["source_id"].isin(np.asarray(dr3_ids, dtype=np.int64))
    out = matches.loc[keep].reset_index(drop=True)
    out.attrs = dict(matches.attrs, n_outside=int((~keep).sum()))
    out.attrs["n_ambiguous"] = int(out["ambiguous"].sum())
    return out
