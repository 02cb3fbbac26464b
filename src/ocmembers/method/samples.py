"""Training, validation and test clusters, selected from the catalogues.

Sect. 3.2 of van Groeningen et al. (2023): training + validation clusters
(i) have age, distance, extinction and at least 80 members with p = 1.0 in
CG20, (ii) are not test clusters, (iii) lie more than 60 deg of Galactic
longitude from the Galactic centre and (iv) have parallax < 4 mas; 30% of
them, by cluster, form the validation set. Sect. 4: test clusters (i) have
a T22 membership list, (ii) age, distance, extinction and at least 20
members with p = 1.0 in CG20, (iii) are not training or validation
clusters and (iv) lie more than 30 deg from the Galactic centre.

The test set is selected first (it is defined by an outside list, T22), and
the training pool is what remains, so the two are disjoint by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.exceptions import ConfigError
from ocmembers.method.columns import normalise_cluster_name

__all__ = ["Samples", "select_samples", "longitude_from_centre"]


@dataclass
class Samples:
    train: list[str]
    validation: list[str]
    test: list[str]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"train": self.train, "validation": self.validation, "test": self.test,
                "counts": self.counts}


def longitude_from_centre(l_deg: np.ndarray) -> np.ndarray:
    """Angular distance in Galactic longitude from the Galactic centre, in [0, 180] deg."""
    l = np.mod(np.asarray(l_deg, float), 360.0)
    return np.minimum(l, 360.0 - l)


def select_samples(clusters: pd.DataFrame, train_members: pd.DataFrame, t22_members: pd.DataFrame,
                   cfg: Any) -> Samples:
    """Apply the criteria of Sects. 3.2 and 4; record how many clusters each one leaves.

    ``counts["test"]`` and ``counts["train"]`` map each criterion, in order,
    to the number of clusters still selected after it. ``cfg`` holds the
    ``samples``, ``selection`` and ``training`` settings (a configuration's sections).
    """
    s = cfg.samples
    if s.train_clusters or s.test_clusters:
        return _explicit_samples(clusters, cfg)
    p_min = cfg.selection.member_probability
    n_p1 = train_members.loc[train_members["probability"] >= p_min].groupby("cluster").size()
    n_p1 = clusters["name"].map(n_p1).fillna(0).astype(int).to_numpy()
    has_params = clusters[["log_age", "dist_pc", "a0"]].notna().all(axis=1).to_numpy()
    dlon = longitude_from_centre(clusters["l"].to_numpy())
    names = clusters["name"].to_numpy()

    counts: dict[str, dict[str, int]] = {"test": {}, "train": {}}
    sel = np.isin(names, t22_members["cluster"].unique())
    counts["test"]["has T22 list"] = int(sel.sum())
    sel &= has_params
    counts["test"]["has CG20 age, distance, extinction"] = int(sel.sum())
    sel &= n_p1 >= s.test_min_members
    counts["test"][f">= {s.test_min_members} members with p >= {p_min}"] = int(sel.sum())
    sel &= dlon > s.test_min_dlon_deg
    counts["test"][f"|l - l_GC| > {s.test_min_dlon_deg:g} deg"] = int(sel.sum())
    test = sorted(names[sel].tolist())

    pool = np.ones(len(names), bool)
    counts["train"]["all CG20 clusters"] = int(pool.sum())
    pool &= has_params
    counts["train"]["has CG20 age, distance, extinction"] = int(pool.sum())
    pool &= n_p1 >= s.train_min_members
    counts["train"][f">= {s.train_min_members} members with p >= {p_min}"] = int(pool.sum())
    pool &= ~sel
    counts["train"]["not a test cluster"] = int(pool.sum())
    pool &= dlon > s.train_min_dlon_deg
    counts["train"][f"|l - l_GC| > {s.train_min_dlon_deg:g} deg"] = int(pool.sum())
    pool &= clusters["parallax"].to_numpy(float) < s.train_max_parallax_mas
    counts["train"][f"parallax < {s.train_max_parallax_mas:g} mas"] = int(pool.sum())

    pool_names = np.array(sorted(names[pool].tolist()))
    rng = np.random.default_rng(s.split_seed)
    order = rng.permutation(len(pool_names))
    n_val = int(round(cfg.training.validation_fraction * len(pool_names)))
    validation = sorted(pool_names[order[:n_val]].tolist())
    train = sorted(pool_names[order[n_val:]].tolist())
    return Samples(train=train, validation=validation, test=test, counts=counts)


def _explicit_samples(clusters: pd.DataFrame, cfg: Any) -> Samples:
    """Roles given in the configuration (the demo), checked against the catalogue."""
    s = cfg.samples
    known = set(clusters["name"])
    roles = {}
    for role, names in (("train", s.train_clusters), ("validation", s.validation_clusters),
                        ("test", s.test_clusters)):
        names = [normalise_cluster_name(n) for n in names]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"[samples] {role}_clusters: not in the cluster catalogue: {', '.join(unknown)}")
        roles[role] = sorted(names)
    overlap = (set(roles["train"]) | set(roles["validation"])) & set(roles["test"])
    if overlap:
        raise ConfigError(f"[samples]: clusters both for training and testing: {', '.join(sorted(overlap))}")
    counts = {r: {"given in the configuration": len(v)} for r, v in roles.items()}
    return Samples(train=roles["train"], validation=roles["validation"], test=roles["test"], counts=counts)
