"""The numeric helpers of the simulated sky give numpy's values bit for bit (ocmembers.sim._numeric)."""

from __future__ import annotations

import numpy as np
import pytest

from ocmembers.sim._numeric import Interpolator, clip
from ocmembers.sim.galaxy import POPULATIONS
from ocmembers.sim.isochrones import model_isochrone


def test_clip_is_numpy_clip():
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.normal(0, 1, 10000), [np.nan, -0.0, 0.0, np.inf, -np.inf, 0.45, -0.45]])
    for lo, hi in ((-0.45, 0.45), (1e-9, None), (-1, 1)):
        assert np.array_equal(clip(a, lo, hi), np.clip(a, lo, hi), equal_nan=True)
    i = rng.integers(-5, 9, 1000)
    assert np.array_equal(clip(i, 0, 3), np.clip(i, 0, 3))


@pytest.mark.parametrize("pop", [POPULATIONS[0], POPULATIONS[-1]], ids=lambda p: p.name)
def test_interpolator_is_np_interp(pop):
    iso = model_isochrone(pop.log_age, pop.mh)
    xp = iso["Mini"].to_numpy()
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(xp[0] - 0.1, xp[-1] + 1, 200_000), xp, np.nextafter(xp, np.inf),
                        np.nextafter(xp, -np.inf), 0.3 * rng.uniform(0.05, 2, 50_000), [np.nan, -np.inf, np.inf]])
    ip = Interpolator(xp)
    j = ip.index(x)
    ok = ~np.isnan(x)
    assert np.array_equal(j[ok], np.searchsorted(xp, x[ok], side="right") - 1)
    for col in ("Gmag", "G_BPmag", "G_RPmag", "logTe"):
        fp = iso[col].to_numpy()
        assert np.array_equal(ip.at(j, x, fp), np.interp(x, xp, fp), equal_nan=True), col
    # a grid with an infinite value: numpy's NaN fallbacks
    fp = np.linspace(0, 1, xp.size)
    fp[5] = np.inf
    assert np.array_equal(ip.at(j, x, fp), np.interp(x, xp, fp), equal_nan=True)


def test_interpolator_on_geometric_and_linear_grids():
    """The grids of the field's distance bins and of the line-of-sight extinction."""
    rng = np.random.default_rng(11)
    for xp, bins in ((np.sqrt(np.geomspace(2.0, 6e4, 801)[1:] * np.geomspace(2.0, 6e4, 801)[:-1]), 1 << 18),
                     (np.linspace(0.0, 7321.5, 2001), 1 << 16)):
        fp = np.cumsum(rng.random(xp.size))
        x = np.concatenate([np.exp(rng.uniform(0, np.log(7e4), 200_000)), xp, [0.0, -1.0, np.nan]])
        assert np.array_equal(Interpolator(xp, bins=bins).interp(x, fp), np.interp(x, xp, fp), equal_nan=True)
