"""SimSource: the simulated sky behind the DataSource interface."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocmembers.config import load_config
from ocmembers.sim.isochrones import model_isochrone
from ocmembers.sources import get_source
from ocmembers.method.columns import CLUSTER_COLUMNS, MEMBER_COLUMNS
from ocmembers.sim.source import SimSource, embedded_cluster_table


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    root = tmp_path_factory.mktemp("simsource")
    return load_config(source="sim", local_dir=str(root / "nodata"), output_dir=str(root / "out"),
                       clusters="NGC_2682").replace(sim={"demo_clusters": []})


@pytest.fixture(scope="module")
def source(cfg):
    return get_source(cfg)


def test_factory_and_table(source):
    assert isinstance(source, SimSource)
    table = source.cluster_table()
    assert list(table.columns) == list(CLUSTER_COLUMNS)
    assert table["name"].tolist() == ["NGC_2682"]


def test_embedded_table_transcribes_cg20(shared_data):
    from ocmembers.sources.local import read_cluster_table

    cg20 = read_cluster_table(shared_data / "catalogues" / "cg20_table1.csv").set_index("name")
    emb = embedded_cluster_table().set_index("name")
    pd.testing.assert_frame_equal(emb, cg20.loc[emb.index, emb.columns], check_dtype=False)


def test_cone_cached_on_disk(cfg, source):
    row = source.cluster_table().iloc[0]
    cone = source.cone(row)
    assert (cfg.raw_dir / "sim" / "NGC_2682.cone.parquet").is_file()
    fresh = SimSource(cfg)
    again = fresh.cone(row)
    assert fresh.simulated(row).meta.get("cached")
    pd.testing.assert_frame_equal(again, cone)
    assert len(fresh.truth(row)) == len(cone)


def test_training_members_and_positional_crossmatch(cfg, source):
    row = source.cluster_table().iloc[0]
    members = source.training_members()
    assert list(members.columns) == list(MEMBER_COLUMNS) + ["source_id_dr2"]
    assert (members["phot_g_mean_mag"] < cfg.sim.cg20_g_max + 0.1).all()
    assert (members["probability"] >= 0.7).all() and (members["probability"] == 1).mean() > 0.7
    # like CG20: about n07 stars listed (the simulated cluster has more)
    row_n07 = float(source.cluster_table().iloc[0]["n_members"])
    assert len(members) == pytest.approx(row_n07, rel=0.25)
    cone = source.cone(row)
    truth = source.truth(row)
    # some DR2 ids differ from the DR3 ones, so matching by equality would lose stars
    assert 0 < (~members["source_id_dr2"].isin(cone["source_id"])).mean() < 0.15
    xm = source.crossmatch(members, cone, row)
    assert len(xm) >= 0.97 * len(members)
    true_members = truth.loc[truth["is_member"], "source_id"]
    # the listed stars are the cluster's, up to the stated contamination
    frac_true = xm["source_id"].isin(true_members).mean()
    assert frac_true == pytest.approx(1 - cfg.sim.cg20_contamination, abs=0.03)
    # the DR2-epoch positions are 0.5 yr of proper motion away from the DR3 ones
    assert np.median(xm["angular_distance"]) < 0.05


def test_comparison_members_columns(source):
    t22 = source.comparison_members()
    assert list(t22.columns) == list(MEMBER_COLUMNS) + ["source_id"]


def test_isochrone_is_the_one_drawn_from(source):
    iso = source.isochrone(9.63)
    ref = model_isochrone(9.63, 0.0)
    np.testing.assert_allclose(iso["Gmag"].to_numpy(), ref["Gmag"].to_numpy())
    assert "model_isochrone" in iso.attrs["provenance"]
    assert "9.630" in source.isochrone_query(9.63)


def test_t22_like_list_recovers_bright_members(source):
    """HDBSCAN on the wide bright field finds the cluster: its members are true members."""
    row = source.cluster_table().iloc[0]
    t22 = source.comparison_members()
    assert len(t22) > 100
    truth = source.truth(row)
    in_cone = t22["source_id"].isin(truth["source_id"])
    true_ids = truth.loc[truth["is_member"], "source_id"]
    assert t22.loc[in_cone, "source_id"].isin(true_ids).mean() > 0.9
    assert (t22["phot_g_mean_mag"] < 18).all()
    cone = source.cone(row)
    bright_true = truth.loc[truth["is_member"].to_numpy() & (cone["phot_g_mean_mag"].to_numpy() < 18), "source_id"]
    assert bright_true.isin(t22["source_id"]).mean() > 0.8          # recall of a curated-like list


def test_t22_only_keys_leave_cones_and_training_members_cached(cfg, source):
    """[sim] t22_sky changes the cache key of the T22-like lists only."""
    other = get_source(cfg.replace(sim={"t22_sky": not cfg.sim.t22_sky}))
    row = source.cluster_table().iloc[0]
    assert other.cone_query(row) == source.cone_query(row)
    assert other.catalogue_query("train_members") == source.catalogue_query("train_members")
    assert other.catalogue_query("t22_members") != source.catalogue_query("t22_members")


def test_catalogue_products_same_with_parallel_jobs(tmp_path):
    """The per-cluster catalogue products do not depend on JOBS (one process or a pool)."""
    kw = dict(source="sim", local_dir=str(tmp_path / "nodata"), clusters="NGC_2682,NGC_752")
    one = get_source(load_config(output_dir=str(tmp_path / "one"), jobs=1, **kw).replace(sim={"demo_clusters": []}))
    two = get_source(load_config(output_dir=str(tmp_path / "two"), jobs=2, **kw).replace(sim={"demo_clusters": []}))
    a, b = two.comparison_members(), one.comparison_members()
    assert set(a["cluster"]) == {"NGC_2682", "NGC_752"}
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(two.training_members(), one.training_members())


def test_memo_keeps_only_the_last_cones(tmp_path, monkeypatch):
    # the memo held every cone a process touched (validate: 147 cones, 8.8 GB); now the last two
    import ocmembers.sim.source as sim_source
    from ocmembers.sim.cluster import SimulatedCone

    calls = []

    def fake_simulate(row, cfg):
        calls.append(str(row["name"]))
        t = pd.DataFrame({"source_id": np.arange(3, dtype=np.int64), "ra": [1.0, 2.0, 3.0]})
        return SimulatedCone(name=str(row["name"]), cone=t, truth=t.copy(), bright=t.iloc[:0].copy())

    monkeypatch.setattr(sim_source, "simulate_cone", fake_simulate)
    cfg = load_config(source="sim", local_dir=str(tmp_path / "nodata"), output_dir=str(tmp_path / "out"))
    src = SimSource(cfg)
    a, b, c = src.cluster_names()[:3]
    first = src.simulated(a)
    src.simulated(b)
    assert src.simulated(a) is first                      # a hit, and now the most recent
    src.simulated(c)                                      # evicts b, the least recently used
    assert list(src._memo) == [a, c] and len(src._memo) == sim_source.MEMO_CONES
    again = src.simulated(b)                              # from the disk cache, not simulated again
    assert calls == [a, b, c] and again.meta.get("cached")
    pd.testing.assert_frame_equal(again.cone, first.cone)
