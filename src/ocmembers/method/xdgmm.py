r"""Extreme-deconvolution Gaussian mixtures (XDGMM) and the entropy choice of the cluster.

Extreme deconvolution (Bovy, Hogg & Roweis 2011, AOAS 5, 1657; "XD") fits
the *intrinsic* distribution of noisy, heteroscedastic measurements
:math:`\mathbf{w}_i = \mathbf{v}_i + \boldsymbol{\epsilon}_i`,
:math:`\boldsymbol{\epsilon}_i \sim \mathcal{N}(0, \mathbf{S}_i)`, by a mixture
of :math:`K` Gaussians :math:`(\alpha_j, \mathbf{m}_j, \mathbf{V}_j)`. The
likelihood of star :math:`i` is
:math:`\sum_j \alpha_j\,\mathcal{N}(\mathbf{w}_i \mid \mathbf{m}_j, \mathbf{T}_{ij})`
with :math:`\mathbf{T}_{ij} = \mathbf{V}_j + \mathbf{S}_i`. Their EM algorithm
(Eqs. 16-18 of Bovy et al. 2011, with :math:`\mathbf{R}_i = \mathbf{I}`):

E step

.. math::

    q_{ij} = \frac{\alpha_j \mathcal{N}(\mathbf{w}_i|\mathbf{m}_j,\mathbf{T}_{ij})}
                  {\sum_k \alpha_k \mathcal{N}(\mathbf{w}_i|\mathbf{m}_k,\mathbf{T}_{ik})},\quad
    \mathbf{b}_{ij} = \mathbf{m}_j + \mathbf{V}_j \mathbf{T}_{ij}^{-1}(\mathbf{w}_i-\mathbf{m}_j),\quad
    \mathbf{B}_{ij} = \mathbf{V}_j - \mathbf{V}_j \mathbf{T}_{ij}^{-1}\mathbf{V}_j

M step

.. math::

    \alpha_j = \frac{1}{N}\sum_i q_{ij},\quad
    \mathbf{m}_j = \frac{\sum_i q_{ij}\mathbf{b}_{ij}}{q_j},\quad
    \mathbf{V}_j = \frac{\sum_i q_{ij}[(\mathbf{m}_j-\mathbf{b}_{ij})(\mathbf{m}_j-\mathbf{b}_{ij})^T
                   + \mathbf{B}_{ij}] + w\mathbf{I}}{q_j + 1}

(the last with Bovy et al.'s regularisation :math:`w`, Sect. 3.2). The E step
is computed in log space for every star and component at once (batched
:math:`d\times d` inverses), so far outliers do not underflow.

The cluster component is the one of lowest differential entropy
(Ahmed & Gokhale 1989; as Jaehnig et al. 2021 and Peña Ramírez et al. 2022)

.. math::

    h_j = \tfrac{d}{2}\,(1 + \ln 2\pi) + \tfrac12 \ln\det \mathbf{V}_j ,

i.e. the most compact Gaussian in the :math:`d`-dimensional space.

Why not a package: astroML 1.0.2's ``XDGMM`` runs under numpy 2, but its EM
step inverts the :math:`N K` matrices one by one in a Python loop and
normalises the responsibilities in linear space (NaN for far outliers);
Holoien et al.'s ``xdgmm`` wraps it. This module is a vectorised
implementation of the same algorithm, tested on known mixtures.

References
----------
Bovy, J., Hogg, D. W., Roweis, S. T. 2011, Ann. Appl. Stat. 5, 1657.
Ahmed, N. A., Gokhale, D. V. 1989, IEEE Trans. Inf. Theory 35, 688.
Jaehnig, K., Bird, J., Holley-Bockelmann, K. 2021, ApJ 923, 129.
Peña Ramírez, K., González-Fernández, C., Chené, A.-N., Ramírez Alegría, S. 2022, MNRAS (VVV open clusters II), Sect. 3.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numba
import numpy as np
from scipy.special import logsumexp

from ocmembers.method.member_table import MethodError

__all__ = ["XDGMM", "differential_entropy", "covariance_from_gaia", "compact_component",
           "catalogue_component"]

_LOG2PI = np.log(2.0 * np.pi)
#: Total responsibility below which a component has lost its stars and is removed (``n_dropped_``).
DEAD_COMPONENT = 1e-8
#: Stars per chunk of the E step (arrays of E_CHUNK x K x d x d stay in cache).
E_CHUNK = 4096
#: Stars per chunk of the bootstrap: (BOOT_CHUNK, n_boot, K) scores stay small.
BOOT_CHUNK = 256


def differential_entropy(covariances: np.ndarray) -> np.ndarray:
    r"""Differential entropy of Gaussians, :math:`\tfrac d2(1+\ln 2\pi) + \tfrac12\ln\det V`.

    Parameters
    ----------
    covariances : (K, d, d) array

    Returns
    -------
    (K,) array (nats). Degenerate (non positive-definite) covariances give ``-inf``.
    """
    v = np.asarray(covariances, dtype=float)
    d = v.shape[-1]
    sign, logdet = np.linalg.slogdet(v)
    return np.where(sign > 0, 0.5 * d * (1.0 + _LOG2PI) + 0.5 * logdet, -np.inf)


def covariance_from_gaia(table, columns: tuple[str, ...] = ("pmra", "pmdec", "parallax")) -> np.ndarray:
    """Per-star covariance matrices (n, d, d) from Gaia ``*_error`` and ``*_corr`` columns.

    A missing correlation column counts as zero correlation.
    """
    n, d = len(table), len(columns)
    err = np.stack([table[f"{c}_error"].to_numpy(dtype=float) for c in columns], axis=1)
    cov = np.zeros((n, d, d))
    idx = np.arange(d)
    cov[:, idx, idx] = err ** 2
    for a in range(d):
        for b in range(a + 1, d):  # the d(d-1)/2 pairs, not stars
            ca, cb = columns[a], columns[b]
            name = f"{ca}_{cb}_corr" if f"{ca}_{cb}_corr" in table.columns else f"{cb}_{ca}_corr"
            if name in table.columns:
                rho = np.nan_to_num(table[name].to_numpy(dtype=float))
                cov[:, a, b] = cov[:, b, a] = rho * err[:, a] * err[:, b]
    return cov


def _slogdet_inv(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sign, log|det|, inverse)`` of a stack of square matrices (..., d, d); for d = 3 (the
    proper motions and parallax of PR22) by the adjugate in closed form, which is many times
    faster than LAPACK on millions of 3 x 3 matrices."""
    if t.shape[-1] != 3:
        sign, logdet = np.linalg.slogdet(t)
        return sign, logdet, np.linalg.inv(t)
    a, b, c = t[..., 0, 0], t[..., 0, 1], t[..., 0, 2]
    d, e, f = t[..., 1, 0], t[..., 1, 1], t[..., 1, 2]
    g, h, i = t[..., 2, 0], t[..., 2, 1], t[..., 2, 2]
    c00, c01, c02 = e * i - f * h, f * g - d * i, d * h - e * g
    det = a * c00 + b * c01 + c * c02
    inv = np.empty_like(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = 1.0 / det
        inv[..., 0, 0], inv[..., 1, 0], inv[..., 2, 0] = c00 * r, c01 * r, c02 * r
        inv[..., 0, 1] = (c * h - b * i) * r
        inv[..., 1, 1] = (a * i - c * g) * r
        inv[..., 2, 1] = (b * g - a * h) * r
        inv[..., 0, 2] = (b * f - c * e) * r
        inv[..., 1, 2] = (c * d - a * f) * r
        inv[..., 2, 2] = (a * e - b * d) * r
        logdet = np.log(np.abs(det))
    return np.sign(det), logdet, inv


def _kernel_threads() -> int:
    """Threads of the compiled E step: numba's, but no more than ``OMP_NUM_THREADS`` where it is
    set (a Dask worker's nanny sets it to its one thread: JOBS workers, not JOBS x cores threads)."""
    n = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(numba.config.NUMBA_NUM_THREADS, int(n))) if n.isdigit() else numba.config.NUMBA_NUM_THREADS


