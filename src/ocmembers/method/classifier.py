"""The Deep Sets membership classifier as a scikit-learn estimator (Sects. 3.2-3.4).

:class:`DeepSetsClassifier` wraps the network of Appendix A
(:class:`ocmembers.method.network.DeepSetsNet`) with the standardisation of its
inputs and the training of Sect. 3.3 (:mod:`ocmembers.method.training`). It
follows the scikit-learn contract: ``__init__`` stores its keyword arguments,
``get_params``/``set_params``/``clone`` work, learned state ends in ``_``,
``fit`` returns ``self`` and the columns of ``predict_proba`` follow
``classes_`` (``[non-member, member]``). Writing and reading a fitted model is
I/O and lives in :mod:`ocmembers.sources.models`.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from torch import nn

from ocmembers._version import __version__
from ocmembers.exceptions import ModelMismatchError
from ocmembers.method import training
from ocmembers.method.columns import as_frame
from ocmembers.method.isochrones import IsochroneCurve
from ocmembers.method.membership import (MEMBERSHIP_REQUIRED, cluster_feature_vector, cluster_seed,
                                         feature_function, membership_probabilities)
from ocmembers.method.network import CLUSTER_FEATURES, SOURCE_FEATURES, DeepSetsNet, inference, state_digest

if TYPE_CHECKING:  # pragma: no cover
    from ocmembers.method.training import Checkpoint, ClusterSets

__all__ = ["DeepSetsClassifier", "NotFittedError", "FORMAT_VERSION", "MODEL_KEYS", "TRAINING_KEYS"]

#: Version of the ``model.json`` header layout.
FORMAT_VERSION = 1
#: Parameters of the architecture (``[model]``) and of the training (``[training]``).
MODEL_KEYS: tuple[str, ...] = ("n_support", "hidden", "n_blocks", "dropout", "n_classes")
TRAINING_KEYS: tuple[str, ...] = ("n_member_copies", "negative_ratio", "class_weights", "learning_rate",
                                  "l2", "grad_clip", "batch_size", "patience", "max_epochs")


class NotFittedError(_SklearnNotFittedError, RuntimeError):
    """A :class:`DeepSetsClassifier` used before ``fit`` (scikit-learn's ``NotFittedError``)."""


def _versions() -> dict[str, str]:
    return {"ocmembers": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


class DeepSetsClassifier(BaseEstimator):
    """Scikit-learn-style estimator around :class:`DeepSetsNet`.

    ``fit`` builds the training and validation instances of Sect. 3.2 from
    per-cluster member and non-member features, standardises them, and trains
    as in Sect. 3.3 (:func:`ocmembers.method.training.train_network`).
    ``predict_proba`` takes raw (unstandardised) sets ``(n, n_support, 13)``.

    Parameters
    ----------
    n_support, hidden, n_blocks, dropout, n_classes
        Architecture (``[model]`` of the configuration).
    n_member_copies, negative_ratio, class_weights, learning_rate, l2, grad_clip,
    batch_size, patience, max_epochs
        Training (``[training]``).
    random_state : int or None
        Seed of torch and of the NumPy generator; ``None`` draws one in ``fit``.
    verbose : bool
        Print one line per epoch.

    Attributes
    ----------
    feature_names_ : tuple of str
        ``SOURCE_FEATURES + CLUSTER_FEATURES``.
    feature_mean_, feature_std_ : ndarray (8,)
        Standardisation of the 5 source and 3 cluster features.
    history_ : DataFrame
        Loss and metrics per epoch (Fig. 2).
    network_ : DeepSetsNet
    classes_ : ndarray ``[0, 1]`` (non-member, member)
    seed_ : int
        The seed actually used.
    """

    def __init__(self, n_support: int = 10, hidden: int = 64, n_blocks: int = 5,
                 dropout: float = 0.5, n_classes: int = 2, n_member_copies: int = 2,
                 negative_ratio: int = 5, class_weights: Sequence[float] = (1.0, 5.0),
                 learning_rate: float = 1e-4, l2: float = 1e-5, grad_clip: float = 5.0,
                 batch_size: int = 32, patience: int = 20, max_epochs: int = 300,
                 random_state: int | None = None, verbose: bool = False) -> None:
        self.n_support = n_support
        self.hidden = hidden
        self.n_blocks = n_blocks
        self.dropout = dropout
        self.n_classes = n_classes
        self.n_member_copies = n_member_copies
        self.negative_ratio = negative_ratio
        self.class_weights = class_weights
        self.learning_rate = learning_rate
        self.l2 = l2
        self.grad_clip = grad_clip
        self.batch_size = batch_size
        self.patience = patience
        self.max_epochs = max_epochs
        self.random_state = random_state
        self.verbose = verbose

    # -- construction ----------------------------------------------------------
    _MODEL_KEYS = MODEL_KEYS
    _TRAINING_KEYS = TRAINING_KEYS

    @property
    def n_in(self) -> int:
        return 2 * len(SOURCE_FEATURES) + len(CLUSTER_FEATURES)

    def _new_network(self) -> DeepSetsNet:
        return DeepSetsNet(n_in=self.n_in, hidden=self.hidden, n_blocks=self.n_blocks,
                           dropout=self.dropout, n_classes=self.n_classes)

    # -- fitting ---------------------------------------------------------------
    def fit(self, clusters: Sequence["ClusterSets"],
            validation: Sequence["ClusterSets"] | None = None, *,
            checkpoint: "Checkpoint | None" = None) -> "DeepSetsClassifier":
        """Train on the members and non-members of ``clusters`` (Sects. 3.2-3.3).

        Parameters
        ----------
        clusters : sequence of :class:`ocmembers.method.training.ClusterSets`
            Training clusters (raw features).
        validation : sequence of ClusterSets, optional
            Validation clusters for early stopping on F1; without them the
            training F1 is monitored (as the authors do).
        checkpoint : path, optional
            Training checkpoint written after every epoch; a fit of the same
            data and settings resumes from it
            (:func:`ocmembers.method.training.train_network`).

        Returns
        -------
        self
        """
        seed = (int(np.random.SeedSequence().generate_state(1)[0])
                if self.random_state is None else int(self.random_state))
        self.seed_ = seed
        # torch's global generator (initialisation, dropout) is seeded inside a fork,
        # so fitting leaves the caller's torch random state as it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            rng = np.random.default_rng(seed)
            self.feature_names_ = SOURCE_FEATURES + CLUSTER_FEATURES
            mean, std = training.fit_standardisation(clusters)
            self.feature_mean_, self.feature_std_ = mean, std
            train_inst = training.build_instances(clusters, self.feature_mean_, self.feature_std_,
                                                  n_support=self.n_support,
                                                  n_member_copies=self.n_member_copies,
                                                  negative_ratio=self.negative_ratio, rng=rng)
            val_inst = None
            if validation:
                val_inst = training.build_instances(validation, self.feature_mean_, self.feature_std_,
                                                    n_support=self.n_support,
                                                    n_member_copies=self.n_member_copies,
                                                    negative_ratio=self.negative_ratio, rng=rng)
            self.network_ = self._new_network()
            self.history_ = training.train_network(
                self.network_, train_inst, val_inst, class_weights=self.class_weights,
                learning_rate=self.learning_rate, l2=self.l2, grad_clip=self.grad_clip,
                batch_size=self.batch_size, patience=self.patience, max_epochs=self.max_epochs,
                seed=seed, verbose=self.verbose, checkpoint=checkpoint)
        self.training_clusters_ = tuple(c.name for c in clusters)
        self.validation_clusters_ = tuple(c.name for c in validation or ())
        self.classes_ = np.array([0, 1])
        self.model_id_ = self._weights_digest()
        return self

    # -- prediction ------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("DeepSetsClassifier is not fitted: call fit() first, or load a model "
                                 "(ocmembers.load_classifier, ocmembers.sources.vg23.load_vg23)")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "network_")

    def element_mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of the 13 entries of one set element (source, cluster, member)."""
        self._check_fitted()
        ns = len(SOURCE_FEATURES)
        m, s = np.asarray(self.feature_mean_), np.asarray(self.feature_std_)
        return (np.concatenate([m, m[:ns]]).astype(np.float32),
                np.concatenate([s, s[:ns]]).astype(np.float32))

    def standardise_source(self, x: np.ndarray) -> np.ndarray:
        """Standardise source features ``(..., 5)``."""
        ns = len(SOURCE_FEATURES)
        return ((np.asarray(x, dtype=np.float64) - self.feature_mean_[:ns])
                / self.feature_std_[:ns]).astype(np.float32)

    def standardise_cluster(self, x: np.ndarray) -> np.ndarray:
        """Standardise cluster features ``(..., 3)``."""
        ns = len(SOURCE_FEATURES)
        return ((np.asarray(x, dtype=np.float64) - self.feature_mean_[ns:])
                / self.feature_std_[ns:]).astype(np.float32)

    def logits_standardised(self, x: torch.Tensor, batch_size: int = 65536) -> torch.Tensor:
        """Network logits of already standardised sets, evaluated in eval mode (no dropout)."""
        self._check_fitted()
        with inference(self.network_) as forward:
            out = [forward(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
            return torch.cat(out) if out else torch.empty((0, self.n_classes))

    def predict_proba(self, X: np.ndarray | torch.Tensor, batch_size: int = 65536) -> np.ndarray:
        """Softmax of the network for raw sets ``X`` of shape ``(n, n_support, 13)``.

        Returns
        -------
        ndarray (n, 2)
            Columns [non-member, member] (``classes_``).
        """
        mean, std = self.element_mean_std()
        x = torch.as_tensor(np.asarray(X, dtype=np.float32))
        if x.ndim != 3 or x.shape[-1] != self.n_in:
            raise ValueError(f"predict_proba expects (n, set, {self.n_in}), got {tuple(x.shape)}")
        x = (x - torch.from_numpy(mean)) / torch.from_numpy(std)
        return torch.softmax(self.logits_standardised(x, batch_size), dim=1).numpy()

    def predict(self, X: np.ndarray | torch.Tensor) -> np.ndarray:
        """1 (member) where the member softmax exceeds 0.5, else 0."""
        return (self.predict_proba(X)[:, 1] > 0.5).astype(np.int64)

    def membership_proba(self, candidates: Any, members: Any, cluster: Any, curve: Any, *,
                         n_samples: int = 100, seed: int = 2023, name: str | None = None,
                         exclude_self: bool = True, correlate_g_colour: bool = True,
                         batch_size: int = 2048, threads: int | None = None,
                         network: str = "exact") -> np.ndarray:
        r"""The paper's membership probability of every candidate (Sect. 3.4).

        For every candidate, ``n_samples`` draws of its observables from its
        Gaia errors and correlations, each with its features recomputed
        (Eqs. 15-17) and classified with its own random support set of
        ``n_support`` members; the probability is the fraction of draws
        classified member. This is
        :func:`ocmembers.method.membership.membership_probabilities` (the
        module docstring has the maths); unlike :meth:`predict_proba`, which
        classifies sets that are already built, it takes plain tables.

        Parameters
        ----------
        candidates : DataFrame, astropy Table or mapping of 1-D arrays
            The sources to evaluate, one row each, with the columns of
            :data:`ocmembers.method.membership.MEMBERSHIP_REQUIRED`: the Gaia
            ``parallax, pmra, pmdec``, their ``*_error`` and the correlations
            ``parallax_pmra_corr, parallax_pmdec_corr, pmra_pmdec_corr``
            (mas, mas/yr), ``phot_g_mean_mag``, ``phot_g_mean_mag_error``,
            ``g_rp`` and ``g_rp_error`` (mag; G - G_RP and its error, from
            :func:`ocmembers.method.preprocessing.preprocess_cone`), and the
            five observed source features ``f_r, f_pm, f_plx, f_c, f_g``
            (Eqs. 13-17, :func:`ocmembers.method.features.add_features`). With
            ``exclude_self``, a ``source_id`` column too.
        members : DataFrame, astropy Table, mapping or ndarray ``(n_m, 5)``
            The support pool: the training members' five source features (in
            the order ``f_r, f_pm, f_plx, f_c, f_g`` for an array), with
            ``source_id`` when ``exclude_self`` should apply.
        cluster : ClusterParams, or a mapping / object with its fields
            Needs ``pmra, pmdec, parallax`` (Eqs. 15-16), ``delta_c, delta_g``
            (Eq. 17) and the cluster features ``a0, log_age, parallax``
            (:func:`ocmembers.method.selection.cluster_parameters`).
        curve : IsochroneCurve or DataFrame
            The cluster's isochrone in (G - G_RP, G), shifted to the cluster
            (:class:`ocmembers.method.isochrones.IsochroneCurve`, or the frame
            it is made from).
        n_samples : int
            Monte Carlo draws per candidate (100 in the paper).
        seed : int
            Seed of the generator; the same seed gives the same probabilities.
        name : str, optional
            A cluster name: the stream is then the pipeline's for that cluster
            (``cluster_seed(seed, name)``, as ``[membership] seed`` in
            :func:`ocmembers.members`), so the result equals the member list's.
            Also used in messages.
        exclude_self : bool
            A candidate that is itself in ``members`` (same ``source_id``) is
            left out of its own support sets.
        correlate_g_colour : bool
            Draw G and G - G_RP with their shared G error (see
            :mod:`ocmembers.method.membership`).
        batch_size, threads : int
            Sets per network call; CPUs for the network (None: torch's thread count).
        network : str
            ``exact`` (default) or ``compiled``
            (:func:`ocmembers.method.network.set_logits`).

        Returns
        -------
        ndarray (n,)
            In the order of ``candidates``; on the grid ``1 / n_samples``; NaN
            where a candidate's inputs are not finite.

        References
        ----------
        van Groeningen, M. G. J., et al. 2023, A&A 675, A68, Sect. 3.4.
        """
        self._check_fitted()
        label = "cluster" if name is None else str(name)
        cand = as_frame(candidates, f"{label}: candidates")
        if isinstance(members, np.ndarray):
            pool_ids = None
            pool = np.asarray(members, dtype=np.float64)
            if pool.ndim != 2 or pool.shape[1] != len(SOURCE_FEATURES):
                raise ValueError(f"{label}: members as an array must be (n_members, "
                                 f"{len(SOURCE_FEATURES)}) features {SOURCE_FEATURES}, got {pool.shape}")
        else:
            mem = as_frame(members, f"{label}: members")
            missing = [c for c in SOURCE_FEATURES if c not in mem.columns]
            if missing:
                raise ValueError(f"{label}: members lack the source feature(s) {', '.join(missing)}")
            pool = mem[list(SOURCE_FEATURES)].to_numpy(np.float64)
            pool_ids = mem["source_id"].to_numpy() if "source_id" in mem.columns else None
        params = SimpleNamespace(**cluster) if isinstance(cluster, Mapping) else cluster
        if not isinstance(curve, IsochroneCurve):
            curve = IsochroneCurve.from_frame(as_frame(curve, f"{label}: isochrone"))
        own = None
        if exclude_self and pool_ids is not None and "source_id" in cand.columns:
            pos = pd.Series(np.arange(len(pool_ids)), index=pool_ids)
            pos = pos[~pos.index.duplicated()]
            own = cand["source_id"].map(pos).fillna(-1).to_numpy(np.int64)
        stream = int(seed) if name is None else cluster_seed(int(seed), str(name))
        return membership_probabilities(
            cand, pool, cluster_feature_vector(params), self, feature_function(params, curve),
            n_samples=int(n_samples), seed=stream, batch_size=int(batch_size), own_member=own,
            correlate_g_colour=correlate_g_colour, n_support=self.n_support, threads=threads,
            network=network, name=label)

    # -- persistence -----------------------------------------------------------
    def _weights_digest(self) -> str:
        return state_digest(self.network_)[:16]

    def header(self, config_hash: str | None = None) -> dict[str, Any]:
        """The self-describing JSON header saved beside the weights
        (:func:`ocmembers.sources.models.save_classifier`)."""
        self._check_fitted()
        return {
            "format_version": FORMAT_VERSION,
            "model_id": getattr(self, "model_id_", self._weights_digest()),
            "source_features": list(SOURCE_FEATURES),
            "cluster_features": list(CLUSTER_FEATURES),
            "feature_mean": [float(v) for v in self.feature_mean_],
            "feature_std": [float(v) for v in self.feature_std_],
            "params": {k: (list(v) if isinstance(v, tuple) else v)
                       for k in (*MODEL_KEYS, *TRAINING_KEYS, "random_state") for v in (getattr(self, k),)},
            "seed": getattr(self, "seed_", self.random_state),
            "config_hash": config_hash if config_hash is not None else getattr(self, "config_hash_", None),
            "training_clusters": list(getattr(self, "training_clusters_", ())),
            "validation_clusters": list(getattr(self, "validation_clusters_", ())),
            "n_parameters": self.network_.n_parameters(),
            "versions": _versions(),
            "origin": getattr(self, "origin_", "ocmembers"),
        }

    @classmethod
    def from_saved(cls, head: dict[str, Any], state: dict[str, torch.Tensor], *,
                   features: Sequence[str] = SOURCE_FEATURES,
                   cluster_features: Sequence[str] = CLUSTER_FEATURES,
                   where: str = "model") -> "DeepSetsClassifier":
        """A fitted classifier from its header (:meth:`header`) and the network's state dict.

        Raises
        ------
        ModelMismatchError
            When the header's feature names differ from ``features`` /
            ``cluster_features``, or the weights do not fit the architecture
            the header describes; ``where`` names the model in the message.
        """
        got = (tuple(head.get("source_features", ())), tuple(head.get("cluster_features", ())))
        want = (tuple(features), tuple(cluster_features))
        if got != want:
            raise ModelMismatchError(f"model {where}: trained on features {got[0]} + {got[1]}, "
                                     f"but this run uses {want[0]} + {want[1]}")
        params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in head["params"].items()}
        clf = cls(**params)
        clf.network_ = clf._new_network()
        try:
            clf.network_.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelMismatchError(f"model {where}: weights do not fit the architecture "
                                     f"{params}: {exc}") from exc
        clf.network_.eval()
        clf._set_fitted(head)
        return clf

    @classmethod
    def from_network(cls, network: nn.Module, feature_mean: Sequence[float],
                     feature_std: Sequence[float], **params: Any) -> "DeepSetsClassifier":
        """A fitted classifier around an existing network and standardisation (8 values each)."""
        if len(feature_mean) != len(SOURCE_FEATURES) + len(CLUSTER_FEATURES) or \
                len(feature_std) != len(feature_mean):
            raise ValueError("feature_mean and feature_std need 8 values (5 source + 3 cluster)")
        clf = cls(**params)
        clf.network_ = network
        clf._set_fitted({"source_features": list(SOURCE_FEATURES),
                         "cluster_features": list(CLUSTER_FEATURES),
                         "feature_mean": list(feature_mean), "feature_std": list(feature_std),
                         "seed": clf.random_state, "model_id": None})
        return clf

    def _set_fitted(self, head: dict[str, Any]) -> None:
        self.feature_names_ = tuple(head["source_features"]) + tuple(head["cluster_features"])
        self.feature_mean_ = np.asarray(head["feature_mean"], dtype=np.float64)
        self.feature_std_ = np.asarray(head["feature_std"], dtype=np.float64)
        self.seed_ = head.get("seed")
        self.config_hash_ = head.get("config_hash")
        self.training_clusters_ = tuple(head.get("training_clusters", ()))
        self.validation_clusters_ = tuple(head.get("validation_clusters", ()))
        self.origin_ = head.get("origin", "ocmembers")
        self.classes_ = np.array([0, 1])
        self.model_id_ = head.get("model_id") or self._weights_digest()
        self.history_ = pd.DataFrame()
