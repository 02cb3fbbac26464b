"""The simulated sky as a data source (``SOURCE=sim``).

Every product the archive source gives, from :mod:`ocmembers.sim`: the cluster
table (CG20 from ``<local_dir>/catalogues/cg20_table1.csv`` when present,
else the few clusters embedded in ``ocmembers/data/sim_clusters.csv``), cones
with the Eq. 1-2 cuts, CG20-like training members with DR2 ids and J2015.5
positions, T22-like comparison members, isochrones; plus what no archive has,
the truth (:meth:`SimSource.truth`).

The clusters simulated are ``[sim] demo_clusters``, the clusters given roles
in ``[samples]`` (``train_clusters`` ...) and ``CLUSTERS`` (``[clusters]
names``); with all empty, every cluster of the table. Each
cone is simulated deterministically from ``([sim] seed, cluster name)`` and
cached under ``<out_dir>/raw/sim/<cluster>.{cone,truth}.parquet`` with a
manifest whose query records the seed, the configuration digest and the
cluster parameters, so clusters can be simulated independently, in parallel
and only once.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from importlib import resources
from pathlib import Path

import pandas as pd

from ocmembers._version import __version__
from ocmembers.sources.cache import is_valid, read_manifest, read_table, write_json, write_table
from ocmembers.exceptions import OCMembersError, TableParseError
from ocmembers.sim.catalogues import cg20_like_members, t22_like_members
from ocmembers.sim.cluster import SimulatedCone, simulate_cone
from ocmembers.sim.isochrones import cluster_isochrone
from ocmembers.sources import executor
from ocmembers.sources.base import DataSource
from ocmembers.sources.local import read_cluster_table
from ocmembers.method.columns import CLUSTER_COLUMNS, cluster_row, normalise_cluster_name
from ocmembers.sources.positional import crossmatch_positional

__all__ = ["SimSource", "embedded_cluster_table"]

log = logging.getLogger(__name__)

EMBEDDED_TABLE = "sim_clusters.csv"


#: Bumped when the simulation changes what a cone holds for the same configuration
#: (2: the bright sources are kept only inside the T22-like window), so cached cones are redone.
SIM_CONE_VERSION = 2

#: how many simulated cones one source keeps in memory (the most recently used): the stages
#: ask for one cluster's cone a few times in a row, never for all of them at once, and 265
#: full cones held together set the validate stage's 8.8 GB peak
MEMO_CONES = 2

#: Bumped when the T22-like lists change for the same configuration (2: HDBSCAN in one thread;
#: 3: astrometry alone where five dimensions find no group).
T22_LIST_VERSION = 3

#: Keys that only the T22-like lists read: left out of the cache keys of the cones and the
#: training members, so that changing them redoes the lists and nothing else.
_T22_ONLY_KEYS = (("sim", "t22_sky"), ("sim", "t22_check"))


def embedded_cluster_table() -> pd.DataFrame:
    """The CG20 parameters shipped with ocmembers for runs without any data."""
    with resources.as_file(resources.files("ocmembers").joinpath("data", EMBEDDED_TABLE)) as p:
        table = pd.read_csv(p, comment="#")
    missing = [c for c in CLUSTER_COLUMNS if c not in table.columns]
    if missing:
        raise TableParseError(f"{EMBEDDED_TABLE}: missing column(s) {', '.join(missing)}")
    table["name"] = table["name"].astype(str).map(normalise_cluster_name)
    return table[list(CLUSTER_COLUMNS)]


class SimSource(DataSource):
    """Products of the simulated sky (:mod:`ocmembers.sim`)."""

    name = "sim"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self._memo: OrderedDict[str, SimulatedCone] = OrderedDict()
        self._table: pd.DataFrame | None = None

    # -- clusters -----------------------------------------------------------
    def _cg20_file(self) -> Path | None:
        p = self.cfg.local_dir / "catalogues" / "cg20_table1.csv"
        return p if p.is_file() else None

    def _full_table(self) -> pd.DataFrame:
        if self._table is None:
            path = self._cg20_file()
            if path is not None:
                self._table = read_cluster_table(path)
            else:
                self._table = embedded_cluster_table()
        return self._table

    def cluster_names(self) -> list[str]:
        """The clusters this source simulates (module docstring)."""
        sm = self.cfg.samples
        roles = (*getattr(sm, "train_clusters", ()), *getattr(sm, "validation_clusters", ()),
                 *getattr(sm, "test_clusters", ()))
        names = list(dict.fromkeys([normalise_cluster_name(n) for n in
                                    (*self.cfg.sim.demo_clusters, *roles, *self.cfg.clusters.names)]))
        return names or self._full_table()["name"].astype(str).tolist()

    def cluster_table(self) -> pd.DataFrame:
        table = self._full_table()
        rows = [cluster_row(table, n) for n in self.cluster_names()]
        return pd.DataFrame(rows).reset_index(drop=True)

    def _row(self, cluster: pd.Series | str) -> pd.Series:
        if isinstance(cluster, str):
            return cluster_row(self._full_table(), cluster)
        return cluster

    # -- simulation with a cache ----------------------------------------------
    def _cache_paths(self, name: str) -> tuple[Path, Path, Path]:
        d = self.cfg.raw_dir / "sim"
        return d / f"{name}.cone.parquet", d / f"{name}.truth.parquet", d / f"{name}.bright.parquet"

    def simulated(self, cluster: pd.Series | str) -> SimulatedCone:
        """The simulated cone of ``cluster`` (the last :data:`MEMO_CONES` memoised, and every
        one cached on disk under ``raw/sim``)."""
        row = self._row(cluster)
        name = str(row["name"])
        if name in self._memo:
            self._memo.move_to_end(name)
            return self._memo[name]
        query = self.cone_query(row)
        paths = self._cache_paths(name)
        cone_p, truth_p, bright_p = paths
        sim = None
        if all(is_valid(p) for p in paths):
            try:
                if all(read_manifest(p).get("query") == query for p in paths):
                    sim = SimulatedCone(name=name, cone=read_table(cone_p), truth=read_table(truth_p),
                                        bright=read_table(bright_p), meta={"cached": str(cone_p)})
            except OCMembersError:
                sim = None
        if sim is None:
            sim = simulate_cone(row, self.cfg)
            cone_p.parent.mkdir(parents=True, exist_ok=True)
            write_table(sim.truth, truth_p, source=self.name, query=query)
            write_table(sim.bright, bright_p, source=self.name, query=query)
            write_table(sim.cone, cone_p, source=self.name, query=query)
            write_json(sim.meta, cone_p.with_suffix(".meta.json"))
        sim.cone.attrs["provenance"] = f"simulated: {query}"
        self._memo[name] = sim
        while len(self._memo) > MEMO_CONES:
            self._memo.popitem(last=False)
        return sim

    def truth(self, cluster: pd.Series | str) -> pd.DataFrame:
        """The truth behind the cone of ``cluster``: one row per cone source (same order),
        ``source_id, is_member, population, mass, q, dist_pc, parallax_true, ...``
        (:data:`ocmembers.sim.cluster.TRUTH_COLUMNS`)."""
        return self.simulated(cluster).truth

    def _per_cluster(self, func, what: str, only: list[str] | None = None) -> pd.DataFrame:
        """``func(simulated cone, cluster row, cfg)`` for every cluster (``only`` those, when any
        of them is simulated), concatenated in the catalogue's order; with ``[clusters] jobs`` > 1
        or a scheduler on the one executor (:mod:`ocmembers.sources.executor`), whose tasks
        simulate (and cache) the cones they need."""
        parts, failed = [], []
        names = self.cluster_names()
        if only:
            keep = set(only)
            names = [n for n in names if n in keep] or names
        if executor.in_process(self.cfg, len(names)):
            results = [_product(self.cfg, name, func, self) for name in names]
        else:  # the one executor (Dask): each task simulates (and caches) its own cone
            done = {out.name: out.value if out.lost is None else (None, out.lost)
                    for out in executor.map_clusters(self.cfg, names, _product, func, desc=f"sim {what}")}
            results = [done[name] for name in names]  # the catalogue's order, whatever the schedule
        for name, (part, err) in zip(names, results):
            if err is None:
                parts.append(part)
            else:
                log.warning("sim: no %s for %s: %s", what, name, err)
                failed.append(f"{name}: {err}")
        if not parts:
            raise OCMembersError(f"sim: no cluster could be simulated for the {what}: " + "; ".join(failed))
        return pd.concat(parts, ignore_index=True)

    # -- catalogues -----------------------------------------------------------
    def training_members(self) -> pd.DataFrame:
        return self._per_cluster(cg20_like_members, "CG20-like members")

    def comparison_members(self) -> pd.DataFrame:
        # only the test clusters are compared with T22 (Sect. 4): the lists of the others are never read
        return self._per_cluster(t22_like_members, "T22-like members", only=list(self.cfg.samples.test_clusters))

    def catalogue_query(self, product: str) -> str:
        if product not in ("clusters", "train_members", "t22_members"):
            raise OCMembersError(f"sim: unknown catalogue product {product!r}")
        src = f"file:{self._cg20_file()}" if self._cg20_file() else f"embedded:{EMBEDDED_TABLE}"
        conf = self.cfg.digest("sim", "cone", "isochrone", "crossmatch", exclude=_T22_ONLY_KEYS)[:16]
        query = (f"sim {product}: seed={self.cfg.sim.seed} clusters={','.join(self.cluster_names())} "
                 f"table={src} config={conf}")
        if product == "t22_members":  # what only the T22-like lists depend on
            test = ",".join(self.cfg.samples.test_clusters) or "all"
            query += (f" t22_sky={self.cfg.sim.t22_sky} t22_check={self.cfg.sim.t22_check} for={test} "
                      f"methods={self.cfg.digest('methods')[:16]} list=v{T22_LIST_VERSION}")
        return query

    # -- cones ----------------------------------------------------------------
    def cone(self, cluster: pd.Series) -> pd.DataFrame:
        return self.simulated(cluster).cone.copy()

    def cone_query(self, cluster: pd.Series) -> str:
        params = ",".join(f"{k}={cluster[k]}" for k in CLUSTER_COLUMNS if k in cluster.index)
        parsec = "parsec" if self.cfg.sim.use_parsec and (self.cfg.local_dir / "isochrones").is_dir() else "model"
        return (f"sim cone v{SIM_CONE_VERSION}: seed={self.cfg.sim.seed} {params} isochrones={parsec} "
                f"config={self.cfg.digest('sim', 'cone', 'isochrone', exclude=_T22_ONLY_KEYS)[:16]} ocmembers={__version__}")

    # -- DR2 -> DR3 -------------------------------------------------------------
    def crossmatch(self, members: pd.DataFrame, cone: pd.DataFrame, cluster: pd.Series) -> pd.DataFrame:
        return crossmatch_positional(members, cone, self.cfg)

    # -- isochrones -------------------------------------------------------------
    def isochrone(self, log_age: float) -> pd.DataFrame:
        return cluster_isochrone(self.cfg.local_dir, float(log_age), self.cfg.isochrone.metallicity_z,
                                 use_parsec=self.cfg.sim.use_parsec)

    def isochrone_query(self, log_age: float) -> str:
        iso = self.isochrone(log_age)
        return f"sim isochrone logAge={float(log_age):.3f} Z={self.cfg.isochrone.metallicity_z}: " + \
            str(iso.attrs.get("provenance", ""))


def _product(cfg, name: str, func, source: "SimSource | None" = None) -> tuple[pd.DataFrame | None, str | None]:
    """``func`` on the simulated cone of ``name``: ``(table, None)`` or ``(None, error message)``."""
    src = source if source is not None else SimSource(cfg)
    try:
        row = cluster_row(src._full_table(), name)
        return func(src.simulated(row), row, cfg), None
    except OCMembersError as exc:
        return None, str(exc)
