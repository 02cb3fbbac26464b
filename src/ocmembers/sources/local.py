"""The ``local`` source: the archive products read from files on disk.

A local directory follows the layout of ``../shared/data`` (the default,
``DATA_DIR``)::

    catalogues/cg20_table1.csv            CG20 table1 (CSV release names), or
    catalogues/cg20_table1*.tsv           the same as VizieR exports it (TSV)
    catalogues/cg20_members*.csv[.gz]     CG20 members (J/A+A/640/A1/nodup), or
    catalogues/cg18_members_dr2.csv.gz    CG18 members, its stand-in (DR2 ids)
    catalogues/t22_members_edr3.csv.gz    T22 members (EDR3 ids)
    gaia/cones/<Cluster>.{parquet,csv,csv.gz,vot,xml,fits}   gaia_source extracts
    isochrones/*.dat                      CMD output

Cones on disk may be wider than the paper's cone (or narrower, as the real
M67 extract is in proper motion): the same Eq. 1-2 and radius cuts that the
archive query applies are applied here, so that both sources give the same
product (:func:`apply_cone_cuts`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ocmembers.sources.cache import sha256_file
from ocmembers.exceptions import EmptyConeError, OCMembersError, TableParseError
from ocmembers.sources.base import DataSource
from ocmembers.sources.cluster_tables import read_cluster_table
from ocmembers.method.columns import GAIA_COLUMNS, normalise_cluster_name, require_columns
from ocmembers.method.cuts import apply_cone_cuts
from ocmembers.method.gaia_names import CONE_REQUIRED, canonical_gaia_table
from ocmembers.sources.parsec import local_isochrone
from ocmembers.sources.positional import crossmatch_positional

__all__ = ["LocalSource", "read_cluster_table", "read_member_list", "read_gaia_table"]

log = logging.getLogger(__name__)

CONE_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".vot", ".xml", ".vot.gz", ".fits", ".fits.gz", ".ecsv")


def read_member_list(path: str | Path, *, id_column: str = "source_id") -> pd.DataFrame:
    """Read a CG18/CG20/T22 member list into ``MEMBER_COLUMNS`` plus ``id_column``.

    ``Source`` (VizieR) becomes ``id_column`` (``source_id_dr2`` for the
    DR2-based CG lists, ``source_id`` for T22); ``PMemb``/``proba`` become
    ``probability``; cluster names are normalised (T22 pads them with spaces).
    """
    path = Path(path)
    if not path.is_file():
        raise TableParseError(f"member list {path} does not exist")
    raw = pd.read_csv(path)
    rename = {"Source": id_column, "GaiaDR2": id_column, "GaiaEDR3": id_column, "source_id": id_column,
              "PMemb": "probability", "proba": "probability", "Proba": "probability",
              "Cluster": "cluster", "RA_ICRS": "ra", "DE_ICRS": "dec", "pmRA": "pmra",
              "pmRA*": "pmra", "pmDE": "pmdec", "plx": "parallax", "Gmag": "phot_g_mean_mag"}
    raw = raw.rename(columns={c: rename[c] for c in raw.columns if c in rename})
    need = ["cluster", id_column, "ra", "dec", "pmra", "pmdec", "parallax", "phot_g_mean_mag", "probability"]
    require_columns(raw, need, f"member list {path}")
    out = raw[need].copy()
    out["cluster"] = out["cluster"].astype(str).map(normalise_cluster_name)
    out[id_column] = pd.to_numeric(out[id_column], errors="raise").astype("int64")
    return out


def read_gaia_table(path: str | Path, require: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a Gaia DR3 extract (CSV, Parquet, VOTable, FITS, ECSV) into the ``gaia_source`` names.

    Any spelling of :data:`ocmembers.method.gaia_names.GAIA_SPELLINGS` (the
    archive's in any case, VizieR's) is accepted and renamed, and derivable
    columns are derived (:func:`ocmembers.method.gaia_names.canonical_gaia_table`);
    ``require`` names the columns that must then be present (one
    :class:`MissingColumnsError` naming the file otherwise).
    """
    return canonical_gaia_table(_read_table(path), f"Gaia table {path}", require)


def _read_table(path: str | Path) -> pd.DataFrame:
    """A table file with lower-cased column names, otherwise as written."""
    path = Path(path)
    if not path.is_file():
        raise TableParseError(f"Gaia table {path} does not exist")
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            table = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz")):
            table = pd.read_csv(path)
        else:
            from astropy.table import Table
            fmt = "ascii.ecsv" if name.endswith(".ecsv") else None
            t = Table.read(path, format=fmt) if fmt else Table.read(path)
            # masked integer columns (missing n_obs ...) become float NaN, not -999
            table = t.to_pandas()
    except (OSError, ValueError) as exc:
        raise TableParseError(f"{path}: cannot be read as a Gaia table ({exc})") from exc
    table.columns = [str(c).lower() for c in table.columns]
    if "source_id" in table.columns:
        table["source_id"] = table["source_id"].astype("int64")
    return table


