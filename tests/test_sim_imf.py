"""Kroupa (2001) IMF: the sampled slopes are the published ones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from ocmembers.exceptions import ConfigError
from ocmembers.sim.imf import kroupa_cdf, kroupa_pdf, sample_kroupa


def _truncated_powerlaw_mle(x: np.ndarray, lo: float, hi: float) -> float:
    """Maximum-likelihood slope alpha of p(m) ~ m^-alpha on [lo, hi]."""
    def score(a: float) -> float:
        f = lambda b: np.log((hi ** (1 - b) - lo ** (1 - b)) / (1 - b))  # noqa: E731
        h = 1e-5
        return -np.sum(np.log(x)) - x.size * (f(a + h) - f(a - h)) / (2 * h)
    return brentq(score, 0.2, 3.5)


def test_slopes_recovered():
    m = sample_kroupa(300_000, np.random.default_rng(11), 0.08, 150.0)
    hi = m[m >= 0.5]
    lo = m[m < 0.5]
    a_hi = _truncated_powerlaw_mle(hi, 0.5, 150.0)
    a_lo = _truncated_powerlaw_mle(lo, 0.08, 0.5)
    # statistical error ~ (alpha-1)/sqrt(n): 0.005 and 0.003; allow 10 sigma
    assert a_hi == pytest.approx(2.3, abs=0.05)
    assert a_lo == pytest.approx(1.3, abs=0.05)


def test_fraction_between_breaks_matches_integral():
    m = sample_kroupa(200_000, np.random.default_rng(3), 0.08, 150.0)
    frac = np.mean(m < 0.5)
    c = kroupa_cdf(np.array([0.08, 0.5, 150.0]))
    expect = (c[1] - c[0]) / (c[2] - c[0])
    assert frac == pytest.approx(expect, abs=0.005)


def test_pdf_is_derivative_of_cdf():
    m = np.geomspace(0.02, 100, 50)
    h = 1e-6 * m
    num = (kroupa_cdf(m + h) - kroupa_cdf(m - h)) / (2 * h)
    np.testing.assert_allclose(num, kroupa_pdf(m), rtol=1e-4)


def test_per_star_bounds_and_errors():
    rng = np.random.default_rng(0)
    lo = np.array([0.1, 0.5, 2.0])
    m = sample_kroupa(3, rng, lo, 3.0)
    assert np.all(m >= lo) and np.all(m <= 3.0)
    with pytest.raises(ConfigError, match="IMF mass range"):
        sample_kroupa(10, rng, 2.0, 1.0)
