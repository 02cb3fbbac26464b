"""The Gaia release is configuration (issue 15 item 3): table, column names, epoch, zero point and
crossmatch come from the config, and a mix of releases is refused at load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ocmembers.config import load_config
from ocmembers.exceptions import ConfigError

DR4 = Path(__file__).resolve().parents[1] / "src" / "ocmembers" / "dr4.toml"


def _cluster():
    return pd.Series({"name": "NGC_2682", "ra": 132.846, "dec": 11.814, "parallax": 1.135, "parallax_std": 0.05,
                      "pmra": -10.97, "pmra_std": 0.19, "pmdec": -2.94, "pmdec_std": 0.2, "dist_pc": 859.0})


@pytest.mark.parametrize("source", ["archive", "local", "sim"])
def test_the_dr4_preset_loads_on_every_source(source):
    cfg = load_config(DR4, source=source)
    assert (cfg.source.gaia_release, cfg.cone.epoch, cfg.cone.parallax_zero_point, cfg.crossmatch.method,
            cfg.sim.release) == ("dr4", 2017.5, "none", "positional", "dr4")


@pytest.mark.parametrize("sets, match", [
    (["cone.epoch=2016.0"], r"cone.epoch = 2016.0 but Gaia DR4 positions are at J2017.5"),
    (["source.gaia_table=gaiadr3.gaia_source"], r"name the release's table"),
    (["cone.parallax_zero_point=lindegren21"], r"recipe of Gaia DR3 .* not of DR4"),
    (["crossmatch.method=neighbourhood"], r"gives DR3 ids, not DR4's"),
    (["source.gaia_release=dr5"], r"gaia_release must be one of"),
    (["source.gaia_columns=ra"], r"'ra' is not 'our_name=archive_name'"),
    (["source.gaia_columns=magnitude=phot_g"], r"'magnitude' is not a column of a cone"),
])
def test_a_mix_of_releases_is_refused_naming_the_key(sets, match):
    with pytest.raises(ConfigError, match=match):
        load_config(DR4, source="archive", overrides=sets)


def test_dr3_defaults_are_unchanged_and_dr3_epochs_are_checked():
    cfg = load_config(source="archive")
    assert (cfg.source.gaia_release, cfg.cone.epoch, cfg.crossmatch.method) == ("dr3", 2016.0, "neighbourhood")
    with pytest.raises(ConfigError, match="J2016.0"):
        load_config(source="archive", overrides=["cone.epoch=2017.5"])
    # the simulated sky has its own release and epoch ([sim] release)
    assert load_config(source="sim", overrides=["cone.epoch=2017.5"]).cone.epoch == 2017.5


def test_the_cone_adql_names_the_release_table_and_its_columns():
    from ocmembers.method.columns import GAIA_COLUMNS
    from ocmembers.sources.gaia import build_cone_adql
    dr3 = build_cone_adql(_cluster(), load_config(source="archive"))
    assert f"SELECT {', '.join(GAIA_COLUMNS)}\nFROM gaiadr3.gaia_source\n" in dr3
    cfg = load_config(DR4, source="archive", overrides=["source.gaia_columns=phot_g_mean_mag=phot_g_mean_mag_dr4,pmra=pm_ra"])
    dr4 = build_cone_adql(_cluster(), cfg)
    assert "FROM gaiadr4.gaia_source\n" in dr4
    assert "phot_g_mean_mag_dr4 AS phot_g_mean_mag" in dr4 and "pm_ra AS pmra" in dr4
    assert "POWER(pm_ra - (" in dr4 and "POWER(pmra - (" not in dr4   # the cuts on the archive's names
    assert dr4.replace("phot_g_mean_mag_dr4 AS ", "").replace("pm_ra AS ", "").replace("pm_ra", "pmra") \
        .replace("gaiadr4", "gaiadr3") == dr3


def _members_and_cone(dt_yr: float):
    """Three DR2 members (J2015.5) moving 400 mas/yr, and a cone at J2015.5 + dt_yr holding them and
    decoys at their unpropagated positions, 0.2 mag fainter (so position decides, not magnitude)."""
    ra = np.array([132.80, 132.85, 132.90])
    dec = np.array([11.80, 11.82, 11.84])
    pmra, pmdec = np.full(3, 400.0), np.full(3, -300.0)
    g = np.array([15.0, 16.0, 17.0])
    members = pd.DataFrame({"source_id_dr2": [1, 2, 3], "ra": ra, "dec": dec, "pmra": pmra, "pmdec": pmdec,
                            "phot_g_mean_mag": g})
    cosd = np.cos(np.radians(dec))
    ra_t, dec_t = ra + pmra * dt_yr / 3.6e6 / cosd, dec + pmdec * dt_yr / 3.6e6
    cone = pd.DataFrame({"source_id": [11, 12, 13, 21, 22, 23], "ra": np.r_[ra_t, ra], "dec": np.r_[dec_t, dec],
                         "phot_g_mean_mag": np.r_[g, g + 0.2]})
    return members, cone


def test_the_archive_matches_dr2_members_by_propagated_position_for_dr4():
    from ocmembers.sources.archive import ArchiveSource

    members, cone = _members_and_cone(2.0)          # J2015.5 -> J2017.5: 1 arcsec of motion
    cfg = load_config(DR4, source="archive", overrides=["crossmatch.max_sep_arcsec=0.5"])

    class NoTap:
        def __getattr__(self, name):
            raise AssertionError("the positional crossmatch asked the archive")

    src = ArchiveSource(cfg, gaia_client=NoTap())
    out = src.crossmatch(members, cone, _cluster())
    assert out["source_id"].tolist() == [11, 12, 13] and (out["angular_distance"] < 1e-3).all()
    assert "J2015.5 -> J2017.5" in src.crossmatch_query(members, _cluster())
    # a cone at the DR3 epoch (J2016.0: a quarter of the way) matches nothing within 0.3 arcsec of
    # where the DR4 epoch puts the members: the epochs decide, never the ids
    _, cone3 = _members_and_cone(0.5)
    tight = load_config(DR4, source="archive", overrides=["crossmatch.max_sep_arcsec=0.3"])
    assert ArchiveSource(tight, gaia_client=NoTap()).crossmatch(members, cone3, _cluster()).empty


def test_without_a_zero_point_recipe_the_parallaxes_are_as_published():
    from ocmembers.method.preprocessing import preprocess_cone
    from ocmembers.method.columns import GAIA_COLUMNS
    rng = np.random.default_rng(0)
    n = 50
    cone = pd.DataFrame({c: rng.uniform(0.1, 1.0, n) for c in GAIA_COLUMNS})
    cone["source_id"] = np.arange(n)
    cone["phot_g_mean_mag"] = rng.uniform(12, 19, n)
    cone["phot_rp_mean_mag"] = cone["phot_g_mean_mag"] - 0.8
    cone["phot_g_n_obs"] = cone["phot_rp_n_obs"] = 300
    cone["nu_eff_used_in_astrometry"] = 1.5
    cone["ecl_lat"] = 10.0
    cone["astrometric_params_solved"] = 31
    cone.loc[0, "parallax"] = np.nan
    l21 = preprocess_cone(cone, cluster="X")
    none = preprocess_cone(cone, cluster="X", zero_point="none")
    assert np.all(l21["zero_point"].to_numpy()[1:] < 0)                    # DR3's recipe applied
    np.testing.assert_array_equal(none["parallax"].to_numpy()[1:], cone["parallax"].to_numpy()[1:])
    assert none["zero_point_flag"].tolist()[:2] == [2, 0] and none.attrs["zero_point_recipe"] == "none"
    with pytest.raises(ValueError, match="zero_point must be"):
        preprocess_cone(cone, cluster="X", zero_point="l21")
