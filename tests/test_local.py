"""The local source on the real files of ../shared/data."""

import numpy as np
import pandas as pd
import pytest

from ocmembers.exceptions import EmptyConeError, MissingColumnsError, TableParseError, UnknownClusterError
from ocmembers.sources import get_source
from ocmembers.method.columns import CLUSTER_COLUMNS, GAIA_COLUMNS, cluster_row
from ocmembers.method.cuts import apply_cone_cuts, cone_radius_deg
from ocmembers.sources.local import read_cluster_table, read_gaia_table, read_member_list


def test_cg20_both_namings_agree(shared_data):
    csv = read_cluster_table(shared_data / "catalogues/cg20_table1.csv")
    tsv = read_cluster_table(shared_data / "catalogues/cg20_table1_vizier_subset.tsv")
    assert list(csv.columns) == list(CLUSTER_COLUMNS) == list(tsv.columns)
    assert len(csv) == len(tsv) == 2017
    m67 = cluster_row(csv, "NGC 2682")
    # CG20 table1 values for M67 (Cantat-Gaudin et al. 2020)
    assert m67["pmra"] == pytest.approx(-10.986) and m67["parallax"] == pytest.approx(1.135)
    assert m67["dist_pc"] == pytest.approx(889) and m67["log_age"] == pytest.approx(9.63)
    both = csv.set_index("name").loc[tsv["name"]]
    for col in ("pmra", "pmdec", "parallax", "log_age", "a0", "dist_mod", "dist_pc", "n_members"):
        np.testing.assert_allclose(both[col].to_numpy(), tsv[col].to_numpy(), err_msg=col)


def test_unknown_cluster_suggests(shared_data):
    table = read_cluster_table(shared_data / "catalogues/cg20_table1.csv")
    with pytest.raises(UnknownClusterError, match=r"'NGC_2682x'.*did you mean NGC_2682"):
        cluster_row(table, "NGC_2682x")


def test_member_lists(shared_data):
    cg = read_member_list(shared_data / "catalogues/cg18_members_dr2.csv.gz", id_column="source_id_dr2")
    t22 = read_member_list(shared_data / "catalogues/t22_members_edr3.csv.gz")
    assert cg["source_id_dr2"].dtype == np.int64 and t22["source_id"].dtype == np.int64
    assert cg["cluster"].nunique() == 1229 and t22["cluster"].nunique() == 387
    assert not t22["cluster"].str.contains(" ").any()  # T22 pads names with spaces
    assert cg["probability"].between(0, 1).all()


def test_missing_member_columns_named(tmp_path):
    f = tmp_path / "m.csv"
    pd.DataFrame({"cluster": ["A"], "Source": [1], "ra": [1.0]}).to_csv(f, index=False)
    with pytest.raises(MissingColumnsError, match="dec"):
        read_member_list(f)


@pytest.mark.parametrize("fmt", ["parquet", "vot", "fits", "csv"])
def test_gaia_formats_read_alike(tmp_path, shared_data, fmt):
    from astropy.table import Table
    ref = pd.read_csv(shared_data / "gaia/cones/NGC_2682.csv", nrows=50)[list(GAIA_COLUMNS)]
    path = tmp_path / f"cone.{fmt}"
    if fmt == "parquet":
        ref.to_parquet(path)
    elif fmt == "csv":
        ref.to_csv(path, index=False)
    else:
        t = Table.from_pandas(ref)
        t.write(path, format="votable" if fmt == "vot" else "fits")
    got = read_gaia_table(path)
    assert got["source_id"].tolist() == ref["source_id"].tolist()
    np.testing.assert_allclose(got["parallax"].to_numpy(float), ref["parallax"].to_numpy(float))


def test_cone_cuts_are_eqs_1_2():
    cluster = pd.Series({"name": "X", "ra": 10.0, "dec": 0.0, "pmra": 1.0, "pmdec": 2.0, "parallax": 1.0,
                         "pmra_std": 0.1, "pmdec_std": 0.1, "parallax_std": 0.05, "dist_pc": 1000.0})
    r = cone_radius_deg(50.0, 1000.0)
    assert r == pytest.approx(np.degrees(np.arctan(0.05)))
    s = pd.DataFrame({
        "ra": [10.0, 10.0 + 0.99 * r, 10.0 + 1.01 * r, 10.0, 10.0, 10.0, 10.0],
        "dec": 0.0,
        # pm radius 10 * 0.1 = 1.0 mas/yr; parallax window 10 * 0.05 = 0.5 mas
        "pmra": [1.0, 1.0, 1.0, 1.0 + 0.7, 1.0 + 0.8, 1.0, 1.0],
        "pmdec": [2.0, 2.0, 2.0, 2.0 + 0.7, 2.0 + 0.62, 2.0, 2.0],
        "parallax": [1.0, 1.0, 1.0, 1.0, 1.0, 1.49, 0.49],
    })
    kept = apply_cone_cuts(s, cluster, radius_pc=50.0, n_sigma=10.0)
    # rows 0, 1, 3 (|dpm| = 0.99), 5 pass; 2 (outside radius), 4 (|dpm| = 1.012), 6 (dplx 0.51) fail
    assert kept.index.size == 4
    np.testing.assert_allclose(kept["parallax"], [1.0, 1.0, 1.0, 1.49])


def test_m67_cone_through_the_source(tmp_cfg):
    src = get_source(tmp_cfg)
    clusters = src.cluster_table()
    cone = src.cone(cluster_row(clusters, "NGC_2682"))
    assert set(cone.columns) <= set(GAIA_COLUMNS) and {"source_id", "parallax_pmra_corr"} <= set(cone.columns)
    assert 1400 < len(cone) <= 1494  # the extract, after the 50 pc and Eq. 1-2 cuts
    assert "sha256:" in src.cone_query(cluster_row(clusters, "NGC_2682"))


def test_missing_extract_is_named(tmp_cfg):
    src = get_source(tmp_cfg)
    row = cluster_row(src.cluster_table(), "IC_4756")
    with pytest.raises(EmptyConeError, match="IC_4756"):
        src.cone(row)


def test_missing_catalogue_dir(tmp_path):
    from ocmembers import load_config
    cfg = load_config(source="local", local_dir=str(tmp_path))
    with pytest.raises(TableParseError, match="CG20 cluster table"):
        get_source(cfg).cluster_table()
