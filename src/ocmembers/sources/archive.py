"""The ``archive`` source: the live services (Gaia archive, VizieR, CMD).

Each method of :class:`~ocmembers.sources.base.DataSource` is a thin
composition of the request builders and senders of :mod:`.gaia`,
:mod:`.vizier` and :mod:`.cmd`; the ``*_query`` twins return the request text
(ADQL, the VizieR request as JSON, the CMD form fields) without touching the
network, so that the stages can check their caches first.

- ``cluster_table``/``training_members``/``comparison_members``: VizieR
  ``J/A+A/640/A1/table1``, ``J/A+A/640/A1/nodup`` and ``J/A+A/659/A59/table2``
  (kept in memory for the life of the object).
- ``cone``: the ADQL cone of Sect. 2.1 (Eqs. 1-2) on ``gaiadr3.gaia_source``.
- ``crossmatch``: ``gaiadr3.dr2_neighbourhood`` for the DR2 ids of the
  members, best match per DR2 source, restricted to the DR3 ids of the cone.
- ``isochrone``: the whole CMD grid of ``[isochrone]`` is fetched once and
  kept verbatim under ``raw/isochrones/cmd_<Z>_<min>_<max>_<step>.dat`` (with
  its manifest); the isochrone of the grid age nearest to the requested one
  is returned.

Network clients can be injected (``gaia_client``, ``vizier_client``,
``session``, ``sleep``), which is how the tests run offline.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.sources.cache import cached_bytes
from ocmembers.config import Config
from ocmembers.exceptions import ConfigError, IsochroneRangeError, OCMembersError, TableParseError
from ocmembers.sources import cmd, gaia, vizier
from ocmembers.sources.base import DataSource
from ocmembers.sources.cluster_tables import cluster_frame
from ocmembers.sources.parsec import read_cmd
from ocmembers.sources.positional import crossmatch_positional
from ocmembers.method.columns import cluster_label, require_columns

__all__ = ["ArchiveSource", "cmd_grid_path", "nearest_grid_age", "select_nearest_age"]

log = logging.getLogger(__name__)

_PARSERS = {
    "clusters": lambda t: vizier.parse_cg20_table1(t),
    "train_members": lambda t: vizier.parse_members(
        t, id_column="GaiaDR2", id_name="source_id_dr2", what=f"CG20 members ({vizier.CG20_MEMBERS})"),
    "t22_members": lambda t: vizier.parse_members(
        t, id_column="GaiaEDR3", id_name="source_id", what=f"T22 members ({vizier.T22_MEMBERS})"),
}


def cmd_grid_path(cfg: Config) -> Path:
    """Where the raw CMD grid of ``[isochrone]`` is kept."""
    iso = cfg.isochrone
    d = cmd._decimals(iso.log_age_step)
    name = (f"cmd_{iso.metallicity_z:g}_{iso.log_age_min:.{d}f}_{iso.log_age_max:.{d}f}_"
            f"{iso.log_age_step:g}.dat")
    return cfg.raw_dir / "isochrones" / name


def cmd_nir_path(cfg: Config, photsys: str, log_age: float) -> Path:
    """Where the raw single-age CMD isochrone of ``photsys`` (``2mass`` or ``vista``) is kept."""
    d = cmd._decimals(cfg.isochrone.log_age_step)
    return cfg.raw_dir / "isochrones" / f"cmd_{photsys}_{cfg.isochrone.metallicity_z:g}_{log_age:.{d}f}.dat"


def nearest_grid_age(log_age: float, cfg: Config) -> float:
    """The age of the ``[isochrone]`` grid nearest to ``log_age`` (no data needed)."""
    iso = cfg.isochrone
    if not np.isfinite(log_age):
        raise IsochroneRangeError(f"log_age = {log_age!r} is not a number")
    half = iso.log_age_step / 2 + 1e-9
    if not iso.log_age_min - half <= log_age <= iso.log_age_max + half:
        raise IsochroneRangeError(
            f"log_age = {log_age:.3f} outside the CMD grid [{iso.log_age_min}, {iso.log_age_max}] "
            "of [isochrone]")
    k = round((log_age - iso.log_age_min) / iso.log_age_step)
    return round(iso.log_age_min + k * iso.log_age_step, cmd._decimals(iso.log_age_step))


def select_nearest_age(grid: pd.DataFrame, log_age: float, *, max_offset: float) -> pd.DataFrame:
    """The isochrone of ``grid`` (a parsed CMD table with ``logAge``) nearest to ``log_age``.

    Raises
    ------
    IsochroneRangeError
        When the nearest age of ``grid`` is farther than ``max_offset`` dex.
    """
    require_columns(grid, ("logAge",), "CMD isochrone grid")
    ages = grid["logAge"].to_numpy(dtype=float)
    unique = np.unique(np.round(ages, 4))
    if len(unique) == 0:
        raise IsochroneRangeError("the CMD isochrone grid is empty")
    best = unique[np.argmin(np.abs(unique - log_age))]
    if abs(best - log_age) > max_offset + 1e-9:
        raise IsochroneRangeError(f"log_age = {log_age:.3f}: nearest isochrone of the grid is "
                                  f"{best:.3f} (grid {unique[0]:.2f}-{unique[-1]:.2f})")
    return grid.loc[np.round(ages, 4) == best].reset_index(drop=True)


#: Parsed CMD grids by (path, sha256 of the raw file).
_GRIDS: dict[tuple[str, str], pd.DataFrame] = {}


def _read_cmd(data: bytes, *, name: str) -> pd.DataFrame:
    """``ocmembers.sources.parsec.read_cmd``, errors typed."""
    try:
        return read_cmd(data, name=name)
    except TableParseError:
        raise
    except (ValueError, KeyError) as exc:
        raise TableParseError(f"{name}: CMD output could not be read ({exc})") from exc


class ArchiveSource(DataSource):
    """Gaia archive + VizieR + CMD, through astroquery and requests."""

    name = "archive"

    def __init__(self, cfg: Config, *, gaia_client: Any = None, vizier_client: Any = None,
                 session: Any = None, sleep: Any = None) -> None:
        super().__init__(cfg)
        self._gaia = gaia_client
        self._vizier = vizier_client
        self._session = session
        self._sleep = sleep
        self._tables: dict[str, pd.DataFrame] = {}
        self._grid: pd.DataFrame | None = None

    # -- catalogues --------------------------------------------------------
    def _payload(self, product: str) -> dict[str, Any]:
        queries = vizier.catalogue_queries()
        if product not in queries:
            raise ConfigError(f"unknown catalogue product {product!r}; one of {', '.join(queries)}")
        return queries[product]

    def _catalogue(self, product: str) -> pd.DataFrame:
        if product not in self._tables:
            payload = self._payload(product)
            table = vizier.fetch_vizier(payload, cfg=self.cfg, client=self._vizier, sleep=self._sleep,
                                        what=f"catalogue {product} (VizieR {payload['catalog']})")
            self._tables[product] = _PARSERS[product](table)
        return self._tables[product].copy()

    def cluster_table(self) -> pd.DataFrame:
        return self._catalogue("clusters")

    def cluster_catalogue(self, which: str) -> pd.DataFrame:
        """CG20, or a Hunt & Reffert table fetched from VizieR (:data:`ocmembers.sources.vizier.HR_TABLES`)."""
        if which not in vizier.HR_TABLES:
            return super().cluster_catalogue(which)
        if which not in self._tables:
            payload = vizier.hr_query(which)
            table = vizier.fetch_vizier(payload, cfg=self.cfg, client=self._vizier, sleep=self._sleep,
                                        what=f"cluster catalogue {which} (VizieR {payload['catalog']})")
            self._tables[which] = cluster_frame(vizier.to_frame(table), f"VizieR {payload['catalog']}")
        return self._tables[which].copy()

    def cluster_aliases(self) -> pd.DataFrame | None:
        """The alternative names of the local Hunt & Reffert file, else of VizieR's 2024 table
        (None, with a warning, when VizieR cannot be reached: the aliases only help)."""
        local = super().cluster_aliases()
        if local is not None:
            return local
        try:
            return self.cluster_catalogue("hr24")[["name", "aliases"]]
        except OCMembersError as exc:
            log.warning("alternative cluster names unavailable: %s", exc)
            return None

    def training_members(self) -> pd.DataFrame:
        return self._catalogue("train_members")

    def comparison_members(self) -> pd.DataFrame:
        return self._catalogue("t22_members")

    def catalogue_query(self, product: str) -> str:
        return vizier.query_text(self._payload(product))

    # -- Gaia cones --------------------------------------------------------
    def cone(self, cluster: pd.Series) -> pd.DataFrame:
        name = cluster_label(cluster)
        return gaia.fetch_cone(gaia.build_cone_adql(cluster, self.cfg), cfg=self.cfg,
                               client=self._gaia, what=f"cluster {name}: Gaia cone",
                               sleep=self._sleep)

    def cone_query(self, cluster: pd.Series) -> str:
        return gaia.build_cone_adql(cluster, self.cfg)

    # -- DR2 -> DR3 ----------------------------------------------------------
    def crossmatch(self, members: pd.DataFrame, cone: pd.DataFrame, cluster: pd.Series) -> pd.DataFrame:
        """DR3 ids of ``members`` through ``gaiadr3.dr2_neighbourhood``.

        ``cone`` only restricts the result to DR3 sources inside it (when it
        has rows); the match itself does not depend on it. With ``[crossmatch] method =
        "positional"`` (a release without a DR2 neighbourhood table, e.g. DR4) the members are
        propagated to ``[cone] epoch`` and matched by position in ``cone`` instead
        (:func:`ocmembers.sources.positional.crossmatch_positional`, as SOURCE=local).
        """
        if self.cfg.crossmatch.method == "positional":
            return crossmatch_positional(members, cone, self.cfg)
        name = cluster_label(cluster)
        what = f"cluster {name}: DR2 -> DR3 crossmatch"
        require_columns(members, ("source_id_dr2",), f"cluster {name}: training members")
        if len(members) == 0:
            log.warning("%s: no members to match", what)
            return _empty_crossmatch()
        neighbourhood = gaia.fetch_dr2_neighbourhood(members["source_id_dr2"], cfg=self.cfg,
                                                     client=self._gaia, what=what, sleep=self._sleep)
        xm = self.cfg.crossmatch
        matches = gaia.best_dr2_dr3_match(neighbourhood, max_sep_arcsec=xm.max_sep_arcsec,
                                          ambiguous_dmag=xm.ambiguous_dmag)
        if len(cone) and "source_id" in cone.columns:
            matches = gaia.restrict_to_ids(matches, cone["source_id"].to_numpy())
            if matches.attrs.get("n_outside"):
                log.info("%s: %d match(es) outside the cone dropped", what, matches.attrs["n_outside"])
        return matches

    def crossmatch_query(self, members: pd.DataFrame, cluster: pd.Series) -> str:
        """The ADQL of the crossmatch and a digest of the uploaded DR2 ids."""
        ids = np.unique(members["source_id_dr2"].to_numpy(dtype=np.int64))
        digest = hashlib.sha256(ids.tobytes()).hexdigest()[:16]
        if self.cfg.crossmatch.method == "positional":
            xm = self.cfg.crossmatch
            return (f"positional: {len(ids)} DR2 members of {cluster_label(cluster)} (sha256:{digest}) "
                    f"propagated J{xm.dr2_epoch} -> J{self.cfg.cone.epoch}, within {xm.max_sep_arcsec} arcsec")
        return (f"{gaia.build_neighbourhood_adql(self.cfg)}\n-- upload {gaia.UPLOAD_TABLE}: "
                f"{len(ids)} DR2 ids of {cluster_label(cluster)}, sha256:{digest}")

    # -- isochrones ----------------------------------------------------------
    def _cmd_query(self) -> str:
        return cmd.cmd_query_text(self.cfg.source.cmd_url, cmd.cmd_payloads(self.cfg))

    def _isochrone_grid(self) -> pd.DataFrame:
        if self._grid is None:
            path = cmd_grid_path(self.cfg)
            data = cached_bytes(path, lambda: cmd.fetch_cmd_grid(self.cfg, self._session,
                                                                 sleep=self._sleep),
                                source=self.name, query=self._cmd_query())
            digest = hashlib.sha256(data).hexdigest()
            key = (str(path), digest)
            if key not in _GRIDS:  # one parse per process, whatever the number of sources
                grid = _read_cmd(data, name=path.name)
                grid.attrs.update(path=str(path), sha256=digest)
                _GRIDS.clear()
                _GRIDS[key] = grid
            self._grid = _GRIDS[key]
        return self._grid

    def isochrone(self, log_age: float) -> pd.DataFrame:
        target = nearest_grid_age(log_age, self.cfg)
        grid = self._isochrone_grid()
        iso = select_nearest_age(grid, target, max_offset=self.cfg.isochrone.log_age_step / 2)
        chosen = float(np.round(iso["logAge"].iloc[0], 4))
        iso.attrs["provenance"] = (
            f"CMD {self.cfg.source.cmd_url}: PARSEC v1.2S + COLIBRI S_37, Gaia EDR3, "
            f"Z={self.cfg.isochrone.metallicity_z:g}; nearest grid logAge {chosen:.4g} for "
            f"requested {log_age:.4g}; raw grid {grid.attrs['path']} "
            f"(sha256 {grid.attrs['sha256'][:16]})")
        return iso

    def isochrone_query(self, log_age: float) -> str:
        target = nearest_grid_age(log_age, self.cfg)
        return f"{self._cmd_query()}; logAge {target:g} (nearest grid age to {log_age:g})"

    def _nir_payload(self, log_age: float, photsys: str) -> tuple[float, dict[str, str]]:
        target = nearest_grid_age(log_age, self.cfg)
        iso = self.cfg.isochrone
        return target, cmd.build_cmd_payload(target, target, iso.log_age_step, iso.metallicity_z,
                                             cmd_version=self.cfg.source.cmd_version, photsys=photsys)

    def nir_isochrone(self, log_age: float, photsys: str = "vista") -> pd.DataFrame:
        """The PARSEC isochrone of the grid age nearest ``log_age`` in the 2MASS or VISTA bands
        (Peña Ramírez et al. 2022 use PARSEC-COLIBRI in VISTA): one single-age CMD request with
        ``photsys_file`` of :data:`ocmembers.sources.cmd.PHOTSYS_FILES`, kept verbatim under
        :func:`cmd_nir_path` with its request in the manifest; absolute ``Jmag, Hmag, Ksmag``."""
        target, payload = self._nir_payload(log_age, photsys)
        path = cmd_nir_path(self.cfg, photsys, target)
        url = self.cfg.source.cmd_url
        src = self.cfg.source
        data = cached_bytes(path, lambda: cmd.fetch_cmd(payload, self._session, url=url, timeout=src.timeout_s,
                                                        retries=src.retries, backoff_s=src.backoff_s,
                                                        sleep=self._sleep),
                            source=self.name, query=cmd.cmd_query_text(url, [payload]))
        iso = read_cmd(data, name=str(path), photsys=photsys)
        iso = select_nearest_age(iso, target, max_offset=self.cfg.isochrone.log_age_step / 2)
        iso = iso.loc[iso["label"] <= self.cfg.isochrone.max_label].reset_index(drop=True)
        iso.attrs["provenance"] = (f"CMD {url}: PARSEC v1.2S + COLIBRI S_37, {photsys}, "
                                   f"Z={self.cfg.isochrone.metallicity_z:g}, logAge {target:g}; raw {path} "
                                   f"(sha256 {hashlib.sha256(data).hexdigest()[:16]})")
        return iso

    def nir_isochrone_query(self, log_age: float, photsys: str = "vista") -> str:
        """Manifest text of :meth:`nir_isochrone`."""
        _, payload = self._nir_payload(log_age, photsys)
        return cmd.cmd_query_text(self.cfg.source.cmd_url, [payload])


def _empty_crossmatch() -> pd.DataFrame:
    out = pd.DataFrame({"source_id_dr2": np.array([], dtype=np.int64),
                        "source_id": np.array([], dtype=np.int64),
                        "angular_distance": np.array([], dtype=float),
                        "magnitude_difference": np.array([], dtype=float),
                        "ambiguous": np.array([], dtype=bool)})
    out.attrs["n_ambiguous"] = 0
    return out