_PAIRS3 = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


@numba.njit(parallel=True, cache=True, fastmath=False)
def _e_sums3(x, s6, logw, means, v6, chunk):  # pragma: no cover - compiled
    """E step for d = 3 (:meth:`XDGMM._e_step`), fused per star: per chunk of stars, the log-likelihood
    and the sums of q, q u, q u u^T (6) and q T^-1 (6) per component; chunks in parallel, summed
    in chunk order afterwards, so the result does not depend on the number of threads."""
    n, k = x.shape[0], means.shape[0]
    n_chunks = (n + chunk - 1) // chunk
    acc = np.zeros((n_chunks, k, 16))
    ll = np.zeros(n_chunks)
    bad = np.zeros(n_chunks, dtype=np.bool_)
    half_log2pi3 = 1.5 * np.log(2.0 * np.pi)
    for c in numba.prange(n_chunks):
        logp = np.empty(k)
        pk = np.empty((k, 6))
        uk = np.empty((k, 3))
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            for j in range(k):
                t00 = v6[j, 0] + s6[i, 0]
                t11 = v6[j, 1] + s6[i, 1]
                t22 = v6[j, 2] + s6[i, 2]
                t01 = v6[j, 3] + s6[i, 3]
                t02 = v6[j, 4] + s6[i, 4]
                t12 = v6[j, 5] + s6[i, 5]
                c00 = t11 * t22 - t12 * t12
                c11 = t00 * t22 - t02 * t02
                c22 = t00 * t11 - t01 * t01
                c01 = t02 * t12 - t01 * t22
                c02 = t01 * t12 - t02 * t11
                c12 = t01 * t02 - t00 * t12
                det = t00 * c00 + t01 * c01 + t02 * c02
                if not det > 0.0:
                    bad[c] = True
                    det = 1.0
                r = 1.0 / det
                p00, p11, p22, p01, p02, p12 = c00 * r, c11 * r, c22 * r, c01 * r, c02 * r, c12 * r
                w0 = x[i, 0] - means[j, 0]
                w1 = x[i, 1] - means[j, 1]
                w2 = x[i, 2] - means[j, 2]
                u0 = p00 * w0 + p01 * w1 + p02 * w2
                u1 = p01 * w0 + p11 * w1 + p12 * w2
                u2 = p02 * w0 + p12 * w1 + p22 * w2
                logp[j] = logw[j] - half_log2pi3 - 0.5 * (np.log(det) + u0 * w0 + u1 * w1 + u2 * w2)
                pk[j, 0], pk[j, 1], pk[j, 2], pk[j, 3], pk[j, 4], pk[j, 5] = p00, p11, p22, p01, p02, p12
                uk[j, 0], uk[j, 1], uk[j, 2] = u0, u1, u2
            m = logp[0]
            for j in range(1, k):
                m = max(m, logp[j])
            tot = 0.0
            for j in range(k):
                tot += np.exp(logp[j] - m)
            lse = m + np.log(tot)
            ll[c] += lse
            for j in range(k):
                q = np.exp(logp[j] - lse)
                a = acc[c, j]
                a[0] += q
                a[1] += q * uk[j, 0]
                a[2] += q * uk[j, 1]
                a[3] += q * uk[j, 2]
                a[4] += q * uk[j, 0] * uk[j, 0]
                a[5] += q * uk[j, 1] * uk[j, 1]
                a[6] += q * uk[j, 2] * uk[j, 2]
                a[7] += q * uk[j, 0] * uk[j, 1]
                a[8] += q * uk[j, 0] * uk[j, 2]
                a[9] += q * uk[j, 1] * uk[j, 2]
                for f in range(6):
                    a[10 + f] += q * pk[j, f]
    total = np.zeros((k, 16))
    ll_sum = 0.0
    for c in range(n_chunks):   # in chunk order: deterministic
        total += acc[c]
        ll_sum += ll[c]
    return ll_sum, total, bad.any()


