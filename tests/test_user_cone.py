"""A user's own cone: checked input, one outlier that cannot move the cluster, every row
accounted for, member files that TOPCAT reads (issue 11, items 3 and 4)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pandas as pd
import pytest

import ocmembers
from ocmembers import load_config
from ocmembers.exceptions import ConfigError, EmptyConeError
from ocmembers.method.accounting import EVALUATED, STATUSES

pytestmark = pytest.mark.shared_data
N = 5


@pytest.fixture(scope="module")
def m67(shared_data):
    if importlib.util.find_spec("gaia_oc_amd") is None and not os.environ.get("CI"):
        pytest.skip("the published model (gaia-oc-amd==0.2.1) is not installed")
    from ocmembers.sources.cone_file import read_cone_file
    cfg = load_config(source="local", local_dir=str(shared_data))
    path = shared_data / "gaia" / "cones" / "NGC_2682.csv"
    cone = read_cone_file(path)
    ref = ocmembers.members(path, "NGC_2682", "vg23", config=cfg, n_samples=N)
    return {"cfg": cfg, "cone": cone, "ref": ref, "path": path}


def _run(m67, cone, **kw):
    return ocmembers.members(cone, "NGC_2682", "vg23", config=m67["cfg"], n_samples=N, **kw)


def _members(t):
    return np.asarray(t["source_id"])[np.asarray(t["status"]) == "training_member"]


def test_every_input_row_has_one_status(m67):
    t = m67["ref"]
    assert len(t) == len(m67["cone"]) == 1494
    assert set(np.asarray(t["status"])) <= set(STATUSES)
    ev = np.isin(np.asarray(t["status"]), list(EVALUATED))
    p = np.asarray(t["probability"], float)
    assert np.isfinite(p[ev]).all() and np.isnan(p[~ev]).all()
    # the source without G_RP is there, with its reason, not silently gone
    assert (np.asarray(t["status"]) == "missing_photometry").sum() == 1


def test_the_dubious_member_is_not_called_a_support_member(m67):
    t = m67["ref"]
    s = np.asarray(t["status"])
    dub = s == "dubious_member"
    assert dub.sum() == 1 and np.asarray(t["training_member"])[dub].all()
    assert not np.asarray(t["candidate"], bool)[dub].any()       # fails Eqs. 3-5
    assert "only if it also passes Eqs. 3-5" in t["training_member"].description


def test_failed_condition_is_the_first_failed_equation(m67):
    t = m67["ref"].to_pandas()
    for status, col, before in (("failed_eq3", "pass_pm", []), ("failed_eq4", "pass_plx", ["pass_pm"]),
                                ("failed_eq5", "pass_iso", ["pass_pm", "pass_plx"])):
        rows = t.loc[t["status"] == status]
        assert len(rows) == 0 or (~rows[col].astype(bool)).all()
        for b in before:
            assert rows[b].astype(bool).all()


def test_one_impossible_proper_motion_among_the_members_is_dropped_and_counted(m67):
    cone = m67["cone"].copy()
    star = _members(m67["ref"])[0]
    cone.loc[cone["source_id"] == star, "pmra"] = 1e5
    t = _run(m67, cone)
    s = pd.Series(np.asarray(t["status"]), index=np.asarray(t["source_id"]))
    assert s[star] == "implausible"
    p = np.asarray(t["probability"], float)[np.asarray(t["status"]) == "training_member"]
    assert p.size >= 100 and np.mean(p >= 0.5) > 0.9             # before: every p < 0.1


def test_infinite_proper_motions_are_dropped_not_turned_into_p_zero(m67):
    cone = m67["cone"].copy()
    rows = cone.index[:120]
    cone.loc[rows, "pmra"] = np.inf
    t = _run(m67, cone)
    s = np.asarray(t["status"])
    assert (s == "implausible").sum() == 120
    p = np.asarray(t["probability"], float)
    assert np.nanmean(p[s == "training_member"]) > 0.8          # before: all p = 0


def test_one_plausible_but_wrong_member_does_not_move_the_cluster(m67, shared_data):
    """A member 50 mas/yr off with a small error would pull the weighted mean of Eq. 7; it is
    left out, and the cluster parameters are exactly those without it."""
    from ocmembers.api import _cluster, _isochrone, _training_members
    from ocmembers.method.sets import build_sets
    cfg, cone = m67["cfg"], m67["cone"]
    row = _cluster("NGC_2682", cfg, None)
    tm = _training_members(cone, "NGC_2682", cfg, None)
    iso = _isochrone(row, cfg)
    star = int(tm["source_id"].iloc[0])
    bad = cone.copy()
    i = bad.index[bad["source_id"] == star]
    bad.loc[i, "pmra"] += 50.0
    bad.loc[i, "pmra_error"] = 0.01
    with_outlier = build_sets(bad, tm, row, iso, cfg)
    without = build_sets(bad, tm.loc[tm["source_id"] != star], row, iso, cfg)
    assert with_outlier.counts["members_outlying"] == 1
    assert with_outlier.params == without.params
    assert with_outlier.dropped.set_index("source_id").loc[star, "status"] == "outlying_member"
    # with the clip switched off the mean moves by many of its own errors
    off = build_sets(bad, tm, row, iso, cfg.replace(selection={"member_clip_sigma": 0.0}))
    assert abs(off.params.pmra - without.params.pmra) > 10 * without.params.pmra_error


def test_duplicated_rows_are_accounted_for(m67):
    cone = pd.concat([m67["cone"], m67["cone"].iloc[:7]], ignore_index=True)
    t = _run(m67, cone)
    assert len(t) == len(cone)
    assert (np.asarray(t["status"]) == "duplicate").sum() == 7


def test_a_cone_far_from_the_cluster_says_so_with_the_separation(m67):
    cone = m67["cone"].copy()
    cone["ra"] = (cone["ra"] + 30.0) % 360.0
    with pytest.raises(ConfigError, match=r"does not contain cluster NGC_2682: its centre .* is 2\d\.\d\d deg "
                                          r"from NGC_2682.*cone radius of 3\.22 deg"):
        _run(m67, cone)


def test_a_cone_without_parallaxes_names_the_column(m67):
    cone = m67["cone"].copy()
    cone["parallax"] = np.nan
    with pytest.raises(EmptyConeError, match=r"none of the 1\d{3} sources .* full astrometry: parallax is "
                                             r"NaN in 14\d\d"):
        _run(m67, cone)


@pytest.mark.parametrize("suffix", [".fits", ".vot", ".ecsv"])
def test_member_files_carry_units_ucds_and_descriptions(m67, tmp_path, suffix):
    from astropy.table import Table
    from ocmembers.sources.member_lists import write_member_file
    path = write_member_file(m67["ref"], tmp_path / f"m67{suffix}")
    if suffix == ".vot":
        from astropy.io.votable import parse
        table = parse(str(path)).get_first_table()
        fields = {f.name: f for f in table.fields}
        assert fields["ra"].ucd == "pos.eq.ra;meta.main" and str(fields["pmra"].unit) == "mas / yr"
        assert "Sect. 3.4" in fields["probability"].description
        assert {i.name: i.value for i in table.infos}["cluster"] == "NGC_2682"
        back = table.to_table()
    elif suffix == ".fits":
        from astropy.io import fits
        h = fits.getheader(path, 1)
        names = [h[f"TTYPE{i}"] for i in range(1, h["TFIELDS"] + 1)]
        k = names.index("status") + 1
        assert h[f"TUCD{k}"] == "meta.code.status" and "evaluated" in h[f"TCOMM{k}"]
        assert h[f"TUNIT{names.index('pmra') + 1}"] == "mas yr-1" and h["CLUSTER"] == "NGC_2682"
        back = Table.read(path)
        # an untested flag stays unknown (null), not True
        j = np.asarray(m67["ref"]["status"]) == "cut_eq1_2"
        assert np.ma.getmaskarray(back["pass_pm"])[j].all()
    else:
        back = Table.read(path)
        assert back["ra"].info.meta["ucd"] == "pos.eq.ra;meta.main"
    assert len(back) == len(m67["ref"])
    np.testing.assert_array_equal(np.asarray(back["source_id"]), np.asarray(m67["ref"]["source_id"]))


def test_an_unknown_output_suffix_is_refused(m67, tmp_path):
    from ocmembers.sources.member_lists import write_member_file
    with pytest.raises(ConfigError, match=r"m67\.txt: unknown suffix '\.txt'"):
        write_member_file(m67["ref"], tmp_path / "m67.txt")
    assert not list(tmp_path.iterdir())
