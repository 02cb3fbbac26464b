import numpy as np
import pandas as pd
import pytest

from ocmembers import load_config
from ocmembers.exceptions import ConfigError
from ocmembers.method.samples import longitude_from_centre, select_samples


def _clusters():
    return pd.DataFrame({
        "name": ["A", "B", "C", "D", "E", "F"],
        "l": [100.0, 350.0, 200.0, 45.0, 300.0, 180.0],
        "parallax": [1.0, 1.0, 5.0, 1.0, 1.0, 1.0],
        "log_age": [8.0, 8.0, 8.0, 8.0, 8.0, np.nan],
        "dist_pc": 1000.0, "a0": 0.5,
    })


def _members(counts):
    rows = [{"cluster": c, "probability": 1.0} for c, n in counts.items() for _ in range(n)]
    rows += [{"cluster": "A", "probability": 0.9}] * 50  # p < 1 do not count
    return pd.DataFrame(rows)


def test_longitude_from_centre():
    np.testing.assert_allclose(longitude_from_centre([0, 30, 330, 180, 359, -10]), [0, 30, 30, 180, 1, 10])


def test_criteria_of_sects_3_2_and_4():
    cfg = load_config()
    clusters = _clusters()
    members = _members({"A": 100, "B": 100, "C": 100, "D": 100, "E": 30, "F": 100})
    t22 = pd.DataFrame({"cluster": ["D", "E", "B"]})
    s = select_samples(clusters, members, t22, cfg)
    # test: T22 list, params, >= 20 p=1 members, |l| > 30 deg: B (l=350 -> 10 deg) fails, D and E pass
    assert s.test == ["D", "E"]
    # train pool: params, >= 80 members, not test, |l| > 60 deg, plx < 4: A only (B at 10 deg, C plx 5, F no age)
    assert sorted(s.train + s.validation) == ["A"]
    assert s.counts["test"]["has T22 list"] == 3
    assert list(s.counts["train"].values()) == [6, 5, 4, 3, 2, 1]


def test_split_is_seeded_and_by_cluster():
    cfg = load_config()
    n = 40
    clusters = pd.DataFrame({"name": [f"C{i}" for i in range(n)], "l": 180.0, "parallax": 1.0,
                             "log_age": 8.0, "dist_pc": 1000.0, "a0": 0.1})
    members = pd.DataFrame({"cluster": np.repeat(clusters["name"], 80), "probability": 1.0})
    t22 = pd.DataFrame({"cluster": []})
    a = select_samples(clusters, members, t22, cfg)
    b = select_samples(clusters, members, t22, cfg)
    assert a.train == b.train and len(a.validation) == 12 and not set(a.train) & set(a.validation)
    other = select_samples(clusters, members, t22, cfg.replace(samples={"split_seed": 1}))
    assert other.validation != a.validation


def test_explicit_roles_checked():
    cfg = load_config().replace(samples={"train_clusters": ["A"], "test_clusters": ["A"]})
    with pytest.raises(ConfigError, match="both for training and testing: A"):
        select_samples(_clusters(), _members({}), pd.DataFrame({"cluster": []}), cfg)
    cfg = load_config().replace(samples={"train_clusters": ["Z"]})
    with pytest.raises(ConfigError, match="not in the cluster catalogue: Z"):
        select_samples(_clusters(), _members({}), pd.DataFrame({"cluster": []}), cfg)


def test_sim_reproduction_uses_the_real_selection(shared_data, tmp_path):
    """SOURCE=sim with DATA_DIR: the paper's selection on the real catalogues; the demo keeps its roles."""
    from ocmembers.stages.catalogues import real_selection_for_sim
    from ocmembers.sources.local import LocalSource
    cfg = load_config(source="sim", local_dir=str(shared_data), output_dir=str(tmp_path))
    sim = real_selection_for_sim(cfg)
    local_cfg = load_config(source="local", local_dir=str(shared_data), output_dir=str(tmp_path))
    src = LocalSource(local_cfg)
    real = select_samples(src.cluster_table(), src.training_members(), src.comparison_members(), local_cfg)
    assert sim.test == real.test and sim.train == real.train and len(sim.test) > 100
    assert real_selection_for_sim(cfg.replace(samples={"test_clusters": ["NGC_2682"]})) is None
    assert real_selection_for_sim(load_config(source="sim", local_dir=str(tmp_path / "none"))) is None
    assert real_selection_for_sim(load_config(source="local", local_dir=str(shared_data))) is None
