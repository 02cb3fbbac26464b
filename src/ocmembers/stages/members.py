"""Stage ``members``: membership probabilities of every candidate (Sect. 3.4).

For each cluster, the candidates of ``sets/<cluster>/candidates.parquet``
(which, as in the authors' tool, include the training members that pass the
candidate conditions and the "dubious" training members that do not) get a
Monte Carlo probability (:func:`ocmembers.method.membership.membership_probabilities`)
with the training members of ``members.parquet`` as the support pool. The
training members are therefore in the output with their own probability
(flag ``training_member``), which is what the validation against T22 uses.

Outputs, atomically: ``members/<cluster>.parquet`` (with a manifest) and
``members/<cluster>.ecsv``, an astropy Table with units and metadata
(software version, model id and origin, seed, number of samples, sha256 of
every input file and of the model weights), ready for CDS.

The model is ``[membership] model``: ``"trained"`` (``model/model.pt`` of
this source, written by ``ocmembers train``), ``"vg23"`` (the published
DS10_v02 weights, :mod:`ocmembers.sources.vg23`) or a path to a ``model.pt``;
``--model`` on the command line overrides it.

``[membership] variant = "calibrated"`` (``VARIANT=calibrated``; not the paper's method):
the probability is the posterior of :mod:`ocmembers.method.calibration`, the paper's p kept as
``probability_deep_sets``. On ``SOURCE=sim`` its calibrator is fitted first from the training
and validation clusters' lists with the paper's p (:func:`fit_run_calibrator`); elsewhere
``[membership] calibrator`` names one made there.

Each cluster's random stream is seeded by ``[membership] seed`` and the
cluster name, so a cluster's probabilities do not depend on which other
clusters are processed, or in which order. The stage resumes: a cluster is
skipped when both outputs verify and their manifests record what the stage
would record now: the digest of ``[membership]`` (less ``torch_threads``) and
``[model]``, the sha256 of the cluster's sets and of the model (weights and
header), and the code of this stage and of what it imports
(:func:`ocmembers.stages.runner.up_to_date`).

Users with their own cone: ``ocmembers members --cone FILE --cluster NAME``
(CSV, Parquet, VOTable, FITS or ECSV with Gaia archive column names) or, in
Python, :func:`ocmembers.members` (:mod:`ocmembers.api`).
"""

from __future__ import annotations

import logging
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from ocmembers.api import UNNAMED, members_from_cone
from ocmembers.config import Config, check_cluster_name
from ocmembers.exceptions import ConfigError, OCMembersError
from ocmembers.method.columns import normalise_cluster_name
from ocmembers.method.gaia_names import CONE_REQUIRED
from ocmembers.method.membership import probability_summary
from ocmembers.sources import cache
from ocmembers.sources.cone_file import read_cone_file, read_table_file
from ocmembers.sources.member_lists import MEMBER_FORMATS, member_table, write_member_file, write_members
from ocmembers.stages.membership_run import load_model, member_list, torch_threads
from ocmembers.stages.membership_run import member_meta as _meta
from ocmembers.stages.plots import save_cluster_plot
from ocmembers.stages.products import (SET_NAMES, calibration_members_paths, calibrator_path, catalogue_paths,
                                       isochrone_path, load_catalogues, load_isochrone, load_params, load_set,
                                       members_paths)
from ocmembers.stages.runner import cluster_names, for_each_cluster, sweep

__all__ = ["load_model", "torch_threads", "run", "main"]

log = logging.getLogger(__name__)


def _members_one(cfg: Config, name: str) -> bool:
    return member_list(cfg, name, *members_paths(cfg, name), stage="members")


def _calibration_one(cfg: Config, name: str) -> bool:
    return member_list(cfg, name, *calibration_members_paths(cfg, name), stage="members")


