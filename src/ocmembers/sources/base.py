"""The interface every data source implements (archive, local, sim)."""

from __future__ import annotations

import abc

import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import ConfigError, TableParseError
from ocmembers.method.columns import CLUSTER_CATALOGUES
from ocmembers.sources.cluster_tables import catalogue_file, read_cluster_table

__all__ = ["DataSource"]


class DataSource(abc.ABC):
    """Where the raw products come from.

    Every method returns tables in the canonical form of
    :mod:`ocmembers.method.columns`; the matching ``*_query`` method returns
    the text recorded in the cache manifest (ADQL, a VizieR request, a file
    path with its checksum, or the simulation seed), and is computed without
    touching the network.
    """

    #: ``archive``, ``local`` or ``sim``.
    name: str = ""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    # -- catalogues --------------------------------------------------------
    @abc.abstractmethod
    def cluster_table(self) -> pd.DataFrame:
        """CG20 table1 with the columns of ``CLUSTER_COLUMNS``."""

    @abc.abstractmethod
    def training_members(self) -> pd.DataFrame:
        """CG20 members (Gaia DR2 ids in ``source_id_dr2``) with ``MEMBER_COLUMNS``."""

    @abc.abstractmethod
    def comparison_members(self) -> pd.DataFrame:
        """T22 members (Gaia (E)DR3 ids in ``source_id``) with ``MEMBER_COLUMNS``."""

    def cluster_catalogue(self, which: str) -> pd.DataFrame:
        """The cluster table a user's cone takes its parameters from (``[source] cluster_catalogue``).

        ``cg20`` is :meth:`cluster_table`; ``hr23`` and ``hr24`` (Hunt & Reffert
        2023, 2024) are read from ``catalogues/`` of ``[source] local_dir``
        (``hunt2023_table.csv``, ``hunt2024_table.csv``); the archive source
        fetches them from VizieR instead.
        """
        if which not in CLUSTER_CATALOGUES:
            raise ConfigError(f"source.cluster_catalogue must be one of {', '.join(CLUSTER_CATALOGUES)}, "
                              f"got {which!r}")
        if which == "cg20":
            return self.cluster_table()
        path = catalogue_file(self.cfg.local_dir, which)
        if path is None:
            raise TableParseError(f"no {CLUSTER_CATALOGUES[which]} table in {self.cfg.local_dir}/catalogues "
                                  f"(looked for {which} files: hunt2023_table.csv, hunt2024_table.csv)")
        return read_cluster_table(path)

    def cluster_aliases(self) -> pd.DataFrame | None:
        """``name`` and ``aliases`` of the Hunt & Reffert catalogue (2024, else 2023) where at hand,
        to find a CG20 cluster by another of its names (``Pleiades`` -> ``Melotte_22``); None if
        neither is."""
        for which in ("hr24", "hr23"):
            path = catalogue_file(self.cfg.local_dir, which)
            if path is not None:
                return read_cluster_table(path)[["name", "aliases"]]
        return None

    @abc.abstractmethod
    def catalogue_query(self, product: str) -> str:
        """Manifest text for ``product`` in {"clusters", "train_members", "t22_members"}."""

    # -- Gaia cones --------------------------------------------------------
    @abc.abstractmethod
    def cone(self, cluster: pd.Series) -> pd.DataFrame:
        """The Gaia DR3 cone of ``cluster`` (a row of the cluster table), with the
        Eq. 1-2 cuts applied and the columns of ``GAIA_COLUMNS``."""

    @abc.abstractmethod
    def cone_query(self, cluster: pd.Series) -> str:
        """Manifest text of the cone of ``cluster``."""

    # -- DR2 -> DR3 ----------------------------------------------------------
    @abc.abstractmethod
    def crossmatch(self, members: pd.DataFrame, cone: pd.DataFrame, cluster: pd.Series) -> pd.DataFrame:
        """Map the DR2 ids of ``members`` to DR3 ids.

        Returns a table with ``source_id_dr2``, ``source_id``,
        ``angular_distance`` (arcsec), ``magnitude_difference`` and
        ``ambiguous`` (another DR3 source matched almost as well).
        """

    # -- isochrones ----------------------------------------------------------
    @abc.abstractmethod
    def isochrone(self, log_age: float) -> pd.DataFrame:
        """The PARSEC isochrone of ``log_age`` at ``[isochrone] metallicity_z``,
        absolute magnitudes, as parsed by :func:`ocmembers.sources.parsec.read_cmd`
        (columns ``logAge, MH, Mini, label, logTe, Gmag, G_BPmag, G_RPmag``...).
        ``DataFrame.attrs["provenance"]`` says how it was obtained (CMD query,
        file, interpolation between which grids)."""

    @abc.abstractmethod
    def isochrone_query(self, log_age: float) -> str:
        """Manifest text of the isochrone of ``log_age``."""
