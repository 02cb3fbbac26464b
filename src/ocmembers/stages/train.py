"""Stage ``train``: the Deep Sets model from the sets of the training clusters (Sects. 3.2-3.3).

Reads ``sets/<cluster>/{members,candidates,non_members}.parquet`` and
``params.json`` of the training and validation clusters, fits a
:class:`~ocmembers.method.classifier.DeepSetsClassifier` and writes, atomically,

* ``model/model.pt``: the network's state dict (``torch.save``; read back
  with ``weights_only=True``);
* ``model/model.json``: feature names, standardisation, configuration hash,
  model id, package versions, seed, the clusters of each split and those
  skipped;
* ``model/history.csv``: loss and metrics per epoch (Fig. 2).

Clusters: the ``train`` and ``validation`` roles of ``samples.json``
(:func:`ocmembers.stages.runner.cluster_names`); without that file but with
``CLUSTERS`` set, those clusters are split 70/30 by cluster
(:func:`ocmembers.method.training.split_clusters`, ``[training] seed``). A cluster
whose sets are missing is an error naming it (run ``ocmembers sets``); a
cluster with too few members for a support set excluding the member itself
(``<= [model] n_support``) is skipped with a warning, as the authors' tool
skips clusters below its minimum.

The stage is resumable: when the three outputs verify against their manifests
and record (:func:`ocmembers.stages.runner.up_to_date`) the current
``[model]``/``[training]`` digest, the sha256 of every set of the training and
validation clusters and the code version, nothing is done. ``model.pt`` is
serialised in memory, so the same inputs give the same bytes;
``model.json``'s manifest is written last (the commit point). An interrupted training resumes from
``model/checkpoint.pt`` (written after every epoch) and ends with the weights
an uninterrupted one would have given.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pandas as pd

from ocmembers.sources import cache
from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError
from ocmembers.method.classifier import DeepSetsClassifier
from ocmembers.sources.models import FileCheckpoint, classifier_from_config, config_hash, save_classifier
from ocmembers.method.training import ClusterSets, split_clusters
from ocmembers.stages.products import checkpoint_path, load_params, load_set, model_dir, model_paths, set_paths
from ocmembers.stages.runner import cluster_names, input_shas, record, sweep, up_to_date

__all__ = ["training_split", "load_cluster_sets", "train_model", "run"]

log = logging.getLogger(__name__)

def training_split(cfg: Config) -> tuple[list[str], list[str]]:
    """Training and validation cluster names (module docstring)."""
    try:
        train = cluster_names(cfg, "train")
        val = cluster_names(cfg, "validation")
    except OCMembersError:
        if not cfg.clusters.names:
            raise
        return split_clusters(cfg.clusters.names, cfg.training.validation_fraction, cfg.training.seed)
    if not train and cfg.clusters.names:
        raise OCMembersError(f"none of CLUSTERS ({', '.join(cfg.clusters.names)}) is a training cluster "
                             f"in {cfg.out_dir / 'samples.json'}")
    return train, val


def load_cluster_sets(cfg: Config, name: str) -> ClusterSets:
    """Features of one cluster's sets, as :class:`ocmembers.method.training.ClusterSets`."""
    members, candidates, non_members = (load_set(cfg, name, s) for s in ("members", "candidates", "non_members"))
    params = load_params(cfg, name)
    return ClusterSets.from_frames(name, members, non_members, params.cluster_features(), candidates)


def _usable(sets: list[ClusterSets], n_support: int, role: str) -> tuple[list[ClusterSets], dict[str, str]]:
    keep, skipped = [], {}
    for s in sets:
        if len(s.members) <= n_support:
            skipped[s.name] = f"{len(s.members)} members (<= n_support = {n_support})"
        elif len(s.non_members) == 0:
            skipped[s.name] = "no non-members"
        else:
            keep.append(s)
    for name, why in skipped.items():
        log.warning("train: %s cluster %s skipped: %s", role, name, why)
    return keep, skipped


