"""VizieR access: the CG20 cluster table, the CG20 members and the T22 members.

Catalogues (CDS/VizieR)
-----------------------
=====================  ======================================================
``J/A+A/640/A1/table1``  Cantat-Gaudin et al. (2020), mean cluster parameters
                         (``Cluster, RA_ICRS, DE_ICRS, GLON, GLAT, r50,
                         nbstars07, pmRA*, e_pmRA*, pmDE, e_pmDE, plx, e_plx,
                         AgeNN, AVNN, DMNN, DistPc``; ``e_*`` are the standard
                         deviations of the members, not errors of the mean)
``J/A+A/640/A1/nodup``   Cantat-Gaudin et al. (2020), members, Gaia DR2 ids
                         (``Cluster, GaiaDR2, RA_ICRS, DE_ICRS, pmRA, pmDE,
                         Plx, Gmag, proba``)
``J/A+A/659/A59/table2`` Tarricq et al. (2022), HDBSCAN members, Gaia EDR3 ids
                         (``Cluster, GaiaEDR3, RA_ICRS, DE_ICRS, pmRA, pmDE,
                         Proba``; parallax and G under any of the spellings
                         of ``MEMBER_RENAME``; all columns are requested)
=====================  ======================================================

astroquery returns VOTable field *names* (``pmRA*``); older versions and
some exports give ``pmRA_``. Both are handled, and spaces in cluster names
become underscores (``NGC 2682`` -> ``NGC_2682``), so that the rest of the
pipeline sees only the canonical tables of :mod:`ocmembers.method.columns`.

As in astroquery, a request is built apart from being sent:
:func:`build_vizier_query` gives a plain dict (its JSON is the manifest
text), :func:`fetch_vizier` sends it, and the parsers
(:func:`parse_cg20_table1`, :func:`parse_members`) take an astropy Table or
a DataFrame, so they run on recorded replies without the network.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import EmptyResponseError, MissingColumnsError, TableParseError
from ocmembers.method.columns import (CG20_RENAME, CLUSTER_COLUMNS, MEMBER_COLUMNS, normalise_cluster_name,
                      require_columns)
from ocmembers.sources.retry import with_retries

__all__ = [
    "CG20_TABLE1", "CG20_MEMBERS", "T22_MEMBERS", "CG20_TABLE1_COLUMNS", "CG20_MEMBER_COLUMNS",
    "T22_MEMBER_COLUMNS", "MEMBER_RENAME", "build_vizier_query", "query_text", "fetch_vizier",
    "to_frame", "parse_cg20_table1", "parse_members", "catalogue_queries", "hr_query", "HR_TABLES",
    "build_vizier_region_query", "vizier_host",
]

log = logging.getLogger(__name__)

CG20_TABLE1 = "J/A+A/640/A1/table1"
CG20_MEMBERS = "J/A+A/640/A1/nodup"
T22_MEMBERS = "J/A+A/659/A59/table2"

HR23_CLUSTERS = "J/A+A/673/A114/clusters"
HR24_CLUSTERS = "J/A+A/686/A42/clusters"
#: Hunt & Reffert cluster tables by ``[source] cluster_catalogue``.
HR_TABLES: dict[str, str] = {"hr23": HR23_CLUSTERS, "hr24": HR24_CLUSTERS}
#: Columns requested from the Hunt & Reffert tables (VizieR names, ``HR_RENAME``).
HR_COLUMNS: tuple[str, ...] = (
    "Name", "AllNames", "Type", "RA_ICRS", "DE_ICRS", "GLON", "GLAT", "r50", "N", "pmRA", "s_pmRA",
    "pmDE", "s_pmDE", "Plx", "s_Plx", "logAge50", "AV50", "MOD50", "dist50",
)

#: Columns requested from CG20 table1 (VizieR names).
CG20_TABLE1_COLUMNS: tuple[str, ...] = (
    "Cluster", "RA_ICRS", "DE_ICRS", "GLON", "GLAT", "r50", "nbstars07", "pmRA*", "e_pmRA*",
    "pmDE", "e_pmDE", "plx", "e_plx", "AgeNN", "AVNN", "DMNN", "DistPc",
)
#: Columns requested from the CG20 member list.
CG20_MEMBER_COLUMNS: tuple[str, ...] = (
    "Cluster", "GaiaDR2", "RA_ICRS", "DE_ICRS", "pmRA", "pmDE", "Plx", "Gmag", "proba",
)
#: Columns requested from the T22 member list: all of them (``**``). ``Cluster,
#: GaiaEDR3, Proba, RA_ICRS, DE_ICRS, pmRA, pmDE`` are known from published
#: clients; the spellings of parallax and G are not, so :func:`parse_members`
#: picks whichever known spelling the reply has.
T22_MEMBER_COLUMNS: tuple[str, ...] = ("**",)

#: Member-list spellings (VizieR and the CSV releases) -> canonical names.
MEMBER_RENAME: dict[str, str] = {
    "cluster": "cluster", "ra_icrs": "ra", "ra": "ra", "raj2000": "ra", "_ra.icrs": "ra",
    "de_icrs": "dec", "dec": "dec", "dej2000": "dec", "_de.icrs": "dec",
    "pmra": "pmra", "pmra*": "pmra", "pmra_": "pmra", "pmde": "pmdec", "pmdec": "pmdec",
    "plx": "parallax", "parallax": "parallax",
    "gmag": "phot_g_mean_mag", "phot_g_mean_mag": "phot_g_mean_mag",
    "proba": "probability", "pmemb": "probability", "probability": "probability",
}

#: Member columns that must be present in a reply; the others may be filled with NaN.
_MEMBER_REQUIRED = ("cluster", "probability")


def build_vizier_query(catalog: str, columns: Sequence[str], *, constraints: Mapping[str, str] | None = None,
                       row_limit: int = -1) -> dict[str, Any]:
    """The request for ``columns`` of VizieR table ``catalog`` (no network).

    Returns
    -------
    dict
        ``{"service": "VizieR", "catalog", "columns", "constraints",
        "row_limit"}``; :func:`query_text` turns it into the manifest text and
        :func:`fetch_vizier` sends it through astroquery's
        ``Vizier(columns=..., row_limit=...).query_constraints(catalog=..., **constraints)``.
    """
    if not catalog or "/" not in catalog:
        raise ValueError(f"not a VizieR table name: {catalog!r} (e.g. {CG20_TABLE1!r})")
    if not columns:
        raise ValueError(f"{catalog}: no columns requested")
    return {"service": "VizieR", "catalog": str(catalog), "columns": [str(c) for c in columns],
            "constraints": {str(k): str(v) for k, v in (constraints or {}).items()},
            "row_limit": int(row_limit)}


def build_vizier_region_query(catalog: str, columns: Sequence[str], *, ra: float, dec: float,
                              radius_deg: float, column_filters: Mapping[str, str] | None = None,
                              row_limit: int = -1) -> dict[str, Any]:
    """The request for ``columns`` of VizieR table ``catalog`` within ``radius_deg`` of
    (``ra``, ``dec``) (ICRS, deg), with VizieR column filters (``{"pmRA": "-5.2..3.4"}``); no network.

    Returns
    -------
    dict
        As :func:`build_vizier_query`, with ``region = {"ra", "dec", "radius_deg"}`` and
        ``column_filters``; :func:`fetch_vizier` sends it through astroquery's
        ``Vizier(...).query_region(SkyCoord(ra, dec), radius=..., catalog=..., column_filters=...)``.
    """
    payload = build_vizier_query(catalog, columns, row_limit=row_limit)
    for name, value in (("ra", ra), ("dec", dec), ("radius_deg", radius_deg)):
        if not np.isfinite(float(value)):
            raise ValueError(f"{catalog}: region {name} = {value!r} is not a finite number")
    if not 0 < float(radius_deg) <= 10:
        raise ValueError(f"{catalog}: region radius {radius_deg} deg outside (0, 10]")
    payload["region"] = {"ra": float(ra), "dec": float(dec), "radius_deg": float(radius_deg)}
    payload["column_filters"] = {str(k): str(v) for k, v in (column_filters or {}).items()}
    return payload


def vizier_host(client: Any = None) -> str:
    """The VizieR server a client talks to (astroquery's ``conf.server`` by default), for messages."""
    host = getattr(client, "VIZIER_SERVER", None) or getattr(client, "host", None)
    if not host:
        try:
            from astroquery.vizier import conf  # lazy: importing astroquery is slow
            host = conf.server
        except Exception:  # noqa: BLE001 - only for a message
            host = None
    return str(host) if host else "VizieR"


def query_text(payload: Mapping[str, Any]) -> str:
    """Deterministic text of a request (sorted JSON), for cache manifests."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def catalogue_queries() -> dict[str, dict[str, Any]]:
    """The three catalogue requests of the ``catalogues`` stage, by product name."""
    return {
        "clusters": build_vizier_query(CG20_TABLE1, CG20_TABLE1_COLUMNS),
        "train_members": build_vizier_query(CG20_MEMBERS, CG20_MEMBER_COLUMNS),
        "t22_members": build_vizier_query(T22_MEMBERS, T22_MEMBER_COLUMNS),
    }


def hr_query(which: str) -> dict[str, Any]:
    """The request of the Hunt & Reffert cluster table ``which`` (``hr23`` or ``hr24``)."""
    return build_vizier_query(HR_TABLES[which], HR_COLUMNS)


def _pick_table(result: Any, catalog: str) -> Any:
    """The table of ``catalog`` in an astroquery ``TableList`` (or a lone table)."""
    if result is None:
        return None
    keys = list(result.keys()) if hasattr(result, "keys") else None
    if keys is None:
        return result
    if not keys:
        return None
    if catalog in keys:
        return result[catalog]
    if len(keys) == 1:
        return result[keys[0]]
    raise TableParseError(f"VizieR {catalog}: reply holds tables {keys}, none named {catalog}")


def fetch_vizier(payload: Mapping[str, Any], *, cfg: Config, client: Any = None,
                 what: str | None = None, sleep: Any = None) -> Any:
    """Send a request of :func:`build_vizier_query`; the reply as an astropy Table.

    Parameters
    ----------
    payload : dict
        From :func:`build_vizier_query`.
    cfg : Config
        ``[source] retries, backoff_s, timeout_s``.
    client : optional
        A ``VizierClass``-like object (``query_constraints``); default a new
        ``astroquery.vizier.Vizier`` with the payload's columns and row limit
        (astroquery's own cache is off: ocmembers caches with manifests).
    what : str, optional
        For messages; default ``"VizieR <catalog>"``.

    Raises
    ------
    EmptyResponseError
        VizieR answered with no table or no rows.
    ArchiveError
        The request failed (after retries for transient failures).
    """
    catalog = payload["catalog"]
    what = what or f"VizieR {catalog}"

    def attempt() -> Any:
        viz = client
        if viz is None:
            from astroquery.vizier import Vizier  # lazy: importing astroquery is slow
            viz = Vizier(columns=list(payload["columns"]), row_limit=payload["row_limit"],
                         timeout=cfg.source.timeout_s)
        if "region" in payload:
            from astropy import units as u
            from astropy.coordinates import SkyCoord

            reg = payload["region"]
            return viz.query_region(SkyCoord(reg["ra"] * u.deg, reg["dec"] * u.deg, frame="icrs"),
                                    radius=reg["radius_deg"] * u.deg, catalog=catalog, cache=False,
                                    column_filters=dict(payload.get("column_filters", {})), frame="icrs")
        return viz.query_constraints(catalog=catalog, cache=False, **payload["constraints"])

    kwargs: dict[str, Any] = {"what": what, "retries": cfg.source.retries,
                              "backoff_s": cfg.source.backoff_s}
    if sleep is not None:
        kwargs["sleep"] = sleep
    result = with_retries(attempt, **kwargs)
    if isinstance(result, (str, bytes)):
        raise TableParseError(f"{what}: VizieR reply could not be parsed as a table: "
                              f"{str(result)[:200]!r}")
    table = _pick_table(result, catalog)
    if table is None or len(table) == 0:
        where = (f"region {payload['region']}, filters {dict(payload.get('column_filters', {}))}"
                 if "region" in payload else f"constraints {dict(payload['constraints'])}")
        raise EmptyResponseError(f"{what}: VizieR returned no rows ({where})")
    return table


def to_frame(table: Any) -> pd.DataFrame:
    """An astropy Table (masked values -> NaN) or a DataFrame as a DataFrame."""
    if isinstance(table, pd.DataFrame):
        return table.reset_index(drop=True)
    if hasattr(table, "to_pandas"):
        return table.to_pandas().reset_index(drop=True)
    raise TableParseError(f"expected an astropy Table or a DataFrame, got {type(table).__name__}")


def _canonical_cg20_name(column: str) -> str | None:
    """CG20 table1 spelling -> canonical name, accepting ``pmRA_`` for ``pmRA*``."""
    if column in CG20_RENAME:
        return CG20_RENAME[column]
    if column.endswith("_") and column[:-1] + "*" in CG20_RENAME:
        return CG20_RENAME[column[:-1] + "*"]
    extra = {"RAdeg": "ra", "DEdeg": "dec", "e_pmRA_": "pmra_std", "s_pmRA": "pmra_std"}
    return extra.get(column)


def _galactic(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    gal = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs").galactic
    return gal.l.deg, gal.b.deg


_BLANKS = {"", "-", "--", "---", "nan", "null"}


def _numeric(frame: pd.DataFrame, column: str, what: str) -> np.ndarray:
    """A numeric column; blanks and dashes (``---`` in the CSV release) become NaN."""
    raw = frame[column]
    if not pd.api.types.is_numeric_dtype(raw):
        text = raw.astype("string").str.strip()
        raw = raw.mask(text.str.lower().isin(_BLANKS).fillna(True))
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        raise TableParseError(f"{what}: column {column} holds non-numbers, e.g. "
                              f"{raw.loc[bad].iloc[0]!r}")
    return values.to_numpy(dtype=float)


def parse_cg20_table1(table: Any, *, what: str = f"CG20 table1 ({CG20_TABLE1})") -> pd.DataFrame:
    """CG20 table1 (VizieR reply or CSV release) as the canonical cluster table.

    Parameters
    ----------
    table : astropy.table.Table or pandas.DataFrame
        With VizieR (``Cluster, RA_ICRS, pmRA*``/``pmRA_``, ``e_pmRA*``,
        ``AgeNN``...) or CSV-release (``Name, RA, pmRA, e_pmRA, Age``...)
        column names.

    Returns
    -------
    pandas.DataFrame
        The columns of ``CLUSTER_COLUMNS`` in that order; names with
        underscores; ``l, b`` computed from ``ra, dec`` when the reply lacks
        ``GLON, GLAT``; missing ages/distances stay NaN.

    Raises
    ------
    MissingColumnsError
        A column of ``CLUSTER_COLUMNS`` cannot be found under any spelling.
    TableParseError
        Non-numeric values or no rows.
    """
    raw = to_frame(table)
    if len(raw) == 0:
        raise TableParseError(f"{what}: no rows")
    renamed = {}
    for column in raw.columns:
        canon = _canonical_cg20_name(str(column))
        if canon is not None and canon not in renamed.values():
            renamed[column] = canon
    frame = raw.loc[:, list(renamed)].rename(columns=renamed)
    if "name" in frame and ("l" not in frame or "b" not in frame) and {"ra", "dec"} <= set(frame):
        frame["l"], frame["b"] = _galactic(_numeric(frame, "ra", what), _numeric(frame, "dec", what))
    require_columns(frame, tuple(CLUSTER_COLUMNS), what)
    out = pd.DataFrame({"name": frame["name"].astype(str).map(normalise_cluster_name)})
    for column in CLUSTER_COLUMNS:
        if column != "name":
            out[column] = _numeric(frame, column, what)
    if out["n_members"].isna().any():
        raise TableParseError(f"{what}: n_members missing for "
                              f"{', '.join(out.loc[out['n_members'].isna(), 'name'].head(5))}")
    out["n_members"] = out["n_members"].astype(np.int64)
    dup = out["name"].duplicated()
    if dup.any():
        raise TableParseError(f"{what}: duplicate cluster name(s) "
                              f"{', '.join(out.loc[dup, 'name'].head(5))}")
    return out


def parse_members(table: Any, *, id_column: str, id_name: str = "source_id_dr2",
                  what: str | None = None) -> pd.DataFrame:
    """A VizieR member list as the canonical member table.

    Parameters
    ----------
    table : astropy.table.Table or pandas.DataFrame
        ``Cluster``, the id column, ``RA_ICRS, DE_ICRS, pmRA, pmDE, Plx,
        Gmag`` and the probability (``proba``, ``Proba`` or ``PMemb``), in any
        letter case.
    id_column : str
        The Gaia id column: ``GaiaDR2`` (CG20), ``GaiaEDR3`` (T22), ``Source``.
    id_name : str
        Its canonical name: ``source_id_dr2`` (DR2 ids) or ``source_id`` (DR3).

    Returns
    -------
    pandas.DataFrame
        ``MEMBER_COLUMNS`` plus ``id_name`` (int64). Astrometry or photometry
        columns absent from the reply are NaN (logged); the cluster, the id
        and the probability are required.

    Raises
    ------
    MissingColumnsError, TableParseError
    """
    what = what or f"member list ({id_column})"
    raw = to_frame(table)
    if len(raw) == 0:
        raise TableParseError(f"{what}: no rows")
    by_lower = {str(c).lower(): c for c in raw.columns}
    if id_column.lower() not in by_lower:
        raise MissingColumnsError(f"{what}: missing the id column {id_column}")
    renamed: dict[Any, str] = {}
    for low, column in by_lower.items():
        canon = MEMBER_RENAME.get(low)
        if canon is not None and canon not in renamed.values():
            renamed[column] = canon
    frame = raw.rename(columns=renamed)
    require_columns(frame, _MEMBER_REQUIRED, what)
    ids = pd.to_numeric(raw[by_lower[id_column.lower()]], errors="coerce")
    if ids.isna().any():
        raise TableParseError(f"{what}: {int(ids.isna().sum())} row(s) without a {id_column} id")
    out = pd.DataFrame({"cluster": frame["cluster"].astype(str).map(normalise_cluster_name)})
    absent = []
    for column in MEMBER_COLUMNS[1:]:
        if column in frame:
            out[column] = _numeric(frame, column, what)
        else:
            absent.append(column)
            out[column] = np.nan
    if absent:
        log.warning("%s: no %s column(s) in the reply; filled with NaN", what, ", ".join(absent))
    out[id_name] = ids.to_numpy(dtype=np.int64)
    return out.loc[:, list(MEMBER_COLUMNS) + [id_name]]
