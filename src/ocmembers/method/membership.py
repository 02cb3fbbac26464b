r"""Monte Carlo membership probabilities (Sect. 3.4 of van Groeningen et al. 2023).

For each candidate :math:`i` we draw :math:`S = 100` samples of its observed
quantities and classify every sample with its own random support set; the
membership probability is the fraction of samples classified member:

.. math::

    p_i = \frac{1}{S} \sum_{s=1}^{S}
          \left[\, q_{\rm member}\big(x_i^{(s)}, \mathcal{S}_i^{(s)}\big) > 0.5 \,\right].

**Astrometry.** :math:`(\varpi, \mu_{\alpha*}, \mu_\delta)` is drawn from the
trivariate normal with the Gaia covariance

.. math::

    \Sigma = \begin{pmatrix}
      \sigma_\varpi^2 & \rho_{\varpi\mu_\alpha}\sigma_\varpi\sigma_{\mu_\alpha} &
        \rho_{\varpi\mu_\delta}\sigma_\varpi\sigma_{\mu_\delta} \\
      \cdot & \sigma_{\mu_\alpha}^2 & \rho_{\mu_\alpha\mu_\delta}\sigma_{\mu_\alpha}\sigma_{\mu_\delta} \\
      \cdot & \cdot & \sigma_{\mu_\delta}^2 \end{pmatrix}

(``parallax_pmra_corr``, ``parallax_pmdec_corr``, ``pmra_pmdec_corr``):
:math:`x = \mu + L z` with :math:`L L^T = \Sigma` the Cholesky factor of every
star's matrix, computed once for all stars in one batched call, and
:math:`z \sim N(0, I)` of shape (stars, samples, 3). (A matrix that is not
positive definite, from rounded correlations near :math:`\pm 1`, falls back to
the symmetric square root of its clipped eigen-decomposition.)

**Photometry.** :math:`G` and the colour :math:`C = G - G_{RP}` share the G
measurement, so they are *correlated*: :math:`\mathrm{cov}(G, C) = \sigma_G^2`,
:math:`\sigma_C^2 = \sigma_G^2 + \sigma_{RP}^2` (``g_rp_error`` of
:mod:`ocmembers.method.preprocessing`). We draw :math:`G` and :math:`G_{RP}`
independently, which is exactly this bivariate normal. (The authors' tool
draws G and C independently because Gaia has no ``phot_g_mean_mag_g_rp_corr``
column; for faint stars, where :math:`\sigma_G \ll \sigma_{RP}`, the two
agree. ``[membership] correlate_g_colour = false`` reproduces theirs.)

**Features.** Only the features that change are recomputed for the
:math:`n S` samples, in one vectorised call each per block of about
``SAMPLES_PER_BLOCK`` samples (the blocks bound the memory and give the
numbers of one call on the whole table): :math:`f_\mu` (Eq. 15),
:math:`f_\varpi` (Eq. 16) and :math:`(f_C, f_G)` (Eq. 17, the isochrone
nearest-point search of :mod:`ocmembers.method.features`); :math:`f_R` (Eqs. 13-14)
does not depend on the sampled quantities and is kept. The normals are drawn in
order on one thread; the samples, features and standardisation, all row by row,
then run in pieces of ``SAMPLES_PER_PIECE`` samples on ``threads`` threads, which
gives the numbers of one call.

**Support sets.** Every sample gets its own ``n_support`` training members
drawn without replacement (:func:`ocmembers.method.instances.sample_support`,
block by block, as int32 row numbers where they fit). A candidate that is itself a
training member is left out of its own support sets, as in training (the
authors' tool does not do this for evaluation).

**Network.** The :math:`nS` sets go through the network in eval mode in
chunks of ``batch_size`` sets, gathered from index arrays, with no loop over
stars (:func:`ocmembers.method.network.set_logits`: chunks that fit in the
cache, evaluated by one worker per CPU; in the default ``exact`` mode the
logits are bitwise those of one big call). Everything is seeded from one ``numpy.random.Generator``; the same
seed gives the same probabilities.

References
----------
van Groeningen, M. G. J., et al. 2023, A&A 675, A68, Sect. 3.4.
"""

from __future__ import annotations

