r"""The published model of van Groeningen et al. (2023): ``DS10_v02``.

The authors ship their trained network in the ``gaia-oc-amd`` wheel
(version 0.2.1, MIT licence) as ``candidate_evaluation/pretrained_models/
DS10_v02/{model_parameters,hyper_parameters}``: a PyTorch state dict of their
``D5`` network (the architecture of Appendix A, 39,042 parameters) and a
JSON file with the feature names and the standardisation (means and standard
deviations of the 5 source and 3 cluster features) fitted on their 605
training clusters. This module finds those files in the installed wheel,
loads the weights with ``torch.load(weights_only=True)`` (no pickled code is
executed) and maps them onto :class:`ocmembers.method.network.DeepSetsNet`, so that
``ocmembers members --model vg23`` evaluates candidates with the published
weights.

The wheel is installed without its dependencies (``pip install --no-deps
gaia-oc-amd==0.2.1``; ``pip install ocmembers[vg23]`` names it). Its
top-level ``__init__`` imports modules that need ``lxml``, ``astroquery``
and ``torchvision``; we never import the package, we only locate it with
:func:`importlib.util.find_spec`.

Sign of the isochrone features. The authors' ``isochrone_features_function``
returns the vector from the source to the nearest isochrone point,
:math:`(C_{ic} - C,\; G_{ic} - G)`, the opposite of Eq. 17
(:math:`f_C = C - C_{ic}`, :math:`f_G = G - G_{ic}`), which
:mod:`ocmembers.method.features` follows. DS10_v02 was trained on their sign, so the
loader folds the flip into the standardisation: for ``f_c`` and ``f_g`` the
mean and the standard deviation are both negated, since
:math:`(-x - \mu)/\sigma = (x - (-\mu))/(-\sigma)`. Every other feature has
the paper's definition in both codes (``f_r`` is their :math:`D\sin\theta`
against our :math:`D\theta`, equal to 1e-4 relative inside a 50 pc cone).

Name mapping (theirs -> ours): ``phi.<2i>.Gamma`` -> ``phi.<2i>.gamma``,
``phi.<2i>.Lambda`` -> ``phi.<2i>.lam``, ``ro.<j>`` -> ``rho.<j>``; the
cluster feature ``age`` (their name for log age, CG20 ``AgeNN``) is our
``log_age``.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ocmembers.exceptions import ModelMismatchError
from ocmembers.method.classifier import DeepSetsClassifier
from ocmembers.method.network import CLUSTER_FEATURES, SOURCE_FEATURES

__all__ = ["WHEEL", "MODEL_NAME", "FLIPPED", "package_dir", "locate", "map_state_dict", "load_vg23"]

WHEEL = "gaia-oc-amd==0.2.1"
MODEL_NAME = "DS10_v02"
_CLUSTER_NAMES = {"a0": "a0", "age": "log_age", "parallax": "parallax"}
#: Features whose sign in gaia-oc-amd is opposite to Eq. 17 (curve minus source).
FLIPPED: tuple[str, ...] = ("f_c", "f_g")


def package_dir() -> Path:
    """Directory of the installed ``gaia_oc_amd`` package (not imported)."""
    spec = importlib.util.find_spec("gaia_oc_amd")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMismatchError(
            f"the published model needs the authors' wheel: pip install --no-deps {WHEEL}")
    return Path(list(spec.submodule_search_locations)[0])


def locate(name: str = MODEL_NAME) -> Path:
    """Directory holding ``model_parameters`` and ``hyper_parameters`` of model ``name``."""
    d = package_dir() / "candidate_evaluation" / "pretrained_models" / name
    for f in ("model_parameters", "hyper_parameters"):
        if not (d / f).is_file():
            raise ModelMismatchError(f"published model {name}: {d / f} not found in the installed "
                                     f"gaia-oc-amd (expected {WHEEL})")
    return d


def map_state_dict(theirs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of the authors' ``D5`` state dict to those of :class:`DeepSetsNet`."""
    out = {}
    for key, value in theirs.items():
        new = re.sub(r"^ro\.", "rho.", key)
        new = re.sub(r"\.Gamma\.", ".gamma.", new)
        new = re.sub(r"\.Lambda\.", ".lam.", new)
        out[new] = value
    return out


def load_vg23(name: str = MODEL_NAME) -> DeepSetsClassifier:
    """The published model as a fitted :class:`DeepSetsClassifier`.

    Raises
    ------
    ModelMismatchError
        The wheel is not installed, or its features differ from
        ``SOURCE_FEATURES`` / ``CLUSTER_FEATURES``.
    """
    d = locate(name)
    hp: dict[str, Any] = json.loads((d / "hyper_parameters").read_text())
    source = tuple(hp["source_features"])
    cluster = tuple(_CLUSTER_NAMES.get(c, c) for c in hp["cluster_features"])
    if source != SOURCE_FEATURES or cluster != CLUSTER_FEATURES:
        raise ModelMismatchError(f"published model {name}: features {source} + {cluster}, "
                                 f"expected {SOURCE_FEATURES} + {CLUSTER_FEATURES}")
    clf = DeepSetsClassifier(
        n_support=int(hp["size_support_set"]), hidden=int(hp["hidden_size"]), n_blocks=5,
        dropout=0.5, n_classes=2, n_member_copies=int(hp["n_pos_duplicates"]),
        negative_ratio=int(hp["neg_pos_ratio"]), class_weights=(1.0, float(hp["weight_imbalance"])),
        learning_rate=float(hp["lr"]), l2=float(hp["l2"]), batch_size=int(hp["batch_size"]),
        patience=int(hp["early_stopping_threshold"]), max_epochs=int(hp["n_epochs"]),
        random_state=int(hp["seed"]))
    state = torch.load(d / "model_parameters", weights_only=True, map_location="cpu")
    net = clf._new_network()
    try:
        net.load_state_dict(map_state_dict(state))
    except RuntimeError as exc:
        raise ModelMismatchError(f"published model {name}: weights do not fit DeepSetsNet: {exc}") from exc
    net.eval()
    clf.network_ = net
    sign = np.array([-1.0 if f in FLIPPED else 1.0 for f in source])
    head = {
        "source_features": list(source), "cluster_features": list(cluster),
        "feature_mean": list(sign * np.asarray(hp["source_feature_means"], float))
        + list(hp["cluster_feature_means"]),
        "feature_std": list(sign * np.asarray(hp["source_feature_stds"], float))
        + list(hp["cluster_feature_stds"]),
        "seed": hp["seed"], "config_hash": None,
        "training_clusters": hp.get("training_clusters", []),
        "validation_clusters": hp.get("validation_clusters", []),
        "origin": f"van Groeningen et al. 2023, {name} ({WHEEL})", "model_id": None,
    }
    clf._set_fitted(head)
    clf.model_id_ = f"vg23-{name}-{clf._weights_digest()[:8]}"
    return clf
