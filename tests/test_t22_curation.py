"""The curation check of the T22-like lists (method.hdbscan_t22.curation_failure) and its use
on the simulated sky (sim.catalogues.t22_like_members with [sim] t22_check)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocmembers.config import load_config
from ocmembers.method.columns import normalise_cluster_name
from ocmembers.method.hdbscan_t22 import CURATED_COUNT_RANGE, curation_failure
from ocmembers.sim import catalogues
from ocmembers.sim.cluster import SimulatedCone

CLUSTER = pd.Series({"name": "Test_1", "n_members": 200, "pmra_std": 0.2, "pmdec_std": 0.2,
                     "parallax_std": 0.05, "pmra": 1.0, "pmdec": -2.0, "parallax": 1.0,
                     "ra": 100.0, "dec": 10.0})


def _list(n: int, s_pm: float, s_plx: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"pmra": rng.normal(1.0, s_pm, n), "pmdec": rng.normal(-2.0, s_pm, n),
                         "parallax": rng.normal(1.0, s_plx, n)})


def test_a_cluster_like_list_passes():
    assert curation_failure(_list(500, 0.2, 0.05), CLUSTER) is None


def test_a_fragment_and_a_field_blob_fail_by_their_size():
    assert "0.2 times" in curation_failure(_list(40, 0.2, 0.05), CLUSTER)
    why = curation_failure(_list(200 * 61, 0.2, 0.05), CLUSTER)
    assert "Test_1" in why and "61 times" in why


def test_a_list_too_wide_in_proper_motion_or_parallax_fails():
    assert "pmra dispersion" in curation_failure(_list(500, 0.2 * 6, 0.05), CLUSTER)
    assert "parallax dispersion" in curation_failure(_list(500, 0.2, 0.05 * 9), CLUSTER)
    assert curation_failure(_list(0, 0.2, 0.05), CLUSTER) == "no group"


def test_every_real_t22_list_passes_the_check(shared_data):
    """The bounds are the range of the real curated lists: all 387 pass, and the count bound
    is not much wider than they need."""
    from ocmembers.sources import get_source

    t22 = pd.read_csv(shared_data / "catalogues" / "t22_members_edr3.csv.gz")
    t22["name"] = t22["cluster"].astype(str).map(normalise_cluster_name)
    table = get_source(load_config(source="sim", local_dir=str(shared_data)))._full_table().set_index("name")
    fails, ratios = [], []
    for name, g in t22.groupby("name"):
        row = pd.concat([table.loc[name], pd.Series({"name": name}, dtype=object)])
        why = curation_failure(g, row)
        if why is not None:
            fails.append(why)
        ratios.append(len(g) / row["n_members"])
    assert len(ratios) == 387
    assert fails == []
    lo, hi = CURATED_COUNT_RANGE
    assert lo <= min(ratios) < 1.1 * lo and 0.9 * hi < max(ratios) <= hi


@pytest.mark.parametrize("check, expect", [(False, 40), (True, 300)])
def test_t22_check_replaces_a_fragment_by_the_other_list(monkeypatch, check, expect):
    """[sim] t22_check: a 3-D fragment is replaced by the 5-D list; without the check it is kept."""
    n = 2000
    rng = np.random.default_rng(1)
    field = pd.DataFrame({"source_id": np.arange(n), "ra": 100 + rng.normal(0, 0.5, n),
                          "dec": 10 + rng.normal(0, 0.5, n), "pmra": rng.normal(1.0, 0.2, n),
                          "pmdec": rng.normal(-2.0, 0.2, n), "parallax": rng.normal(1.0, 0.05, n),
                          "phot_g_mean_mag": rng.uniform(10, 18, n)})
    calls = []

    def fake(cone, cluster, cfg, *, sky):
        calls.append(sky)
        p = np.zeros(len(cone))
        p[: (300 if sky else 40)] = 0.9
        return pd.DataFrame({"source_id": cone["source_id"].to_numpy(), "probability": p})

    monkeypatch.setattr(catalogues, "t22_members", fake)
    cfg = load_config().replace(sim={"t22_sky": False, "t22_check": check, "t22_pm_window": 100.0})
    sim = SimulatedCone(name="Test_1", cone=field, truth=None, bright=field)
    out = catalogues.t22_like_members(sim, CLUSTER, cfg)
    assert len(out) == expect
    assert calls == ([False, True] if check else [False])
