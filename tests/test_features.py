"""Tests of ocmembers.method.features: Eqs. 13-17 and the exact curve distance."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ocmembers.method.features import (CLUSTER_FEATURES, FEATURES, add_features, angular_separation,
                                isochrone_condition, isochrone_separation, nearest_on_curve,
                                parallax_separation, pm_separation, projected_radius, source_features)
from ocmembers.method.isochrones import IsochroneCurve


def params(**kw):
    base = dict(ra=10.0, dec=20.0, dist_pc=1000.0, pmra=-1.0, pmdec=2.0, parallax=1.0,
                delta_c=0.2, delta_g=1.6)
    base.update(kw)
    return SimpleNamespace(**base)


def wiggly_curve(n: int = 60, seed: int = 3) -> IsochroneCurve:
    rng = np.random.default_rng(seed)
    g = np.sort(rng.uniform(8, 20, n))
    c = 0.6 + 0.4 * np.sin(g / 2) + rng.normal(0, 0.03, n)
    conn = np.ones(n - 1, dtype=bool)
    conn[n // 2] = False                       # one gap
    return IsochroneCurve(colour=c, g=g, connected=conn)


def brute_force(colour, g, curve, sc, sg):
    """Distance to every segment and every vertex (test side only)."""
    P = curve.points / np.array([sc, sg])
    A, B = P[:-1][curve.connected], P[1:][curve.connected]
    x, y = colour[:, None] / sc, g[:, None] / sg
    u = B - A
    t = np.clip(((x - A[:, 0]) * u[:, 0] + (y - A[:, 1]) * u[:, 1]) / (u ** 2).sum(1), 0, 1)
    d_seg = np.hypot(x - (A[:, 0] + t * u[:, 0]), y - (A[:, 1] + t * u[:, 1])).min(1)
    d_vert = np.hypot(x - P[:, 0], y - P[:, 1]).min(1)
    return np.minimum(d_seg, d_vert)


def test_names():
    assert FEATURES == ("f_r", "f_pm", "f_plx", "f_c", "f_g")
    assert CLUSTER_FEATURES == ("a0", "log_age", "parallax")


def test_projected_radius_hand_cases():
    # 1 deg along the equator at D = 1000 pc: 1000 * pi/180 = 17.4533 pc.
    assert projected_radius(np.array([1.0]), np.array([0.0]), params(ra=0.0, dec=0.0))[0] == pytest.approx(17.45329, rel=1e-6)
    # Across the pole: (0, 89) to (180, 89) is 2 deg.
    assert np.rad2deg(angular_separation(np.array([180.0]), np.array([89.0]), 0.0, 89.0))[0] == pytest.approx(2.0)
    # Across ra = 0: (359.5, 0) to (0.5, 0) is 1 deg.
    assert np.rad2deg(angular_separation(np.array([359.5]), np.array([0.0]), 0.5, 0.0))[0] == pytest.approx(1.0)
    # Tiny separations keep full precision (arccos would give 0): 1 mas at D = 1000 pc = 4.8481e-6 pc.
    tiny = projected_radius(np.array([10.0]), np.array([20.0 + 1 / 3.6e6]), params())[0]
    assert tiny == pytest.approx(1000 * np.deg2rad(1 / 3.6e6), rel=1e-9)
    # Antipode: pi.
    assert angular_separation(np.array([190.0]), np.array([-20.0]), 10.0, 20.0)[0] == pytest.approx(np.pi)


def test_pm_and_parallax_separation():
    # Offsets (3, -4) mas/yr from the cluster mean: f_pm = 5 (Eq. 15).
    assert pm_separation(np.array([2.0]), np.array([-2.0]), params())[0] == pytest.approx(5.0)
    # Eq. 16 keeps the sign.
    np.testing.assert_allclose(parallax_separation(np.array([0.7, 1.3]), params()), [-0.3, 0.3])


def test_curve_distance_hand_case():
    # An L: (0, 0) -> (0, 2) -> (1, 2) with Delta_C = 0.5, Delta_G = 1 (scaled: (0,0)-(0,2)-(2,2)).
    curve = IsochroneCurve(colour=np.array([0.0, 0.0, 1.0]), g=np.array([0.0, 2.0, 2.0]),
                           connected=np.array([True, True]))
    f_c, f_g = isochrone_separation(np.array([0.25, 0.5, -0.5]), np.array([1.0, 3.0, -1.0]), curve, 0.5, 1.0)
    # (0.25, 1): nearest on the vertical leg at (0, 1) -> (0.25, 0).
    # (0.5, 3): nearest on the horizontal leg at (0.5, 2) -> (0, 1).
    # (-0.5, -1): nearest is the end (0, 0) -> (-0.5, -1).
    np.testing.assert_allclose(f_c, [0.25, 0.0, -0.5])
    np.testing.assert_allclose(f_g, [0.0, 1.0, -1.0])
    _, _, d = nearest_on_curve(np.array([0.25]), np.array([1.0]), curve, 0.5, 1.0)
    assert d[0] == pytest.approx(0.5)            # 0.25 / 0.5


def test_curve_distance_equals_brute_force():
    rng = np.random.default_rng(7)
    curve = wiggly_curve()
    for sc, sg in [(0.2, 1.6), (0.05, 3.0), (1.0, 0.1)]:
        c = rng.uniform(-0.5, 2.0, 3000)
        g = rng.uniform(6, 22, 3000)
        c_ic, g_ic, d = nearest_on_curve(c, g, curve, sc, sg)
        np.testing.assert_allclose(d, brute_force(c, g, curve, sc, sg), atol=1e-12)
        np.testing.assert_allclose(np.hypot((c - c_ic) / sc, (g - g_ic) / sg), d, atol=1e-12)


def _former_best_on_segments(x, y, idx, pts, connected):
    """The numpy form the compiled pass replaced: every candidate segment at once, argmin."""
    from ocmembers.method.features import _neighbours, _project
    b1, b2 = _neighbours(idx, connected, len(pts))
    ax, ay = pts[idx, 0], pts[idx, 1]
    q1x, q1y, d1 = _project(x[:, None], y[:, None], ax, ay, pts[b1, 0], pts[b1, 1])
    q2x, q2y, d2 = _project(x[:, None], y[:, None], ax, ay, pts[b2, 0], pts[b2, 1])
    qx, qy, dd = (np.concatenate(p, axis=1) for p in ((q1x, q2x), (q1y, q2y), (d1, d2)))
    j, r = np.argmin(dd, axis=1), np.arange(len(x))
    return qx[r, j], qy[r, j], dd[r, j]


def test_compiled_segment_search_is_bitwise_the_numpy_one():
    """The compiled nearest-segment pass gives the very bits of the numpy form it replaced
    (the features, and so the trained model and p, must not move), on a curve with gaps,
    a repeated vertex (a zero-length segment) and both ends, for k = 1 and 4 vertices."""
    from ocmembers.method.features import _best_on_segments
    rng = np.random.default_rng(3)
    pts = np.column_stack([np.cumsum(rng.uniform(0, 0.1, 300)), np.cumsum(rng.normal(0, 0.1, 300))])
    pts[101] = pts[100]
    connected = rng.random(299) > 0.05
    x, y = rng.uniform(-1, pts[:, 0].max() + 1, 20_000), rng.normal(0, 2, 20_000)
    for k in (1, 4):
        idx = rng.integers(0, 300, (20_000, k))
        idx[:50, 0] = 0
        idx[50:100, 0] = 299
        got = _best_on_segments(x, y, idx, pts, connected)
        for a, b in zip(got, _former_best_on_segments(x, y, idx, pts, connected)):
            np.testing.assert_array_equal(a, b)


def test_curve_distance_any_shape_and_nan():
    curve = wiggly_curve()
    empty = isochrone_separation(np.array([]), np.array([]), curve, 0.2, 1.6)
    assert empty[0].shape == (0,)
    c = np.array([[0.5, np.nan], [1.0, 0.7]])
    g = np.array([[12.0, 13.0], [np.nan, 15.0]])
    f_c, f_g = isochrone_separation(c, g, curve, 0.2, 1.6)
    assert f_c.shape == (2, 2) and np.isnan(f_c[0, 1]) and np.isnan(f_g[1, 0]) and np.isfinite(f_c[[0, 1], [0, 1]]).all()
    flat = isochrone_separation(c.ravel(), g.ravel(), curve, 0.2, 1.6)
    np.testing.assert_array_equal(flat[0], f_c.ravel())
    with pytest.raises(ValueError):
        nearest_on_curve(np.array([1.0]), np.array([1.0]), curve, 0.0, 1.0)


def test_isochrone_condition_equals_brute_force():
    rng = np.random.default_rng(11)
    curve = wiggly_curve()
    n = 2000
    c, g = rng.uniform(-0.5, 2.0, n), rng.uniform(6, 22, n)
    sig_c, sig_g = rng.uniform(0, 0.3, n), rng.uniform(0, 0.6, n)
    sig_c[:5] = np.nan
    got = isochrone_condition(c, g, sig_c, sig_g, curve, 0.15, 1.2, 3.0)
    sc, sg = 3 * sig_c + 0.15, 3 * sig_g + 1.2
    expect = np.array([brute_force(c[i:i + 1], g[i:i + 1], curve, sc[i], sg[i])[0] < 1
                       if np.isfinite(sc[i]) else False for i in range(n)])
    np.testing.assert_array_equal(got, expect)
    assert 0.2 < got.mean() < 0.95


def test_source_features_columns():
    curve = wiggly_curve()
    tab = pd.DataFrame({"ra": [10.0, 10.5], "dec": [20.0, 20.0], "pmra": [-1.0, 2.0], "pmdec": [2.0, 6.0],
                        "parallax": [1.0, 0.5], "g_rp": [0.6, 1.0], "phot_g_mean_mag": [12.0, 15.0]})
    p = params()
    x = source_features(tab, p, curve)
    assert x.shape == (2, 5)
    assert x[0, 0] == 0.0 and x[0, 1] == 0.0 and x[1, 1] == pytest.approx(5.0) and x[1, 2] == pytest.approx(-0.5)
    # 0.5 deg in ra at dec 20: theta = 0.46985 deg -> 8.2004 pc at 1000 pc.
    assert x[1, 0] == pytest.approx(1000 * angular_separation(np.array([10.5]), np.array([20.0]), 10, 20)[0])
    out = add_features(tab, p, curve)
    assert list(out.columns[-5:]) == list(FEATURES)