def fit_run_calibrator(cfg: Config) -> Path:
    """The calibrated variant's posterior of this run (``model/calibrator.pkl``), fitted unless
    up to date; a calibrator given by ``[membership] calibrator`` is used as it is.

    It learns from the training and validation clusters (all of ``samples.json``'s, whatever
    ``CLUSTERS`` says; never a test cluster): their member lists with the paper's p
    (``calibration/members/``), each source labelled by the simulated truth
    (:mod:`ocmembers.method.calibration`). Only ``SOURCE=sim`` has a truth to learn from.
    """
    path = calibrator_path(cfg)
    if cfg.membership.calibrator:
        return path
    if cfg.source.name != "sim":
        raise ConfigError(f"membership.variant = \"calibrated\" on SOURCE={cfg.source.name} needs membership."
                          "calibrator: the model/calibrator.pkl of a SOURCE=sim run (only the simulated sky "
                          "has the truth it is learned from)")
    from ocmembers.method.calibration import CALIBRATION_FEATURES, PARAM_KEYS, calibration_features, fit_calibrator
    from ocmembers.sources import get_source
    from ocmembers.sources.cache import read_table
    from ocmembers.sources.models import save_calibrator
    from ocmembers.stages.membership_run import EXCLUDE
    from ocmembers.stages.runner import product_sha, record, up_to_date

    roles = cfg.replace(clusters={"names": ()})
    names = [*cluster_names(roles, "train"), *cluster_names(roles, "validation")]
    if len(names) < 2:
        raise ConfigError(f"membership.variant = \"calibrated\": the calibration needs at least 2 training and "
                          f"validation clusters, samples.json has {names}")
    paper = cfg.replace(membership={"variant": "paper", "calibrator": ""})
    sweep(cfg.out_dir / "calibration" / "members")
    for_each_cluster(paper, names, _calibration_one, "members (the calibration clusters, paper's p)",
                     raise_on_failure=True)
    lists = {n: calibration_members_paths(cfg, n)[0] for n in names}
    rec = record(cfg, "members", sections=("membership", "model"), exclude=(*EXCLUDE, ("membership", "calibrator")),
                 inputs={f"calibration/members/{n}.parquet": product_sha(p) for n, p in lists.items()},
                 extra_config={"calibration_clusters": names})
    if up_to_date([path], rec):
        return path
    # the simulated sky's truth through the source registry: the simulator is not code of this
    # stage (a change to it re-simulates the cones, whose sha256 the lists record)
    source = get_source(cfg)
    xs, ys, groups = [], [], []
    for n, p in lists.items():
        t = read_table(p)
        t = t.loc[np.isfinite(t["probability"].to_numpy(float))].reset_index(drop=True)
        truth = source.truth(source._row(n))[["source_id", "is_member"]]
        lab = t[["source_id"]].merge(truth, on="source_id", how="left")
        if lab["is_member"].isna().any():
            raise OCMembersError(f"calibration: {int(lab['is_member'].isna().sum())} source(s) of {p} are not in "
                                 f"the truth of cluster {n}'s cone")
        params = load_params(cfg, n)
        xs.append(calibration_features(t, {k: getattr(params, k) for k in PARAM_KEYS}, what=str(p)))
        ys.append(lab["is_member"].to_numpy(bool))
        groups.append(np.full(len(t), n))
    x, y, g = np.vstack(xs), np.concatenate(ys), np.concatenate(groups)
    model = fit_calibrator(x, y, g, seed=cfg.membership.seed)
    header = {"features": list(CALIBRATION_FEATURES), "clusters": names, "n_sources": int(len(y)),
              "n_members": int(y.sum()), "seed": cfg.membership.seed, "method": "ocmembers.method.calibration"}
    save_calibrator(model, path, header)
    cache.write_manifest(path, source=cfg.source.name, query=f"calibrator from {len(names)} clusters", record=rec)
    print(f"members: calibrator fitted on {len(y)} evaluated sources ({int(y.sum())} true members) of "
          f"{len(names)} training and validation clusters -> {path}", file=sys.stderr)
    return path


