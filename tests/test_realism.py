"""The realism report: the simulated sky against the real T22, CG18 lists and M67 cone (issue 16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocmembers import load_config
from ocmembers.exceptions import OCMembersError, TableParseError
from ocmembers.method.realism import (compare_lists, list_statistics, projected_radius_pc, robust_sigma,
                                      ruwe_statistics, star_counts, summarise_ratios)

CLUSTER = pd.Series({"name": "X", "ra": 120.0, "dec": -30.0, "dist_pc": 1000.0})


def _members(n, r_pc, rng, pm_sigma=0.2, g=15.0):
    """``n`` members at projected radius ``r_pc`` (random angles) around CLUSTER."""
    theta = np.rad2deg(np.arctan(np.asarray(r_pc, float) / 1000.0))
    phi = rng.uniform(0, 2 * np.pi, n)
    dec = -30.0 + theta * np.sin(phi)
    ra = 120.0 + theta * np.cos(phi) / np.cos(np.deg2rad(-30.0))
    return pd.DataFrame({"ra": ra, "dec": dec, "pmra": rng.normal(-5, pm_sigma, n),
                         "pmdec": rng.normal(3, pm_sigma, n), "parallax": rng.normal(1.0, 0.05, n),
                         "phot_g_mean_mag": np.full(n, g)})


def test_statistics_of_a_known_list():
    rng = np.random.default_rng(1)
    r = np.r_[np.full(600, 5.0), np.full(300, 15.0), np.full(100, 25.0)]
    t = _members(1000, r, rng)
    np.testing.assert_allclose(projected_radius_pc(t["ra"], t["dec"], CLUSTER), r, rtol=2e-2)
    s = list_statistics(t, CLUSTER)
    assert s["n"] == 1000 and s["frac_r_gt_10pc"] == pytest.approx(0.4) and s["frac_r_gt_20pc"] == pytest.approx(0.1)
    assert s["frac_r_gt_30pc"] == 0.0 and s["g_q50"] == 15.0 and s["frac_g_gt_17"] == 0.0
    assert s["sigma_pmra"] == pytest.approx(0.2, rel=0.1) and s["sigma_parallax"] == pytest.approx(0.05, rel=0.1)


def test_a_few_field_stars_do_not_change_the_dispersion():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, 2000)
    assert robust_sigma(np.r_[x, np.full(40, 50.0)]) == pytest.approx(robust_sigma(x), rel=0.05)
    assert np.std(np.r_[x, np.full(40, 50.0)]) > 5                # what a standard deviation would say


def test_ratios_and_their_summary():
    rng = np.random.default_rng(3)
    real = _members(400, rng.uniform(0, 30, 400), rng)
    per = {}
    for k, frac in enumerate((0.5, 0.8, 1.0)):
        sim = _members(int(400 * frac), rng.uniform(0, 30 * frac, int(400 * frac)), rng)
        per[f"c{k}"] = compare_lists(sim, real, CLUSTER)
    assert per["c0"]["sim_over_real"]["n"] == pytest.approx(0.5)
    assert per["c2"]["ks_r"] < 0.15 < per["c0"]["ks_r"]             # the compact list differs in radius
    s = summarise_ratios(per)
    assert s["n"]["median"] == pytest.approx(0.8) and s["n"]["n_clusters"] == 3
    assert s["n"]["p16"] < 0.8 < s["n"]["p84"]


def test_ruwe_and_counts():
    r = ruwe_statistics(np.r_[np.ones(90), np.full(10, 2.0), [np.nan]])
    assert r["n"] == 100 and r["frac_gt_1.4"] == pytest.approx(0.1)
    assert star_counts(np.array([10.2, 10.7, 11.5, np.nan]), [10, 11, 12]).tolist() == [2, 1]


@pytest.mark.shared_data
def test_the_stage_on_two_simulated_clusters(shared_data, tmp_path, capsys):
    from ocmembers.stages import realism
    cfg = load_config(source="sim", local_dir=str(shared_data), output_dir=str(tmp_path / "out"),
                      clusters="NGC_752,NGC_2682").replace(sim={"demo_clusters": []},
                                                          paths={"figures_dir": str(tmp_path / "fig")})
    rep = realism.run(cfg)
    assert set(rep["t22"]["per_cluster"]) == {"NGC_752", "NGC_2682"}
    assert set(rep["cg18"]["per_cluster"]) == {"NGC_752", "NGC_2682"}
    for key in ("n", "frac_r_gt_10pc", "sigma_pmra", "g_q50"):
        assert np.isfinite(rep["t22"]["summary"][key]["median"])
    # the truth on the same terms: every true member brighter than G = 18 of the cone, no more
    assert set(rep["t22_truth"]["per_cluster"]) == {"NGC_752", "NGC_2682"}
    from ocmembers.sim.source import SimSource
    sim = SimSource(cfg).simulated("NGC_2682")
    n_true = int((sim.truth["is_member"] & (sim.cone["phot_g_mean_mag"] < cfg.sim.t22_g_max)).sum())
    assert rep["t22_truth"]["per_cluster"]["NGC_2682"]["sim"]["n"] == n_true > 0
    assert rep["sky"] == {"structure": cfg.sim.structure, "ruwe_model": cfg.sim.ruwe_model,
                          "escaper_mass_function": cfg.sim.escaper_mass_function,
                          "tail_orbits": cfg.sim.tail_orbits, "tidal_field": cfg.sim.tidal_field,
                          "t22_sky": cfg.sim.t22_sky, "t22_check": cfg.sim.t22_check}
    m = rep["m67"]
    assert m["ruwe"]["real_members_cg18"]["n"] > 300 and len(m["counts_real"]) == len(m["g_edges"]) - 1
    # beyond Hunt & Reffert's (2024) Jacobi radius: their own 1 - NJ/N, and each list's share
    from ocmembers.method.realism import beyond_jacobi
    from ocmembers.sources.cluster_tables import read_jacobi_table
    hunt = read_jacobi_table(shared_data / "catalogues" / "hunt2024_table.csv").set_index("name")
    j = rep["jacobi"]["per_cluster"]["NGC_2682"]
    assert j["r_jacobi_pc"] == hunt.loc["NGC_2682", "r_jacobi_pc"]
    assert j["hunt24"] == pytest.approx(1 - 1834 / 1844)        # N and NJ of M67 in the table
    assert j["sim_truth_g_lt_18"] == pytest.approx(beyond_jacobi(
        sim.cone.loc[sim.truth["is_member"] & (sim.cone["phot_g_mean_mag"] < cfg.sim.t22_g_max)],
        SimSource(cfg)._row("NGC_2682"), j["r_jacobi_pc"]))
    assert 0 < j["real_t22"] < 1 and 0 <= j["sim_t22_like"] < 1
    assert rep["jacobi"]["summary"]["hunt24"]["n_clusters"] == 2
    assert len(list((tmp_path / "fig").rglob("realism.png"))) == 1
    capsys.readouterr()
    realism.run(cfg)                                            # the record matches: nothing redone
    assert "up to date" in capsys.readouterr().err
    # a run's own selection (samples.json, no CLUSTERS): its test clusters against T22, its
    # training and validation clusters against CG18, and M67's real field
    import json
    (tmp_path / "out" / "sim" / "samples.json").write_text(
        json.dumps({"train": ["NGC_2682"], "validation": [], "test": ["NGC_752"]}))
    run_cfg = load_config(source="sim", local_dir=str(shared_data), output_dir=str(tmp_path / "out")).replace(
        sim={"demo_clusters": []}, paths={"figures_dir": str(tmp_path / "fig")})
    rep = realism.run(run_cfg)
    assert set(rep["t22"]["per_cluster"]) == set(rep["t22_truth"]["per_cluster"]) == {"NGC_752"}
    assert set(rep["cg18"]["per_cluster"]) == {"NGC_2682"} and rep["m67"] is not None
    assert rep["clusters"] == ["NGC_752", "NGC_2682"]
    # the real plain field of DATA_DIR against the simulated one at its position
    f = rep["fields"]["ra45_dec0_r0.5deg"]
    assert f["n_real"] == 2390 and 0.7 < f["n_sim"] / f["n_real"] < 1.4
    assert len(f["real"]["frac_ruwe_gt_1.4"]) == len(f["g_edges"]) - 1
    with pytest.raises(OCMembersError, match="SOURCE=sim"):
        realism.run(cfg.replace(source={"name": "local"}))
    with pytest.raises(TableParseError, match="t22_members_edr3.csv.gz"):
        realism.run(cfg.replace(source={"local_dir": str(tmp_path / "nodata")}))


def test_beyond_jacobi_and_the_hunt_table(tmp_path):
    from ocmembers.exceptions import TableParseError
    from ocmembers.method.realism import beyond_jacobi
    from ocmembers.sources.cluster_tables import read_jacobi_table
    cluster = pd.Series({"ra": 10.0, "dec": 0.0, "dist_pc": 1000.0})
    # 1 deg at 1 kpc is 17.5 pc: two stars inside 10 pc, two beyond
    members = pd.DataFrame({"ra": [10.0, 10.1, 11.0, 9.0], "dec": [0.0, 0.0, 0.0, 0.0]})
    assert beyond_jacobi(members, cluster, 10.0) == 0.5
    assert np.isnan(beyond_jacobi(members.iloc[:0], cluster, 10.0))
    good = tmp_path / "hunt.csv"
    good.write_text("Name,rJpc,N,NJ\nNGC 2682,20.5,100,90\nBad,,5,5\n")
    t = read_jacobi_table(good)
    assert t["name"].tolist() == ["NGC_2682"] and t["n_within_jacobi"].tolist() == [90]
    bad = tmp_path / "cg.csv"
    bad.write_text("Name,N\nNGC 2682,100\n")
    with pytest.raises(TableParseError, match=r"cg\.csv.*rJpc"):
        read_jacobi_table(bad)


def test_field_statistics_per_g_bin():
    from ocmembers.method.realism import field_statistics
    t = pd.DataFrame({"phot_g_mean_mag": [14.0, 14.5, 16.0, 16.5, 25.0],
                      "ruwe": [1.0, 2.0, np.nan, 1.0, 1.0],
                      "parallax": [1.0, 2.0, np.nan, 3.0, 1.0], "pmra": [1.0, 3.0, 5.0, 5.0, 0.0],
                      "pmdec": [0.0, 0.0, 1.0, 1.0, 0.0]})
    f = field_statistics(t, edges=(10.0, 15.0, 17.0, 18.0))
    assert f["n"] == [2.0, 2.0, 0.0]
    assert f["frac_ruwe_gt_1.4"][:2] == [0.5, 0.0] and np.isnan(f["frac_ruwe_gt_1.4"][2])
    assert f["frac_two_parameter"][:2] == [0.0, 0.5] and f["pmra_median"][:2] == [2.0, 5.0]
    assert f["parallax_median"][1] == 3.0 and np.isnan(f["parallax_sigma"][1])   # one finite value


@pytest.mark.shared_data
def test_plain_field_is_the_sky_without_a_cluster(shared_data):
    from ocmembers.exceptions import ConfigError
    from ocmembers.method.columns import GAIA_COLUMNS
    from ocmembers.method.cuts import angular_separation_deg
    from ocmembers.sim.plain_field import simulate_plain_field
    cfg = load_config(source="sim", local_dir=str(shared_data))
    a = simulate_plain_field(45.0, 0.0, 0.5, cfg)
    assert list(a.columns) == list(GAIA_COLUMNS) and a["source_id"].is_unique
    assert a.equals(simulate_plain_field(45.0, 0.0, 0.5, cfg))               # seeded by the position
    assert angular_separation_deg(a["ra"].to_numpy(), a["dec"].to_numpy(), 45.0, 0.0).max() <= 0.5
    real = pd.read_parquet(shared_data / "gaia" / "fields" / "ra45_dec0_r0.5deg.parquet")
    assert 0.7 < len(a) / len(real) < 1.4                                     # 2390 real sources
    with pytest.raises(ConfigError, match="radius"):
        simulate_plain_field(45.0, 0.0, 0.0, cfg)
