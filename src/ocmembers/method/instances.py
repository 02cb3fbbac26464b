r"""Training and validation instances (Sect. 3.2) and their standardisation.

Instances (Sect. 3.2 of van Groeningen et al. 2023). For every cluster with
:math:`n_m` training members and :math:`n_{nm}` non-members:

* every member is a positive instance ``n_member_copies = 2`` times, each
  time with its own random support set of ``n_support`` members drawn without
  replacement from the *other* members of the same cluster;
* ``negative_ratio = 5`` times as many negatives (:math:`10\,n_m`) are drawn
  without replacement from the non-members; when there are fewer
  non-members, all are taken as often as they fit and the remainder is drawn
  at random (the padding of Sect. 3.2); their support sets are drawn from all
  members. Candidates are never used for training.

Clusters, not sources, are split 70/30 into training and validation
(:func:`split_clusters`, seeded), so no validation cluster is seen in training.

An instance is stored as indices: the standardised features of the source,
the index of its cluster's features, and ``n_support`` indices into one pool
of standardised member features. Batches are gathered from these with torch
indexing (:meth:`Instances.batch`), so the 13-vectors of Sect. 3.2 are never
materialised for the whole set. All support sets of a cluster are drawn at
once with NumPy (:func:`sample_support`).

Standardisation (as in ``gaia-oc-amd`` 0.2.1): the source-feature mean and
standard deviation are those of the candidates and non-members of the
training clusters, each cluster weighted equally (the mean of the per-cluster
means, and the pooled variance :math:`\langle\sigma_i^2 + (\mu_i-\mu)^2\rangle`);
the cluster-feature mean and standard deviation are over the training
clusters.

References
----------
van Groeningen, M. G. J., et al. 2023, A&A 675, A68, Sect. 3.2.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ocmembers.exceptions import TooFewMembersError
from ocmembers.method.columns import require_columns
from ocmembers.method.network import CLUSTER_FEATURES, SOURCE_FEATURES, assemble_sets

__all__ = ["ClusterSets", "Instances", "sample_support", "split_clusters", "fit_standardisation",
           "build_instances"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterSets:
    """The raw (unstandardised) features of one cluster's sets.

    Parameters
    ----------
    name : str
    members : ndarray (n_m, 5)
        Source features (``SOURCE_FEATURES``) of the training members.
    non_members : ndarray (n_nm, 5)
    cluster : ndarray (3,)
        Cluster features (``CLUSTER_FEATURES``).
    candidates : ndarray (n_c, 5), optional
        Used only for the standardisation.
    """

    name: str
    members: np.ndarray
    non_members: np.ndarray
    cluster: np.ndarray
    candidates: np.ndarray | None = None

    @classmethod
    def from_frames(cls, name: str, members: pd.DataFrame, non_members: pd.DataFrame,
                    cluster: Sequence[float], candidates: pd.DataFrame | None = None
                    ) -> "ClusterSets":
        """From set tables carrying the ``SOURCE_FEATURES`` columns."""
        for what, df in (("members", members), ("non_members", non_members),
                         ("candidates", candidates)):
            if df is not None:
                require_columns(df, SOURCE_FEATURES, f"{name}: {what}")
        f = list(SOURCE_FEATURES)

        def finite(df: pd.DataFrame, what: str) -> np.ndarray:
            x = df[f].to_numpy(np.float64)
            ok = np.isfinite(x).all(axis=1)
            if not ok.all():
                log.warning("%s: %d %s with non-finite features left out", name, (~ok).sum(), what)
            return x[ok]

        return cls(name, finite(members, "members"), finite(non_members, "non-members"),
                   np.asarray(cluster, dtype=np.float64),
                   None if candidates is None else finite(candidates, "candidates"))


#: Sets drawn at a time by :func:`sample_support`: it bounds the temporaries
#: (random keys, sorted copies), never the numbers.
SETS_PER_BLOCK: int = 1 << 18


def sample_support(n_pool: int, n_sets: int, k: int, rng: np.random.Generator,
                   exclude: np.ndarray | None = None, *,
                   dtype: type[np.integer] | np.dtype = np.int64) -> np.ndarray:
    """Draw ``n_sets`` support sets of ``k`` distinct indices into a pool of ``n_pool``.

    Parameters
    ----------
    n_pool : int
        Number of members to draw from.
    n_sets, k : int
        Number of sets and their size.
    rng : numpy.random.Generator
    exclude : int array (n_sets,), optional
        Index that set ``i`` must not contain (the member being classified);
        ``-1`` excludes nothing.
    dtype : integer dtype
        Of the result (int64 by default; int32 halves the memory of millions
        of sets, and gives the same indices).

    Returns
    -------
    ndarray (n_sets, k)
        Each row is a uniform random k-subset (in random order) of the allowed
        indices.

    Notes
    -----
    Small pools: random keys sorted per row (exact, O(n_sets n_pool)). Large
    pools (``n_pool > 3 k``): k draws with replacement, rows with a repeat or
    the excluded index drawn again until none is left (a row succeeds with
    probability about ``exp(-k^2 / 2 n_pool)``), which is uniform over k-subsets.
    Both are done ``SETS_PER_BLOCK`` rows at a time; the generator's stream
    is consumed exactly as by one call on all rows, so the sets do not
    depend on the block size.
    """
    dtype = np.dtype(dtype)
    if n_pool > np.iinfo(dtype).max + 1:
        raise ValueError(f"a pool of {n_pool} members does not fit indices of {dtype}")
    n_allowed = n_pool - (1 if exclude is not None else 0)
    if k > n_allowed:
        raise TooFewMembersError(f"support sets of {k} need at least {k} members to draw from, "
                                 f"got {n_allowed}")
    out = np.empty((n_sets, k), dtype=dtype)
    if n_sets == 0:
        return out
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=np.int64)
    blocks = [slice(a, min(a + SETS_PER_BLOCK, n_sets)) for a in range(0, n_sets, SETS_PER_BLOCK)]
    if n_pool <= 3 * k:
        for b in blocks:
            keys = rng.random((b.stop - b.start, n_pool))
            if exclude is not None:
                rows = np.flatnonzero(exclude[b] >= 0)
                keys[rows, exclude[b][rows]] = np.inf
            out[b] = np.argsort(keys, axis=1)[:, :k]
        return out

    def bad_rows(rows: np.ndarray) -> np.ndarray:
        sub = np.sort(out[rows], axis=1)
        bad = (sub[:, 1:] == sub[:, :-1]).any(axis=1)
        if exclude is not None:
            bad |= (out[rows] == exclude[rows, None]).any(axis=1)
        return rows[bad]

    for b in blocks:
        out[b] = rng.integers(0, n_pool, size=(b.stop - b.start, k))
    todo = np.concatenate([bad_rows(np.arange(b.start, b.stop)) for b in blocks])
    while todo.size:
        out[todo] = rng.integers(0, n_pool, size=(todo.size, k))
        todo = bad_rows(todo)
    return out


def split_clusters(names: Sequence[str], validation_fraction: float, seed: int
                   ) -> tuple[list[str], list[str]]:
    """Split cluster names into training and validation (Sect. 3.2), seeded.

    The names are sorted first, so the split depends only on the set of names
    and the seed. At least one cluster goes to each side when there are two or
    more.
    """
    names = sorted(set(names))
    n = len(names)
    if n < 2:
        return names, []
    n_val = min(max(int(round(validation_fraction * n)), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    val = sorted(names[i] for i in order[:n_val])
    train = sorted(names[i] for i in order[n_val:])
    return train, val


def fit_standardisation(clusters: Sequence[ClusterSets]) -> tuple[np.ndarray, np.ndarray]:
    """Means and standard deviations of the 5 source + 3 cluster features.

    Source features: candidates and non-members of each cluster (members
    and non-members when no candidates are given), clusters weighted equally.
    Cluster features: over the clusters. A zero or undefined standard
    deviation (one cluster) is replaced by 1.

    Returns
    -------
    mean, std : ndarray (8,)
    """
    if not clusters:
        raise ValueError("no clusters to fit the feature standardisation on")
    means, variances = [], []
    for c in clusters:
        parts = [c.non_members, c.candidates if c.candidates is not None else c.members]
        x = np.concatenate([p for p in parts if p is not None and len(p)], axis=0)
        means.append(x.mean(axis=0))
        variances.append(x.var(axis=0))
    means_a, var_a = np.array(means), np.array(variances)
    s_mean = means_a.mean(axis=0)
    s_std = np.sqrt(np.mean(var_a + (means_a - s_mean) ** 2, axis=0))
    cl = np.array([c.cluster for c in clusters], dtype=np.float64)
    c_mean = cl.mean(axis=0)
    c_std = cl.std(axis=0)
    mean = np.concatenate([s_mean, c_mean])
    std = np.concatenate([s_std, c_std])
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    if not np.all(np.isfinite(mean)):
        bad = [n for n, v in zip(SOURCE_FEATURES + CLUSTER_FEATURES, mean) if not np.isfinite(v)]
        raise ValueError(f"features {bad} are not finite in the training clusters")
    return mean, std


@dataclass
class Instances:
    """Training or validation instances, stored as indices (see the module notes).

    Attributes
    ----------
    source : Tensor (N, 5)
        Standardised features of the sources to classify.
    cluster_index : Tensor (N,)
        Row of ``cluster`` for each instance.
    cluster : Tensor (n_clusters, 3)
        Standardised cluster features.
    support : Tensor (N, n_support)
        Rows of ``pool`` forming each support set.
    pool : Tensor (n_members_total, 5)
        Standardised features of all members, cluster after cluster.
    label : Tensor (N,)
        1 member, 0 non-member.
    member_index : Tensor (N,)
        Row of ``pool`` of a positive instance's own member (-1 for negatives).
    names : tuple of str
    """

    source: torch.Tensor
    cluster_index: torch.Tensor
    cluster: torch.Tensor
    support: torch.Tensor
    pool: torch.Tensor
    label: torch.Tensor
    member_index: torch.Tensor
    names: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def digest(self) -> str:
        """SHA-256 of every tensor: identifies these instances (e.g. for resuming a training)."""
        h = hashlib.sha256()
        for t in (self.source, self.cluster_index, self.cluster, self.support, self.pool, self.label,
                  self.member_index):
            h.update(str(tuple(t.shape)).encode())
            h.update(t.contiguous().numpy().tobytes())
        h.update("\n".join(self.names).encode())
        return h.hexdigest()

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sets ``(B, n_support, 13)`` and labels ``(B,)`` of instances ``idx``."""
        x = assemble_sets(self.source[idx], self.cluster[self.cluster_index[idx]],
                          self.support[idx], self.pool)
        return x, self.label[idx]


