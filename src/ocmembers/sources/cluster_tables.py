"""Cluster tables on disk: CG20 table1 and the Hunt & Reffert 2023/2024 catalogues.

:func:`read_cluster_table` reads any of them (CSV release, VizieR TSV, VOTable,
FITS) into the canonical columns of :data:`ocmembers.method.columns.CLUSTER_COLUMNS`,
recognising the catalogue by its columns: Hunt & Reffert tables have
``AllNames`` and ``logAge50`` (:data:`~ocmembers.method.columns.HR_RENAME`;
their alternative names become the ``aliases`` column), the others are read
as CG20 (:data:`~ocmembers.method.columns.CG20_RENAME`).

:func:`catalogue_file` finds a catalogue in a data directory laid out as
``../shared/data`` (``catalogues/cg20_table1.csv``, ``catalogues/hunt2023_table.csv``,
``catalogues/hunt2024_table.csv``, or the same names as ``.tsv``/``.vot``/``.fits``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from ocmembers.exceptions import TableParseError
from ocmembers.method.columns import CG20_RENAME, CLUSTER_COLUMNS, HR_RENAME, normalise_cluster_name

__all__ = ["read_cluster_table", "cluster_frame", "catalogue_file", "CATALOGUE_FILES", "read_jacobi_table",
           "JACOBI_COLUMNS"]

#: File-name stems of each catalogue under ``catalogues/`` of a data directory.
CATALOGUE_FILES: dict[str, tuple[str, ...]] = {
    "cg20": ("cg20_table1", "cg20_table1*"),
    "hr23": ("hunt2023_table", "hunt2023*", "hr23*"),
    "hr24": ("hunt2024_table", "hunt2024*", "hr24*"),
}
_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".vot", ".xml", ".fits")


def _read_vizier_tsv(path: Path) -> pd.DataFrame:
    """VizieR's TSV export: ``#`` comment lines, a header, a units line, a dashes line."""
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]

    def dashes(ln: str) -> bool:
        return set(ln.replace("\t", "").strip()) <= {"-"}

    if len(lines) < 2:
        raise TableParseError(f"{path}: not a VizieR TSV table (fewer than 2 non-comment lines)")
    if len(lines) > 2 and dashes(lines[2]):      # header, units, dashes
        body = [lines[0]] + lines[3:]
    elif dashes(lines[1]):                       # header, dashes
        body = [lines[0]] + lines[2:]
    else:
        body = lines
    return pd.read_csv(io.StringIO("\n".join(body)), sep="\t")


def _read_raw(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    try:
        if name.endswith(".tsv"):
            return _read_vizier_tsv(path)
        if name.endswith((".vot", ".xml", ".fits", ".fit")):
            from astropy.table import Table
            t = Table.read(path)
            for c in t.colnames:
                if getattr(t[c], "mask", None) is not None and t[c].dtype.kind == "f":
                    t[c] = t[c].filled(np.nan)
            return t.to_pandas()
        return pd.read_csv(path)
    except TableParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a parse error of this file
        raise TableParseError(f"cluster table {path} could not be read: {exc}") from exc


def read_cluster_table(path: str | Path) -> pd.DataFrame:
    """Read CG20 table1 or a Hunt & Reffert table into the canonical columns.

    Columns absent from the file (the VizieR subset of CG20 has no member
    dispersions) come back as NaN; the stages that need them say so. A Hunt &
    Reffert table also has ``aliases`` (its ``AllNames``, comma-separated).
    """
    path = Path(path)
    if not path.is_file():
        raise TableParseError(f"cluster table {path} does not exist")
    return cluster_frame(_read_raw(path), str(path))


def cluster_frame(raw: pd.DataFrame, what: str) -> pd.DataFrame:
    """A cluster table with CG20 or Hunt & Reffert (VizieR) column names in the canonical columns
    (:func:`read_cluster_table`; also the reader of the VizieR replies)."""
    path = what
    hr = "AllNames" in raw.columns or "logAge50" in raw.columns
    rename = HR_RENAME if hr else CG20_RENAME
    raw = raw.rename(columns={c: rename[c] for c in raw.columns if c in rename})
    if "name" not in raw.columns:
        raise TableParseError(f"{path}: no cluster-name column (Name or Cluster)")
    table = pd.DataFrame({"name": raw["name"].astype(str).map(normalise_cluster_name)})
    for col in CLUSTER_COLUMNS:
        if col == "name":
            continue
        table[col] = pd.to_numeric(raw[col], errors="coerce") if col in raw.columns else np.nan
    if hr:
        table["aliases"] = raw["aliases"].fillna("").astype(str) if "aliases" in raw.columns else ""
    if table["name"].duplicated().any():
        dups = table.loc[table["name"].duplicated(), "name"].tolist()[:5]
        raise TableParseError(f"{path}: duplicated cluster names {dups}")
    return table


def catalogue_file(root: str | Path, which: str) -> Path | None:
    """The file of catalogue ``which`` (``cg20``, ``hr23``, ``hr24``) under ``root/catalogues``."""
    d = Path(root) / "catalogues"
    for stem in CATALOGUE_FILES[which]:
        for suffix in _SUFFIXES:
            hits = sorted(d.glob(f"{stem}{suffix}"))
            if hits:
                return hits[0]
    return None


#: Hunt & Reffert (2024) columns of :func:`read_jacobi_table`, and their names there.
JACOBI_COLUMNS: dict[str, str] = {"Name": "name", "rJpc": "r_jacobi_pc", "N": "n_members",
                                  "NJ": "n_within_jacobi"}


def read_jacobi_table(path: str | Path) -> pd.DataFrame:
    """Hunt & Reffert (2024, A&A 686, A42) Jacobi radii: ``name``, ``r_jacobi_pc`` (pc),
    ``n_members`` (their HDBSCAN members) and ``n_within_jacobi`` (those within r_J), one row
    per cluster with a finite positive r_J and at least one member."""
    path = Path(path)
    if not path.is_file():
        raise TableParseError(f"Jacobi-radius table {path} does not exist")
    raw = _read_raw(path)
    missing = [c for c in JACOBI_COLUMNS if c not in raw.columns]
    if missing:
        raise TableParseError(f"{path}: not a Hunt & Reffert (2024) table: no column(s) {', '.join(missing)} "
                              f"(needs {', '.join(JACOBI_COLUMNS)})")
    table = pd.DataFrame({"name": raw["Name"].astype(str).map(normalise_cluster_name)})
    for src, dst in list(JACOBI_COLUMNS.items())[1:]:
        table[dst] = pd.to_numeric(raw[src], errors="coerce")
    ok = (np.isfinite(table["r_jacobi_pc"]) & (table["r_jacobi_pc"] > 0) & (table["n_members"] > 0)
          & np.isfinite(table["n_within_jacobi"]))
    return table.loc[ok & ~table["name"].duplicated()].reset_index(drop=True)
