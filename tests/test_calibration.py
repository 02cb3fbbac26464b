"""The calibrated variant (issue 15 item 2): its features, the posterior's fit and calibration, and
the members stage end to end on simulated clusters (the calibrator learned from the training and
validation clusters only, the paper's p kept beside it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocmembers.config import load_config
from ocmembers.exceptions import ConfigError, OCMembersError
from ocmembers.method.calibration import (CALIBRATION_FEATURES, INPUT_COLUMNS, calibrate_table,
                                          calibrated_probability, calibration_features, fit_calibrator)

PARAMS = {"pmra_std": 0.3, "pmdec_std": 0.4, "parallax_std": 0.05}


def _table(n: int, rng) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Members near the cluster in units of the combined spread, field stars spread wide; the
    paper's p is low for faint members (large errors), as on the simulated sky."""
    member = rng.random(n) < 0.4
    g = rng.uniform(12, 21, n)
    err = 0.02 * np.exp((g - 12) / 2.5)                    # mas, mas/yr: grows with G
    spread = np.where(member, 1.0, 6.0)
    s_pm = np.hypot(np.sqrt((PARAMS["pmra_std"] ** 2 + PARAMS["pmdec_std"] ** 2) / 2), err)
    s_plx = np.hypot(PARAMS["parallax_std"], err)
    t = pd.DataFrame({
        "f_pm": np.abs(rng.normal(0, 1, n)) * spread * s_pm,
        "f_plx": rng.normal(0, 1, n) * spread * s_plx,
        "pmra_error": err, "pmdec_error": err, "parallax_error": err,
        "phot_g_mean_mag": g, "f_c": rng.normal(0, 0.02, n) * np.where(member, 1, 5),
        "f_g": rng.normal(0, 0.1, n) * np.where(member, 1, 5), "g_rp_error": 0.001 * np.exp((g - 12) / 2),
        "f_r": rng.uniform(0, 50, n),
    })
    t["probability"] = np.where(member, np.clip(1.0 - (g - 16) / 4, 0, 1), 0.0) * rng.uniform(0.5, 1, n)
    groups = rng.integers(0, 4, n)
    return t, member, groups


def test_features_are_relative_to_the_cluster_and_name_what_is_missing():
    rng = np.random.default_rng(1)
    t, _, _ = _table(50, rng)
    x = calibration_features(t, PARAMS)
    assert x.shape == (50, len(CALIBRATION_FEATURES))
    i = CALIBRATION_FEATURES.index("z_plx")
    np.testing.assert_allclose(x[:, i], t["f_plx"] / np.hypot(0.05, t["parallax_error"]))
    np.testing.assert_allclose(x[:, CALIBRATION_FEATURES.index("s_plx")], t["parallax_error"] / 0.05)
    # the same star around a cluster twice as far (all spreads and offsets halved): the same features
    half = t.copy()
    for c in ("f_pm", "f_plx", "pmra_error", "pmdec_error", "parallax_error"):
        half[c] = t[c] / 2
    x2 = calibration_features(half, {k: v / 2 for k, v in PARAMS.items()})
    for name in ("z_pm", "s_pm", "z_plx", "s_plx"):
        j = CALIBRATION_FEATURES.index(name)
        np.testing.assert_allclose(x2[:, j], x[:, j])
    with pytest.raises(Exception, match="f_plx"):
        calibration_features(t.drop(columns="f_plx"), PARAMS, what="M67 list")
    with pytest.raises(ValueError, match="parallax_std"):
        calibration_features(t, {**PARAMS, "parallax_std": 0.0})
    assert set(INPUT_COLUMNS) <= set(t.columns)


