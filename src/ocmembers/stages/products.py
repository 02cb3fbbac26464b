"""Every product of a run: where it lives under ``<output_dir>/<source>/``, and how it is read.

The stages find each other's products here, never through each other's
modules. Every reader verifies the product against its manifest
(:func:`ocmembers.sources.cache.read_table`): a corrupted product raises
:class:`~ocmembers.exceptions.CacheCorruptedError`, and its own stage rebuilds
it on the next run.

===================  ===========================================  ==============
stage                product                                      reader
===================  ===========================================  ==============
catalogues           ``raw/catalogues/{clusters,train_members,    :func:`load_catalogues`
                     t22_members}.parquet``, ``samples.json``
cones                ``raw/cones/<cluster>.parquet``              :func:`load_cone`
crossmatch           ``raw/crossmatch/<cluster>.parquet``         :func:`load_crossmatch`
isochrones           ``isochrones/<cluster>.parquet``             :func:`load_isochrone`
sets                 ``sets/<cluster>/{members,candidates,        :func:`load_set`,
                     non_members,isochrone}.parquet, params.json`` :func:`load_params`
train                ``model/model.{pt,json}``, ``history.csv``   :func:`model_paths`
members              ``members/<cluster>.{parquet,ecsv}``         :func:`load_members`
catalogue_members    ``catalogue_members/clusters/<cluster>.*``,  :func:`catalogue_members_paths`
                     ``catalogue_members/members/`` (HATS),
                     ``catalogue_members/members.json``
validate             ``validation/statistics.json``               :func:`load_statistics`
                     (sim: ``validation/truth_statistics.json``)  :func:`truth_statistics_path`
figures              ``figures/<run>/``                           :func:`figures_dir`
paper                ``paper/ms.pdf``, ``paper/build/``           :func:`paper_paths`
===================  ===========================================  ==============
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError
from ocmembers.method.selection import ClusterParams
from ocmembers.method.sets import SET_NAMES
from ocmembers.sources import cache
from ocmembers.stages.runner import cluster_names

__all__ = [
    "CATALOGUES", "SET_NAMES", "FIG1_CLUSTER", "catalogue_paths", "load_catalogues", "cone_path",
    "load_cone", "crossmatch_path", "load_crossmatch", "isochrone_path", "load_isochrone",
    "sets_dir", "set_path", "set_paths", "load_set", "params_path", "load_params", "model_dir",
    "model_paths", "calibrator_path", "calibration_members_paths", "checkpoint_path", "members_paths", "load_members", "statistics_path",
    "load_statistics", "load_samples", "catalogue_cluster_names", "catalogue_list_paths",
    "catalogue_members_paths",
    "run_key", "figures_dir", "fig1_cluster", "samples_path", "FIG4_CLUSTERS", "fig4_clusters",
    "cluster_role", "truth_statistics_path", "paper_paths", "realism_path", "forecast_path",
    "truthbench_ideal_path",
]

#: the catalogue products of the ``catalogues`` stage
CATALOGUES: tuple[str, ...] = ("clusters", "train_members", "t22_members")
#: the cluster of Fig. 1 in the paper
FIG1_CLUSTER = "NGC_2527"
#: the clusters of Fig. 4 of van Groeningen et al. (2023)
FIG4_CLUSTERS = ("NGC_2099", "NGC_752", "NGC_2682", "IC_4756")


# -- catalogues --------------------------------------------------------------
def catalogue_paths(cfg: Config) -> dict[str, Path]:
    return {p: cfg.raw_dir / "catalogues" / f"{p}.parquet" for p in CATALOGUES}


def catalogue_list(cfg: Config, product: str, name: str) -> pd.DataFrame | None:
    """Cluster ``name``'s rows of the run's ``raw/catalogues/<product>.parquet`` (verified), or None
    when the product is absent or does not list it (the T22-like lists exist for the test
    clusters only)."""
    path = cfg.raw_dir / "catalogues" / f"{product}.parquet"
    if not path.is_file():
        return None
    t = cache.read_table(path)
    rows = t["cluster"] == name
    return t.loc[rows].reset_index(drop=True) if rows.any() else None


def catalogue_lists(cfg: Config, product: str) -> dict[str, pd.DataFrame]:
    """Every cluster's rows of the run's ``raw/catalogues/<product>.parquet`` (verified), read
    once: for a stage that takes the lists of many clusters ({} when the product is absent)."""
    path = cfg.raw_dir / "catalogues" / f"{product}.parquet"
    if not path.is_file():
        return {}
    return {str(name): rows.reset_index(drop=True)
            for name, rows in cache.read_table(path).groupby("cluster", sort=False)}


def load_catalogues(cfg: Config) -> dict[str, pd.DataFrame]:
    """The verified cached catalogues (run the ``catalogues`` stage first)."""
    return {p: cache.read_table(path) for p, path in catalogue_paths(cfg).items()}


def samples_path(cfg: Config) -> Path:
    return cfg.out_dir / "samples.json"


# -- cones and crossmatch ----------------------------------------------------
def cone_path(cfg: Config, name: str) -> Path:
    return cfg.raw_dir / "cones" / f"{name}.parquet"


def load_cone(cfg: Config, name: str) -> pd.DataFrame:
    """The verified cached cone of ``name``."""
    return cache.read_table(cone_path(cfg, name))


def crossmatch_path(cfg: Config, name: str) -> Path:
    return cfg.raw_dir / "crossmatch" / f"{name}.parquet"


def load_crossmatch(cfg: Config, name: str) -> pd.DataFrame:
    return cache.read_table(crossmatch_path(cfg, name))


# -- isochrones --------------------------------------------------------------
def isochrone_path(cfg: Config, name: str) -> Path:
    return cfg.out_dir / "isochrones" / f"{name}.parquet"


def load_isochrone(cfg: Config, name: str) -> pd.DataFrame:
    """The cluster's isochrone, with its provenance in ``attrs``."""
    path = isochrone_path(cfg, name)
    iso = cache.read_table(path)
    iso.attrs["provenance"] = cache.read_manifest(path).get("extra", {}).get("provenance", "")
    return iso


