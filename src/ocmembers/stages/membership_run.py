"""One cluster's member list from its sets: shared by the ``members`` and ``catalogue_members`` stages.

Not a stage (``tests/test_layers.py`` lists it among the stage helpers): the
per-cluster work both stages do, so that neither imports the other. The
``members`` stage writes ``members/<cluster>.{parquet,ecsv}`` for the test
clusters; the ``catalogue_members`` stage writes the same list for every
cluster of the catalogue into its own directory. Each records its own stage
name and code (:func:`ocmembers.stages.runner.record`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from ocmembers.api import member_table_meta
from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError
from ocmembers.method.classifier import DeepSetsClassifier
from ocmembers.method.calibration import PARAM_KEYS, calibrate_table
from ocmembers.method.isochrones import IsochroneCurve
from ocmembers.method.membership import evaluate_sets
from ocmembers.method.selection import ClusterParams
from ocmembers.sources import cache
from ocmembers.sources.executor import worker_threads
from ocmembers.sources.member_lists import write_members
from ocmembers.sources.models import load_calibrator, load_classifier, load_model_spec
from ocmembers.stages.products import calibrator_path, load_params, load_set, model_paths, params_path, set_path
from ocmembers.stages.runner import input_shas, record, up_to_date

__all__ = ["SECTIONS", "EXCLUDE", "torch_threads", "load_model", "model_weights_path", "member_meta",
           "member_inputs", "member_record", "member_list", "apply_calibrator"]

_MODELS: dict[tuple[str, str], DeepSetsClassifier] = {}

#: what a member list reads of the configuration
SECTIONS = ("membership", "model")
#: settings that cannot change a probability
EXCLUDE = (("membership", "torch_threads"),)


def torch_threads(cfg: Config) -> int | None:
    """Intra-op threads of the network: ``[membership] torch_threads``, or, when 0 and clusters
    run in parallel, the CPUs shared out among the workers: inside a Dask task the CPUs of the
    worker's machine over the task slots of that machine
    (:func:`ocmembers.sources.executor.worker_threads`, computed per worker, so a remote
    cluster's machines each get their own share), else over the ``JOBS`` processes. torch's
    default (all CPUs in every process) oversubscribes: JOBS=2 on 2 cores ran 4 busy threads."""
    if cfg.membership.torch_threads:
        return int(cfg.membership.torch_threads)
    share = worker_threads()
    if share is not None:
        return share
    jobs = int(cfg.clusters.jobs)
    if jobs > 1:
        return max(1, (os.cpu_count() or 1) // jobs)
    return None


def load_model(cfg: Config, spec: str | None = None) -> DeepSetsClassifier:
    """The classifier named by ``spec`` (default ``[membership] model``), cached per process.

    ``"trained"``: ``<out_dir>/model/model.pt`` (checked against the
    configuration); ``"vg23"``: the published model; otherwise a path to a
    ``model.pt`` written by :meth:`DeepSetsClassifier.save`.
    """
    spec = spec or cfg.membership.model
    key = (spec, str(cfg.out_dir))
    if key not in _MODELS:
        if spec == "trained":
            path = model_paths(cfg)["weights"]
            if not path.is_file():
                raise OCMembersError(f"no trained model at {path}: run `ocmembers train`, or use "
                                     "--model vg23 for the published weights")
            for p in (path, path.with_suffix(".json")):   # the train stage's products, verified
                if cache.manifest_path(p).is_file():
                    cache.verify(p)
            _MODELS[key] = load_classifier(path, cfg, trained_here=True)
        else:
            _MODELS[key] = load_model_spec(spec, cfg)
    return _MODELS[key]


def model_weights_path(cfg: Config, spec: str | None = None) -> Path | None:
    """The weights file of the model ``spec`` (default ``[membership] model``)."""
    spec = spec or cfg.membership.model
    if spec == "vg23":
        from ocmembers.sources.vg23 import locate
        return locate() / "model_parameters"
    if spec == "trained":
        return model_paths(cfg)["weights"]
    return Path(spec)


def member_meta(cfg: Config, name: str, model: DeepSetsClassifier, inputs: dict[str, str],
                table: pd.DataFrame) -> dict[str, Any]:
    """:func:`ocmembers.api.member_table_meta` with the run's config digest and input sha256s
    (in the order the ECSV header has always had)."""
    out: dict[str, Any] = {}
    for key, value in member_table_meta(cfg, name, model, table).items():
        if key == "source":
            out["config_membership"] = cfg.digest("membership")[:16]
        out[key] = value
        if key == "source":
            out["inputs_sha256"] = inputs
    return out


def member_inputs(cfg: Config, name: str) -> list[Path]:
    """The set files a cluster's member list is computed from."""
    return [set_path(cfg, name, "candidates"), set_path(cfg, name, "members"), params_path(cfg, name),
            set_path(cfg, name, "isochrone")]


def member_record(cfg: Config, name: str, weights: Path | None, stage: str = "members") -> dict:
    """The record of a cluster's member list: config digest, input sha256s (sets, model, and the
    calibrator of the calibrated variant), the code of ``stage`` (``ocmembers.stages.<stage>``
    and what it imports)."""
    inputs = input_shas(member_inputs(cfg, name), root=cfg.out_dir)
    if weights is not None and weights.is_file():
        inputs["model"] = input_shas([weights])[str(weights)]
        header = weights.with_suffix(".json")
        if header.is_file():
            inputs["model header"] = input_shas([header])[str(header)]
    if cfg.membership.variant == "calibrated":
        path = calibrator_path(cfg)
        if not path.is_file():
            raise OCMembersError(f"cluster {name}: the calibrated variant needs its calibrator, {path} is missing "
                                 "(on SOURCE=sim the members stage fits it first; elsewhere set [membership] "
                                 "calibrator to one made on SOURCE=sim)")
        inputs["calibrator"] = input_shas([path])[str(path)]
    return record(cfg, stage, sections=SECTIONS, exclude=EXCLUDE, inputs=inputs)


_CALIBRATORS: dict[str, Any] = {}


def apply_calibrator(cfg: Config, table: pd.DataFrame, params: ClusterParams, name: str) -> pd.DataFrame:
    """The calibrated variant: ``probability`` becomes the posterior of
    :mod:`ocmembers.method.calibration` for every evaluated source, the paper's p kept as
    ``probability_deep_sets``."""
    path = calibrator_path(cfg)
    key = str(path)
    if key not in _CALIBRATORS:
        _CALIBRATORS.clear()
        _CALIBRATORS[key] = load_calibrator(path)
    return calibrate_table(table, {k: getattr(params, k) for k in PARAM_KEYS}, _CALIBRATORS[key],
                           what=f"cluster {name}: member list")


def member_list(cfg: Config, name: str, parquet: Path, ecsv: Path, *, stage: str = "members") -> bool:
    """Compute and write ``name``'s member list to ``parquet`` and ``ecsv`` unless both are up to
    date (:func:`member_record` for ``stage``); ``False`` when nothing was done."""
    spec = cfg.membership.model
    inputs = member_inputs(cfg, name)
    missing = [p.name for p in inputs if not p.is_file()]
    if missing:
        raise OCMembersError(f"cluster {name}: sets not built ({', '.join(missing)} missing in "
                             f"{inputs[0].parent}); run `ocmembers sets` first")
    weights = model_weights_path(cfg, spec)
    rec = member_record(cfg, name, weights, stage)  # verifies the sets and the model: raises if corrupted
    if up_to_date([parquet, ecsv], rec):
        return False
    model = load_model(cfg, spec)
    candidates, members = load_set(cfg, name, "candidates"), load_set(cfg, name, "members")
    params = load_params(cfg, name)
    curve = IsochroneCurve.from_frame(load_set(cfg, name, "isochrone"))
    table = evaluate_sets(candidates, members, params, curve, model, cfg.membership, name,
                          threads=torch_threads(cfg))
    if cfg.membership.variant == "calibrated":
        table = apply_calibrator(cfg, table, params, name)
    shas = {p.name: cache.sha256_file(p) for p in inputs}
    if weights is not None and weights.is_file():
        shas["model"] = cache.sha256_file(weights)
    if cfg.membership.variant == "calibrated":
        shas["calibrator"] = rec["inputs"]["calibrator"]
    meta = member_meta(cfg, name, model, shas, table)
    write_members(table, parquet, ecsv, meta, record=rec)
    return True