import copy
import logging
import time
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import torch

from ocmembers.exceptions import TooFewMembersError
from ocmembers.method import features
from ocmembers.method.columns import require_columns
from ocmembers.method.instances import sample_support
from ocmembers.method.network import CLUSTER_FEATURES, SOURCE_FEATURES, set_logits

__all__ = [
    "ASTROMETRY", "ASTROMETRY_CORR", "SAMPLED", "FeatureFunction", "astrometric_covariance",
    "covariance_factor", "sample_astrometry", "sample_photometry", "draw_samples",
    "membership_probabilities", "probability_summary", "feature_function", "SAMPLES_PER_BLOCK",
    "cluster_feature_vector", "MEMBERSHIP_REQUIRED",
]

log = logging.getLogger(__name__)

#: Samples drawn and featurised at a time by :func:`membership_probabilities`
#: (whole candidates per block); it bounds memory, never the numbers.
SAMPLES_PER_BLOCK: int = 1 << 20
#: Samples featurised by one call within a block: pieces that stay in the cache (a block of
#: 2^20 samples in one call was 40 % slower) and that the CPUs share.
SAMPLES_PER_PIECE: int = 1 << 15

ASTROMETRY: tuple[str, str, str] = ("parallax", "pmra", "pmdec")
ASTROMETRY_CORR: tuple[str, str, str] = ("parallax_pmra_corr", "parallax_pmdec_corr", "pmra_pmdec_corr")
#: The sampled observables, in the order of :func:`draw_samples`.
SAMPLED: tuple[str, ...] = ("parallax", "pmra", "pmdec", "phot_g_mean_mag", "g_rp")
MEMBERSHIP_REQUIRED: tuple[str, ...] = (
    *ASTROMETRY, *(f"{c}_error" for c in ASTROMETRY), *ASTROMETRY_CORR,
    "phot_g_mean_mag", "phot_g_mean_mag_error", "g_rp", "g_rp_error", *SOURCE_FEATURES,
)

#: ``f(samples) -> {"f_pm": ..., "f_plx": ..., "f_c": ..., "f_g": ...}`` on flat arrays,
#: where ``samples`` maps the names of ``SAMPLED`` to flat arrays of equal length.
FeatureFunction = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def astrometric_covariance(df: pd.DataFrame) -> np.ndarray:
    """Per-star covariance ``(n, 3, 3)`` of (parallax, pmra, pmdec) from the Gaia columns."""
    err = df[[f"{c}_error" for c in ASTROMETRY]].to_numpy(np.float64)
    rho = df[list(ASTROMETRY_CORR)].to_numpy(np.float64)
    cov = err[:, :, None] * err[:, None, :]
    corr = np.ones_like(cov)
    for k, (i, j) in enumerate(((0, 1), (0, 2), (1, 2))):
        corr[:, i, j] = corr[:, j, i] = rho[:, k]
    return cov * corr


def covariance_factor(cov: np.ndarray) -> np.ndarray:
    """``L`` with ``L @ L.T == cov`` for a stack ``(n, d, d)`` of covariance matrices.

    Batched Cholesky; when some matrix is not positive definite (a zero error,
    or correlations rounded to +-1) every matrix of that batch uses the
    symmetric square root of its eigen-decomposition with negative
    eigenvalues clipped to zero instead.
    """
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return v * np.sqrt(np.clip(w, 0.0, None))[:, None, :]


def sample_astrometry(mean: np.ndarray, cov: np.ndarray | None, n_samples: int,
                      rng: np.random.Generator | None, *, factor: np.ndarray | None = None,
                      normals: np.ndarray | None = None) -> np.ndarray:
    """Draw ``(n, n_samples, 3)`` samples of N(mean_i, cov_i) for every star at once.

    ``factor``, when given, is :func:`covariance_factor` of ``cov`` already
    computed (``cov`` is then not read): a caller drawing a long table block
    by block factors it once, so that the eigen-decomposition fallback is
    decided for the whole table, as in one call. ``normals``, when given, are the
    standard normals ``(n, n_samples, 3)`` already drawn (``rng`` is then not used).
    """
    L = covariance_factor(cov) if factor is None else factor
    if normals is None:
        z = rng.standard_normal((mean.shape[0], n_samples, mean.shape[1]))
    else:
        z = normals
    return mean[:, None, :] + np.einsum("nij,nsj->nsi", L, z)


