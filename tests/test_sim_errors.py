"""The Gaia DR3 measurement model of the simulated sky against real DR3 and its own statements."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocmembers.sim.errors import (ZERO_POINTS, ScanLaw, ecliptic_latitude, healpix_nest, icrs_to_galactic,
                                  observe)
from ocmembers.method.columns import GAIA_COLUMNS


def _true_stars(n: int, rng: np.random.Generator, g_lo: float = 12.0, g_hi: float = 21.0) -> pd.DataFrame:
    g = rng.uniform(g_lo, g_hi, n)
    colour = rng.uniform(0.5, 2.5, n)
    return pd.DataFrame({"ra": 45 + rng.uniform(-0.5, 0.5, n), "dec": rng.uniform(-0.5, 0.5, n),
                         "parallax": rng.uniform(0.2, 3.0, n), "pmra": rng.normal(0, 5, n),
                         "pmdec": rng.normal(0, 5, n), "g": g, "bp": g + 0.4 * colour, "rp": g - 0.6 * colour,
                         "binary_wobble": np.zeros(n, bool)})


@pytest.fixture(scope="module")
def observed():
    rng = np.random.default_rng(42)
    true = _true_stars(60_000, rng)
    scan = ScanLaw(n_obs_g=200.0, ratio_pmra=1.05, ratio_pmdec=0.9, corr=(0.1, 0.2, -0.1, 0.0, -0.3, 0.1, 0.0,
                                                                            0.25, -0.2, 0.15))
    obs, zp, kept = observe(true, scan, rng)
    return true.iloc[kept].reset_index(drop=True), obs, zp


def test_parallax_error_vs_g_matches_dr3(observed, shared_data):
    """Median parallax_error per G bin within 25 per cent of the DR3 field cone at (45, 0)."""
    _, obs, _ = observed
    real = pd.read_parquet(shared_data / "gaia" / "fields" / "ra45_dec0_r0.5deg.parquet")
    bins = np.arange(13.0, 21.5, 1.0)
    for lo, hi in zip(bins[:-1], bins[1:]):
        s = obs.loc[(obs.phot_g_mean_mag >= lo) & (obs.phot_g_mean_mag < hi), "parallax_error"].median()
        r = real.loc[(real.phot_g_mean_mag >= lo) & (real.phot_g_mean_mag < hi), "parallax_error"].median()
        assert s == pytest.approx(r, rel=0.25), f"G {lo}-{hi}: sim {s:.3f} vs DR3 {r:.3f} mas"


def test_noise_has_stated_uncertainty_and_correlation(observed):
    true, obs, zp = observed
    five = obs.astrometric_params_solved.to_numpy() != 3
    pull_plx = ((obs.parallax - zp - true.parallax) / obs.parallax_error).to_numpy()[five]
    pull_pmra = ((obs.pmra - true.pmra) / obs.pmra_error).to_numpy()[five]
    pull_pmdec = ((obs.pmdec - true.pmdec) / obs.pmdec_error).to_numpy()[five]
    for p in (pull_plx, pull_pmra, pull_pmdec):
        assert np.mean(p) == pytest.approx(0.0, abs=0.02)
        assert np.std(p) == pytest.approx(1.0, abs=0.02)
    # the per-source correlations are those the noise was drawn with
    c = np.corrcoef(pull_plx, pull_pmra)[0, 1]
    assert c == pytest.approx(float(obs.parallax_pmra_corr[five].mean()), abs=0.02)
    c = np.corrcoef(pull_pmra, pull_pmdec)[0, 1]
    assert c == pytest.approx(float(obs.pmra_pmdec_corr[five].mean()), abs=0.02)


def test_zero_point_corrected_by_gaiadr3_zeropoint(observed):
    """Measured - true parallax averages the Lindegren et al. (2021) offset, which the package removes."""
    from zero_point import zpt

    zpt.load_tables()
    true, obs, _ = observed
    ok = (obs.astrometric_params_solved != 3) & (obs.phot_g_mean_mag < 17)
    o = obs.loc[ok]
    z = zpt.get_zpt(o.phot_g_mean_mag.to_numpy(float), o.nu_eff_used_in_astrometry.to_numpy(float),
                    o.pseudocolour.to_numpy(float), o.ecl_lat.to_numpy(float),
                    o.astrometric_params_solved.to_numpy(int), _warnings=False)
    resid = (o.parallax - true.parallax[ok]).to_numpy()
    sem = np.std(resid) / np.sqrt(resid.size)
    assert np.nanmean(z) < -0.01  # there is an offset to remove
    assert np.mean(resid) == pytest.approx(np.nanmean(z), abs=5 * sem)
    assert np.nanmean(resid - z) == pytest.approx(0.0, abs=5 * sem)


def test_fluxes_consistent_with_magnitudes(observed):
    _, obs, _ = observed
    for band in ("g", "bp", "rp"):
        mag = obs[f"phot_{band}_mean_mag"].to_numpy(float)
        flux = obs[f"phot_{band}_mean_flux"].to_numpy(float)
        ok = np.isfinite(mag)
        np.testing.assert_allclose(mag[ok], ZERO_POINTS[band] - 2.5 * np.log10(flux[ok]), atol=2e-5)
        assert np.all(obs[f"phot_{band}_n_obs"].to_numpy()[~ok] == 0)


def test_faint_end_solutions(observed):
    _, obs, _ = observed
    g = obs.phot_g_mean_mag
    aps = obs.astrometric_params_solved
    assert (aps[g < 19] == 3).mean() < 0.03
    assert (aps[g > 20.9] == 3).mean() > 0.5
    assert (aps[(g > 19) & (g < 20)] == 95).mean() > 0.3
    assert obs.parallax[aps == 3].isna().all() and obs.pseudocolour[aps == 31].isna().all()
    assert list(obs.columns) == list(GAIA_COLUMNS)


def test_healpix_source_ids_against_real_dr3(shared_data):
    """Gaia source ids encode the level-12 nested HEALPix index of the source: the real ones do too."""
    real = pd.read_parquet(shared_data / "gaia" / "fields" / "ra45_dec0_r0.5deg.parquet")
    hp = healpix_nest(real.ra.to_numpy(), real.dec.to_numpy())
    assert np.mean(hp == (real.source_id.to_numpy() >> 35)) > 0.98
    cone = pd.read_csv(shared_data / "gaia" / "cones" / "NGC_2682.csv", usecols=["source_id", "ra", "dec"])
    assert np.mean(healpix_nest(cone.ra.to_numpy(), cone.dec.to_numpy()) == (cone.source_id.to_numpy() >> 35)) > 0.98


def test_coordinates_against_real_dr3(shared_data):
    real = pd.read_parquet(shared_data / "gaia" / "fields" / "ra45_dec0_r0.5deg.parquet")
    l, b = icrs_to_galactic(real.ra.to_numpy(), real.dec.to_numpy())
    np.testing.assert_allclose(l, real.l, atol=1e-6)
    np.testing.assert_allclose(b, real.b, atol=1e-6)
    np.testing.assert_allclose(ecliptic_latitude(real.ra.to_numpy(), real.dec.to_numpy()), real.ecl_lat, atol=1e-4)