def train_model(cfg: Config, train_names: list[str], val_names: list[str],
                verbose: bool = False, checkpoint: Path | None = None) -> DeepSetsClassifier:
    """Load the sets, fit the classifier and return it (nothing written but the
    training ``checkpoint``, when given: an interrupted fit resumes from it)."""
    errors = {}
    loaded: dict[str, list[ClusterSets]] = {"train": [], "validation": []}
    for role, names in (("train", train_names), ("validation", val_names)):
        for name in names:
            try:
                loaded[role].append(load_cluster_sets(cfg, name))
            except (OCMembersError, ValueError, OSError) as exc:
                errors[name] = str(exc)
    if errors:
        lines = "\n".join(f"  {n}: {e}" for n, e in sorted(errors.items()))
        raise OCMembersError(f"train: {len(errors)} cluster(s) cannot be read:\n{lines}")
    train, skip_t = _usable(loaded["train"], cfg.model.n_support, "training")
    val, skip_v = _usable(loaded["validation"], cfg.model.n_support, "validation")
    if not train:
        raise OCMembersError("train: no usable training cluster (see the warnings above)")
    print(f"train: {len(train)} training clusters ({sum(len(s.members) for s in train)} members), "
          f"{len(val)} validation clusters", file=sys.stderr)
    clf = classifier_from_config(cfg, verbose=verbose)
    clf.fit(train, val or None, checkpoint=None if checkpoint is None else FileCheckpoint(checkpoint))
    clf.skipped_clusters_ = {**skip_t, **skip_v}
    return clf


def train_record(cfg: Config, train: list[str], val: list[str]) -> dict:
    """``[model]`` and ``[training]``, the sha256 of every set of the clusters (by role), the code."""
    inputs = {}
    for role, names in (("train", train), ("validation", val)):
        for n in names:
            for p in set_paths(cfg, n):
                key = f"{role}:{p.relative_to(cfg.out_dir)}"
                inputs[key] = input_shas({key: p})[key] if p.is_file() else "missing"
    return record(cfg, "train", sections=("model", "training"), inputs=inputs)


def _up_to_date(cfg: Config, train: list[str], val: list[str]) -> bool:
    try:
        rec = train_record(cfg, train, val)
    except OCMembersError:  # an input set is corrupted: training would fail on it anyway
        return False
    return up_to_date(list(model_paths(cfg).values()), rec)


def run(cfg: Config, *, force: bool = False, verbose: bool = False) -> Path | None:
    """Stage ``train``; returns the weights path, or ``None`` when up to date."""
    if cfg.membership.model != "trained":
        print(f"train: [membership] model = {cfg.membership.model!r}: nothing to train", file=sys.stderr)
        return None
    train, val = training_split(cfg)
    sweep(model_dir(cfg))
    if not force and _up_to_date(cfg, train, val):
        print(f"train: {model_paths(cfg)['weights']} is up to date", file=sys.stderr)
        return None
    checkpoint = checkpoint_path(cfg)
    clf = train_model(cfg, train, val, verbose=verbose, checkpoint=checkpoint)
    path = save_model(cfg, clf, train_record(cfg, train, val))
    checkpoint.unlink(missing_ok=True)
    return path


def save_model(cfg: Config, clf: DeepSetsClassifier, rec: dict | None = None) -> Path:
    """Write weights, header (with the skipped clusters) and history atomically, then their
    manifests with ``rec``: ``model.json``'s last."""
    p = model_paths(cfg)
    path = save_classifier(clf, p["weights"], cfg)
    head = json.loads(p["header"].read_text())
    head["skipped_clusters"] = getattr(clf, "skipped_clusters_", {})
    head["source"] = cfg.source.name
    cache.write_json(head, p["header"])
    with cache.atomic_path(p["history"]) as tmp:
        clf.history_.to_csv(tmp, index=False)
    query = f"Deep Sets model {clf.model_id_}"
    for key in ("weights", "history", "header"):
        cache.write_manifest(p[key], source=cfg.source.name, query=query, record=rec)
    best = clf.history_.loc[clf.history_["best"]]
    if len(best):
        b = best.iloc[0]
        print(f"train: best epoch {int(b['epoch'])}: validation F1 {b['val_f1']:.4f}, training F1 "
              f"{b['train_f1']:.4f}; model {clf.model_id_} -> {path}", file=sys.stderr)
    return path


def main(args, cfg: Config) -> None:
    run(cfg, force=getattr(args, "force", False), verbose=getattr(args, "verbose", False))