class LocalSource(DataSource):
    """Products read from ``[source] local_dir`` (``DATA_DIR``)."""

    name = "local"

    # -- files ---------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.cfg.local_dir

    def _find(self, what: str, patterns: list[str]) -> Path:
        for pattern in patterns:
            hits = sorted(self.root.glob(pattern))
            if hits:
                return hits[0]
        raise TableParseError(f"local source: no {what} in {self.root} (looked for {', '.join(patterns)})")

    def _cluster_file(self) -> Path:
        return self._find("CG20 cluster table", ["catalogues/cg20_table1.csv", "catalogues/cg20_table1*.tsv",
                                                 "catalogues/cg20_table1*.vot"])

    def _train_file(self) -> Path:
        return self._find("CG20 member list", ["catalogues/cg20_members*.csv*", "catalogues/cg18_members_dr2.csv*"])

    def _t22_file(self) -> Path:
        return self._find("T22 member list", ["catalogues/t22_members*.csv*"])

    def cone_file(self, name: str) -> Path:
        """The extract of cluster ``name`` under ``gaia/cones/``, or a clear error."""
        for suffix in CONE_SUFFIXES:
            p = self.root / "gaia" / "cones" / f"{name}{suffix}"
            if p.is_file():
                return p
        raise EmptyConeError(f"cluster {name}: no Gaia extract {self.root}/gaia/cones/{name}"
                             f"{{{','.join(CONE_SUFFIXES)}}}")

    # -- catalogues ----------------------------------------------------------
    def cluster_table(self) -> pd.DataFrame:
        return read_cluster_table(self._cluster_file())

    def training_members(self) -> pd.DataFrame:
        return read_member_list(self._train_file(), id_column="source_id_dr2")

    def comparison_members(self) -> pd.DataFrame:
        return read_member_list(self._t22_file(), id_column="source_id")

    def catalogue_query(self, product: str) -> str:
        path = {"clusters": self._cluster_file, "train_members": self._train_file,
                "t22_members": self._t22_file}[product]()
        return f"file:{path.resolve()} sha256:{sha256_file(path)}"

    # -- cones ---------------------------------------------------------------
    def cone(self, cluster: pd.Series) -> pd.DataFrame:
        path = self.cone_file(cluster["name"])
        table = canonical_gaia_table(_read_table(path), f"cluster {cluster['name']}: {path}", CONE_REQUIRED)
        cut = apply_cone_cuts(table, cluster, radius_pc=self.cfg.cone.radius_pc, n_sigma=self.cfg.cone.n_sigma)
        if len(cut) == 0:
            raise EmptyConeError(f"cluster {cluster['name']}: no source of {path} passes the cone cuts")
        cols = [c for c in GAIA_COLUMNS if c in cut.columns]
        missing = [c for c in GAIA_COLUMNS if c not in cut.columns]
        if missing:
            log.warning("cluster %s: %s lacks %s", cluster["name"], path, ", ".join(missing))
        return cut[cols]

    def cone_query(self, cluster: pd.Series) -> str:
        path = self.cone_file(cluster["name"])
        c = self.cfg.cone
        return (f"file:{path.resolve()} sha256:{sha256_file(path)} cuts: radius {c.radius_pc} pc at "
                f"{cluster['dist_pc']} pc, Eqs. 1-2 at {c.n_sigma} sigma")

    # -- crossmatch ----------------------------------------------------------
    def crossmatch(self, members: pd.DataFrame, cone: pd.DataFrame, cluster: pd.Series) -> pd.DataFrame:
        return crossmatch_positional(members, cone, self.cfg)

    # -- isochrones ----------------------------------------------------------
    def isochrone(self, log_age: float) -> pd.DataFrame:
        return local_isochrone(self.root / "isochrones", log_age, self.cfg.isochrone.metallicity_z)

    def isochrone_query(self, log_age: float) -> str:
        files = sorted((self.root / "isochrones").glob("*.dat"))
        digest = ",".join(f"{p.name}:{sha256_file(p)[:16]}" for p in files)
        return (f"local PARSEC grids in {(self.root / 'isochrones').resolve()} [{digest}] "
                f"logAge={log_age:.2f} Z={self.cfg.isochrone.metallicity_z}")
