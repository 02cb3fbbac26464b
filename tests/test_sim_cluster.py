"""One simulated cluster cone: schema, cuts, determinism, kinematics, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocmembers.config import load_config
from ocmembers.exceptions import ConfigError, IsochroneRangeError, TooFewMembersError
from ocmembers.sim.cluster import TRUTH_COLUMNS, simulate_cone
from ocmembers.sim.galaxy import K_PM
from ocmembers.method.columns import GAIA_COLUMNS, cluster_row
from ocmembers.sources.local import apply_cone_cuts
from ocmembers.sim.source import embedded_cluster_table


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    # no shared data: the embedded table and the model isochrones (runs anywhere)
    return load_config(source="sim", local_dir=str(tmp_path_factory.mktemp("nodata")))


@pytest.fixture(scope="module")
def m67():
    return cluster_row(embedded_cluster_table(), "NGC_2682")


@pytest.fixture(scope="module")
def sim(cfg, m67):
    return simulate_cone(m67, cfg)


def test_schema_equals_real_cone(sim, shared_data):
    real = pd.read_parquet(shared_data / "gaia" / "fields" / "ra45_dec0_r0.5deg.parquet")
    assert list(sim.cone.columns) == list(GAIA_COLUMNS)
    for c in GAIA_COLUMNS:
        assert sim.cone[c].dtype == real[c].dtype, c
    assert sim.cone["source_id"].is_unique
    assert list(sim.truth.columns) == list(TRUTH_COLUMNS)
    assert (sim.truth["source_id"].to_numpy() == sim.cone["source_id"].to_numpy()).all()


def test_cone_is_what_the_archive_query_returns(sim, cfg, m67):
    again = apply_cone_cuts(sim.cone, m67, radius_pc=cfg.cone.radius_pc, n_sigma=cfg.cone.n_sigma)
    assert len(again) == len(sim.cone)
    # and the cuts were not trivially loose: a field population was cut away
    assert sim.meta["n_field_generated"] > 5 * (~sim.truth["is_member"]).sum()


def test_deterministic(cfg, m67, sim):
    again = simulate_cone(m67, cfg)
    pd.testing.assert_frame_equal(again.cone, sim.cone)
    pd.testing.assert_frame_equal(again.truth, sim.truth)
    other = simulate_cone(m67, cfg.replace(sim={"seed": cfg.sim.seed + 1}))
    assert len(np.intersect1d(other.cone["source_id"], sim.cone["source_id"])) < 0.01 * len(sim.cone)


def test_members_match_catalogue(sim, m67, cfg):
    t, c = sim.truth, sim.cone
    bright = t["is_member"].to_numpy() & (c["phot_g_mean_mag"].to_numpy() < 18)
    bound = bright & (t["population"].to_numpy() == "cluster")
    # the bound stars: n07 of CG20 (members with G < 18) times n_members_factor, within 15 per
    # cent (some stars fall outside the 50 pc cone or the Eq. 1-2 cuts); the escaped stars of
    # [sim] structure = corona_tails come on top (M67: 246 of 1305 with G < 18)
    assert bound.sum() == pytest.approx(cfg.sim.n_members_factor * float(m67["n_members"]), rel=0.15)
    assert bound.sum() <= bright.sum() < 1.3 * bound.sum()
    # the cluster is where the catalogue says
    assert np.median(c.pmra[bright]) == pytest.approx(float(m67["pmra"]), abs=0.03)
    assert np.median(c.pmdec[bright]) == pytest.approx(float(m67["pmdec"]), abs=0.03)
    assert np.median(t.parallax_true[t.is_member]) == pytest.approx(float(m67["parallax"]) + 0.029, rel=0.01)
    # measured = true + zero point (about -0.02 to -0.04 mas at these magnitudes)
    assert np.median(c.parallax[bright]) == pytest.approx(float(m67["parallax"]), abs=0.02)


def test_pm_dispersion_recovered(sim, m67):
    """Intrinsic pm dispersion from measured pm minus errors equals the simulated sigma_v (the bound
    stars: the escaped ones of corona_tails drift along the tails at ~1 km/s, by design)."""
    t, c = sim.truth, sim.cone
    sel = (t["is_member"].to_numpy() & (c["phot_g_mean_mag"].to_numpy() < 17) & (t["q"].to_numpy() == 0)
           & (t["population"].to_numpy() == "cluster"))
    var = 0.5 * (np.var(c.pmra[sel]) + np.var(c.pmdec[sel]))
    err2 = 0.5 * np.mean(c.pmra_error[sel] ** 2 + c.pmdec_error[sel] ** 2)
    sigma_int = np.sqrt(var - err2)
    expect = sim.meta["sigma_v_kms"] / (K_PM * sim.meta["true_distance_pc"] / 1e3)
    # ~500 stars: the dispersion is known to ~5 per cent
    assert sigma_int == pytest.approx(expect, rel=0.2)
    # and the catalogue's (DR2) observed dispersion is not exceeded by DR3 measurements
    assert np.sqrt(var) <= 1.1 * np.sqrt(0.5 * (m67.pmra_std ** 2 + m67.pmdec_std ** 2))


def test_depth_gives_parallax_spread(cfg):
    """A nearby cluster's members spread in true parallax as its depth says (Plummer, 1/d)."""
    row = cluster_row(embedded_cluster_table(), "NGC_2632").copy()
    s = simulate_cone(row, cfg)
    m = s.truth[s.truth.is_member]
    depth_pc = np.std(m.dist_pc)
    assert depth_pc > 1.0
    assert np.std(m.parallax_true) == pytest.approx(np.std(1000 / m.dist_pc), rel=1e-6)


@pytest.mark.parametrize("key,value,err,match", [
    ("dist_pc", -100.0, ConfigError, "dist_pc"),
    ("r50", 0.0, ConfigError, "r50"),
    ("log_age", 11.5, IsochroneRangeError, "log_age"),
    ("n_members", 2, TooFewMembersError, "min_members"),
])
def test_bad_input(cfg, m67, key, value, err, match):
    row = m67.copy()
    row[key] = value
    with pytest.raises(err, match=match) as info:
        simulate_cone(row, cfg)
    assert "NGC_2682" in str(info.value)


def test_isochrone_parsec_else_model(shared_data):
    from ocmembers.sim.isochrones import cluster_isochrone

    parsec = cluster_isochrone(shared_data, 9.0, 0.0152, cluster="X")
    assert parsec.attrs["provenance"].startswith("PARSEC")
    young = cluster_isochrone(shared_data, 6.5, 0.0152, cluster="X")  # below the shared grids
    assert "model_isochrone" in young.attrs["provenance"] and "outside the PARSEC grids" in young.attrs["provenance"]
    with pytest.raises(IsochroneRangeError, match="cluster X"):
        cluster_isochrone(shared_data, 11.5, 0.0152, cluster="X")
