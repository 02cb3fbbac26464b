"""The ideal (Bayes) classifier of the truth benchmark: the estimator against known answers and
the calibration table (the stage's tables: tests/test_sim_truthbench_run.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ocmembers.method.ideal import calibration_table, density_ratio, kernel_sum, posterior, scott_bandwidth


def _gauss(x: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Density of N(mu, cov[i]) at x[i] (2-D, vectorised)."""
    d = x - mu
    inv = np.linalg.inv(cov)
    maha = np.einsum("ik,ikl,il->i", d, inv, d)
    return np.exp(-0.5 * maha) / (2 * np.pi * np.sqrt(np.linalg.det(cov)))


@pytest.fixture(scope="module")
def two_gaussians():
    """Cluster N(0, 0.25 I), field N((1, 0.5), [[2, .3], [.3, 1]]), pi = 0.3; each star measured with
    its own correlated errors. The true posterior is analytic: the Gaussians convolved with S_i."""
    rng = np.random.default_rng(1)
    mu_c, cov_c = np.zeros(2), np.eye(2) * 0.25
    mu_f, cov_f = np.array([1.0, 0.5]), np.array([[2.0, 0.3], [0.3, 1.0]])
    m, pi = 800, 0.3
    member = rng.random(m) < pi
    xt = np.where(member[:, None], rng.multivariate_normal(mu_c, cov_c, m), rng.multivariate_normal(mu_f, cov_f, m))
    sig, rho = rng.uniform(0.05, 1.0, m), rng.uniform(-0.5, 0.5, m)
    s = np.zeros((m, 2, 2))
    s[:, 0, 0], s[:, 1, 1] = sig ** 2, (0.8 * sig) ** 2
    s[:, 0, 1] = s[:, 1, 0] = rho * 0.8 * sig ** 2
    x = xt + np.einsum("ikl,il->ik", np.linalg.cholesky(s), rng.normal(size=(m, 2)))
    f_c = _gauss(x, mu_c, cov_c + s)
    f_f = _gauss(x, mu_f, cov_f + s)
    truth = pi * f_c / (pi * f_c + (1 - pi) * f_f)
    draws = {n: (rng.multivariate_normal(mu_c, cov_c, n), rng.multivariate_normal(mu_f, cov_f, n))
             for n in (1500, 15000)}
    return {"x": x, "s": s, "pi": pi, "truth": truth, "draws": draws, "member": member}


def _estimate(problem, n, **kw):
    yc, yf = problem["draws"][n]
    h = np.array([0.02, 0.02])
    kc, nc = kernel_sum(yc, problem["x"], problem["s"], h, **kw)
    kf, nf = kernel_sum(yf, problem["x"], problem["s"], h, **kw)
    return posterior(problem["pi"], kc / n, kf / n), nc


def test_estimator_converges_to_the_analytic_posterior(two_gaussians):
    err = {}
    for n in (1500, 15000):
        p, _ = _estimate(two_gaussians, n)
        err[n] = np.abs(p - two_gaussians["truth"])
    assert np.mean(err[15000]) < 0.008
    assert np.quantile(err[15000], 0.99) < 0.05
    assert np.mean(err[15000]) < 0.6 * np.mean(err[1500])     # more draw points, closer
    # the estimate is itself calibrated: mean posterior against the members' fraction
    p, _ = _estimate(two_gaussians, 15000)
    assert abs(p.mean() - two_gaussians["member"].mean()) < 0.03


def test_thinning_stays_unbiased_and_bounded(two_gaussians):
    full, n_near = _estimate(two_gaussians, 15000)
    thin, n_near2 = _estimate(two_gaussians, 15000, pair_budget=300, seed=3)
    assert np.array_equal(n_near, n_near2)                     # the support counted before thinning
    assert np.median(n_near) > 300                             # so thinning did act
    assert np.mean(np.abs(thin - two_gaussians["truth"])) < 0.035
    assert np.mean(np.abs(thin - full)) < 0.035


def test_kernel_sum_in_runs_of_stars_is_the_same_sum(two_gaussians):
    """max_pairs bounds the pairs found at once (crowded cones): the stars of a group taken in
    runs give the same sums, up to the order of the additions, with and without thinning."""
    yc, _ = two_gaussians["draws"][15000]
    x, s, h = two_gaussians["x"], two_gaussians["s"], np.array([0.02, 0.02])
    for budget in (3000, 300):
        whole, n1 = kernel_sum(yc, x, s, h, pair_budget=budget, seed=1)
        runs, n2 = kernel_sum(yc, x, s, h, pair_budget=budget, seed=1, max_pairs=5000, chunk=777)
        assert np.array_equal(n1, n2)
        np.testing.assert_allclose(runs, whole, rtol=1e-12, atol=0)
        assert np.count_nonzero(whole) > 0.9 * whole.size


