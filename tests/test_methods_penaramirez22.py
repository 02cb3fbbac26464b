"""XDGMM + UPMASK and the total mass of Peña Ramírez et al. (2022)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from ocmembers.config import load_config
from ocmembers.method.member_table import MethodError
from ocmembers.method.penaramirez22 import (completeness_magnitude, king_number, kroupa_integral,
                                             penaramirez22_members, total_mass)
from ocmembers.sim.synthetic import synthetic_cone

FAST = {"pr22_upmask_iterations": 5, "xd_bootstrap": 40, "upmask_random_fields": 60, "xd_max_iter": 100}


def test_recovers_separated_cluster():
    cone, truth, cluster = synthetic_cone(1500, 150, seed=3)
    cone["j_m"] = cone["phot_g_mean_mag"] - 1.5
    cone["j_msigcom"] = 0.02
    res = penaramirez22_members(cone, cluster, load_config().replace(methods=FAST))
    assert "j_m" in res.attrs["parameters"]["photometry"]
    sel = res["probability"].to_numpy() >= 0.5
    tp = (sel & truth).sum()
    assert tp / sel.sum() > 0.9
    assert tp / truth.sum() > 0.85
    assert res["p_xd"].to_numpy()[truth].mean() > 0.9
    mean = res.attrs["parameters"]["xd_mean"]
    np.testing.assert_allclose(mean, [cluster.pmra, cluster.pmdec, cluster.parallax], atol=0.05)


def test_bad_input_is_a_clear_error():
    cone, _, cluster = synthetic_cone(1500, 150, seed=3)
    with pytest.raises(MethodError, match="pmra_std"):
        penaramirez22_members(cone, cluster.drop("pmra_std"), load_config().replace(methods=FAST))
    with pytest.raises(MethodError, match="too few"):
        penaramirez22_members(cone.iloc[:12], cluster, load_config().replace(methods=FAST))


def test_kroupa_integral_against_quadrature():
    def xi(m):  # Kroupa (2001), continuous at 0.08 and 0.5 with the same normalisation
        if m < 0.08:
            return m ** -0.3
        if m < 0.5:
            return 0.08 ** 1.0 * m ** -1.3
        return 0.08 ** 1.0 * 0.5 ** 1.0 * m ** -2.3
    for a, b, k in [(0.08, 0.5, 0), (0.1, 3.0, 1), (0.3, 0.7, 1), (0.02, 1.2, 0)]:
        want = quad(lambda m: m ** k * xi(m), a, b, points=[0.08, 0.5])[0]
        assert kroupa_integral(a, b, k) == pytest.approx(want, rel=1e-6)


def test_king_number_against_quadrature():
    k, rc, rt = 3.0, 1.5, 12.0
    def sigma(r):
        return k * (1 / np.sqrt(1 + (r / rc) ** 2) - 1 / np.sqrt(1 + (rt / rc) ** 2)) ** 2
    want = quad(lambda r: 2 * np.pi * r * sigma(r), 0, 5.0)[0]
    assert king_number(np.array([5.0]), k, rc, rt)[0] == pytest.approx(want, rel=1e-8)


def test_total_mass_of_a_simulated_cluster():
    """Stars drawn from the Kroupa IMF (0.08-2 Msun), masses -> G by a monotonic toy isochrone,
    observed only to G = 17 and inside r_max: the estimate recovers the true total mass."""
    rng = np.random.default_rng(11)
    grid = np.linspace(0.08, 2.0, 4000)
    pdf = np.where(grid < 0.5, grid ** -1.3, 0.5 * grid ** -2.3)
    cdf = np.cumsum(pdf)
    cdf /= cdf[-1]
    m = np.interp(rng.random(4000), cdf, grid)
    true_total = m.sum()
    iso_m = np.linspace(0.08, 2.0, 300)
    iso_g = 20.0 - 6.0 * np.log10(iso_m / 0.08)     # apparent G, brighter for heavier stars
    g = np.interp(m, iso_m, iso_g)
    r = 1.0 * np.sqrt(rng.random(m.size) ** (-2 / 3) - 1)   # Plummer, a = 1 (unbounded)
    r = np.minimum(r, 30.0)
    seen = (g <= 17.0) & (r < 30.0)
    est = total_mass(r[seen], g[seen], np.ones(seen.sum()), iso_m, iso_g, g_complete=17.0, r_max=30.0)
    assert est.total == pytest.approx(true_total, rel=0.15)
    assert est.m_complete == pytest.approx(np.interp(17.0, iso_g[::-1], iso_m[::-1]), rel=1e-3)
    assert est.uncertainty == 0.0                      # all p = 1


def test_completeness_magnitude_is_the_turnover():
    rng = np.random.default_rng(0)
    # counts rising as 10^(0.3 G) up to G = 18, then a sharp drop (incompleteness)
    u = rng.random(5000)
    g = np.log10(10 ** (0.3 * 10) + u * (10 ** (0.3 * 18) - 10 ** (0.3 * 10))) / 0.3
    g = np.r_[g, rng.uniform(18, 20, 300)]
    assert completeness_magnitude(g, bin_width=0.5) == pytest.approx(18.0, abs=0.51)
    with pytest.raises(MethodError, match="need at least 10"):
        total_mass(np.ones(3), np.ones(3), np.ones(3), np.array([0.1, 1.0]), np.array([20.0, 10.0]))


def test_total_mass_from_members_shifts_the_isochrone():
    import pandas as pd

    from ocmembers.method.penaramirez22 import A_G_OVER_A0, total_mass_from_members
    rng = np.random.default_rng(5)
    n = 800
    iso = pd.DataFrame({"Mini": np.linspace(0.1, 1.5, 200)})
    iso["Gmag"] = 12.0 - 5.0 * np.log10(iso["Mini"] / 0.1)          # absolute
    m = rng.uniform(0.3, 1.4, n)
    cluster = pd.Series({"name": "X", "ra": 50.0, "dec": 10.0, "dist_pc": 500.0, "dist_mod": 8.5, "a0": 0.3})
    shift = 8.5 + A_G_OVER_A0 * 0.3
    g = np.interp(m, iso["Mini"], iso["Gmag"]) + shift
    off = rng.normal(0, 0.3, (2, n))
    cone = pd.DataFrame({"source_id": np.arange(n), "ra": 50.0 + off[0] / np.cos(np.radians(10.0)),
                         "dec": 10.0 + off[1], "phot_g_mean_mag": g})
    members = pd.DataFrame({"source_id": np.arange(n), "probability": np.ones(n)})
    est = total_mass_from_members(members, cone, iso, cluster, g_complete=float(g.max()) + 0.01)
    # every member is brighter than the completeness limit: "observed" is the sum of the true masses
    assert est.observed == pytest.approx(m.sum(), rel=1e-3)
