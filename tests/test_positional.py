import numpy as np
import pandas as pd
import pytest

from ocmembers import load_config
from ocmembers.sources.positional import crossmatch_positional, propagate_positions


def test_propagation_half_a_year():
    ra, dec = propagate_positions(np.array([10.0]), np.array([60.0]), np.array([3600.0]),
                                  np.array([-7200.0]), 0.5)
    # 1800 mas in RA* at dec 60 deg is 3600 mas = 1e-3 deg of RA; -3600 mas = -1e-3 deg in dec
    assert ra[0] == pytest.approx(10.001, abs=1e-9) and dec[0] == pytest.approx(59.999, abs=1e-9)


def test_match_uses_positions_not_ids():
    cfg = load_config()
    # DR2 positions at 2015.5; the star moves +1000 mas/yr in dec, so its DR3 position is 0.5" north.
    members = pd.DataFrame({"source_id_dr2": [111, 222], "ra": [50.0, 50.01], "dec": [20.0, 20.0],
                            "pmra": [0.0, 0.0], "pmdec": [1000.0, 0.0], "phot_g_mean_mag": [12.0, 15.0]})
    cone = pd.DataFrame({
        # DR3 id of star 111 differs; a decoy sits at its old DR2 position with id 111
        "source_id": [999, 111, 222, 223],
        "ra": [50.0, 50.0, 50.01, 50.01 + 0.3 / 3600 / np.cos(np.radians(20))],
        "dec": [20.0 + 0.5 / 3600, 20.0, 20.0, 20.0],
        "phot_g_mean_mag": [12.05, 18.0, 15.0, 15.02],
    })
    out = crossmatch_positional(members, cone, cfg).set_index("source_id_dr2")
    assert out.loc[111, "source_id"] == 999
    assert out.loc[111, "angular_distance"] == pytest.approx(0.0, abs=1e-3)
    assert out.loc[222, "source_id"] == 222
    # a rival 0.3" away with almost the same magnitude makes the second match ambiguous
    assert bool(out.loc[222, "ambiguous"]) and not bool(out.loc[111, "ambiguous"])


def test_no_match_beyond_radius():
    cfg = load_config()
    members = pd.DataFrame({"source_id_dr2": [1], "ra": [0.0], "dec": [0.0], "pmra": [0.0],
                            "pmdec": [0.0], "phot_g_mean_mag": [10.0]})
    cone = pd.DataFrame({"source_id": [5], "ra": [2.0 / 3600], "dec": [0.0], "phot_g_mean_mag": [10.0]})
    assert len(crossmatch_positional(members, cone, cfg)) == 0


def test_m67_members_matched(shared_data):
    cfg = load_config()
    from ocmembers.sources.local import read_member_list
    cone = pd.read_csv(shared_data / "gaia/cones/NGC_2682.csv", usecols=["source_id", "ra", "dec", "phot_g_mean_mag"])
    m = read_member_list(shared_data / "catalogues/cg18_members_dr2.csv.gz", id_column="source_id_dr2")
    m = m[m["cluster"] == "NGC_2682"]
    out = crossmatch_positional(m, cone, cfg)
    # the extract holds 91% of the CG18 members (shared/data/README.md)
    assert 0.88 < len(out) / len(m) < 0.95
    assert out["angular_distance"].max() < 0.1 and out["magnitude_difference"].abs().median() < 0.05
    # a few per cent of stars changed id between DR2 and DR3: id equality would lose them
    assert (out["source_id"] != out["source_id_dr2"]).sum() > 0
