"""The ``hats`` source: Gaia DR3 cones from a HATS catalogue, read with LSDB (``SOURCE=hats``).

The Gaia catalogue is ``[source] hats_catalog``: a local path or a URL of a
HATS catalogue (or of a HATS collection, whose main catalogue is read). The
default is the public Gaia DR3 that LINCC Frameworks serves at
``https://data.lsdb.io/hats/gaia_dr3`` (the collection opened in the
"Getting started" page of the LSDB documentation; its columns are the
``gaiadr3.gaia_source`` names, so :data:`COLUMN_NAMES` is empty).

A cone (Sect. 2.1; :mod:`ocmembers.method.cuts`) is read as::

    lsdb.open_catalog(url, columns=<the GAIA_COLUMNS the catalogue has>,
                      search_filter=lsdb.ConeSearch(ra, dec, radius_arcsec))
        .query(<Eqs. 1-2 as a box in (pmra, pmdec) and a range in parallax>)
        .compute()

so LSDB opens only the HEALPix partitions that overlap the cone and drops, per
partition, the rows outside the box before anything reaches the caller. The
radius and the box are padded by a hair (:data:`PAD_REL`, :data:`PAD_ARCSEC`)
and the exact cuts, the one implementation of :func:`~ocmembers.method.cuts.cone_mask`
(haversine radius, the circle of Eq. 1, Eq. 2), are applied to the computed
frame: every source gives the same rows for the same stars, whatever LSDB's
own separation arithmetic does at the edge. Cones across RA = 0 and around a
pole are HEALPix cones like any other.

Dask is the engine of ``compute()``: the scheduler in effect (the threaded
one, or the ``distributed`` client of the run). Inside a Dask worker task
(a per-cluster task of the run) the cone is computed synchronously in that
task: the task is the unit of parallelism, and a worker never waits on tasks
it would have to schedule on itself.

The catalogues (CG20 table1 and members, T22), the DR2 -> DR3 crossmatch and
the isochrones are not in a HATS Gaia catalogue: they come from ``[source]
hats_catalogues`` = ``local`` (the files of ``DATA_DIR``, as ``SOURCE=local``;
the default) or ``archive`` (VizieR, the Gaia archive's ``dr2_neighbourhood``,
CMD, as ``SOURCE=archive``), through that source's own methods and manifest
texts.

The manifest text of a cone (:meth:`HatsSource.cone_query`) names the
catalogue (the resolved path or the URL), its version as its ``properties``
give it (name, total rows, HATS format version, creation date) and the cone
and cuts in the same number format as the ADQL of the archive; reading the
properties is one small file (memoised), not the catalogue. An unreachable URL
or a path that is not a HATS catalogue raises one error naming it
(:class:`~ocmembers.exceptions.ArchiveError` for a URL,
:class:`~ocmembers.exceptions.TableParseError` for a local path).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import (ArchiveError, EmptyConeError, MissingColumnsError, OCMembersError,
                                  TableParseError)
from ocmembers.method.columns import GAIA_COLUMNS, GAIA_REQUIRED
from ocmembers.method.cuts import ConeWindow, cone_mask, cone_window
from ocmembers.sources.archive import ArchiveSource
from ocmembers.sources.base import DataSource
from ocmembers.sources.gaia import format_number
from ocmembers.sources.local import LocalSource

__all__ = ["HatsSource", "COLUMN_NAMES", "DEFAULT_CATALOG", "catalogue_version", "is_remote",
           "box_query", "arrow_to_numpy"]

log = logging.getLogger(__name__)

#: The public Gaia DR3 HATS collection (data.lsdb.io; LSDB docs, "Getting started").
DEFAULT_CATALOG = "https://data.lsdb.io/hats/gaia_dr3"

#: Our column (``GAIA_COLUMNS``, the ``gaia_source`` names) -> the catalogue's, where they
#: differ. LSDB's Gaia DR3 keeps the ``gaia_source`` names: nothing to map. Names that differ
#: only in case are matched without an entry here.
COLUMN_NAMES: dict[str, str] = {}

#: ``properties`` keys that make up the version of a catalogue in the manifest.
VERSION_KEYS: tuple[str, ...] = ("catalog_name", "total_rows", "hats_version", "hats_creation_date")

#: Padding of the LSDB pre-filters: relative, and absolute on the radius (arcsec); the exact
#: cuts (``cuts.cone_mask``) follow on the computed frame.
PAD_REL = 1e-9
PAD_ARCSEC = 1e-3

#: URL schemes read through fsspec (anything else is a local path).
REMOTE_SCHEMES = ("http://", "https://", "s3://", "gs://", "gcs://", "abfs://", "az://", "hf://")


def is_remote(location: str) -> bool:
    """True for a URL (``https://...``, ``s3://...``), False for a local path."""
    return str(location).lower().startswith(REMOTE_SCHEMES)


def _location(cfg: Config) -> str:
    loc = str(cfg.source.hats_catalog).strip()
    if not loc:
        raise OCMembersError("[source] hats_catalog is empty: give the path or URL of a HATS Gaia catalogue")
    if loc.startswith("file://"):
        loc = loc[len("file://"):]
    return loc if is_remote(loc) else str(Path(loc).expanduser().resolve())


def _catalogue_error(location: str, exc: BaseException) -> OCMembersError:
    what = f"HATS catalogue {location} ([source] hats_catalog)"
    if is_remote(location):
        return ArchiveError(f"{what}: cannot be read ({type(exc).__name__}: {exc}); check the URL and "
                            "the network")
    if not Path(location).exists():
        return TableParseError(f"{what} does not exist")
    return TableParseError(f"{what} is not a HATS catalogue ({type(exc).__name__}: {exc})")


def _open_structure(location: str) -> Any:
    """The ``hats`` catalogue at ``location`` (the main catalogue of a collection)."""
    import hats

    try:
        structure = hats.read_hats(location)
        if not hasattr(structure, "catalog_info"):   # a CatalogCollection
            main = getattr(structure, "main_catalog", None)
            structure = main if main is not None else hats.read_hats(structure.main_catalog_dir)
    except OCMembersError:
        raise
    except Exception as exc:  # noqa: BLE001 - fsspec, aiohttp, pyarrow and hats all raise their own
        raise _catalogue_error(location, exc) from exc
    return structure


def catalogue_version(structure: Any) -> dict[str, str]:
    """The :data:`VERSION_KEYS` of a catalogue's ``properties`` (those it has), as text."""
    info = structure.catalog_info
    out = {}
    for key in VERSION_KEYS:
        value = getattr(info, key, None)
        if value is not None:
            out[key] = str(value)
    return out


def box_query(window: ConeWindow) -> str:
    """Eqs. 1-2 as a pandas/LSDB ``query`` expression: the bounding box of Eq. 1 in
    (pmra, pmdec) and the range of Eq. 2 in parallax, each widened by :data:`PAD_REL`."""
    def lim(centre: float, half: float) -> tuple[str, str]:
        half = half * (1 + PAD_REL) + abs(centre) * PAD_REL
        return format_number(centre - half), format_number(centre + half)

    (a0, a1), (d0, d1), (p0, p1) = (lim(window.pmra, window.pm_max), lim(window.pmdec, window.pm_max),
                                    lim(window.parallax, window.parallax_max))
    return (f"(pmra >= {a0}) and (pmra <= {a1}) and (pmdec >= {d0}) and (pmdec <= {d1}) "
            f"and (parallax >= {p0}) and (parallax <= {p1})")


def arrow_to_numpy(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with numpy columns: Arrow floats keep their width (nulls -> NaN), Arrow
    integers keep theirs unless they hold nulls (then float64 NaN, as masked integers of a
    VOTable become); a new RangeIndex."""
    out: dict[str, np.ndarray] = {}
    for col in frame.columns:
        s = frame[col]
        dtype = s.dtype
        if isinstance(dtype, pd.ArrowDtype):
            np_dtype = dtype.numpy_dtype
            if np_dtype.kind == "f":
                out[col] = s.to_numpy(dtype=np_dtype, na_value=np.nan)
            elif np_dtype.kind in "iub" and s.isna().any():
                out[col] = s.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                out[col] = s.to_numpy(dtype=np_dtype)
        else:
            out[col] = s.to_numpy()
    return pd.DataFrame(out)


def _in_dask_worker() -> bool:
    try:
        from distributed import get_worker
        get_worker()
        return True
    except (ImportError, ValueError):
        return False


class HatsSource(DataSource):
    """Gaia DR3 cones from ``[source] hats_catalog`` through LSDB; the rest from
    ``[source] hats_catalogues`` (module docstring)."""

    name = "hats"

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self._structure: Any = None
        self._delegate: DataSource | None = None

    # -- the catalogue -----------------------------------------------------------
    @property
    def location(self) -> str:
        """The catalogue: an absolute local path or a URL."""
        return _location(self.cfg)

    @property
    def structure(self) -> Any:
        """The ``hats`` catalogue (properties, partitions, schema), read once."""
        if self._structure is None:
            self._structure = _open_structure(self.location)
        return self._structure

    def version(self) -> dict[str, str]:
        """The catalogue's version (:data:`VERSION_KEYS` of its ``properties``)."""
        return catalogue_version(self.structure)

    def columns(self) -> dict[str, str]:
        """Our name -> the catalogue's, for the ``GAIA_COLUMNS`` the catalogue has.

        Raises
        ------
        MissingColumnsError
            The catalogue lacks one of ``GAIA_REQUIRED``.
        """
        schema = self.structure.schema
        names = list(schema.names) if schema is not None else []
        lower = {n.lower(): n for n in names}
        found: dict[str, str] = {}
        for col in GAIA_COLUMNS:
            theirs = COLUMN_NAMES.get(col, col)
            if theirs in names:
                found[col] = theirs
            elif theirs.lower() in lower:
                found[col] = lower[theirs.lower()]
        missing = [c for c in GAIA_REQUIRED if c not in found]
        if missing:
            raise MissingColumnsError(f"HATS catalogue {self.location}: lacks {', '.join(missing)} "
                                      "(needed for every cone; map other names in sources/hats.py "
                                      "COLUMN_NAMES)")
        return found

    # -- delegation: catalogues, crossmatch, isochrones ----------------------------
    @property
    def delegate(self) -> DataSource:
        """The source of everything but the cones: ``local`` or ``archive``."""
        if self._delegate is None:
            delegate = ArchiveSource if self.cfg.source.hats_catalogues == "archive" else LocalSource
            self._delegate = delegate(self.cfg)
        return self._delegate

    def cluster_table(self) -> pd.DataFrame:
        return self.delegate.cluster_table()

    def training_members(self) -> pd.DataFrame:
        return self.delegate.training_members()

    def comparison_members(self) -> pd.DataFrame:
        return self.delegate.comparison_members()

    def catalogue_query(self, product: str) -> str:
        return f"hats catalogues from {self.delegate.name}: {self.delegate.catalogue_query(product)}"

    def crossmatch(self, members: pd.DataFrame, cone: pd.DataFrame, cluster: pd.Series) -> pd.DataFrame:
        return self.delegate.crossmatch(members, cone, cluster)

    def isochrone(self, log_age: float) -> pd.DataFrame:
        return self.delegate.isochrone(log_age)

    def isochrone_query(self, log_age: float) -> str:
        return self.delegate.isochrone_query(log_age)

    # -- cones -------------------------------------------------------------------
    def _window(self, cluster: pd.Series) -> ConeWindow:
        return cone_window(cluster, radius_pc=self.cfg.cone.radius_pc, n_sigma=self.cfg.cone.n_sigma)

    def read_cone(self, window: ConeWindow) -> pd.DataFrame:
        """The rows of the catalogue inside ``window`` (radius and Eqs. 1-2), numpy columns
        named as ``GAIA_COLUMNS``, sorted by ``source_id``; empty when none."""
        import dask
        import lsdb

        cols = self.columns()
        radius_arcsec = window.radius_deg * 3600.0 * (1 + PAD_REL) + PAD_ARCSEC
        rename = {theirs: ours for ours, theirs in cols.items()}
        what = f"cluster {window.name}: HATS catalogue {self.location}"
        try:
            with warnings.catch_warnings():
                # nested-pandas calls NestedFrame.drop(inplace=True), deprecated by pandas 3.1
                warnings.filterwarnings("ignore", message="The inplace keyword in NestedFrame")
                cat = lsdb.open_catalog(self.location, columns=list(cols.values()),
                                        search_filter=lsdb.ConeSearch(ra=window.ra, dec=window.dec,
                                                                      radius_arcsec=radius_arcsec))
                if rename.keys() != set(rename.values()):
                    cat = cat.rename(rename)
                cat = cat.query(box_query(window))
                if _in_dask_worker():
                    with dask.config.set(scheduler="synchronous"):
                        frame = cat.compute(progress_bar=False)
                else:
                    frame = cat.compute(progress_bar=False)
        except OCMembersError:
            raise
        except Exception as exc:  # noqa: BLE001 - the reading stack raises many kinds
            raise ArchiveError(f"{what}: the cone could not be read ({type(exc).__name__}: {exc})") from exc
        frame = arrow_to_numpy(pd.DataFrame(frame).rename(columns=rename))
        frame = frame.loc[:, [c for c in GAIA_COLUMNS if c in frame.columns]]
        frame = frame.loc[cone_mask(frame, window)] if len(frame) else frame
        return frame.sort_values("source_id", kind="mergesort").reset_index(drop=True)

    def cone(self, cluster: pd.Series) -> pd.DataFrame:
        window = self._window(cluster)
        cone = self.read_cone(window)
        if len(cone) == 0:
            raise EmptyConeError(f"cluster {window.name}: no source of the HATS catalogue {self.location} "
                                 "passes the cone cuts (radius, Eqs. 1-2)")
        missing = [c for c in GAIA_COLUMNS if c not in cone.columns]
        if missing:
            log.warning("cluster %s: the HATS catalogue %s lacks %s", window.name, self.location,
                        ", ".join(missing))
        cone.attrs["provenance"] = self.cone_query(cluster)
        return cone

    def cone_query(self, cluster: pd.Series) -> str:
        w = self._window(cluster)
        version = " ".join(f"{k}={v}" for k, v in self.version().items())
        n = format_number
        return (f"hats {self.location} [{version}] columns={','.join(self.columns())}: "
                f"cone ra={n(w.ra)} dec={n(w.dec)} radius={n(w.radius_deg)} deg "
                f"({self.cfg.cone.radius_pc} pc at {cluster['dist_pc']} pc); Eq. 1 |pm - ({n(w.pmra)}, "
                f"{n(w.pmdec)})| <= {n(w.pm_max)}; Eq. 2 |parallax - {n(w.parallax)}| <= "
                f"{n(w.parallax_max)} ({self.cfg.cone.n_sigma} sigma)")