def sample_photometry(g: np.ndarray, g_error: np.ndarray, colour: np.ndarray,
                      colour_error: np.ndarray, n_samples: int, rng: np.random.Generator | None,
                      correlated: bool = True, *,
                      normals: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Draw (G, C) samples ``(n, n_samples)`` each.

    With ``correlated`` (default), :math:`\mathrm{cov}(G, C) = \sigma_G^2`
    (C = G - G_RP shares the G measurement), capped so that
    :math:`|\rho| \le 1` if ``colour_error < g_error``; otherwise independent.
    ``normals``: the standard normals ``(n, n_samples, 2)`` already drawn (``rng`` unused).
    """
    z = rng.standard_normal((g.shape[0], n_samples, 2)) if normals is None else normals
    g_s = g[:, None] + g_error[:, None] * z[..., 0]
    if correlated:
        slope = np.minimum(g_error, colour_error)            # cov / sigma_G
        rest = np.sqrt(np.clip(colour_error ** 2 - slope ** 2, 0.0, None))
        c_s = colour[:, None] + slope[:, None] * z[..., 0] + rest[:, None] * z[..., 1]
    else:
        c_s = colour[:, None] + colour_error[:, None] * z[..., 1]
    return g_s, c_s


def draw_samples(df: pd.DataFrame, n_samples: int, rng: np.random.Generator, *,
                 correlate_g_colour: bool = True,
                 photometry_rng: np.random.Generator | None = None,
                 factor: np.ndarray | None = None,
                 normals: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Samples ``(n, n_samples)`` of every quantity of ``SAMPLED`` (astrometry first).

    The astrometric normals are drawn from ``rng``, then the photometric ones
    from ``photometry_rng`` (default: ``rng`` too, after them). A caller that
    draws a table block by block passes a second generator already advanced
    past all the table's astrometric normals, so the blocks together get the
    very numbers of one call on the whole table; ``factor`` is then the
    table's covariance factor for these rows (:func:`sample_astrometry`).
    ``normals``: the astrometric and photometric standard normals, ``(n, n_samples, 3)``
    and ``(n, n_samples, 2)``, already drawn (the generators are then not used): a caller
    draws them in order and transforms blocks of them on several threads.
    """
    mean = df[list(ASTROMETRY)].to_numpy(np.float64)
    cov = None if factor is not None else astrometric_covariance(df)
    za, zp = (None, None) if normals is None else normals
    astro = sample_astrometry(mean, cov, n_samples, rng, factor=factor, normals=za)
    g, c = sample_photometry(df["phot_g_mean_mag"].to_numpy(np.float64),
                             df["phot_g_mean_mag_error"].to_numpy(np.float64),
                             df["g_rp"].to_numpy(np.float64), df["g_rp_error"].to_numpy(np.float64),
                             n_samples, rng if photometry_rng is None else photometry_rng,
                             correlated=correlate_g_colour, normals=zp)
    return {"parallax": astro[..., 0], "pmra": astro[..., 1], "pmdec": astro[..., 2],
            "phot_g_mean_mag": g, "g_rp": c}


def feature_function(params: Any, curve: Any) -> FeatureFunction:
    """The :data:`FeatureFunction` of a cluster: Eqs. 15-17 through :mod:`ocmembers.method.features`.

    Parameters
    ----------
    params : ocmembers.method.selection.ClusterParams
        Needs ``pmra, pmdec, parallax, delta_c, delta_g``.
    curve : ocmembers.method.isochrones.IsochroneCurve
        The cluster's isochrone in (G - G_RP, G).
    """
    def recompute(s: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        f_c, f_g = features.isochrone_separation(s["g_rp"], s["phot_g_mean_mag"], curve,
                                                 params.delta_c, params.delta_g)
        return {"f_pm": features.pm_separation(s["pmra"], s["pmdec"], params),
                "f_plx": features.parallax_separation(s["parallax"], params),
                "f_c": f_c, "f_g": f_g}

    return recompute


def cluster_feature_vector(params: Any) -> np.ndarray:
    """``(a0, log_age, parallax)`` of a cluster (``CLUSTER_FEATURES`` order)."""
    try:
        return np.array([float(getattr(params, name)) for name in CLUSTER_FEATURES])
    except AttributeError as exc:
        raise TypeError(f"cluster parameters lack a cluster feature: {exc}") from exc


def membership_probabilities(candidates: pd.DataFrame, members: np.ndarray,
                             cluster_features: np.ndarray, model: Any,
                             feature_fn: FeatureFunction, *, n_samples: int = 100,
                             seed: int = 2023, batch_size: int = 65536,
                             own_member: np.ndarray | None = None,
                             correlate_g_colour: bool = True, n_support: int | None = None,
                             timings: dict[str, float] | None = None,
                             threads: int | None = None, network: str = "exact",
                             name: str = "cluster") -> np.ndarray:
    """Membership probability of every row of ``candidates`` (Sect. 3.4).

    Parameters
    ----------
    candidates : DataFrame
        Sources to evaluate, with the columns ``MEMBERSHIP_REQUIRED`` (the
        observed features are used for ``f_r``).
    members : ndarray (n_m, 5)
        Raw source features of the training members (the support pool).
    cluster_features : ndarray (3,)
        Raw ``a0, log_age, parallax`` of the cluster.
    model : DeepSetsClassifier
        A fitted or loaded classifier (its standardisation is applied);
        typed ``Any`` because :mod:`ocmembers.method.classifier` imports this module.
    feature_fn : callable
        Recomputes ``f_pm, f_plx, f_c, f_g`` from sampled observables
        (:data:`FeatureFunction`), e.g. :func:`ocmembers.stages.members.cluster_feature_function`.
    n_samples, seed, batch_size : int
        Samples per candidate, seed of the generator, sets per network call.
    own_member : int array (n,), optional
        Row in ``members`` of each candidate that is a training member
        (``-1`` otherwise); such a member is left out of its own support sets.
    correlate_g_colour : bool
        See the module notes.
    n_support : int, optional
        Support-set size; default the model's. When the cluster has fewer
        members, all of them are used (a warning is logged).
    timings : dict, optional
        Filled with wall times (s) of ``sampling_features``, ``support_sets``
        and ``network``.
    threads : int, optional
        CPUs for the sampling, the features and the network (``[membership]
        torch_threads``); ``None`` or 0: torch's thread count. ``feature_fn`` must
        be row-wise (each sample's features from that sample alone), as Eqs. 15-17
        are. The network runs as that many workers of one intra-op thread each
        (:func:`ocmembers.method.network.set_logits`), which gives the same numbers
        and does not collapse when other processes share the cores (OpenMP threads
        waiting on each other did: 16k sets/s instead of 200k).
    network : str
        ``exact`` (the default: the logits of ``net.eval()(x)``, bitwise) or
        ``compiled`` (:data:`ocmembers.method.network.NETWORK_MODES`).
    name : str
        Cluster name for messages.

    Returns
    -------
    ndarray (n,)
        Probabilities in [0, 1] on the grid 1/n_samples; NaN for rows whose
        inputs are not finite.
    """
    require_columns(candidates, MEMBERSHIP_REQUIRED, f"{name}: sources to evaluate")
    n = len(candidates)
    out = np.full(n, np.nan)
    t = timings if timings is not None else {}
    for k in ("sampling_features", "support_sets", "network"):
        t.setdefault(k, 0.0)
    members = np.asarray(members, dtype=np.float64)
    k_support = model.n_support if n_support is None else int(n_support)
    n_m = len(members)
    if n_m == 0:
        raise TooFewMembersError(f"{name}: no training members for the support sets")
    available = n_m - (1 if own_member is not None and np.any(np.asarray(own_member) >= 0) else 0)
    if available < k_support:
        log.warning("%s: %d training members available for support sets of %d; using %d",
                    name, available, k_support, max(available, 1))
        k_support = max(available, 1)
        if available < 1:
            raise TooFewMembersError(f"{name}: a single training member cannot support itself")
    values = candidates[list(MEMBERSHIP_REQUIRED)].to_numpy(np.float64)
    ok = np.isfinite(values).all(axis=1)
    if not ok.all():
        log.warning("%s: %d source(s) with non-finite inputs get probability NaN", name, (~ok).sum())
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return out
    df = candidates.iloc[idx]
    rng = np.random.default_rng(seed)
    n_sets = idx.size * n_samples

    # Blocks of candidates bound the memory: the samples, features and their
    # temporaries of one block (~SAMPLES_PER_BLOCK samples) exist at a time
    # instead of all n*S (29 million for a 300,000-candidate cone: >9 GB).
    # The draws are those of one call on the whole table: the photometric
    # normals come from a second generator advanced past all astrometric ones.
    t0 = time.perf_counter()
    per = max(SAMPLES_PER_BLOCK // max(n_samples, 1), 1)
    blocks = [slice(a, min(a + per, idx.size)) for a in range(0, idx.size, per)]
    phot_rng = copy.deepcopy(rng)
    first_z = phot_rng.standard_normal((blocks[0].stop, n_samples, len(ASTROMETRY)))
    astro_rng = copy.deepcopy(phot_rng)   # where the astrometric stream is after block 0
    for b in blocks[1:]:
        phot_rng.standard_normal((b.stop - b.start, n_samples, len(ASTROMETRY)))
    factor = covariance_factor(astrometric_covariance(df))
    src_np = np.empty((n_sets, len(SOURCE_FEATURES)), dtype=np.float32)
    cpus = max(int(threads) if threads else torch.get_num_threads(), 1)

    def featurise(rows: slice, za: np.ndarray, zp: np.ndarray) -> None:
        part = df.iloc[rows]
        samples = draw_samples(part, n_samples, None, correlate_g_colour=correlate_g_colour,
                               factor=factor[rows], normals=(za, zp))
        new = feature_fn({key: v.reshape(-1) for key, v in samples.items()})
        feats = np.empty(((rows.stop - rows.start) * n_samples, len(SOURCE_FEATURES)), dtype=np.float64)
        for j, fname in enumerate(SOURCE_FEATURES):
            if fname in new:
                feats[:, j] = np.asarray(new[fname], dtype=np.float64).reshape(-1)
            else:  # unchanged by the sampling (f_r)
                feats[:, j] = np.repeat(part[fname].to_numpy(np.float64), n_samples)
        src_np[rows.start * n_samples:rows.stop * n_samples] = model.standardise_source(feats)

    # The normals are drawn here in order; each block's samples, features and
    # standardisation are row-wise, so its parts run on ``cpus`` threads (numpy
    # and cKDTree release the GIL) and give the numbers of one call.
    pool_ex = ThreadPoolExecutor(cpus) if cpus > 1 and idx.size >= 2 * cpus else None
    try:
        for i, b in enumerate(blocks):
            pieces = max(-(-(b.stop - b.start) * n_samples // SAMPLES_PER_PIECE), cpus if pool_ex else 1)
            cuts = np.linspace(b.start, b.stop, pieces + 1).round().astype(int)
            jobs = []
            for lo, hi in zip(cuts[:-1], cuts[1:]):
                if hi <= lo:
                    continue
                za = (first_z[lo:hi] if i == 0 else
                      astro_rng.standard_normal((hi - lo, n_samples, len(ASTROMETRY))))
                zp = phot_rng.standard_normal((hi - lo, n_samples, 2))
                if pool_ex is None:
                    featurise(slice(lo, hi), za, zp)
                else:
                    jobs.append(pool_ex.submit(featurise, slice(lo, hi), za, zp))
            for job in jobs:
                job.result()
        first_z = None
    finally:
        if pool_ex is not None:
            pool_ex.shutdown()
    src = torch.from_numpy(src_np)
    rng = phot_rng                     # the support sets follow all the samples' draws
    t["sampling_features"] += time.perf_counter() - t0

    t0 = time.perf_counter()
    exclude = None
    if own_member is not None:
        exclude = np.repeat(np.asarray(own_member, dtype=np.int64)[idx], n_samples)
        if not np.any(exclude >= 0):
            exclude = None
    # int32 indices where they fit halve the largest array (10 per sample)
    support = torch.from_numpy(sample_support(
        n_m, n_sets, k_support, rng, exclude=exclude,
        dtype=np.int32 if n_m < 2 ** 31 else np.int64))
    pool = torch.from_numpy(model.standardise_source(members))
    clus = torch.from_numpy(model.standardise_cluster(np.asarray(cluster_features)))
    t["support_sets"] += time.perf_counter() - t0

    t0 = time.perf_counter()
    workers = int(threads) if threads else torch.get_num_threads()
    logits = set_logits(model.network_, src, clus, support, pool, chunk=batch_size, threads=1,
                        workers=workers, mode=network)
    member = logits[:, 1] > logits[:, 0]                   # softmax(member) > 0.5
    t["network"] += time.perf_counter() - t0
    out[idx] = member.numpy().reshape(idx.size, n_samples).mean(axis=1)
    return out


def probability_summary(p: np.ndarray, thresholds: tuple[float, ...]) -> dict[str, Any]:
    """Number of sources with probability >= each threshold (for logs and metadata)."""
    p = np.asarray(p)
    return {f"n_p_ge_{th:g}": int(np.sum(p >= th)) for th in thresholds}


#: Columns of the member lists, in order (those present in the sets).
OUTPUT_COLUMNS: tuple[str, ...] = (
    "source_id", "ra", "dec", "l", "b", "parallax", "parallax_error", "pmra", "pmra_error",
    "pmdec", "pmdec_error", "phot_g_mean_mag", "phot_g_mean_mag_error", "phot_bp_mean_mag",
    "phot_rp_mean_mag", "g_rp", "g_rp_error", "ruwe", *SOURCE_FEATURES, "pass_pm", "pass_plx",
    "pass_iso", "candidate", "training_member", "probability",
)


def cluster_seed(seed: int, name: str) -> int:
    """The seed of one cluster: ``[membership] seed`` mixed with the cluster name."""
    return int(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]).generate_state(1)[0])


def evaluate_sets(candidates: pd.DataFrame, members: pd.DataFrame, params: Any, curve: Any,
                  model: Any, settings: Any, name: str, *, threads: int | None = None,
                  timings: dict[str, float] | None = None) -> pd.DataFrame:
    """The member list of one cluster: ``candidates`` with their probabilities.

    Parameters
    ----------
    candidates, members : DataFrame
        The ``sets`` tables (features and Gaia columns).
    params : ClusterParams
    curve : IsochroneCurve
    model : DeepSetsClassifier
        Its set size ``n_support`` is the one used (the model defines it).
    settings
        The ``[membership]`` settings: ``n_samples``, ``seed``, ``batch_size``,
        ``exclude_self``, ``correlate_g_colour`` and, if present, ``network``
        (default ``exact``).
    name : str
        The cluster (its name seeds its random stream, :func:`cluster_seed`).
    threads : int, optional
        CPUs of the Monte Carlo (``threads`` of :func:`membership_probabilities`).

    Returns
    -------
    DataFrame
        ``OUTPUT_COLUMNS`` (those present), sorted by ``source_id``.
    """
    m = settings
    require_columns(members, list(SOURCE_FEATURES) + ["source_id"], f"{name}: training members")
    pool = members[list(SOURCE_FEATURES)].to_numpy(np.float64)
    own = None
    if m.exclude_self:
        pos = pd.Series(np.arange(len(members)), index=members["source_id"].to_numpy())
        pos = pos[~pos.index.duplicated()]
        own = candidates["source_id"].map(pos).fillna(-1).to_numpy(np.int64)
    p = membership_probabilities(
        candidates, pool, cluster_feature_vector(params), model, feature_function(params, curve),
        n_samples=m.n_samples, seed=cluster_seed(m.seed, name), batch_size=m.batch_size,
        own_member=own, correlate_g_colour=m.correlate_g_colour, n_support=model.n_support,
        threads=threads, network=getattr(m, "network", "exact"), timings=timings, name=name)
    out = candidates.copy()
    out["probability"] = p
    if "training_member" not in out.columns:
        out["training_member"] = out["source_id"].isin(members["source_id"])
    if "candidate" not in out.columns:
        out["candidate"] = True
    cols = [c for c in OUTPUT_COLUMNS if c in out.columns]
    return out[cols].sort_values("source_id", kind="stable").reset_index(drop=True)
