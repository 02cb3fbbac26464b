"""The Sect. 4 statistics on a hand-made comparison table."""

import numpy as np
import pandas as pd
import pytest

from ocmembers import load_config
from ocmembers.stages.validate import summarise


def _table():
    # 8 sources of one cluster; columns as cluster_comparison() builds them
    return pd.DataFrame({
        "cluster": "X",
        "source_id": np.arange(8),
        "probability":     [0.95, 0.6, 0.3, 0.05, 0.0, 0.8, 0.0, 0.2],
        "t22":             [True, True, False, True, True, False, True, False],
        "t22_probability": [0.9, 0.7, np.nan, 0.6, 0.8, np.nan, 0.9, np.nan],
        "phot_g_mean_mag": [12.0, 15.0, 19.0, 16.0, 17.0, 19.5, 14.0, 13.0],
        "f_r":             [2.0, 5.0, 8.0, 40.0, 10.0, 3.0, 60.0, 4.0],
        "f_plx":           [0.01, -0.02, 0.05, 0.0, 0.3, 0.02, 0.0, 0.01],
        "f_pm":            [0.1, 0.2, 0.3, 0.2, 0.1, 0.15, 0.5, 0.2],
        "candidate":       [True, True, True, True, False, True, False, True],
        "pass_pm":         [True, True, True, True, True, True, np.nan, True],
        "pass_plx":        [True, True, True, True, False, True, np.nan, True],
        "pass_iso":        [True, True, True, True, True, True, np.nan, True],
        "in_cone":         [True, True, True, True, True, True, False, True],
        "ruwe":            [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, np.nan, 2.0],
    })


def test_sect4_statistics_by_hand():
    stats, per = summarise([_table()], load_config())
    # p >= 0.1: sources 0, 1, 2, 5, 7; T22: 0, 1, 3, 4, 6
    assert stats["venn_all"] == {"ours_only": 3, "t22_only": 3, "both": 2, "ours": 5, "t22": 5}
    # strict (p >= 0.5, f_r < 20, G < 18): ours 0, 1 (5 has G 19.5); T22 0, 1, 4 (3 and 6 too far)
    assert stats["venn_strict"] == {"ours_only": 0, "t22_only": 1, "both": 2, "ours": 2, "t22": 3}
    assert stats["n_clusters_full_recovery"] == 0
    m = stats["t22_missed"]
    # missed: 3 (candidate, p 0.05, r 40), 4 (non-candidate, failed parallax), 6 (not in cone)
    assert m["n"] == 3 and m["fraction_of_t22"] == pytest.approx(3 / 5)
    assert m["fraction_candidates"] == pytest.approx(1 / 3)
    assert m["fraction_not_in_cone"] == pytest.approx(1 / 3)
    assert m["non_candidates_failing"] == {"proper_motion": 0.0, "parallax": 1.0, "isochrone": 0.0}
    assert m["low_p_candidates_radius_pc_mean"] == pytest.approx(40.0)
    # p >= 0.1 members with G > 18: sources 2 and 5 of 5
    assert stats["faint"]["median_fraction_g_gt_gmax_p_all"] == pytest.approx(0.4)
    # extra bright members (p >= 0.1, G < 18, not T22): source 7, ruwe 2.0
    assert stats["ruwe"] == {"n_extra_bright": 1, "fraction_extra_ruwe_gt_max": 1.0}
    assert per.loc[0, "n_t22_strict_recovered"] == 2 and per.loc[0, "n_t22_strict"] == 3


def test_full_recovery_counted():
    t = _table()
    t.loc[4, "probability"] = 0.7  # now every strict T22 member is recovered
    stats, _ = summarise([t], load_config())
    assert stats["n_clusters_full_recovery"] == 1


def test_summary_rows_keep_every_statistic():
    # validate keeps only these rows and columns of each cluster (its 11 GB peak came from
    # holding whole cones); the statistics must not move
    from ocmembers.stages.validate import SUMMARY_COLUMNS, summary_rows

    cfg = load_config()
    full = _table()
    full["set"] = "candidates"                            # a column summarise does not read
    field = full.iloc[[4]].assign(source_id=99, t22=False, probability=0.05, t22_probability=np.nan)
    full = pd.concat([full, field], ignore_index=True)   # a field star below every threshold
    empty = full.iloc[[8]].assign(cluster="Y")           # a cluster with nothing to count
    trimmed = [summary_rows(full, cfg), summary_rows(empty, cfg)]
    # each of the 8 hand-made sources is in T22 or has p >= 0.1; the field star goes
    assert trimmed[0]["probability"].tolist() == full["probability"].iloc[:8].tolist() and len(trimmed[1]) == 0
    assert set(trimmed[0].columns) <= set(SUMMARY_COLUMNS) and "set" not in trimmed[0]
    stats, per = summarise([full, empty], cfg)
    stats_t, per_t = summarise(trimmed, cfg, clusters=["X", "Y"])
    assert stats_t == stats
    pd.testing.assert_frame_equal(per_t, per)
    assert stats_t["n_clusters"] == 2 and per_t["cluster"].tolist() == ["X", "Y"]