@dataclass
class XDGMM:
    """Extreme deconvolution Gaussian mixture (Bovy et al. 2011), vectorised EM.

    Parameters
    ----------
    n_components : int
        Number of Gaussians K (10 in Peña Ramírez et al. 2022).
    max_iter, tol : int, float
        EM stops when the mean log-likelihood per star improves by less than ``tol``.
    reg_covar : float
        Bovy et al.'s regularisation ``w`` added to each ``V_j`` (units of the data squared).
    n_init : int
        Independent initialisations (k-means++ seeded); the best log-likelihood is kept.
    random_state : int or None
        Seed of the initialisations.

    A component whose total responsibility falls below :data:`DEAD_COMPONENT` (one that
    started on outliers, in fields with a broad range of errors) is removed and EM goes
    on with the others: ``n_dropped_`` counts them, ``len(weights_)`` is the number kept.
    """

    n_components: int = 10
    max_iter: int = 200
    tol: float = 1e-6
    reg_covar: float = 1e-6
    n_init: int = 1
    random_state: int | None = None
    weights_: np.ndarray = field(init=False, repr=False, default=None)
    means_: np.ndarray = field(init=False, repr=False, default=None)
    covariances_: np.ndarray = field(init=False, repr=False, default=None)
    log_likelihood_: float = field(init=False, repr=False, default=np.nan)
    n_iter_: int = field(init=False, repr=False, default=0)
    converged_: bool = field(init=False, repr=False, default=False)
    n_dropped_: int = field(init=False, repr=False, default=0)

    # -- checks -----------------------------------------------------------
    def _check(self, x: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=float)
        s = np.asarray(s, dtype=float)
        if x.ndim != 2:
            raise MethodError(f"XDGMM: data must be (n, d), got shape {x.shape}")
        n, d = x.shape
        if s.shape != (n, d, d):
            raise MethodError(f"XDGMM: covariances must be ({n}, {d}, {d}), got {s.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(s))):
            raise MethodError("XDGMM: data or covariances contain NaN/inf; drop those stars first")
        if n < max(2 * self.n_components, d + 1):
            raise MethodError(f"XDGMM: {n} stars are too few for {self.n_components} components "
                              f"in {d} dimensions (need at least {max(2 * self.n_components, d + 1)})")
        return x, s

    # -- E step -------------------------------------------------------------
    def _log_resp(self, x: np.ndarray, s: np.ndarray, weights, means, covs):
        """log alpha_j N(x_i | m_j, V_j + S_i): (n, K), plus T^-1 (n, K, d, d) and
        u = T^-1 (x_i - m_j) (n, K, d)."""
        t = covs[None, :, :, :] + s[:, None, :, :]
        sign, logdet, tinv = _slogdet_inv(t)
        if np.any(sign <= 0):
            raise MethodError("XDGMM: a convolved covariance V_j + S_i is not positive definite "
                              "(degenerate covariances in the input?)")
        w = x[:, None, :] - means[None, :, :]
        u = np.einsum("nkij,nkj->nki", tinv, w)
        maha = np.einsum("nki,nki->nk", u, w)
        d = x.shape[1]
        logp = -0.5 * (d * _LOG2PI + logdet + maha) + np.log(np.maximum(weights, 1e-300))[None, :]
        return logp, tinv, u

    def _e_step(self, x, s, weights, means, covs):
        r"""Mean log-likelihood and the sums the M step needs, over chunks of stars.

        With :math:`\mathbf{u}_{ij} = \mathbf{T}_{ij}^{-1}(\mathbf{w}_i - \mathbf{m}_j)`,
        :math:`\mathbf{b}_{ij} = \mathbf{m}_j + \mathbf{V}_j\mathbf{u}_{ij}` and
        :math:`\mathbf{B}_{ij} = \mathbf{V}_j - \mathbf{V}_j\mathbf{T}_{ij}^{-1}\mathbf{V}_j`, so the
        M step of Bovy et al. (Eqs. 17-18) needs only :math:`q_j = \sum_i q_{ij}`,
        :math:`\sum_i q_{ij}\mathbf{u}_{ij}`, :math:`\sum_i q_{ij}\mathbf{u}_{ij}\mathbf{u}_{ij}^T` and
        :math:`\sum_i q_{ij}\mathbf{T}_{ij}^{-1}` (:meth:`_m_step`): nothing of size
        :math:`N K d^2` is kept, and chunks of :data:`E_CHUNK` stars stay in cache.
        """
        n, d = x.shape
        k = len(weights)
        qj, su = np.zeros(k), np.zeros((k, d))
        suu, st = np.zeros((k, d, d)), np.zeros((k, d, d))
        ll = 0.0
        if d == 3:   # PR22's (pmra, pmdec, parallax): the fused, compiled kernel
            rows, cols = zip(*_PAIRS3)
            numba.set_num_threads(_kernel_threads())
            ll, tot, bad = _e_sums3(x, np.ascontiguousarray(s[:, rows, cols]), np.log(np.maximum(weights, 1e-300)),
                                    np.ascontiguousarray(means), np.ascontiguousarray(covs[:, rows, cols]), E_CHUNK)
            if bad:
                raise MethodError("XDGMM: a convolved covariance V_j + S_i is not positive definite "
                                  "(degenerate covariances in the input?)")
            qj, su = tot[:, 0].copy(), tot[:, 1:4].copy()
            for f, (i, j) in enumerate(_PAIRS3):
                suu[:, i, j] = suu[:, j, i] = tot[:, 4 + f]
                st[:, i, j] = st[:, j, i] = tot[:, 10 + f]
            return ll / n, qj, su, suu, st
        for a in range(0, n, E_CHUNK):   # chunks of stars, not stars
            logp, tinv, u = self._log_resp(x[a:a + E_CHUNK], s[a:a + E_CHUNK], weights, means, covs)
            lse = logsumexp(logp, axis=1)
            ll += float(lse.sum())
            q = np.exp(logp - lse[:, None])                              # (c, K)
            qj += q.sum(axis=0)
            qu = q[..., None] * u
            su += qu.sum(axis=0)
            suu += np.einsum("nki,nkj->kij", qu, u)
            st += np.einsum("nk,nkij->kij", q, tinv)
        return ll / n, qj, su, suu, st

    def _m_step(self, n, qj, su, suu, st, means, covs):
        r"""Eqs. 17-18 of Bovy et al. (2011) from the sums of :meth:`_e_step`:
        :math:`\bar{\mathbf{u}}_j = \sum_i q_{ij}\mathbf{u}_{ij}/q_j`,
        :math:`\mathbf{m}_j' = \mathbf{m}_j + \mathbf{V}_j\bar{\mathbf{u}}_j` (so
        :math:`\mathbf{b}_{ij} - \mathbf{m}_j' = \mathbf{V}_j(\mathbf{u}_{ij} - \bar{\mathbf{u}}_j)`) and
        :math:`\mathbf{V}_j' = [\mathbf{V}_j(\mathbf{A}_j - \sum_i q_{ij}\mathbf{T}_{ij}^{-1})\mathbf{V}_j
        + q_j\mathbf{V}_j + w\mathbf{I}]/(q_j + 1)` with
        :math:`\mathbf{A}_j = \sum_i q_{ij}(\mathbf{u}_{ij}-\bar{\mathbf{u}}_j)(\mathbf{u}_{ij}-\bar{\mathbf{u}}_j)^T`."""
        d = means.shape[1]
        ubar = su / qj[:, None]
        new_means = means + np.einsum("kij,kj->ki", covs, ubar)
        a = suu - qj[:, None, None] * ubar[:, :, None] * ubar[:, None, :]
        new = (np.matmul(np.matmul(covs, a - st), covs) + qj[:, None, None] * covs
               + self.reg_covar * np.eye(d)[None]) / (qj + 1.0)[:, None, None]
        return qj / n, new_means, 0.5 * (new + np.transpose(new, (0, 2, 1)))

    def _init(self, x: np.ndarray, rng: np.random.Generator):
        from sklearn.cluster import kmeans_plusplus

        k, d = self.n_components, x.shape[1]
        centres, _ = kmeans_plusplus(x, k, random_state=int(rng.integers(2**31 - 1)))
        lab = np.argmin(((x[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        weights = np.bincount(lab, minlength=k).astype(float) + 1.0
        weights /= weights.sum()
        glob = np.cov(x.T).reshape(d, d)
        covs = np.empty((k, d, d))
        for j in range(k):  # K components, not stars
            xs = x[lab == j]
            covs[j] = np.cov(xs.T).reshape(d, d) if len(xs) > d else glob / k
            covs[j] += np.eye(d) * (1e-3 * np.trace(glob) / d + self.reg_covar)
        return weights, centres.copy(), covs

    def _em(self, x, s, weights, means, covs):
        n = len(x)
        prev = -np.inf
        ll = -np.inf
        it = 0
        converged = False
        dropped = 0
        for it in range(1, self.max_iter + 1):
            ll, qj, su, suu, st = self._e_step(x, s, weights, means, covs)
            dead = qj < DEAD_COMPONENT
            if np.any(dead):
                # a component that lost all its stars (e.g. started on an outlier) is removed and EM
                # goes on with the others (counted in n_dropped_); never the last one
                if dead.all():
                    raise MethodError("XDGMM: every component lost its stars")
                dropped += int(dead.sum())
                keep = ~dead
                weights, means, covs = weights[keep] / weights[keep].sum(), means[keep], covs[keep]
                prev = -np.inf
                continue
            weights, means, covs = self._m_step(n, qj, su, suu, st, means, covs)
            if abs(ll - prev) < self.tol:
                converged = True
                break
            prev = ll
        return weights, means, covs, ll, it, converged, dropped

    # -- public API ----------------------------------------------------------
    def fit(self, x: np.ndarray, s: np.ndarray) -> "XDGMM":
        """Fit the mixture to data ``x`` (n, d) with per-star covariances ``s`` (n, d, d)."""
        x, s = self._check(x, s)
        rng = np.random.default_rng(self.random_state)
        best = None
        for _ in range(max(1, self.n_init)):
            w0, m0, v0 = self._init(x, rng)
            res = self._em(x, s, w0, m0, v0)
            if best is None or res[3] > best[3]:
                best = res
        (self.weights_, self.means_, self.covariances_, self.log_likelihood_,
         self.n_iter_, self.converged_, self.n_dropped_) = best
        return self

    def _require_fitted(self) -> None:
        if self.means_ is None:
            raise MethodError("XDGMM: call fit() first")

    def log_responsibilities(self, x: np.ndarray, s: np.ndarray) -> np.ndarray:
        """log q_ij (n, K): posterior log-probability of each component for each star."""
        self._require_fitted()
        x = np.asarray(x, dtype=float)
        s = np.asarray(s, dtype=float)
        logp, _, _ = self._log_resp(x, s, self.weights_, self.means_, self.covariances_)
        return logp - logsumexp(logp, axis=1)[:, None]

    def entropies(self) -> np.ndarray:
        """Differential entropy of each fitted component (nats)."""
        self._require_fitted()
        return differential_entropy(self.covariances_)

    def bootstrap_membership(self, x: np.ndarray, s: np.ndarray, component: int,
                             n_boot: int = 200, seed: int | None = None) -> np.ndarray:
        """Fraction of ``n_boot`` re-assignments in which each star falls in ``component``.

        In each of the ``n_boot`` iterations every star's measurement is redrawn
        from :math:`\\mathcal{N}(\\mathbf{w}_i, \\mathbf{S}_i)` and assigned to the
        component of highest responsibility (Peña Ramírez et al. 2022, Sect. 3:
        "We recompute component assignments for each star for a total of 200
        iterations"). The convolved inverses :math:`\\mathbf{T}_{ij}^{-1}` and
        determinants do not change between iterations and are computed once.

        With the redrawn measurement :math:`\\mathbf{w}_i + \\mathbf{L}_i\\mathbf{z}`
        (:math:`\\mathbf{S}_i = \\mathbf{L}_i\\mathbf{L}_i^T`, :math:`\\mathbf{z} \\sim \\mathcal{N}(0, \\mathbf{I})`)
        the log-responsibility of component :math:`j` is a quadratic in :math:`\\mathbf{z}`
        whose coefficients (:meth:`_bootstrap_coefficients`) do not change between draws,
        so all ``n_boot`` draws of a chunk of stars are one batched product
        (features of z) x (coefficients). The deviates are drawn chunk by chunk of
        :data:`BOOT_CHUNK` stars, ``(n_boot, chunk, d)`` each.
        """
        self._require_fitted()
        x = np.asarray(x, dtype=float)
        s = np.asarray(s, dtype=float)
        n, d = x.shape
        rng = np.random.default_rng(seed)
        hits = np.zeros(n)
        for a in range(0, n, BOOT_CHUNK):   # chunks of stars
            coef, pairs = self._bootstrap_coefficients(x[a:a + BOOT_CHUNK], s[a:a + BOOT_CHUNK])
            c = len(coef)
            z = rng.standard_normal((n_boot, c, d)).transpose(1, 0, 2)          # (c, n_boot, d)
            feats = np.empty((c, n_boot, coef.shape[1]))
            feats[..., 0] = 1.0
            feats[..., 1:1 + d] = z
            for f, (i, j) in enumerate(pairs):
                feats[..., 1 + d + f] = z[..., i] * z[..., j]
            score = np.matmul(feats, coef)                                      # (c, n_boot, K)
            hits[a:a + c] = (np.argmax(score, axis=2) == component).sum(axis=1)
        return hits / n_boot

    def _bootstrap_coefficients(self, x: np.ndarray, s: np.ndarray):
        r"""Coefficients of :math:`\ln\alpha_j - \tfrac12\ln|\mathbf{T}_{ij}| - \tfrac12
        (\mathbf{w}_i + \mathbf{L}_i\mathbf{z} - \mathbf{m}_j)^T\mathbf{T}_{ij}^{-1}(\ldots)` in
        :math:`\mathbf{z}`: (n, 1 + d + d(d+1)/2, K), the constant, the linear terms
        :math:`-\mathbf{L}_i^T\mathbf{u}_{ij}` and the quadratic terms of
        :math:`-\tfrac12\mathbf{L}_i^T\mathbf{T}_{ij}^{-1}\mathbf{L}_i` (off-diagonal ones twice)
        in the order of the returned pairs (i <= j)."""
        n, d = x.shape
        k = len(self.weights_)
        pairs = [(i, i) for i in range(d)] + [(i, j) for i in range(d) for j in range(i + 1, d)]
        # Cholesky factors of the measurement covariances (jitter for zero errors)
        chol = np.linalg.cholesky(s + 1e-12 * np.eye(d)[None])
        coef = np.empty((n, 1 + d + len(pairs), k))
        # the constant term is the log-responsibility at z = 0 (up to -d/2 ln 2 pi, the same for every j)
        coef[:, 0], tinv, u = self._log_resp(x, s, self.weights_, self.means_, self.covariances_)
        coef[:, 1:1 + d] = -np.einsum("nji,nkj->nik", chol, u)                 # -L^T u
        q2 = np.einsum("nai,nkab,nbj->nkij", chol, tinv, chol, optimize=True)  # L^T T^-1 L
        for f, (i, j) in enumerate(pairs):
            coef[:, 1 + d + f] = (-0.5 if i == j else -1.0) * q2[:, :, i, j]
        return coef, pairs


def compact_component(model: XDGMM, n_stars: int, min_stars: float = 10.0) -> int:
    """Index of the lowest-entropy component holding at least ``min_stars`` stars.

    Raises :class:`MethodError` when no component qualifies (no compact component).
    """
    h = model.entropies()
    ok = (model.weights_ * n_stars >= min_stars) & np.isfinite(h)
    if not np.any(ok):
        raise MethodError(f"XDGMM: no component holds >= {min_stars} stars; no compact cluster component")
    return int(np.flatnonzero(ok)[np.argmin(h[ok])])


def catalogue_component(model: XDGMM, n_stars: int, target: np.ndarray, target_sd: np.ndarray,
                        min_stars: float = 10.0) -> int:
    r"""Index of the component nearest the catalogued cluster, of those holding ``min_stars`` stars.

    Peña Ramírez et al. (2022, Sect. 3) identify the cluster "from their published
    coordinates, proper motions, and parallaxes"; the lowest-entropy rule
    (:func:`compact_component`) is how they describe the choice among
    components, and on crowded simulated fields it often picks a collapsed
    group of a few stars or a field component. This is the other reading: the
    component whose mean is nearest ``target`` (pmra, pmdec, parallax of the
    catalogue) in the metric of its own covariance plus the catalogued
    dispersions ``target_sd``, :math:`(\mu_k - t)^T (V_k + D)^{-1} (\mu_k - t)`.

    Raises :class:`MethodError` when no component qualifies.
    """
    ok = model.weights_ * n_stars >= min_stars
    if not np.any(ok):
        raise MethodError(f"XDGMM: no component holds >= {min_stars} stars")
    d = model.means_ - np.asarray(target, float)[None, :]
    cov = model.covariances_ + np.diag(np.asarray(target_sd, float) ** 2)[None, :, :]
    m2 = np.einsum("ki,kij,kj->k", d, np.linalg.inv(cov), d)
    m2 = np.where(ok, m2, np.inf)
    return int(np.argmin(m2))