def build_instances(clusters: Sequence[ClusterSets], mean: np.ndarray, std: np.ndarray, *,
                    n_support: int = 10, n_member_copies: int = 2, negative_ratio: int = 5,
                    rng: np.random.Generator) -> Instances:
    """Instances of Sect. 3.2 for a list of clusters (all of one split).

    Raises
    ------
    TooFewMembersError
        A cluster has no more than ``n_support`` members (a member's support
        set excludes itself) or no non-members.
    """
    ns = len(SOURCE_FEATURES)
    m_s, s_s, m_c, s_c = mean[:ns], std[:ns], mean[ns:], std[ns:]
    src, cidx, sup, lab, own, pool, cl = [], [], [], [], [], [], []
    offset = 0
    for ci, c in enumerate(clusters):
        n_m, n_nm = len(c.members), len(c.non_members)
        if n_m <= n_support:
            raise TooFewMembersError(f"{c.name}: {n_m} training members; the support sets of "
                                     f"{n_support} need at least {n_support + 1}")
        if n_nm == 0:
            raise TooFewMembersError(f"{c.name}: no non-members to train on")
        members = (c.members - m_s) / s_s
        non_members = (c.non_members - m_s) / s_s
        pos = np.tile(np.arange(n_m), n_member_copies)
        pos_sup = sample_support(n_m, pos.size, n_support, rng, exclude=pos)
        n_neg = pos.size * negative_ratio
        if n_neg <= n_nm:
            neg = rng.choice(n_nm, n_neg, replace=False)
        else:
            neg = np.concatenate([np.tile(np.arange(n_nm), n_neg // n_nm),
                                  rng.choice(n_nm, n_neg % n_nm, replace=False)])
        neg_sup = sample_support(n_m, neg.size, n_support, rng)
        src += [members[pos], non_members[neg]]
        sup += [pos_sup + offset, neg_sup + offset]
        lab += [np.ones(pos.size, np.int64), np.zeros(neg.size, np.int64)]
        own += [pos + offset, np.full(neg.size, -1, np.int64)]
        cidx.append(np.full(pos.size + neg.size, ci, np.int64))
        pool.append(members)
        cl.append((np.asarray(c.cluster, dtype=np.float64) - m_c) / s_c)
        offset += n_m
    f32 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    i64 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))  # noqa: E731
    if not clusters:
        raise ValueError("no clusters to build instances from")
    return Instances(source=f32(np.concatenate(src)), cluster_index=i64(np.concatenate(cidx)),
                     cluster=f32(np.array(cl)), support=i64(np.concatenate(sup)),
                     pool=f32(np.concatenate(pool)), label=i64(np.concatenate(lab)),
                     member_index=i64(np.concatenate(own)), names=tuple(c.name for c in clusters))