def test_the_posterior_is_calibrated_on_held_out_clusters_and_beats_the_paper_p_at_the_faint_end():
    rng = np.random.default_rng(2)
    t, y, groups = _table(12000, rng)
    x = calibration_features(t, PARAMS)
    model = fit_calibrator(x, y, groups, seed=0)
    again = fit_calibrator(x, y, groups, seed=0)
    tt, yt, _ = _table(6000, np.random.default_rng(3))       # a new draw: other clusters
    xt = calibration_features(tt, PARAMS)
    p = calibrated_probability(model, xt)
    np.testing.assert_array_equal(p, calibrated_probability(again, xt))   # deterministic for a seed
    assert p.min() >= 0 and p.max() <= 1
    bins = np.digitize(p, np.linspace(0, 1, 11)[1:-1])
    for b in np.unique(bins):
        m = bins == b
        if m.sum() >= 200:
            assert abs(p[m].mean() - yt[m].mean()) < 0.05, b
    faint = tt["phot_g_mean_mag"].to_numpy() > 19
    recall_paper = (tt["probability"].to_numpy()[faint & yt] >= 0.5).mean()
    recall_cal = (p[faint & yt] >= 0.5).mean()
    assert recall_paper < 0.2 and recall_cal > 0.8
    with pytest.raises(ValueError, match="at least 2 clusters"):
        fit_calibrator(x, y, np.zeros(len(y)), seed=0)
    with pytest.raises(ValueError, match="both members and non-members"):
        fit_calibrator(x, np.ones(len(y), bool), groups, seed=0)


def test_calibrate_table_keeps_the_paper_p_and_unevaluated_sources():
    rng = np.random.default_rng(4)
    t, y, groups = _table(3000, rng)
    model = fit_calibrator(calibration_features(t, PARAMS), y, groups, seed=0)
    t.loc[:9, "probability"] = np.nan                          # not evaluated (outside the cuts)
    out = calibrate_table(t, PARAMS, model)
    assert out["probability"].isna().sum() == 10 and out["probability_deep_sets"].isna().sum() == 10
    np.testing.assert_array_equal(out["probability_deep_sets"].to_numpy(), t["probability"].to_numpy())
    assert "probability_deep_sets" not in t.columns            # the input is not changed


def test_configuration_of_the_variant():
    cfg = load_config(overrides=["membership.variant=calibrated"])
    assert cfg.membership.variant == "calibrated" and cfg.membership.calibrator == ""
    assert load_config().membership.variant == "paper"
    with pytest.raises(ConfigError, match="membership.variant must be"):
        load_config(overrides=["membership.variant=better"])
    with pytest.raises(ConfigError, match="calibrator is set but"):
        load_config(overrides=["membership.calibrator=x.pkl"])


@pytest.mark.slow
def test_members_stage_fits_the_calibrator_on_training_clusters_and_applies_it(tmp_path, capsys):
    import importlib

    from ocmembers.sources import cache
    from ocmembers.stages import members
    from ocmembers.stages.products import calibration_members_paths, calibrator_path, members_paths

    from test_executor import CHAIN, DEMO
    clusters = ["NGC_188", "NGC_2682", "NGC_7789"]
    cfg = load_config(DEMO, source="sim", local_dir=str(tmp_path / "nodata"), output_dir=str(tmp_path / "out"),
                      overrides=["membership.model=vg23", "membership.n_samples=4"])
    cfg = cfg.replace(sim={"demo_clusters": clusters},
                      samples={"train_clusters": clusters[:1], "validation_clusters": clusters[1:2],
                               "test_clusters": clusters[2:]})
    for stage in CHAIN:
        importlib.import_module(f"ocmembers.stages.{stage}").run(cfg)
    members.run(cfg)                                           # the paper's p
    paper = pd.read_parquet(members_paths(cfg, "NGC_7789")[0])
    cal = cfg.replace(membership={"variant": "calibrated"})
    members.run(cal)
    path = calibrator_path(cal)
    assert path.is_file() and cache.verify(path)
    for n in clusters[:2]:                                     # learned from these two only
        assert calibration_members_paths(cal, n)[0].is_file()
    assert not calibration_members_paths(cal, "NGC_7789")[0].exists()
    got = pd.read_parquet(members_paths(cal, "NGC_7789")[0])
    np.testing.assert_array_equal(got["probability_deep_sets"].to_numpy(), paper["probability"].to_numpy())
    done = np.isfinite(got["probability"].to_numpy(float))
    assert done.sum() > 100 and not np.array_equal(got["probability"][done], paper["probability"][done])
    capsys.readouterr()
    members.run(cal)                                           # everything up to date: nothing refitted
    assert "calibrator fitted" not in capsys.readouterr().err
    # elsewhere than the simulated sky, the calibrator must be given
    with pytest.raises(ConfigError, match="needs membership.calibrator"):
        members.fit_run_calibrator(cal.replace(source={"name": "local"}))
    given = cal.replace(membership={"calibrator": str(tmp_path / "none.pkl")})
    with pytest.raises(OCMembersError, match="none.pkl does not exist"):
        members.run(given)
