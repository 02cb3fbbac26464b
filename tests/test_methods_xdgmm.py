"""Extreme deconvolution: ocmembers.method.xdgmm."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from ocmembers.method.member_table import MethodError
from ocmembers.method.xdgmm import XDGMM, compact_component, differential_entropy

MEANS = np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 3.0]])
COVS = np.array([np.diag([1.0, 2.0, 0.5]),
                 [[0.04, 0.01, 0.0], [0.01, 0.02, 0.0], [0.0, 0.0, 0.01]]])
N = (2500, 500)


@pytest.fixture(scope="module")
def noisy():
    """Two Gaussians observed with heteroscedastic errors (up to 3x the compact one's width)."""
    rng = np.random.default_rng(42)
    x = np.concatenate([rng.multivariate_normal(MEANS[j], COVS[j], N[j]) for j in range(2)])
    err = rng.uniform(0.05, 0.5, x.shape)
    s = np.zeros((len(x), 3, 3))
    s[:, np.arange(3), np.arange(3)] = err ** 2
    return x + err * rng.standard_normal(x.shape), s


@pytest.fixture(scope="module")
def fitted(noisy):
    x, s = noisy
    return XDGMM(n_components=2, max_iter=300, tol=1e-7, random_state=0).fit(x, s)


def test_recovers_intrinsic_means_and_covariances(fitted):
    order = np.argsort(fitted.means_[:, 0])
    m, v, w = fitted.means_[order], fitted.covariances_[order], fitted.weights_[order]
    np.testing.assert_allclose(m, MEANS, atol=0.08)
    np.testing.assert_allclose(w, np.array(N) / sum(N), atol=0.02)
    # the deconvolved compact covariance, not the (much wider) noisy one
    np.testing.assert_allclose(v[1], COVS[1], atol=0.012)
    np.testing.assert_allclose(np.diag(v[0]), np.diag(COVS[0]), rtol=0.12)


def test_entropy_formula_and_compact_choice(fitted):
    for c in COVS:
        assert differential_entropy(c[None])[0] == pytest.approx(multivariate_normal(cov=c).entropy())
    comp = compact_component(fitted, sum(N))
    assert np.allclose(fitted.means_[comp], MEANS[1], atol=0.1)


def test_bootstrap_membership(fitted, noisy):
    x, s = noisy
    comp = compact_component(fitted, sum(N))
    p = fitted.bootstrap_membership(x, s, comp, n_boot=40, seed=1)
    assert p[N[0]:].mean() > 0.95
    assert p[: N[0]].mean() < 0.02
    assert np.all((p >= 0) & (p <= 1))


def test_bad_input_is_a_clear_error():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(15, 3))
    s = np.tile(np.eye(3) * 0.01, (15, 1, 1))
    with pytest.raises(MethodError, match="too few"):
        XDGMM(n_components=10).fit(x, s)
    x2 = rng.normal(size=(100, 3))
    s2 = np.tile(np.eye(3) * 0.01, (100, 1, 1))
    x2[3, 1] = np.nan
    with pytest.raises(MethodError, match="NaN"):
        XDGMM(n_components=2).fit(x2, s2)
    with pytest.raises(MethodError, match="covariances must be"):
        XDGMM(n_components=2).fit(x2[:, :2], s2)


def test_degenerate_data_no_library_crash():
    """Identical points with zero errors: a MethodError, never a LinAlgError."""
    x = np.ones((60, 3))
    s = np.zeros((60, 3, 3))
    try:
        model = XDGMM(n_components=3, max_iter=20, random_state=0).fit(x, s)
    except MethodError:
        return
    # if it fits, the result must be finite and the choice must be explicit
    assert np.all(np.isfinite(model.means_))


def test_no_compact_component_is_a_clear_error(fitted):
    with pytest.raises(MethodError, match="no compact"):
        compact_component(fitted, sum(N), min_stars=10 * sum(N))


