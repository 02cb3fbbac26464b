"""HDBSCAN as Tarricq et al. (2022): ocmembers.method.hdbscan_t22."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ocmembers.config import load_config
from ocmembers.exceptions import MissingColumnsError
from ocmembers.method.member_table import MEMBER_TABLE_COLUMNS, MethodError, members, parameters_json
from ocmembers.method.hdbscan_t22 import t22_members
from ocmembers.sim.synthetic import synthetic_cone


@pytest.fixture(scope="module")
def synth():
    return synthetic_cone(1500, 150, seed=1, g_range=(10.0, 19.0))


def test_recovers_separated_cluster(synth):
    cone, truth, cluster = synth
    # the small synthetic cone: the parameters suited to Eq. 1-2 cones (the defaults suit 50 pc fields)
    cfg = load_config().replace(methods={"hdbscan_min_cluster_size": 20, "hdbscan_min_samples": 10})
    res = t22_members(cone, cluster, cfg)
    assert list(res.columns[:3]) == list(MEMBER_TABLE_COLUMNS)
    assert len(res) == len(cone)
    assert (res["source_id"].to_numpy() == cone["source_id"].to_numpy()).all()
    sel = res["probability"].to_numpy() > 0
    bright = cone["phot_g_mean_mag"].to_numpy() < 18
    tp = (sel & truth).sum()
    assert tp / sel.sum() > 0.9                      # precision
    assert tp / (truth & bright).sum() > 0.9         # recall among the G < 18 stars it may use
    assert not np.any(sel & ~bright)                 # T22: only G < 18
    assert res.attrs["parameters"]["min_samples"] == 10
    assert json.loads(parameters_json(res))["method"] == "hdbscan_t22"
    assert set(members(res, 1e-9)["source_id"]) == set(cone["source_id"][sel])


def test_picks_the_group_nearest_the_catalogue(synth):
    """Two clumps: the catalogue values decide which one is the cluster."""
    cone, truth, cluster = synth
    rng = np.random.default_rng(5)
    other = cone.loc[truth].copy()
    other["pmra"] = rng.normal(-1.0, 0.1, len(other))
    other["pmdec"] = rng.normal(6.0, 0.1, len(other))
    other["source_id"] += 100000
    both = pd.concat([cone, other], ignore_index=True)
    res = t22_members(both, cluster, None)
    sel = res["probability"].to_numpy() > 0
    assert sel[: len(cone)][truth].mean() > 0.8
    assert sel[len(cone):].mean() < 0.05


def test_too_few_stars_is_a_clear_error(synth):
    cone, _, cluster = synth
    with pytest.raises(MethodError, match="too few"):
        t22_members(cone.iloc[:15], cluster, None)


def test_missing_columns(synth):
    cone, _, cluster = synth
    with pytest.raises(MissingColumnsError, match="pmdec"):
        t22_members(cone.drop(columns="pmdec"), cluster, None)


def test_no_group_gives_labelled_empty_result():
    rng = np.random.default_rng(0)
    n = 40
    cone = pd.DataFrame({"source_id": np.arange(n), "parallax": rng.random(n), "pmra": rng.random(n),
                         "pmdec": rng.random(n), "phot_g_mean_mag": np.full(n, 15.0)})
    cluster = pd.Series({"name": "X", "parallax": 0.5, "pmra": 0.5, "pmdec": 0.5})
    cfg = load_config().replace(methods={"hdbscan_min_cluster_size": 30})
    res = t22_members(cone, cluster, cfg)
    assert (res["probability"] == 0).all()
    assert "no group" in res.attrs["empty_reason"]



def test_sky_position_as_two_more_features(synth):
    """sky=True clusters (parallax, pmra, pmdec, xi, eta); the gain on wide simulated fields is
    checked by tests/test_sim_source.py (the T22-like lists)."""
    cone, truth, cluster = synth
    cfg = load_config().replace(methods={"hdbscan_min_cluster_size": 20, "hdbscan_min_samples": 10})
    res = t22_members(cone, cluster, cfg, sky=True)
    assert res.attrs["parameters"]["features"] == ["parallax", "pmra", "pmdec", "xi", "eta"]
    sel = res["probability"].to_numpy() > 0
    bright = cone["phot_g_mean_mag"].to_numpy() < 18
    assert (sel & truth).sum() / (truth & bright).sum() > 0.9
    on = load_config().replace(methods={"hdbscan_min_cluster_size": 20, "hdbscan_min_samples": 10,
                                        "hdbscan_sky": True})
    assert np.array_equal(t22_members(cone, cluster, on)["probability"].to_numpy(), res["probability"].to_numpy())
    with pytest.raises(MissingColumnsError, match="ra"):
        t22_members(cone.drop(columns="ra"), cluster, cfg, sky=True)
    with pytest.raises(MethodError, match="dec not finite"):
        t22_members(cone, cluster.drop("dec"), cfg, sky=True)


def test_fast_hdbscan_backend_gives_the_same_members(synth):
    """[methods] hdbscan_backend = "fast_hdbscan" (issue 14): the same parameters through
    fast-hdbscan: the same members but for stars that join at the level of a split (ties in the
    mutual reachability distances, merged in another order: low strengths), the strengths of the
    common members equal to float32 precision. The key is checked at load."""
    from ocmembers.exceptions import ConfigError

    cone, truth, cluster = synth
    base = {"hdbscan_min_cluster_size": 20, "hdbscan_min_samples": 10}
    ref = t22_members(cone, cluster, load_config().replace(methods=base))
    fast = t22_members(cone, cluster, load_config().replace(methods={**base, "hdbscan_backend": "fast_hdbscan"}))
    assert fast.attrs["parameters"]["backend"] == "fast_hdbscan"
    assert ref.attrs["parameters"]["backend"] == "hdbscan"
    p, q = ref["probability"].to_numpy(), fast["probability"].to_numpy()
    assert (p > 0).sum() > 100
    differ = (p > 0) != (q > 0)
    assert differ.sum() <= 0.01 * (p > 0).sum()                    # here 1 of 151
    assert np.all(np.maximum(p, q)[differ] < 0.25)
    np.testing.assert_allclose(q[~differ], p[~differ], rtol=0, atol=1e-5)
    assert load_config().methods.hdbscan_backend == "hdbscan"      # the default: hdbscan's lists
    with pytest.raises(ConfigError, match="hdbscan_backend"):
        load_config(overrides=["methods.hdbscan_backend=sklearn"])
    with pytest.raises(ConfigError, match="hdbscan_backend"):
        load_config(overrides=["methods.hdbscan_backend=1"])


def test_ruwe_above_the_limit_is_left_out_as_t22_did(synth, caplog):
    # T22 excluded RUWE > 1.4 (van Groeningen et al. 2023, Sect. 4.2): such a star is never a member
    cone, truth, cluster = synth
    cfg = load_config().replace(methods={"hdbscan_min_cluster_size": 20, "hdbscan_min_samples": 10})
    cone = cone.copy()
    rng = np.random.default_rng(3)
    high = rng.random(len(cone)) < 0.2
    cone["ruwe"] = np.where(high, 2.0, 1.0)
    cone.loc[cone.index[:5], "ruwe"] = 1.4                # the limit itself is out (RUWE < 1.4 kept)
    high[:5] = True
    res = t22_members(cone, cluster, cfg)
    sel = res["probability"].to_numpy() > 0
    bright = cone["phot_g_mean_mag"].to_numpy() < 18
    assert not np.any(sel & high) and (res["hdbscan_label"].to_numpy()[high] == -2).all()
    assert (sel & truth).sum() / (truth & bright & ~high).sum() > 0.9
    assert res.attrs["parameters"]["ruwe_max"] == 1.4
    # inf: no cut; the same cone keeps its high-RUWE members
    every = t22_members(cone, cluster, cfg.replace(methods={"hdbscan_ruwe_max": float("inf")}))
    assert np.any((every["probability"].to_numpy() > 0) & high & truth)
    assert every.attrs["parameters"]["ruwe_max"] is None
    # a cone without the column: no cut, said in the log and in the parameters
    with caplog.at_level("WARNING", logger="ocmembers.method.hdbscan_t22"):
        bare = t22_members(cone.drop(columns="ruwe"), cluster, cfg)
    assert "no ruwe column" in caplog.text and bare.attrs["parameters"]["ruwe_max"] is None
    with pytest.raises(Exception, match="hdbscan_ruwe_max"):
        cfg.replace(methods={"hdbscan_ruwe_max": 0.0})
