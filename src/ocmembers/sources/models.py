"""Models on disk: writing and reading a fitted :class:`DeepSetsClassifier`, and its training checkpoint.

A model is two files: ``model.pt``, the network's state dict (``torch.save``),
and ``model.json`` beside it, the header of
:meth:`~ocmembers.method.classifier.DeepSetsClassifier.header` (feature names and
standardisation, architecture and training parameters, seed, the digest of the
``[model]``/``[training]`` settings, versions). The weights are serialised into
memory first and then written atomically, so that the same weights give the
same bytes (``torch.save`` to a file records the file's name, here a random
temporary one, inside the archive).

A model named on the command line (``--model``) is ``"vg23"`` (the published
DS10_v02, :mod:`ocmembers.sources.vg23`) or a path; :func:`load_model_spec`
resolves both and checks that the model fits the configuration: its set size
``n_support`` comes from the model, and a configuration that says otherwise is
an error, never silently overridden.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ocmembers.config import Config
from ocmembers.exceptions import ModelMismatchError, OCMembersError
from ocmembers.method.classifier import MODEL_KEYS, TRAINING_KEYS, DeepSetsClassifier
from ocmembers.method.network import CLUSTER_FEATURES, SOURCE_FEATURES
from ocmembers.sources import cache
from ocmembers.sources.cache import atomic_path, write_json

__all__ = ["save_classifier", "load_classifier", "config_hash", "check_config",
           "classifier_from_config", "FileCheckpoint", "load_model_spec", "state_bytes"]

log = logging.getLogger(__name__)


def config_hash(cfg: Config) -> str:
    """sha256 of the ``[model]`` and ``[training]`` settings a model is trained with."""
    return cfg.digest("model", "training")


def classifier_from_config(cfg: Config, **overrides: Any) -> DeepSetsClassifier:
    """An unfitted classifier with the ``[model]`` and ``[training]`` settings of ``cfg``."""
    kw: dict[str, Any] = {k: getattr(cfg.model, k) for k in MODEL_KEYS}
    kw.update({k: getattr(cfg.training, k) for k in TRAINING_KEYS})
    kw["random_state"] = cfg.training.seed
    kw.update(overrides)
    return DeepSetsClassifier(**kw)


def state_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` into memory: the same object gives the same bytes."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_classifier(clf: DeepSetsClassifier, path: str | Path, cfg: Config | None = None) -> Path:
    """Write the weights (``path``, e.g. ``model/model.pt``) and the header (``model.json``).

    The header is written last: a model whose header is present is complete.
    Returns the weights path.
    """
    path = Path(path)
    if cfg is not None:
        clf.config_hash_ = config_hash(cfg)
    head = clf.header(config_hash(cfg) if cfg is not None else None)
    data = state_bytes(clf.network_.state_dict())
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    write_json(head, path.with_suffix(".json"))
    return path


def check_config(clf: DeepSetsClassifier, cfg: Config, where: str, *, trained_here: bool) -> None:
    """Raise :class:`ModelMismatchError` when ``clf`` does not fit ``cfg``.

    Every model must agree with ``[model]`` (a set size or width other than the
    model's cannot be evaluated). A model trained by this run (``trained_here``)
    must also have been trained with this run's ``[model]``/``[training]``
    settings: otherwise it is stale, and ``ocmembers train`` makes a new one.
    """
    for key in MODEL_KEYS:
        mine, want = getattr(clf, key), getattr(cfg.model, key)
        if mine != want:
            raise ModelMismatchError(f"model {where}: [model] {key} = {mine!r} in the model, "
                                     f"{want!r} in the configuration (set model.{key} = {mine!r}, "
                                     "or train a model with the configuration's value)")
    saved = getattr(clf, "config_hash_", None)
    if trained_here and saved is not None and saved != config_hash(cfg):
        raise ModelMismatchError(
            f"model {where} was trained with other [model]/[training] settings (config hash "
            f"{saved[:12]}..., now {config_hash(cfg)[:12]}...); re-run `ocmembers train`")


def load_classifier(path: str | Path, cfg: Config | None = None, *, trained_here: bool = False,
                    features: Sequence[str] = SOURCE_FEATURES,
                    cluster_features: Sequence[str] = CLUSTER_FEATURES) -> DeepSetsClassifier:
    """Read a model written by :func:`save_classifier` (checked against ``cfg`` when given).

    Raises
    ------
    FileNotFoundError
        The weights or the header are missing.
    ModelMismatchError
        Other features, weights that do not fit the architecture, or (with
        ``cfg``) settings that differ (:func:`check_config`).
    """
    path = Path(path)
    hpath = path.with_suffix(".json")
    if not path.is_file() or not hpath.is_file():
        raise FileNotFoundError(f"model {path}: weights or header {hpath.name} missing "
                                "(run `ocmembers train` or use --model vg23)")
    try:
        head = json.loads(hpath.read_text())
        state = torch.load(path, weights_only=True, map_location="cpu")
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelMismatchError(f"model {path}: unreadable ({exc})") from exc
    clf = DeepSetsClassifier.from_saved(head, state, features=features, cluster_features=cluster_features,
                                        where=str(path))
    if cfg is not None:
        check_config(clf, cfg, str(path), trained_here=trained_here)
    return clf


def load_model_spec(spec: str | Path, cfg: Config | None = None) -> DeepSetsClassifier:
    """``"vg23"`` (the published model) or the path of a ``model.pt``, checked against ``cfg``."""
    if str(spec) == "vg23":
        from ocmembers.sources.vg23 import load_vg23  # torch + the authors' files, only when asked
        clf = load_vg23()
        if cfg is not None:
            check_config(clf, cfg, "vg23 (DS10_v02)", trained_here=False)
        return clf
    return load_classifier(Path(spec), cfg)


class FileCheckpoint:
    """A training checkpoint in one file (:class:`ocmembers.method.training.Checkpoint`).

    Written atomically after every epoch; an unreadable checkpoint or one of
    other instances or settings costs the epochs it held, never the run.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self, key: str) -> dict | None:
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any damage means: start afresh
            log.warning("training checkpoint %s unreadable (%s): starting afresh", self.path, exc)
            return None
        if not isinstance(state, dict) or state.get("key") != key:
            log.warning("training checkpoint %s is of other instances or settings: starting afresh",
                        self.path)
            return None
        return state

    def save(self, state: dict) -> None:
        data = state_bytes(state)
        with atomic_path(self.path) as tmp:
            tmp.write_bytes(data)

    def __str__(self) -> str:
        return str(self.path)


