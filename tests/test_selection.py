"""Tests of ocmembers.method.selection: cluster parameters (Eqs. 6-12) and the candidate conditions (Eqs. 3-5)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from ocmembers import load_config
from ocmembers.exceptions import TooFewMembersError
from ocmembers.method.features import isochrone_condition
from ocmembers.method.isochrones import IsochroneCurve
from ocmembers.method.selection import (ClusterParams, candidate_conditions, cluster_parameters, parallax_deltas,
                                 radius_fraction, required_isochrone_scale, sky_centre, weighted_mean)

CFG = load_config()


def straight_curve(step: float = 0.01) -> IsochroneCurve:
    g = np.arange(8.0, 20.0 + step / 2, step)
    return IsochroneCurve(colour=0.2 + 0.05 * (g - 8.0), g=g, connected=np.ones(len(g) - 1, bool))


def test_weighted_mean_eq7():
    # values 1, 3 with errors 1, 2: weights 1, 1/4 -> mean 1.75/1.25 = 1.4, error 1/sqrt(1.25) = 0.894427.
    m, e = weighted_mean(np.array([1.0, 3.0]), np.array([1.0, 2.0]))
    assert m == pytest.approx(1.4) and e == pytest.approx(0.8944272)


def test_sky_centre_across_ra_zero():
    ra, dec = sky_centre(np.array([359.0, 1.0]), np.array([0.0, 0.0]))
    assert (ra % 360.0) == pytest.approx(0.0, abs=1e-9) or ra == pytest.approx(360.0)
    assert dec == pytest.approx(0.0, abs=1e-12)


def test_r90():
    # Radii 1..10: the smallest radius holding 90% (9 of 10) of the members is 9.
    assert radius_fraction(np.arange(1.0, 11.0), 0.9) == 9.0
    # 1..20: 18 of 20 -> 18.
    assert radius_fraction(np.arange(20.0, 0, -1), 0.9) == 18.0


def test_parallax_deltas_eq9():
    # plx = 1 mas (1000 pc), R_max = 100 pc, sigma_c = 0.01, sigma_0 = 0.015:
    # plus:  |1 - 1000/1100| = 0.0909091 + 0.03 + 0.045 = 0.1659091
    # minus: |1 - 1000/900|  = 0.1111111 + 0.075       = 0.1861111
    plus, minus = parallax_deltas(1.0, 100.0, 0.01, 0.015)
    assert plus == pytest.approx(0.1659091, abs=1e-7) and minus == pytest.approx(0.1861111, abs=1e-7)
    # A cluster nearer than R_max has no nearer boundary.
    assert math.isinf(parallax_deltas(20.0, 60.0, 0.01, 0.015)[1])


def test_required_scale_hand_cases():
    curve = IsochroneCurve(colour=np.array([0.0]), g=np.array([0.0]), connected=np.zeros(0, bool))
    # Zero errors; ratio 8. (0.3, 0): colour-limited, x = 0.3. (0, 1.6): 1.6 / (8 x) = 1 -> x = 0.2.
    # (0.3, 2.4): 0.09/x^2 + 0.09/x^2 = 1 -> x = sqrt(0.18) = 0.4242641.
    # (0.3, 0) with sigma_C = 0.05 (3 sigma = 0.15): x = 0.15. Inside the error ellipse already: 0.
    x = required_isochrone_scale(np.array([0.3, 0.0, 0.3, 0.3, 0.01]), np.array([0.0, 1.6, 2.4, 0.0, 0.0]),
                                 np.array([0.0, 0.0, 0.0, 0.05, 0.01]), np.zeros(5), curve)
    np.testing.assert_allclose(x, [0.3, 0.2, 0.4242641, 0.15, 0.0], atol=1e-9)


def test_delta_90_property():
    rng = np.random.default_rng(5)
    curve = straight_curve(0.005)
    n = 400
    g = rng.uniform(9, 19, n)
    c = 0.2 + 0.05 * (g - 8.0) + rng.normal(0, 0.04, n) + (rng.random(n) < 0.1) * 0.3   # 10% outliers
    sc, sg = rng.uniform(0.001, 0.02, n), rng.uniform(0.0005, 0.005, n)
    x = required_isochrone_scale(c, g, sc, sg, curve, ratio=8.0)
    dc90 = float(np.quantile(x, 0.9, method="inverted_cdf"))

    def frac(dc):
        return isochrone_condition(c, g, sc, sg, curve, dc, 8 * dc, 3.0).mean()

    assert frac(dc90 * (1 + 1e-9)) >= 0.9
    assert frac(dc90 * 0.99) < 0.9
    # Each member's scale is where it starts to pass.
    i = np.argsort(x)[n // 2]
    assert not isochrone_condition(c[[i]], g[[i]], sc[[i]], sg[[i]], curve, x[i] * 0.999, 8 * x[i] * 0.999)[0]
    assert isochrone_condition(c[[i]], g[[i]], sc[[i]], sg[[i]], curve, x[i] * 1.001, 8 * x[i] * 1.001)[0]


def members_table(n: int = 50, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.uniform(10, 18, n)
    return pd.DataFrame({
        "ra": 100 + rng.normal(0, 0.1, n), "dec": -10 + rng.normal(0, 0.1, n),
        "pmra": rng.normal(2.0, 0.1, n), "pmra_error": rng.uniform(0.02, 0.1, n),
        "pmdec": rng.normal(-3.0, 0.2, n), "pmdec_error": rng.uniform(0.02, 0.1, n),
        "parallax": rng.normal(1.0, 0.05, n), "parallax_error": rng.uniform(0.02, 0.1, n),
        "g_rp": 0.2 + 0.05 * (g - 8.0) + rng.normal(0, 0.02, n), "g_rp_error": np.full(n, 0.005),
        "phot_g_mean_mag": g, "phot_g_mean_mag_error": np.full(n, 0.002),
    })


CLUSTER = pd.Series({"name": "TEST_1", "a0": 0.3, "log_age": 9.0, "dist_mod": 10.0, "dist_pc": 1000.0})


def test_cluster_parameters_equations():
    m = members_table()
    curve = straight_curve()
    p = cluster_parameters(m, CLUSTER, curve, CFG)
    for col, mean, err in [("pmra", p.pmra, p.pmra_error), ("parallax", p.parallax, p.parallax_error)]:
        w = 1 / m[f"{col}_error"] ** 2
        assert mean == pytest.approx((w * m[col]).sum() / w.sum())
        assert err == pytest.approx(1 / np.sqrt(w.sum()))
    assert p.pmra_std == pytest.approx(m["pmra"].std(ddof=0))
    # Eq. 6
    assert p.delta_pm == pytest.approx(np.hypot(3 * p.pmra_std + 3 * p.pmra_error, 3 * p.pmdec_std + 3 * p.pmdec_error))
    # Eq. 10 and 9
    assert p.r_max == pytest.approx(p.r_90 + 15.0)
    plus, minus = parallax_deltas(p.parallax, p.r_max, p.parallax_error, 0.015)
    assert (p.delta_plx_plus, p.delta_plx_minus) == (plus, minus)
    # Eqs. 11-12
    assert p.delta_g_90 == pytest.approx(8 * p.delta_c_90)
    assert p.delta_c == pytest.approx(p.delta_c_90 + 0.1) and p.delta_g == pytest.approx(p.delta_g_90 + 0.8)
    assert p.n_members == 50 and p.dist_pc == 1000.0
    np.testing.assert_allclose(p.cluster_features(), [0.3, 9.0, p.parallax])
    # R_90 holds 90% of the members about the centre.
    from ocmembers.method.features import projected_radius
    r = projected_radius(m["ra"].to_numpy(), m["dec"].to_numpy(), p)
    assert (r <= p.r_90).mean() >= 0.9 and (r < p.r_90).mean() < 0.9


def test_params_round_trip_with_infinity():
    p = cluster_parameters(members_table(), CLUSTER, straight_curve(), CFG)
    p = dataclasses.replace(p, delta_plx_minus=math.inf)
    d = json.loads(json.dumps(p.to_dict()))
    assert d["delta_plx_minus"] is None
    assert ClusterParams.from_dict(d) == p


def test_too_few_members():
    with pytest.raises(TooFewMembersError, match="TEST_1"):
        cluster_parameters(members_table(4), CLUSTER, straight_curve(), CFG)


def test_candidate_conditions_hand_cases():
    p = dataclasses.replace(cluster_parameters(members_table(), CLUSTER, straight_curve(), CFG),
                            pmra=0.0, pmdec=0.0, delta_pm=1.0, parallax=1.0,
                            delta_plx_plus=0.1, delta_plx_minus=0.2, delta_c=0.1, delta_g=0.8)
    z = np.zeros(6)
    src = pd.DataFrame({
        # Eq. 3: (0.6, 0.6) -> 0.849 < 1 pass; (0.8, 0.8) -> 1.131 fail;
        # (0.8, 0.8) with errors 0.1 -> scale 1.3 -> 0.870 pass.
        "pmra": [0.6, 0.8, 0.8, 0.0, 0.0, 0.0], "pmdec": [0.6, 0.8, 0.8, 0.0, 0.0, 0.0],
        "pmra_error": [0, 0, 0.1, 0, 0, 0], "pmdec_error": [0, 0, 0.1, 0, 0, 0],
        # Eq. 4: plx 0.85 (< plx_c, Delta+ = 0.1) fails; 1.15 (Delta- = 0.2) passes;
        # 0.85 with error 0.02 (scale 0.16) passes.
        "parallax": [1.0, 1.0, 1.0, 0.85, 1.15, 0.85], "parallax_error": [0, 0, 0, 0, 0, 0.02],
        # Eq. 5 against the straight curve C = 0.2 + 0.05 (G - 8): at G = 12 it is 0.4.
        "phot_g_mean_mag": [12.0, 12.0, 12.0, 12.0, 12.0, 12.0],
        "g_rp": [0.45, 0.4, 0.4, 0.4, 0.4, 0.6], "g_rp_error": z, "phot_g_mean_mag_error": z,
    })
    out = candidate_conditions(src, p, straight_curve(), CFG)
    assert list(out["pass_pm"]) == [True, False, True, True, True, True]
    assert list(out["pass_plx"]) == [True, True, True, False, True, True]
    # Eq. 5 by hand: in units of (Delta_C, Delta_G) = (0.1, 0.8) the curve is the line
    # x - 0.4 y + 2 = 0 and the star (C, 12) is at (10 C, 15): distance |10 C - 4| / sqrt(1.16).
    # C = 0.45 -> 0.464 (pass), C = 0.4 -> 0 (pass), C = 0.6 -> 1.857 (fail).
    assert list(out["pass_iso"]) == [True, True, True, True, True, False]
    assert list(out["candidate"]) == [True, False, True, False, True, False]