def test_kernel_sum_exact_and_missing_coordinates():
    # one point, one star: the sum is the Gaussian with covariance S + H exactly
    y = np.array([[0.0, 0.0]])
    x = np.array([[0.3, -0.2], [0.3, np.nan]])
    s = np.array([[[0.04, 0.01], [0.01, 0.09]], [[0.04, 0.0], [0.0, 0.0]]])
    h = np.array([0.1, 0.2])
    tot, near = kernel_sum(y, x, s, h)
    c = s[0] + np.diag(h ** 2)
    assert tot[0] == pytest.approx(_gauss(x[:1], np.zeros(2), c[None])[0], rel=1e-12)
    # the missing second coordinate is marginalised: a 1-D Gaussian in the first
    var = 0.04 + 0.01
    assert tot[1] == pytest.approx(np.exp(-0.5 * 0.09 / var) / np.sqrt(2 * np.pi * var), rel=1e-12)
    assert list(near) == [1, 1]
    # points beyond k_sigma are left out
    far, n_far = kernel_sum(np.array([[10.0, 0.0]]), x[:1], s[:1], h, k_sigma=4.0)
    assert far[0] == 0.0 and n_far[0] == 0
    with pytest.raises(ValueError, match="bandwidth"):
        kernel_sum(y, x, s, np.array([0.0, 0.1]))


def test_posterior_and_ratio_edge_cases():
    p = posterior(0.25, np.array([1.0, 0.0, 0.0, 2.0]), np.array([1.0, 1.0, 0.0, 0.0]))
    assert p[0] == pytest.approx(0.25) and p[1] == 0.0 and p[2] == 0.0 and p[3] == 1.0
    r = density_ratio(np.array([2.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]))
    assert r[0] == 2.0 and np.isinf(r[1]) and np.isnan(r[2])
    with pytest.raises(ValueError):
        posterior(1.5, np.ones(1), np.ones(1))
    h = scott_bandwidth(np.random.default_rng(0).normal(0, 2.0, (10000, 3)))
    assert h == pytest.approx(np.full(3, 2.0 * 10000 ** (-1 / 7)), rel=0.05)


def test_calibration_table_known_answer():
    p = np.array([0.05, 0.05, 0.15, 0.55, 0.55, 0.55, 0.55, 0.95, 1.0, 1.0])
    t = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 0], bool)
    c = calibration_table(p, t).set_index("lo")
    assert list(c["n"]) == [2, 1, 0, 0, 0, 4, 0, 0, 0, 3]
    assert c.loc[0.0, "frac_true"] == 0.0 and c.loc[0.0, "mean_p"] == pytest.approx(0.05)
    assert c.loc[0.1, "frac_true"] == 1.0
    assert c.loc[0.5, "frac_true"] == 0.5 and c.loc[0.5, "frac_err"] == pytest.approx(0.25)
    assert c.loc[0.5, "gap"] == pytest.approx(-0.05)
    assert c.loc[0.9, "mean_p"] == pytest.approx(2.95 / 3) and c.loc[0.9, "frac_true"] == pytest.approx(2 / 3)
    assert np.isnan(c.loc[0.2, "mean_p"]) and np.isnan(c.loc[0.2, "frac_true"])
    # a calibrated p: frac_true follows mean_p
    rng = np.random.default_rng(2)
    q = rng.random(200000)
    cal = calibration_table(q, rng.random(q.size) < q)
    assert np.all(np.abs(cal["gap"]) < 0.01)


def test_the_field_draw_is_thinned_only_past_its_cap():
    """Past the cap the kept points are halved at random, each then standing for 1/rate drawn
    ones: the weighted count (and a weighted sum) stays unbiased, n_cut counts every point,
    and below the cap nothing is drawn (the draws of ordinary cones are unchanged)."""
    from ocmembers.sim.ideal import _Thinned
    rng = np.random.default_rng(0)
    chunks = [rng.normal(size=(5000, 7)) for _ in range(20)]
    below = _Thinned(10**6, np.random.default_rng(1))
    for c in chunks:
        below.add(c, c[:, 0] > 0)
    assert below.rate == 1.0 and np.array_equal(below.points(), np.concatenate(chunks))
    state = np.random.default_rng(1).bit_generator.state
    assert below.rng.bit_generator.state == state                      # no draw below the cap
    sums, counts = [], []
    for seed in range(40):
        t = _Thinned(12_000, np.random.default_rng(seed))
        for c in chunks:
            t.add(c, c[:, 0] > 0)
        pts = t.points()
        assert len(pts) <= 12_000 and t.rate == 1 / 16
        assert t.n_cut == sum(int((c[:, 0] > 0).sum()) for c in chunks)
        counts.append(len(pts) / t.rate)
        sums.append(np.exp(pts[:, 1]).sum() / t.rate)
    full = np.exp(np.concatenate(chunks)[:, 1]).sum()
    assert abs(np.mean(counts) / 100_000 - 1) < 0.02
    assert abs(np.mean(sums) / full - 1) < 0.03
