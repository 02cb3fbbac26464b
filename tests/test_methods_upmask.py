"""UPMASK: ocmembers.method.upmask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import pdist, squareform

from ocmembers.config import load_config
from ocmembers.method.member_table import MethodError
from ocmembers.sim.synthetic import synthetic_cone
from ocmembers.method.upmask import (UPMASK, mst_lengths, photometry_columns, sky_window,
                                      upmask_members)

FAST = {"upmask_iterations": 5, "upmask_random_fields": 60}


def test_mst_lengths_match_dense_mst():
    rng = np.random.default_rng(3)
    xy = rng.random((400, 2))
    lab = rng.integers(-1, 6, 400)            # -1: ignored
    got = mst_lengths(xy, lab, 6)
    want = [minimum_spanning_tree(squareform(pdist(xy[lab == g]))).sum() for g in range(6)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_window_disc_for_cone_box_for_box():
    rng = np.random.default_rng(0)
    r, phi = np.sqrt(rng.random(2000)), 2 * np.pi * rng.random(2000)
    assert sky_window(np.stack([r * np.cos(phi), r * np.sin(phi)], 1)).kind == "disc"
    assert sky_window(rng.random((2000, 2)) * [2, 1]).kind == "box"


def test_recovers_separated_cluster():
    cone, truth, cluster = synthetic_cone(1200, 150, seed=2)
    res = upmask_members(cone, cluster, load_config().replace(methods=FAST))
    sel = res["probability"].to_numpy() >= 0.5
    tp = (sel & truth).sum()
    assert tp / sel.sum() > 0.85
    assert tp / truth.sum() > 0.9
    assert res.attrs["parameters"]["space"] == "astrometry"


def test_uniform_field_gets_low_probabilities():
    """No cluster: positions uniform and independent of the features."""
    rng = np.random.default_rng(7)
    n = 1000
    r, phi = np.sqrt(rng.random(n)), 2 * np.pi * rng.random(n)
    xy = np.stack([r * np.cos(phi), r * np.sin(phi)], 1)
    feats = rng.normal(size=(n, 3))
    p = UPMASK(n_iterations=8, n_random=60, random_state=1).fit_predict(feats, np.full((n, 3), 0.1), xy)
    assert p.mean() < 0.1
    assert np.quantile(p, 0.95) <= 0.5


def test_photometry_columns_accept_nir_spellings():
    t = pd.DataFrame(columns=["phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag", "Jmag", "h_m", "Ksmag"])
    assert photometry_columns(t) == ["phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag",
                                     "Jmag", "h_m", "Ksmag"]


def test_too_few_and_bad_input_are_clear_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(MethodError, match="too few"):
        UPMASK(stars_per_group=25).fit_predict(rng.random((30, 2)), np.zeros((30, 2)), rng.random((30, 2)))
    f = rng.random((100, 2))
    f[0, 0] = np.nan
    with pytest.raises(MethodError, match="NaN"):
        UPMASK().fit_predict(f, np.zeros((100, 2)), rng.random((100, 2)))
    with pytest.raises(MethodError, match="space"):
        cone, _, cluster = synthetic_cone(100, 10)
        upmask_members(cone, cluster, None, space="colours")


def test_mst_of_three_points_without_qhull():
    """Three points (qhull's Delaunay needs four): the MST of each group, exactly."""
    from ocmembers.method.upmask_sky import mst_lengths
    xy = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0]])
    assert mst_lengths(xy, np.array([0, 0, 0]), 1)[0] == pytest.approx(7.0)
    assert mst_lengths(xy, np.array([0, 1, 1]), 2).tolist() == pytest.approx([0.0, 4.0])
