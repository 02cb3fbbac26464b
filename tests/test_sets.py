"""End-to-end tests of ocmembers.stages.sets on the real M67 (NGC 2682) extract."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ocmembers import load_config

from ocmembers.sources import cache
from ocmembers.exceptions import TooFewMembersError
from ocmembers.method.features import FEATURES
from ocmembers.sources.parsec import local_isochrone
from ocmembers.stages.sets import SET_NAMES, build_sets, load_params, members_of

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def m67(request):
    from conftest import shared_data_dir
    from ocmembers.method.columns import cluster_row
    from ocmembers.sources.local import read_cluster_table, read_gaia_table, read_member_list
    from ocmembers.sources.positional import crossmatch_positional
    root = shared_data_dir()
    if not (root / "README.md").is_file():
        pytest.skip(f"shared data not found at {root}")
    cfg = load_config()
    clusters = read_cluster_table(root / "catalogues" / "cg20_table1.csv")
    row = cluster_row(clusters, "NGC_2682")
    cone = read_gaia_table(root / "gaia" / "cones" / "NGC_2682.csv")
    members = read_member_list(root / "catalogues" / "cg18_members_dr2.csv.gz", id_column="source_id_dr2")
    members = members.loc[members["cluster"] == "NGC_2682"].reset_index(drop=True)
    # DR2 positions (J2015.5) propagated to J2016.0 and matched within 1 arcsec.
    xm = crossmatch_positional(members, cone, cfg)
    iso = local_isochrone(root, float(row["log_age"]), cfg.isochrone.metallicity_z)
    return dict(cfg=cfg, clusters=clusters, row=row, cone=cone, members=members, xm=xm, iso=iso, root=root)


def test_build_sets_m67(m67):
    cfg, row = m67["cfg"], m67["row"]
    ids = members_of(m67["members"], m67["xm"], "NGC_2682", cfg.selection.member_probability)
    sets = build_sets(m67["cone"], ids, row, m67["iso"], cfg)
    c, p = sets.counts, sets.params
    print("\nM67 counts:", c)
    print("M67 params:", json.dumps(p.to_dict(), indent=1))
    # CG18 lists 117 members of NGC 2682 with p = 1; the extract holds ~91% of the list.
    assert 100 <= c["members_in_cone"] <= 117
    assert c["members"] + c["dubious_members"] == c["members_in_cone"]
    assert c["members"] >= 0.9 * c["members_in_cone"]
    assert c["candidates"] + c["non_members"] == len(m67["cone"]) - c["dropped_no_g"] - c["dropped_no_rp"] \
        - c["dropped_no_astrometry"]
    # Every training member is a candidate (authors' convention); none is a non-member.
    assert set(sets.members["source_id"]) <= set(sets.candidates["source_id"])
    assert not sets.non_members["training_member"].any()
    assert sets.candidates["training_member"].sum() == c["members_in_cone"]
    assert sets.candidates.loc[~sets.candidates["training_member"], "candidate"].all()
    for t in (sets.members, sets.candidates, sets.non_members):
        assert set(FEATURES) <= set(t.columns)
        assert {"pass_pm", "pass_plx", "pass_iso", "candidate", "parallax_raw", "g_rp_error"} <= set(t.columns)
        assert np.isfinite(t[list(FEATURES)].to_numpy()).all()
    # M67: CG20 gives plx 1.135 (DR2), pm (-10.986, -2.964), 889 pc. DR3 with the zero point is
    # ~0.05 mas larger; the Deltas are of the order of the paper's Fig. 1 example.
    assert p.parallax == pytest.approx(1.19, abs=0.03)
    assert p.pmra == pytest.approx(-11.0, abs=0.15) and p.pmdec == pytest.approx(-2.95, abs=0.15)
    assert 0.3 < p.delta_pm < 1.5 and 0.03 < p.delta_plx_plus < 0.2 and p.delta_plx_minus > p.delta_plx_plus
    assert 0.1 < p.delta_c < 0.4 and p.delta_g == pytest.approx(8 * (p.delta_c - 0.1) + 0.8)
    assert 1 < p.r_90 < 15
    # The members lie close to the isochrone: Eq. 17 distance small for most.
    d = np.hypot(sets.members["f_c"] / p.delta_c, sets.members["f_g"] / p.delta_g)
    assert np.median(d) < 0.5


def test_too_few_members(m67):
    cfg = m67["cfg"].replace(selection={"min_members": 500})
    ids = members_of(m67["members"], m67["xm"], "NGC_2682", 1.0)
    with pytest.raises(TooFewMembersError, match="NGC_2682"):
        build_sets(m67["cone"], ids, m67["row"], m67["iso"], cfg)


def test_stages_isochrones_and_sets(m67, tmp_path):
    from ocmembers.stages import isochrones, sets
    from ocmembers.stages.runner import PipelineError
    from ocmembers.sources import get_source
    cfg = load_config(source="local", local_dir=str(m67["root"]), output_dir=str(tmp_path / "data"),
                      clusters=["NGC_2682"])
    with pytest.raises(PipelineError, match="NGC_2682"):
        sets.run(cfg)                        # nothing built yet: a clear failure, nothing written
    assert not (cfg.out_dir / "sets" / "NGC_2682").exists()
    raw = cfg.raw_dir
    src = get_source(cfg)
    cone = src.cone(m67["row"])
    tm = m67["members"]
    cache.write_table(m67["clusters"], raw / "catalogues" / "clusters.parquet", source="local", query="test")
    cache.write_table(tm, raw / "catalogues" / "train_members.parquet", source="local", query="test")
    cache.write_table(cone, raw / "cones" / "NGC_2682.parquet", source="local", query="test")
    cache.write_table(src.crossmatch(tm, cone, m67["row"]), raw / "crossmatch" / "NGC_2682.parquet",
                      source="local", query="test")
    isochrones.run(cfg)
    iso_path = cfg.out_dir / "isochrones" / "NGC_2682.parquet"
    assert "bilinear" in cache.read_manifest(iso_path)["extra"]["provenance"]
    sets.run(cfg)
    out = cfg.out_dir / "sets" / "NGC_2682"
    for s in SET_NAMES:
        assert len(cache.read_table(out / f"{s}.parquet")) > 0
    curve = cache.read_table(out / "isochrone.parquet")
    assert {"g_rp", "phot_g_mean_mag", "segment"} <= set(curve.columns)
    p = load_params(cfg, "NGC_2682")
    assert p.name == "NGC_2682" and p.delta_c > 0.1
    # Up to date: a second run rewrites nothing.
    before = {f.name: f.stat().st_mtime_ns for f in out.iterdir()}
    sets.run(cfg)
    isochrones.run(cfg)
    assert {f.name: f.stat().st_mtime_ns for f in out.iterdir()} == before
