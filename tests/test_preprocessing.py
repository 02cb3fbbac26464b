"""Tests of ocmembers.method.preprocessing: zero point, DPAC photometric errors, colour, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocmembers.exceptions import EmptyConeError, MissingColumnsError
from ocmembers.method.preprocessing import (PREPROCESS_REQUIRED, ZP_CLIPPED, ZP_NONE, ZP_OK, load_error_model,
                                     preprocess_cone)


def make_cone(n: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    d = {c: rng.uniform(0.1, 0.2, n) for c in PREPROCESS_REQUIRED}
    d.update(source_id=np.arange(n, dtype="int64") + 1, ra=np.full(n, 132.8), dec=np.full(n, 11.8),
             parallax=np.full(n, 1.1), phot_g_mean_mag=np.linspace(12, 18, n),
             phot_rp_mean_mag=np.linspace(11.5, 17, n), phot_g_n_obs=np.full(n, 200),
             phot_rp_n_obs=np.full(n, 20), astrometric_params_solved=np.full(n, 31),
             nu_eff_used_in_astrometry=np.full(n, 1.5), pseudocolour=np.full(n, np.nan),
             ecl_lat=np.full(n, -5.0))
    return pd.DataFrame(d)


# -- DPAC errors, checked against an independent Cox-de Boor evaluation -------------
def _bspline_cox_de_boor(t: np.ndarray, c: np.ndarray, x: float, k: int = 3) -> float:
    """B-spline value by the Cox-de Boor recursion (independent of scipy)."""
    n = len(t) - k - 1

    def basis(i: int, p: int) -> float:
        if p == 0:
            return 1.0 if t[i] <= x < t[i + 1] else 0.0
        left = 0.0 if t[i + p] == t[i] else (x - t[i]) / (t[i + p] - t[i]) * basis(i, p - 1)
        right = 0.0 if t[i + p + 1] == t[i + 1] else (t[i + p + 1] - x) / (t[i + p + 1] - t[i + 1]) * basis(i + 1, p - 1)
        return left + right

    return sum(c[i] * basis(i, k) for i in range(n))


@pytest.mark.parametrize("band,col", [("g", "G"), ("rp", "RP"), ("bp", "BP")])
@pytest.mark.parametrize("mag", [8.3, 12.0, 15.5, 19.7])
def test_dpac_error_matches_cox_de_boor(band, col, mag):
    from importlib import resources
    with resources.as_file(resources.files("ocmembers").joinpath("data", "dpac_photometric_error_spline.csv")) as p:
        tab = pd.read_csv(p, comment="#")
    sub = tab[[f"knots_{col}", f"coeff_{col}"]].dropna()
    expected = 10 ** _bspline_cox_de_boor(sub.iloc[:, 0].to_numpy(), sub.iloc[:, 1].to_numpy(), mag)
    model = load_error_model()
    ref = {"g": 200, "bp": 20, "rp": 20}[band]
    assert model.error(band, np.array([mag]))[0] == pytest.approx(expected, rel=1e-10)
    # sigma scales as sqrt(n_ref / n_obs): 4 times the reference observations halve it.
    assert model.error(band, np.array([mag]), np.array([4 * ref]))[0] == pytest.approx(expected / 2, rel=1e-10)


def test_dpac_error_plausible_values():
    # DR3 G errors at the reference 200 observations: ~0.3 mmag at G = 12-15,
    # ~1 mmag at G = 17, ~ 10 mmag near G = 20.5 (Riello et al. 2021, Fig. 14).
    model = load_error_model()
    sg = model.error("g", np.array([13.0, 17.0, 20.5]))
    assert 2e-4 < sg[0] < 6e-4 and 5e-4 < sg[1] < 1.5e-3 and 8e-3 < sg[2] < 1.5e-2
    # Outside the knot range: the value at the boundary; NaN stays NaN.
    lo, hi = model.magnitude_range("g")
    assert model.error("g", np.array([25.0]))[0] == pytest.approx(model.error("g", np.array([hi]))[0])
    assert np.isnan(model.error("g", np.array([np.nan]))[0])


@pytest.mark.shared_data
def test_packaged_spline_is_the_dpac_file(shared_data):
    ours = pd.read_csv(__import__("importlib").resources.files("ocmembers").joinpath(
        "data", "dpac_photometric_error_spline.csv"), comment="#")
    theirs = pd.read_csv(shared_data / "photometry" / "LogErrVsMagSpline.csv")
    pd.testing.assert_frame_equal(ours, theirs)


# -- parallax zero point -------------------------------------------------------------
@pytest.mark.shared_data
def test_zero_point_matches_direct_call_on_m67(shared_data):
    from zero_point import zpt
    zpt.load_tables()
    cone = pd.read_csv(shared_data / "gaia" / "cones" / "NGC_2682.csv")
    rows = pd.concat([cone[cone.astrometric_params_solved == 31].head(3),
                      cone[cone.astrometric_params_solved == 95].head(2)])
    out = preprocess_cone(rows, cluster="NGC_2682")
    direct = zpt.get_zpt(rows["phot_g_mean_mag"].to_numpy(), rows["nu_eff_used_in_astrometry"].to_numpy(),
                         rows["pseudocolour"].to_numpy(), rows["ecl_lat"].to_numpy(),
                         rows["astrometric_params_solved"].to_numpy(), _warnings=False)
    assert np.all(np.isfinite(direct))
    np.testing.assert_allclose(out["zero_point"], direct, atol=1e-6)
    np.testing.assert_allclose(out["parallax"], rows["parallax"].to_numpy() - direct, atol=1e-6)
    np.testing.assert_array_equal(out["parallax_raw"], rows["parallax"].to_numpy())
    assert (out["zero_point_flag"] == ZP_OK).all()
    # The zero point near M67 (G 10-18, beta ~ -6 deg) is a few tens of microarcsec, negative.
    assert ((out["zero_point"] < 0) & (out["zero_point"] > -0.1)).all()


def test_zero_point_outside_range_is_clipped_and_flagged():
    from zero_point import zpt
    zpt.load_tables()
    cone = make_cone(3)
    cone["phot_g_mean_mag"] = [5.0, 12.0, 12.0]
    cone["nu_eff_used_in_astrometry"] = [1.5, 2.1, 1.5]
    cone["astrometric_params_solved"] = [31, 31, 3]      # the last: a 2-parameter solution
    cone.loc[2, "parallax"] = np.nan
    out = preprocess_cone(cone, cluster="X")
    assert list(out["zero_point_flag"]) == [ZP_CLIPPED, ZP_CLIPPED, ZP_NONE]
    at_bound = zpt.get_zpt(np.array([6.000001, 12.0]), np.array([1.5, 1.899999]), np.array([np.nan, np.nan]),
                           np.array([-5.0, -5.0]), np.array([31, 31]), _warnings=False)
    np.testing.assert_allclose(out["zero_point"][:2], at_bound, atol=1e-6)
    assert np.isnan(out["zero_point"][2]) and np.isnan(out["parallax"][2])


# -- colour, drops, attrs --------------------------------------------------------------
def test_colour_error_and_drops():
    cone = make_cone(5)
    cone.loc[1, "phot_rp_mean_mag"] = np.nan      # no RP: no colour
    cone.loc[2, "phot_rp_n_obs"] = 0
    cone.loc[3, "phot_g_n_obs"] = 0
    cone["phot_bp_mean_mag"] = np.nan             # BP is not needed
    out = preprocess_cone(cone, cluster="X")
    assert list(out["source_id"]) == [1, 5]
    assert out.attrs["dropped"] == {"no_g": 1, "no_rp": 2}
    assert out.attrs["n_input"] == 5
    np.testing.assert_allclose(out["g_rp"], out["phot_g_mean_mag"] - out["phot_rp_mean_mag"])
    np.testing.assert_allclose(out["g_rp_error"], np.hypot(out["phot_g_mean_mag_error"],
                                                           out["phot_rp_mean_mag_error"]))


@pytest.mark.shared_data
def test_ecl_lat_computed_when_absent(shared_data):
    rows = pd.read_csv(shared_data / "gaia" / "cones" / "NGC_2682.csv").head(5)
    out = preprocess_cone(rows.drop(columns="ecl_lat"), cluster="NGC_2682")
    np.testing.assert_allclose(out["ecl_lat"], rows["ecl_lat"], atol=1e-3)   # archive values


def test_errors_name_the_cluster():
    with pytest.raises(EmptyConeError, match="NGC_1"):
        preprocess_cone(make_cone(0), cluster="NGC_1")
    with pytest.raises(MissingColumnsError, match="NGC_2.*pmra_error"):
        preprocess_cone(make_cone(3).drop(columns="pmra_error"), cluster="NGC_2")
    bad = make_cone(3)
    bad["phot_g_mean_mag"] = np.nan
    with pytest.raises(EmptyConeError, match="NGC_3.*phot_g_mean_mag"):
        preprocess_cone(bad, cluster="NGC_3")
    bad = make_cone(3)
    bad["phot_rp_mean_mag"] = np.nan
    with pytest.raises(EmptyConeError, match="NGC_4"):
        preprocess_cone(bad, cluster="NGC_4")