def run(cfg: Config):
    """Stage ``members`` for every cluster (``members/<cluster>.{parquet,ecsv}``); returns the
    :class:`StageReport`. With ``[membership] variant = "calibrated"``, the calibrator first
    (:func:`fit_run_calibrator`)."""
    load_model(cfg)  # fail early, once, when the model is missing or does not fit
    sweep(cfg.out_dir / "members")
    if cfg.membership.variant == "calibrated":
        from ocmembers.sources.models import load_calibrator
        load_calibrator(fit_run_calibrator(cfg), "membership.calibrator")  # fail early, once
    return for_each_cluster(cfg, cluster_names(cfg, "test"), _members_one, "members")


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def main(args, cfg: Config) -> None:
    if getattr(args, "model", None):
        cfg = cfg.replace(membership={"model": args.model})
    if getattr(args, "cone", None) is None:
        if getattr(args, "cluster", None):
            raise ConfigError("--cluster goes with --cone; to evaluate catalogued clusters use --clusters")
        run(cfg)
        if args.plot:
            _plot_stage(cfg)
        return
    if getattr(args, "catalogue", None):
        cfg = cfg.replace(source={"cluster_catalogue": args.catalogue})
    params = cluster_params_from_args(args)
    if not args.cluster and params is None:
        raise ConfigError("--cone needs --cluster NAME (a catalogued cluster) or the cluster's parameters "
                          "(--cluster-params FILE, or --ra --dec --parallax --pmra --pmdec --log-age --a0 "
                          "--dist-pc)")
    if args.output and Path(args.output).suffix.lower() not in MEMBER_FORMATS:
        raise ConfigError(f"--output {args.output}: unknown suffix {Path(args.output).suffix!r}; use one of "
                          f"{', '.join(sorted(MEMBER_FORMATS))}")
    if args.cluster:                       # it names the default output file: no path in it
        check_cluster_name(args.cluster, "--cluster")
    cluster: Any = args.cluster
    if params is not None:                 # the user's parameters are the cluster (named by --cluster)
        cluster = {"name": args.cluster or UNNAMED, **params}
    cone = read_cone_file(args.cone, require=CONE_REQUIRED)
    tm = read_table_file(args.training_members) if args.training_members else None
    model = load_model(cfg)
    cats = None
    if all(p.is_file() for p in catalogue_paths(cfg).values()):
        cats = load_catalogues(cfg)   # this run's catalogues, when it has them; else the data source
    iso = args.isochrone
    if iso is None and args.cluster:
        iso_path = isochrone_path(cfg, normalise_cluster_name(args.cluster))
        iso = load_isochrone(cfg, iso_path.stem) if iso_path.is_file() else None
    table, sets = members_from_cone(cone, cluster, model, cfg, training_members=tm, isochrone=iso,
                                    catalogues=cats, threads=torch_threads(cfg), return_sets=True,
                                    every_source=True)
    report = table.attrs.get("report", {})
    name = str(sets.params.name)
    out = Path(args.output) if args.output else members_paths(cfg, name)[1]
    shas = {Path(args.cone).name: cache.sha256_file(args.cone)}
    meta = {**_meta(cfg, name, model, shas, table), **report}
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        write_members(table, out, out.with_suffix(".ecsv"), meta)
    elif suffix == ".ecsv":
        write_members(table, out.with_suffix(".parquet"), out, meta)
    else:                                        # .fits, .vot, .xml, .csv: that file alone
        write_member_file(member_table(table, meta), out)
    counts = report.get("status_counts", {})
    print(f"members: {name}: {len(table)} input rows, "
          + ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) + "; "
          + ", ".join(f"{v} with p >= {k[7:]}" for k, v in probability_summary(
              table["probability"].to_numpy(), cfg.membership.thresholds).items())
          + f" -> {out}", file=sys.stderr)
    if args.plot:
        evaluated = table.loc[table["probability"].notna()].reset_index(drop=True)
        save_cluster_plot(sets, evaluated, out.with_suffix(".png"), title=name)


#: Keys of a cluster given by its parameters (``--cluster-params`` TOML, ``--ra``...).
CLUSTER_PARAM_KEYS: tuple[str, ...] = ("name", "ra", "dec", "parallax", "pmra", "pmdec", "pmra_std",
                                       "pmdec_std", "parallax_std", "log_age", "a0", "dist_pc", "dist_mod",
                                       "r50")


def cluster_params_from_args(args) -> dict[str, Any] | None:
    """The cluster's parameters from ``--cluster-params FILE`` (a TOML file: the keys at the top
    or in a ``[cluster]`` table) and the ``--ra``... options (which win); None if none is given.

    Raises
    ------
    ConfigError
        An unreadable file, an unknown key or a value that is not a number, naming the file and key.
    """
    params: dict[str, Any] = {}
    path = getattr(args, "cluster_params", None)
    if path:
        p = Path(path)
        try:
            doc = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"--cluster-params {p}: no such file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--cluster-params {p}: not valid TOML ({exc})") from exc
        doc = doc.get("cluster", doc)
        unknown = sorted(set(doc) - set(CLUSTER_PARAM_KEYS))
        if unknown:
            raise ConfigError(f"--cluster-params {p}: unknown key(s) {', '.join(unknown)}; known: "
                              f"{', '.join(CLUSTER_PARAM_KEYS)}")
        for k, v in doc.items():
            if k != "name" and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise ConfigError(f"--cluster-params {p}: {k} = {v!r} is not a number")
        params.update(doc)
    for k in CLUSTER_PARAM_KEYS:
        v = getattr(args, f"param_{k}", None)
        if v is not None:
            params[k] = v
    name = params.pop("name", None)
    if name and not getattr(args, "cluster", None):
        args.cluster = str(name)
    return params or None


def _plot_stage(cfg: Config) -> None:
    """PNG per cluster beside the member lists (``members/<cluster>.png``)."""
    for name in cluster_names(cfg):
        parquet, _ = members_paths(cfg, name)
        if not parquet.is_file():
            continue
        sets: dict[str, Any] = {s: load_set(cfg, name, s) for s in (*SET_NAMES, "isochrone")}
        sets["params"] = load_params(cfg, name)
        save_cluster_plot(sets, cache.read_table(parquet), parquet.with_suffix(".png"), title=name)
