"""The simulated sky observed as Gaia DR4 would (issue 15 item 3, part): release and epoch are
configuration; the same stars, DR4's smaller errors, positions at the release's epoch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocmembers.config import load_config
from ocmembers.exceptions import ConfigError
from ocmembers.sim.errors import RELEASE_EPOCHS, RELEASE_ERROR_FACTORS, ScanLaw, observe


@pytest.fixture(scope="module")
def true_stars():
    rng = np.random.default_rng(5)
    n = 3000
    g = rng.uniform(12, 20.5, n)
    return pd.DataFrame({"ra": rng.uniform(132, 133, n), "dec": rng.uniform(11, 12, n),
                         "parallax": np.full(n, 1.1), "pmra": rng.normal(-11, 3, n), "pmdec": rng.normal(-3, 3, n),
                         "g": g, "bp": g + 0.5, "rp": g - 0.6, "binary_wobble": np.zeros(n, bool)})


def _observe(true, **kw):
    scan = ScanLaw.draw(np.random.default_rng(1))
    return observe(true, scan, np.random.default_rng(2), **kw)[0]


def test_dr4_errors_are_dr3_scaled_for_the_same_stars(true_stars):
    dr3, dr4 = _observe(true_stars), _observe(true_stars, release="dr4")
    f_plx, f_pm = RELEASE_ERROR_FACTORS["dr4"]
    assert (f_plx, f_pm) == (0.75, 0.4) and RELEASE_EPOCHS["dr4"] == 2017.5
    np.testing.assert_array_equal(dr3["source_id"], dr4["source_id"])
    ok = np.isfinite(dr3["parallax_error"].to_numpy())
    np.testing.assert_allclose(dr4["parallax_error"][ok], f_plx * dr3["parallax_error"][ok], rtol=1e-6)
    np.testing.assert_allclose(dr4["pmra_error"][ok], f_pm * dr3["pmra_error"][ok], rtol=1e-6)
    np.testing.assert_array_equal(dr3["phot_g_mean_mag"], dr4["phot_g_mean_mag"])   # photometry as DR3's


def test_positions_at_the_release_epoch(true_stars):
    at16, at175 = _observe(true_stars), _observe(true_stars, epoch_offset_yr=1.5)
    ddec = (at175["dec"] - at16["dec"]).to_numpy() * 3.6e6
    np.testing.assert_allclose(ddec, 1.5 * true_stars["pmdec"].to_numpy(), atol=1e-3)   # mas
    np.testing.assert_array_equal(at16["parallax"], at175["parallax"])


def test_the_release_is_a_checked_key_and_the_default_sky_is_dr3():
    assert load_config().sim.release == "dr3" and load_config().cone.epoch == 2016.0
    # the simulated sky's epoch is its own; the archive's must be the release's (test_release.py)
    assert load_config(source="sim", overrides=["sim.release=dr4", "cone.epoch=2017.5"]).sim.release == "dr4"
    with pytest.raises(ConfigError, match="sim.release"):
        load_config(overrides=["sim.release=dr5"])