# -- the calibrated variant's posterior (ocmembers.method.calibration) -------------------
def save_calibrator(model: Any, path: str | Path, header: dict[str, Any]) -> Path:
    """Write a fitted calibrator (pickled; its bytes first, then atomically) and its header
    ``<path>.json`` (features, clusters, counts, versions). The caller writes the manifests."""
    import pickle

    import sklearn
    path = Path(path)
    data = pickle.dumps(model, protocol=5)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    write_json({**header, "sklearn": sklearn.__version__}, path.with_suffix(".json"))
    return path


def load_calibrator(path: str | Path, what: str = "calibrator") -> Any:
    """A calibrator written by :func:`save_calibrator`, verified against its manifest when it has
    one. Unpickling runs code: load only calibrators this tool made (a path given by
    ``[membership] calibrator`` is trusted like a model path)."""
    import pickle

    path = Path(path)
    if not path.is_file():
        raise OCMembersError(f"{what}: {path} does not exist (on SOURCE=sim the members stage fits it with "
                             "[membership] variant = \"calibrated\"; elsewhere set [membership] calibrator "
                             "to one made there)")
    if cache.manifest_path(path).is_file():
        cache.verify(path)
    try:
        model = pickle.loads(path.read_bytes())
    except Exception as exc:  # noqa: BLE001 - any damage is the same error for the user
        raise OCMembersError(f"{what}: {path} is not a readable calibrator ({exc})") from exc
    if not hasattr(model, "predict_proba"):
        raise OCMembersError(f"{what}: {path} holds a {type(model).__name__}, not a fitted classifier")
    return model
