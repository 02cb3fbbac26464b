"""The simulated field and cluster cone against real Gaia DR3 (counts, parallax, proper motion)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocmembers.config import load_config
from ocmembers.sim.errors import ScanLaw, detection_probability, observe
from ocmembers.sim.galaxy import simulate_field


@pytest.fixture(scope="module")
def field():
    cfg = load_config(source="sim")
    rng = np.random.default_rng(7)
    true = simulate_field(45.0, 0.0, 0.5, rng, density=cfg.sim.field_density, g_limit=cfg.sim.g_limit)
    true = true.loc[rng.random(len(true)) < detection_probability(true["g"].to_numpy(), cfg.sim.g_limit)]
    obs, _, _ = observe(true.reset_index(drop=True), ScanLaw.draw(rng), rng)
    return obs


def test_star_counts_against_dr3_field(field, shared_data):
    """Counts per magnitude within a factor 2 of DR3 for 12 <= G < 21, total within 20 per cent."""
    real = pd.read_parquet(shared_data / "gaia" / "fields" / "ra45_dec0_r0.5deg.parquet")
    bins = np.arange(12.0, 22.0, 1.0)
    n_sim = np.histogram(field.phot_g_mean_mag, bins)[0]
    n_real = np.histogram(real.phot_g_mean_mag.dropna(), bins)[0]
    ratio = n_sim / n_real
    assert np.all((ratio > 0.5) & (ratio < 2.0)), dict(zip(bins[:-1], ratio.round(2)))
    assert n_sim.sum() / n_real.sum() == pytest.approx(1.0, abs=0.2)


def test_astrometry_distributions_against_dr3_field(field, shared_data):
    real = pd.read_parquet(shared_data / "gaia" / "fields" / "ra45_dec0_r0.5deg.parquet")
    for col, tol in (("parallax", 0.25), ("pmra", 2.5), ("pmdec", 2.5)):
        q_sim = np.nanpercentile(field[col], [25, 50, 75])
        q_real = np.nanpercentile(real[col], [25, 50, 75])
        np.testing.assert_allclose(q_sim, q_real, atol=tol, err_msg=col)
    # 2-parameter solutions at the faint end: about 16 per cent of this cone
    assert (field.astrometric_params_solved == 3).mean() == pytest.approx(
        (real.astrometric_params_solved == 3).mean(), abs=0.06)


def test_colour_distribution_against_dr3_field(field, shared_data):
    real = pd.read_parquet(shared_data / "gaia" / "fields" / "ra45_dec0_r0.5deg.parquet")
    c_sim = (field.phot_bp_mean_mag - field.phot_rp_mean_mag).to_numpy(float)
    c_real = (real.phot_bp_mean_mag - real.phot_rp_mean_mag).to_numpy(float)
    np.testing.assert_allclose(np.nanpercentile(c_sim, [25, 50, 75]), np.nanpercentile(c_real, [25, 50, 75]),
                               atol=0.3)
