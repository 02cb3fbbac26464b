"""Near-infrared photometry of the simulated sky (sim/nir.py) and the PR22 fields (sim/vvv.py)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from ocmembers.sim import nir
from ocmembers.sim.nir import (SURVEYS, TWOMASS, VVV, ccm89_ratio, completeness, inverse_variance,
                               measure_survey, photometric_error, twomass_from_gaia, vista_from_twomass)


@pytest.fixture(scope="module")
def cfg(shared_data):
    from ocmembers.config import load_config
    return load_config(source="sim", local_dir=str(shared_data))


@pytest.fixture(scope="module")
def cg20(shared_data):
    from ocmembers.sources.local import read_cluster_table
    return read_cluster_table(shared_data / "catalogues" / "cg20_table1.csv")


def test_colour_relation_gives_the_solar_colours():
    """Sun (Casagrande & VandenBerg 2018: G = 4.67, BP - RP = 0.82; Casagrande et al. 2012:
    J - Ks = 0.36 +- 0.02, V - Ks = 1.5): Eq. 1 within its scatter (0.05 in G - J, 0.08 in G - Ks)."""
    m = twomass_from_gaia(np.array([4.67]), np.array([5.08]), np.array([4.26]))
    assert abs(float(m["j"][0] - m["ks"][0]) - 0.36) < 0.04
    assert abs(float(m["ks"][0]) - 3.27) < 0.1    # solar M_Ks (Casagrande et al. 2012)


def test_vista_extinction_is_pr22s():
    assert ccm89_ratio(nir.LAMBDA_EFF_UM["vista"]["ks"]) == pytest.approx(nir.A_KS_OVER_AV_VISTA, abs=2e-5)
    a = nir.nir_extinction(np.array([10.0]), "vista")
    assert a["j"][0] > a["h"][0] > a["ks"][0]
    assert a["j"][0] / 10 == pytest.approx(0.281, abs=0.002) and a["h"][0] / 10 == pytest.approx(0.181, abs=0.002)
    with pytest.raises(ValueError, match="outside"):
        ccm89_ratio(0.5)


def test_vista_transformation_colour_terms():
    tm = {"j": np.array([12.0]), "h": np.array([11.5]), "ks": np.array([11.0])}
    v = vista_from_twomass(tm)
    assert v["j"][0] == pytest.approx(12.0 - 0.031) and v["ks"][0] == pytest.approx(11.0 - 0.006)


@pytest.mark.parametrize("survey", list(SURVEYS.values()), ids=list(SURVEYS))
def test_error_curve_and_completeness(survey):
    for b in nir.BANDS:
        m10 = survey.m10[b]
        assert photometric_error(survey, b, m10) == pytest.approx(np.hypot(survey.floor, 0.1086), rel=1e-6)
        assert photometric_error(survey, b, m10 + 2.5) == pytest.approx(np.hypot(survey.floor, 1.086), rel=1e-6)
        assert completeness(survey, b, m10) > 0.95
        assert completeness(survey, b, m10 + survey.m50_offset) == pytest.approx(0.5)
        assert completeness(survey, b, survey.bright[b] - 0.01) == 0.0
    # the surveys' own ranges (Skrutskie et al. 2006; PR22 Sect. 2.2)
    assert (VVV.bright["j"], VVV.bright["h"], VVV.bright["ks"]) == (11.5, 12.0, 11.0)
    assert (VVV.m10["j"], VVV.m10["h"], VVV.m10["ks"]) == (17.5, 16.5, 16.0)
    assert (TWOMASS.m10["j"], TWOMASS.m10["h"], TWOMASS.m10["ks"]) == (15.8, 15.1, 14.3)


def test_measured_magnitudes_follow_their_errors():
    rng = np.random.default_rng(1)
    true = {b: np.full(40_000, 15.0) for b in nir.BANDS}
    out = measure_survey(VVV, true, rng)
    sig = photometric_error(VVV, "ks", 15.0)
    d = out["ks"] - 15.0
    assert np.isfinite(d).mean() == pytest.approx(completeness(VVV, "ks", 15.0), abs=0.01)
    assert np.nanstd(d) == pytest.approx(sig, rel=0.03)          # 40k draws: std error 0.4 per cent
    assert np.nanmean(d) == pytest.approx(0.0, abs=5 * sig / 200)
    sat = measure_survey(VVV, {b: np.full(100, 9.0) for b in nir.BANDS}, rng)
    assert np.isnan(sat["ks"]).all()                               # VVV saturates at Ks = 11


def test_inverse_variance():
    v, e = inverse_variance([np.array([1.0, 2.0, np.nan]), np.array([3.0, np.nan, np.nan])],
                            [np.array([1.0, 0.5, 1.0]), np.array([1.0, 1.0, 1.0])])
    assert v[0] == pytest.approx(2.0) and e[0] == pytest.approx(1 / np.sqrt(2))
    assert v[1] == pytest.approx(2.0) and e[1] == pytest.approx(0.5)
    assert np.isnan(v[2]) and np.isnan(e[2])


def _frame_sha(df: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes()).hexdigest()


CONE_SHA = {"fef2ba426bb1cb79a358a10e9302ea1f0b56583fa41fee421064b42e039ca624",    # Intel
            "78d2b6d29cd112270565093438c91f7a0ed9c2e40a80bceb07da0c2d7012d54b"}    # AMD EPYC
BRIGHT_SHA = {"4cd1bb0ccc73f3a2d65c7cf14285b3965860b52b517acd1d44c17c47a61dc374",  # Intel
              "036bd492e867eea407637096f87fc702853ff7cdb1b5cdc895b9347f1711aea8"}  # AMD EPYC


def test_gaia_cones_unchanged_by_the_nir_sky(cfg, cg20):
    """The Gaia cone, truth and bright field of a cluster are byte for byte those simulated before
    the near-infrared sky existed (hashes recorded with the code of commit ebcb236), whether or
    not its VVV field is simulated first: the NIR draws use streams of their own.

    The truth's hash is not compared across machines: its derived columns (mass, Teff) go
    through numpy's transcendental functions, whose last bits differ between CPUs (the
    recorded hash holds on the Intel machines, not on AMD EPYC); it is compared with the
    truth simulated without the VVV field first, in the same process."""
    from ocmembers.method.columns import cluster_row
    from ocmembers.sim.cluster import simulate_cone
    from ocmembers.sim.vvv import simulate_vvv_cone

    # the hashes are of the former sky (issue 16 changed the default structure and RUWE model)
    cfg = cfg.replace(sim={"structure": "core_halo", "ruwe_model": "ad_hoc"})
    row = cluster_row(cg20, "Hogg_21")
    alone = simulate_cone(row, cfg)
    simulate_vvv_cone(row, cfg)
    s = simulate_cone(row, cfg)
    # the cone's last bits also go through numpy's transcendental functions: one hash per CPU
    # family, both of the same code (5131cb1 gives the second on AMD EPYC, the first on Intel)
    assert _frame_sha(s.cone) in CONE_SHA
    pd.testing.assert_frame_equal(s.truth, alone.truth, check_exact=True)
    pd.testing.assert_frame_equal(s.cone, alone.cone, check_exact=True)
    assert _frame_sha(s.bright) in BRIGHT_SHA


@pytest.fixture(scope="module")
def m67_sim(cfg, cg20):
    """True 2MASS J, Ks of the simulated M67 members (the cluster model of the Gaia cones)."""
    from ocmembers.method.columns import cluster_row
    from ocmembers.sim.cluster import cluster_stars
    from ocmembers.sim.cluster_model import cluster_model, true_distance_pc
    from ocmembers.sim.isochrones import cluster_isochrone
    from ocmembers.sim.vvv import vvv_rng

    row = cluster_row(cg20, "NGC_2682")
    iso = cluster_isochrone(cfg.local_dir, float(row["log_age"]), cfg.isochrone.metallicity_z,
                            use_parsec=True, cluster="NGC_2682")
    phys = row.copy()
    phys["dist_pc"] = true_distance_pc(row, cfg)
    r = vvv_rng(cfg, "NGC_2682")
    cl = cluster_stars(row, phys, cfg, iso, cluster_model(phys, cfg, iso, r[0]), r[1])
    m = nir.true_nir(cl["g"].to_numpy(), cl["bp"].to_numpy(), cl["rp"].to_numpy(), cl["teff"].to_numpy(),
                     cl["a0"].to_numpy())["2mass"]
    return m["ks"], m["j"] - m["ks"]


def test_m67_red_clump_ks_matches_the_literature(m67_sim):
    """The red clump of the simulated M67 at the 2MASS Ks of the literature.

    Expected: (m - M)_Ks = 9.72 +- 0.05 (Sarajedini, Dotter & Kirkpatrick 2009, ApJ 698, 1872,
    from deep 2MASS photometry of M67) and M_Ks(RC) = -1.57 +- 0.05 for open clusters of
    [Fe/H] -0.5..+0.4 and ages 10^8.5-10^9.9 yr (van Helshoecht & Groenewegen 2007, A&A 463,
    559): Ks(RC) = 8.15. Tolerance 0.2 mag: 2 sigma of the quadrature sum of those two errors,
    the spread of published M_Ks(RC) calibrations (-1.53 to -1.65), the scatter of Eq. 1 over
    the ~10 clump stars (0.084/sqrt(10)) and the simulator's M67 distance (from the CG20 parallax:
    859 pc, (m-M)_0 = 9.67, against 9.70).
    """
    ks, jk = m67_sim
    giants = (ks < 10.0) & (jk > 0.5)
    edges = np.arange(6.0, 10.0, 0.05)
    counts = np.array([np.sum((ks[giants] >= e) & (ks[giants] < e + 0.3)) for e in edges])
    lo = edges[int(np.argmax(counts))]
    clump = ks[giants][(ks[giants] >= lo) & (ks[giants] < lo + 0.3)]
    assert clump.size >= 5
    assert abs(float(np.median(clump)) - (9.72 - 1.57)) < 0.2
    # its colour: solar-metallicity clump giants have (J - Ks)_0 = 0.6-0.7 (E(J - Ks) = 0.02 here)
    assert 0.55 < float(np.median(jk[giants][(ks[giants] >= lo) & (ks[giants] < lo + 0.3)])) < 0.75


def test_m67_sequence_matches_the_real_m67(m67_sim, shared_data):
    """Ks vs J - Ks of the simulated M67 against the real M67 Gaia DR3 members put through the
    same Eq. 1, median J - Ks per 1-mag Ks bin.

    Turn-off and upper main sequence (Ks 11-13): within 0.05 mag (0.07 in BP - RP): twice the
    sampling error of the medians (60-260 stars a bin, spread ~0.1 mag) plus a few hundredths
    for the reddening (the real stars carry M67's, the simulated its CG20 A0 = 0.07).
    Lower main sequence (Ks 13-14): the simulator's Gaia colours of K dwarfs are bluer than the
    real ones (measured 0.05-0.09 mag in J - Ks, i.e. in BP - RP from the PARSEC grid and its
    [M/H] interpolation, which Eq. 1 carries over); pinned at < 0.12 so that it is seen if it grows.
    """
    ks_s, jk_s = m67_sim
    real = pd.read_csv(shared_data / "gaia" / "cones" / "NGC_2682.csv",
                       usecols=["parallax", "phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag"])
    real = real[np.abs(real["parallax"] - 1.15) < 0.15].dropna()
    m = twomass_from_gaia(real["phot_g_mean_mag"].to_numpy(), real["phot_bp_mean_mag"].to_numpy(),
                          real["phot_rp_mean_mag"].to_numpy())
    ks_r, jk_r = m["ks"], m["j"] - m["ks"]
    for lo, tol in ((11.0, 0.05), (12.0, 0.05), (13.0, 0.12)):
        s = (ks_s >= lo) & (ks_s < lo + 1) & (jk_s < 1.0)
        r = (ks_r >= lo) & (ks_r < lo + 1) & (jk_r < 1.0)
        assert r.sum() >= 30 and s.sum() >= 30
        assert abs(float(np.median(jk_s[s]) - np.median(jk_r[r]))) < tol, lo


@pytest.fixture(scope="module")
def vvv_hogg21(cfg, cg20):
    from ocmembers.method.columns import cluster_row
    from ocmembers.sim.vvv import simulate_vvv_cone
    return simulate_vvv_cone(cluster_row(cg20, "Hogg_21"), cfg)


def test_vvv_field_holds_pr22s_data_set(vvv_hogg21):
    from ocmembers.sim.vvv import NIR_COLUMNS, TRUTH_COLUMNS
    c, t = vvv_hogg21.cone, vvv_hogg21.truth
    assert list(c.columns) == list(NIR_COLUMNS) and list(t.columns) == list(TRUTH_COLUMNS)
    assert (c["source_id"].to_numpy() == t["source_id"].to_numpy()).all() and c["source_id"].is_unique
    assert set(c["astrometry"]) == {"gaia", "virac2", "gaia+virac2"}
    # VIRAC2 alone: fainter than Gaia, errors ~0.9 mas/yr at Ks ~ 15 (PR22: "under ~1.0")
    v = c[c["astrometry"] == "virac2"]
    # (the others with a G have Gaia 2-parameter solutions: no Gaia parallax or proper motion)
    assert np.isnan(v["phot_g_mean_mag"]).mean() > 0.5 and t.loc[v.index, "g_true"].median() > 20.5
    k15 = v[(v["vvv_ks"] > 14.8) & (v["vvv_ks"] < 15.2)]
    assert len(k15) > 10 and 0.8 < float(k15["pmra_error"].median()) < 1.0
    # inverse-variance combination: never worse than either survey
    both = c[c["astrometry"] == "gaia+virac2"]
    assert len(both) > 100
    assert (both["pmra_error"] < nir.virac2_errors(both["vvv_ks"])).all()
    tm = np.isfinite(c["tmass_ks"]) & np.isfinite(c["vvv_ks"])
    assert tm.sum() > 100
    assert (c.loc[tm, "e_Ksmag"] <= np.minimum(c.loc[tm, "tmass_ks_error"], c.loc[tm, "vvv_ks_error"]) + 1e-12).all()
    # the surveys' ranges
    assert c["vvv_ks"].min() >= VVV.bright["ks"] and c["vvv_j"].min() >= VVV.bright["j"]
    tks = c["tmass_ks"].dropna()
    # 2MASS stops at Ks ~ 15: beyond its 50 per cent magnitude + 0.5 only the Eddington tail of noisy faint detections
    assert (tks > TWOMASS.m10["ks"] + TWOMASS.m50_offset + 0.5).mean() < 0.05
    assert t["in_vvv"].sum() > t["in_2mass"].sum()
    # members: VIRAC2 adds to the Gaia astrometry of many; the faint members VVV alone sees carry
    # errors of several mas/yr and mostly fall outside PR22's 10-sigma proper-motion window
    mem = t["is_member"].to_numpy()
    assert mem.sum() > 50 and (mem & (c["astrometry"] == "gaia+virac2").to_numpy()).sum() > 20
    assert vvv_hogg21.meta["n_members_area"] > mem.sum()
    counts = vvv_hogg21.meta["counts"]
    assert sum(counts["vvv_ks"]) > sum(counts["tmass_ks"]) > 0 and sum(counts["gaia_g"]) > len(c)


def test_vvv_field_is_seeded(vvv_hogg21, cfg, cg20):
    from ocmembers.method.columns import cluster_row
    from ocmembers.sim.vvv import simulate_vvv_cone
    again = simulate_vvv_cone(cluster_row(cg20, "Hogg_21"), cfg)
    pd.testing.assert_frame_equal(again.cone, vvv_hogg21.cone)


def test_pr22_clusters_from_the_catalogue(cg20):
    from ocmembers.exceptions import UnknownClusterError
    from ocmembers.sources.pr22 import pr22_cluster_table, published_pr22

    t = pr22_cluster_table(cg20)
    assert len(t) == 37 and t["name"].is_unique
    assert int(t["n_literature_p09"].sum()) == published_pr22()["n_literature_total"]["value"]
    assert (np.abs(t["b"]) < 5.5).all()                     # the VVV disc and bulge footprint
    assert t.set_index("name").loc["NGC_4349", "n_literature_p09"] == 11
    with pytest.raises(UnknownClusterError, match="NGC_2682"):
        pr22_cluster_table(cg20, ["NGC_2682"])
    with pytest.raises(UnknownClusterError, match="UFMG_2"):
        pr22_cluster_table(cg20[cg20["name"] != "UFMG_2"])


def test_bulge_field_counts_against_vvv(cfg, cg20):
    """Star counts of a simulated field towards the bulge (Ruprecht 130, l = 359.2, b = -1.0) against
    the published VVV density: Saito et al. (2012, A&A 544, A147) count 84.0 million stellar sources
    with J, H and Ks over the ~315 deg^2 of the VVV bulge area, 2.7e5 deg^-2 on average. A field at
    |b| = 1 deg, 2-3 times denser than the area's mean (which reaches |b| = 10 deg) but cut by
    extinction (A_V ~ 15 here) must come within a factor of a few of it: 0.5-5 x."""
    from ocmembers.method.columns import cluster_row
    from ocmembers.sim.vvv import simulate_vvv_cone

    v = simulate_vvv_cone(cluster_row(cg20, "Ruprecht_130"), cfg)
    dens = sum(v.meta["counts"]["vvv_ks"]) / v.meta["area_deg2"]
    assert 0.5 * 84.0e6 / 315 < dens < 5 * 84.0e6 / 315
    # and Gaia, shallower in the optical behind the dust, sees fewer than VVV
    assert sum(v.meta["counts"]["gaia_g"]) < sum(v.meta["counts"]["vvv_ks"])