# -- sets --------------------------------------------------------------------
def sets_dir(cfg: Config, name: str) -> Path:
    return cfg.out_dir / "sets" / name


def set_path(cfg: Config, name: str, kind: str) -> Path:
    """``kind``: one of :data:`SET_NAMES` or ``isochrone``."""
    return sets_dir(cfg, name) / f"{kind}.parquet"


def params_path(cfg: Config, name: str) -> Path:
    return sets_dir(cfg, name) / "params.json"


def set_paths(cfg: Config, name: str) -> list[Path]:
    """The products of the ``sets`` stage for ``name``; ``params.json`` (written last) last."""
    return [set_path(cfg, name, s) for s in (*SET_NAMES, "isochrone")] + [params_path(cfg, name)]


def _require_sets(cfg: Config, name: str, kinds: tuple[str, ...]) -> None:
    paths = [set_path(cfg, name, k) for k in kinds] + [params_path(cfg, name)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise OCMembersError(f"cluster {name}: sets not built ({', '.join(missing)} missing in "
                             f"{sets_dir(cfg, name)}); run `ocmembers sets` first")


def load_set(cfg: Config, name: str, kind: str) -> pd.DataFrame:
    """One set table of ``name`` (``members``, ``candidates``, ``non_members`` or ``isochrone``), verified."""
    _require_sets(cfg, name, (kind,))
    return cache.read_table(set_path(cfg, name, kind))


def load_params(cfg: Config, name: str) -> ClusterParams:
    """The :class:`ClusterParams` the ``sets`` stage wrote for ``name``, verified."""
    path = params_path(cfg, name)
    if not path.is_file():
        raise OCMembersError(f"cluster {name}: {path} missing; run `ocmembers sets` first")
    doc = cache.read_json(path)
    return ClusterParams.from_dict(doc["params"])


# -- model -------------------------------------------------------------------
def model_dir(cfg: Config) -> Path:
    return cfg.out_dir / "model"


def model_paths(cfg: Config) -> dict[str, Path]:
    d = model_dir(cfg)
    return {"weights": d / "model.pt", "header": d / "model.json", "history": d / "history.csv"}


def calibrator_path(cfg: Config) -> Path:
    """The calibrated variant's posterior (``[membership] calibrator``, or this run's
    ``model/calibrator.pkl``)."""
    return Path(cfg.membership.calibrator) if cfg.membership.calibrator else model_dir(cfg) / "calibrator.pkl"


def calibration_members_paths(cfg: Config, name: str) -> tuple[Path, Path]:
    """A training or validation cluster's member list with the paper's p, from which the
    calibrator is fitted (``calibration/members/``)."""
    d = cfg.out_dir / "calibration" / "members"
    return d / f"{name}.parquet", d / f"{name}.ecsv"


def checkpoint_path(cfg: Config) -> Path:
    """Training checkpoint (every epoch; removed once the model is saved)."""
    return model_dir(cfg) / "checkpoint.pt"


# -- members -----------------------------------------------------------------
def members_paths(cfg: Config, name: str) -> tuple[Path, Path]:
    d = cfg.out_dir / "members"
    return d / f"{name}.parquet", d / f"{name}.ecsv"


def load_members(cfg: Config, name: str) -> pd.DataFrame:
    """The member list of ``name`` (``members/<cluster>.parquet``), verified."""
    path = members_paths(cfg, name)[0]
    if not path.is_file():
        raise OCMembersError(f"cluster {name}: {path} missing; run `ocmembers members` first")
    return cache.read_table(path)


# -- the whole-catalogue member run ---------------------------------------------
def catalogue_cluster_names(cfg: Config) -> list[str]:
    """Every cluster of the ``catalogues`` stage's cluster table (``clusters.parquet``, verified),
    in table order; ``CLUSTERS`` restricts them to the named ones."""
    path = catalogue_paths(cfg)["clusters"]
    if not path.is_file():
        raise OCMembersError(f"{path} missing; run `ocmembers catalogues` first")
    names = [str(n) for n in cache.read_table(path)["name"]]
    wanted = set(cfg.clusters.names)
    return [n for n in names if n in wanted] if wanted else names


def catalogue_list_paths(cfg: Config, name: str) -> tuple[Path, Path]:
    """One cluster's member list of the whole-catalogue run (Parquet, ECSV)."""
    d = cfg.out_dir / "catalogue_members" / "clusters"
    return d / f"{name}.parquet", d / f"{name}.ecsv"


def catalogue_members_paths(cfg: Config) -> dict[str, Path]:
    """``catalogue``: the member catalogue (a HATS directory, ``lsdb.open_catalog`` opens it);
    ``provenance``: its manifest (model, config digest, code version, clusters, file sha256s)."""
    d = cfg.out_dir / "catalogue_members"
    return {"dir": d, "lists": d / "clusters", "catalogue": d / "members", "provenance": d / "members.json"}


# -- validation and figures ----------------------------------------------------
def statistics_path(cfg: Config) -> Path:
    return cfg.out_dir / "validation" / "statistics.json"


def truth_statistics_path(cfg: Config) -> Path:
    """The statistics against the truth (``validate`` on the simulated sky only)."""
    return cfg.out_dir / "validation" / "truth_statistics.json"


def realism_path(cfg: Config) -> Path:
    """The realism report of the simulated sky (stage ``realism``; read by the paper's appendix)."""
    return cfg.out_dir / "realism" / "realism.json"


def forecast_path(cfg: Config) -> Path:
    """DR3 against DR4 on the simulated sky (stage ``forecast``; read by the paper's section
    "What Gaia DR4 will add")."""
    return cfg.out_dir / "forecast" / "forecast.json"


def truthbench_ideal_path(cfg: Config) -> Path:
    """The ideal classifier beside the methods (stage ``truthbench``; read by the paper); its
    calibration table is ``truthbench_calibration.csv`` beside it."""
    return cfg.out_dir / "truthbench" / "truthbench_ideal.csv"


def load_statistics(cfg: Config) -> dict:
    """``validation/statistics.json``, verified."""
    path = statistics_path(cfg)
    if not path.is_file():
        raise OCMembersError(f"{path} missing; run `ocmembers validate` first")
    return cache.read_json(path)


def load_samples(cfg: Config) -> dict:
    """``samples.json`` of the ``catalogues`` stage, verified (``{}`` when absent)."""
    path = samples_path(cfg)
    return cache.read_json(path) if path.is_file() else {}


def run_key(cfg: Config) -> str:
    """``sim``, ``local``, ... or ``<output dir>-<source>`` (``demo-sim``) for other output dirs."""
    parent = Path(cfg.paths.output_dir)
    return cfg.source.name if parent.name in ("data", "") else f"{parent.name}-{cfg.source.name}"


def figures_dir(cfg: Config) -> Path:
    return Path(cfg.paths.figures_dir) / run_key(cfg)


def fig1_cluster(cfg: Config) -> str | None:
    """NGC 2527 as in the paper when its sets exist, else the first evaluated cluster."""
    if params_path(cfg, FIG1_CLUSTER).is_file():
        return FIG1_CLUSTER
    done = sorted(n for n in cluster_names(cfg, "test") if params_path(cfg, n).is_file())
    return done[0] if done else None


def fig4_clusters(cfg: Config) -> list[str]:
    """The clusters of Fig. 4: those of the paper's Fig. 4 that were evaluated, else the first four
    evaluated clusters (the figures stage draws them, the paper stage counts them)."""
    evaluated = set(cluster_names(cfg, "test"))
    return [c for c in FIG4_CLUSTERS if c in evaluated] or sorted(evaluated)[:4]


def cluster_role(cfg: Config, name: str) -> str | None:
    """``train``, ``validation`` or ``test``: the role of ``name`` in ``samples.json`` (None: none)."""
    path = samples_path(cfg)
    if not path.is_file():
        return None
    samples = cache.read_json(path) if cache.manifest_path(path).is_file() else json.loads(path.read_text())
    return next((role for role in ("train", "validation", "test") if name in samples.get(role, [])), None)


def paper_paths(cfg: Config) -> dict[str, Path]:
    """The paper stage's products, under the run's output directory: ``pdf``
    (``paper/ms.pdf``, with its manifest) and ``build`` (``paper/build/``, where latexmk
    runs). They sit beside the other products, so whoever can write the run can build
    the paper, and a container's ``data/`` mount brings the PDF out."""
    root = cfg.out_dir / "paper"
    return {"pdf": root / "ms.pdf", "build": root / "build"}