def test_closed_form_3x3_inverse_matches_lapack():
    from ocmembers.method.xdgmm import _slogdet_inv
    rng = np.random.default_rng(3)
    a = rng.normal(size=(500, 4, 3, 3))
    t = a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(3)
    sign, logdet, inv = _slogdet_inv(t)
    s2, l2 = np.linalg.slogdet(t)
    np.testing.assert_array_equal(sign, s2)
    np.testing.assert_allclose(logdet, l2, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(inv, np.linalg.inv(t), rtol=1e-8, atol=1e-8)


def test_a_component_that_loses_its_stars_is_dropped(noisy):
    """Start one component on a far outlier: EM removes it (n_dropped_) and fits the rest."""
    x, s = noisy
    x = np.concatenate([x, [[400.0, -400.0, 400.0]]])
    s = np.concatenate([s, 1e-6 * np.eye(3)[None]])
    xd = XDGMM(n_components=3, max_iter=300, random_state=0)
    w, m, v = xd._init(x, np.random.default_rng(0))
    m[2] = [1e4, 1e4, 1e4]                     # nowhere near any star
    v[2] = 1e-4 * np.eye(3)
    out = xd._em(x, s, w, m, v)
    assert out[6] == 1 and len(out[0]) == 2
    assert np.isclose(out[0].sum(), 1.0)


def test_the_catalogue_choice_picks_the_component_at_the_catalogued_cluster():
    """A tight group of a few stars far from the cluster has the lowest entropy; the catalogue
    choice takes the component at the catalogued proper motion and parallax instead."""
    from types import SimpleNamespace
    from ocmembers.method.xdgmm import catalogue_component
    model = SimpleNamespace(
        weights_=np.array([0.02, 0.18, 0.80]),
        means_=np.array([[5.0, 5.0, 2.0], [-1.0, 2.0, 1.0], [0.0, 0.0, 0.5]]),
        covariances_=np.array([np.eye(3) * 1e-4, np.diag([0.04, 0.04, 0.01]), np.eye(3) * 25.0]),
        entropies=lambda: differential_entropy(model.covariances_))
    assert compact_component(model, 5000, 10.0) == 0                      # the collapsed group
    assert catalogue_component(model, 5000, np.array([-1.1, 2.05, 1.02]), np.array([0.2, 0.2, 0.05])) == 1
    with pytest.raises(MethodError, match="no component holds"):
        catalogue_component(model, 100, np.zeros(3), np.ones(3), min_stars=1e6)


def _bovy_step(x, s, weights, means, covs, reg):
    """One EM step written as Eqs. 16-18 of Bovy et al. (2011), star by star in arrays of
    (n, K, d, d): the reference the sufficient-statistics E and M steps must equal."""
    n, d = x.shape
    t = covs[None] + s[:, None]
    tinv = np.linalg.inv(t)
    w = x[:, None, :] - means[None]
    maha = np.einsum("nki,nkij,nkj->nk", w, tinv, w)
    logp = np.log(weights)[None] - 0.5 * (d * np.log(2 * np.pi) + np.linalg.slogdet(t)[1] + maha)
    lse = np.logaddexp.reduce(logp, axis=1)
    q = np.exp(logp - lse[:, None])
    b = means[None] + np.einsum("kij,nkjl,nkl->nki", covs, tinv, w)
    bb = covs[None] - np.einsum("kij,nkjl,klm->nkim", covs, tinv, covs)
    qj = q.sum(0)
    m = np.einsum("nk,nki->ki", q, b) / qj[:, None]
    diff = b - m[None]
    v = (np.einsum("nk,nki,nkj->kij", q, diff, diff) + np.einsum("nk,nkij->kij", q, bb)
         + reg * np.eye(d)[None]) / (qj + 1)[:, None, None]
    return lse.mean(), qj / n, m, v


@pytest.mark.parametrize("d", [2, 3])
def test_the_e_and_m_steps_are_bovy_et_al_eqs_16_to_18(d):
    rng = np.random.default_rng(5)
    n, k = 3000, 4
    x = rng.normal(0, 2, (n, d))
    a = rng.normal(0, 0.3, (n, d, d))
    s = np.einsum("nij,nkj->nik", a, a) + 0.01 * np.eye(d)
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(0, 1, (k, d))
    b = rng.normal(0, 0.8, (k, d, d))
    covs = np.einsum("kij,klj->kil", b, b) + 0.1 * np.eye(d)
    xd = XDGMM(n_components=k, reg_covar=1e-3)
    ll, qj, su, suu, st = xd._e_step(x, s, weights, means, covs)
    w1, m1, v1 = xd._m_step(n, qj, su, suu, st, means, covs)
    ll0, w0, m0, v0 = _bovy_step(x, s, weights, means, covs, 1e-3)
    assert ll == pytest.approx(ll0, rel=1e-12)
    np.testing.assert_allclose(w1, w0, rtol=1e-10)
    np.testing.assert_allclose(m1, m0, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(v1, v0, rtol=1e-9, atol=1e-11)


def test_bootstrap_reassignment_equals_redrawing_every_measurement(fitted, noisy):
    """The quadratic-in-z form of the bootstrap gives the assignments of redrawing each
    measurement from N(w_i, S_i) and taking the most responsible component (same deviates)."""
    x, s = noisy
    comp = compact_component(fitted, len(x))
    n_boot = 7
    p = fitted.bootstrap_membership(x, s, comp, n_boot=n_boot, seed=11)
    from ocmembers.method.xdgmm import BOOT_CHUNK
    rng = np.random.default_rng(11)   # the documented order: (n_boot, chunk, d) per chunk of stars
    z = np.concatenate([rng.standard_normal((n_boot, min(BOOT_CHUNK, len(x) - a), 3))
                        for a in range(0, len(x), BOOT_CHUNK)], axis=1)
    xb = x[None] + np.einsum("nij,bnj->bni", np.linalg.cholesky(s + 1e-12 * np.eye(3)), z)
    assign = np.stack([np.argmax(fitted.log_responsibilities(xi, s), axis=1) for xi in xb])
    np.testing.assert_array_equal(p, (assign == comp).mean(axis=0))
