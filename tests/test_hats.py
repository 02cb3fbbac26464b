"""SOURCE=hats: Gaia cones from a HATS catalogue through LSDB, offline.

One small HATS catalogue is written with hats-import (``pipeline_with_client`` on a
2-worker ``LocalCluster``) from the simulated cones of three clusters, a synthetic field
around Blanco 1 (its cone crosses RA = 0) and one around a cluster near the north pole
(its cone holds the pole). Each cone read back through :class:`HatsSource` (lsdb) must
equal the ``sim`` source's cone, or, for the synthetic fields, the brute-force selection
of the stars within the radius and Eqs. 1-2.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

if not os.environ.get("CI"):          # in CI they are in the lock: a missing one fails
    pytest.importorskip("lsdb")
    pytest.importorskip("hats_import")

from ocmembers.config import load_config  # noqa: E402
from ocmembers.exceptions import ArchiveError, OCMembersError, TableParseError  # noqa: E402
from ocmembers.method.columns import GAIA_COLUMNS, cluster_row  # noqa: E402
from ocmembers.method.cuts import angular_separation_deg, cone_radius_deg  # noqa: E402
from ocmembers.sim.source import SimSource  # noqa: E402
from ocmembers.sources import get_source  # noqa: E402
from ocmembers.sources.hats import HatsSource  # noqa: E402

SIM_CLUSTERS = ("NGC_2682", "NGC_752", "NGC_2099")
RADIUS_PC = 10.0          # small cones: the test stays fast
#: a cluster near the north pole: its 50 pc cone at 1 kpc (2.9 deg) holds the pole
POLE = {"name": "Pole_Test", "ra": 45.0, "dec": 88.0, "l": 123.0, "b": 25.0, "r50": 0.1,
        "n_members": 100, "pmra": -1.5, "pmra_std": 0.1, "pmdec": 2.0, "pmdec_std": 0.1,
        "parallax": 1.0, "parallax_std": 0.05, "log_age": 8.5, "a0": 0.3, "dist_mod": 10.0,
        "dist_pc": 1000.0}
SYNTH_ID0 = 7_000_000_000_000_000_000


def _sim_cfg(root):
    return load_config(source="sim", local_dir=str(root / "nodata"), output_dir=str(root / "out"),
                       clusters=",".join(SIM_CLUSTERS)).replace(sim={"demo_clusters": []},
                                                                 cone={"radius_pc": RADIUS_PC})


def _field(row: pd.Series, radius_deg: float, n: int, id0: int, seed: int,
           dtypes: pd.Series) -> pd.DataFrame:
    """``n`` sources uniform on the cap of ``radius_deg`` around ``row``, with every Gaia
    column (of ``dtypes``, those of a simulated cone: one schema for the whole catalogue);
    proper motions and parallaxes spread so that some fail Eqs. 1-2."""
    rng = np.random.default_rng(seed)
    # uniform on the cap around the north pole, then rotated to (ra0, dec0)
    cos_r = rng.uniform(np.cos(np.deg2rad(radius_deg)), 1.0, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    sin_r = np.sqrt(1 - cos_r ** 2)
    v = np.stack([sin_r * np.cos(phi), sin_r * np.sin(phi), cos_r])
    ra0, dec0 = np.deg2rad(row["ra"]), np.deg2rad(row["dec"])
    # rotate the pole (0, 0, 1) onto (ra0, dec0): about y by (90 deg - dec0), then about z by ra0
    t = np.pi / 2 - dec0
    ry = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    rz = np.array([[np.cos(ra0), -np.sin(ra0), 0], [np.sin(ra0), np.cos(ra0), 0], [0, 0, 1]])
    x, y, z = rz @ ry @ v
    table = {c: rng.normal(0, 1, n).astype(np.float32) for c in GAIA_COLUMNS}
    table["source_id"] = id0 + np.arange(n, dtype=np.int64)
    table["ra"] = np.mod(np.rad2deg(np.arctan2(y, x)), 360.0)
    table["dec"] = np.rad2deg(np.arcsin(np.clip(z, -1, 1)))
    table["pmra"] = row["pmra"] + rng.normal(0, 10 * row["pmra_std"], n)
    table["pmdec"] = row["pmdec"] + rng.normal(0, 10 * row["pmdec_std"], n)
    table["parallax"] = row["parallax"] + rng.normal(0, 8 * row["parallax_std"], n)
    table["phot_g_mean_mag"] = rng.uniform(8, 21, n)
    for c in ("phot_g_n_obs", "phot_bp_n_obs", "phot_rp_n_obs", "astrometric_params_solved"):
        table[c] = rng.integers(1, 400, n).astype(np.int16)
    frame = pd.DataFrame(table)[list(GAIA_COLUMNS)].astype(dtypes.to_dict())
    frame.loc[::17, "phot_bp_mean_mag"] = np.nan   # nulls survive the round trip as NaN
    return frame


def _brute_force(field: pd.DataFrame, row: pd.Series, radius_pc: float, n_sigma: float) -> pd.DataFrame:
    """The stars of ``field`` within the radius (haversine) and Eqs. 1-2, by hand."""
    radius = cone_radius_deg(radius_pc, row["dist_pc"])
    sep = angular_separation_deg(field["ra"].to_numpy(), field["dec"].to_numpy(), row["ra"], row["dec"])
    pm_max = n_sigma * np.sqrt((row["pmra_std"] ** 2 + row["pmdec_std"] ** 2) / 2)
    dpm = np.hypot(field["pmra"] - row["pmra"], field["pmdec"] - row["pmdec"])
    keep = (sep <= radius) & (dpm <= pm_max) & (np.abs(field["parallax"] - row["parallax"])
                                                 <= n_sigma * row["parallax_std"])
    return field.loc[keep].sort_values("source_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def client():
    """A 2-worker LocalCluster for hats-import (as in CI)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as lc, Client(lc) as c:
        yield c


def _import_hats(parts: list[pd.DataFrame], root, name: str, client):
    """``parts`` written as one HATS catalogue ``root/hats/<name>`` by hats-import
    (``pipeline_with_client``)."""
    from hats_import import ImportArguments, pipeline_with_client

    raw = root / f"input_{name}"
    raw.mkdir()
    for i, part in enumerate(parts):
        part.to_parquet(raw / f"part{i}.parquet", index=False)
    args = ImportArguments(output_artifact_name=name, output_path=root / "hats",
                           input_file_list=sorted(raw.glob("*.parquet")), file_reader="parquet",
                           ra_column="ra", dec_column="dec", sort_columns="source_id",
                           highest_healpix_order=8, pixel_threshold=2000, progress_bar=False,
                           resume=False, tmp_dir=root / f"tmp_{name}")
    pipeline_with_client(args, client)
    return root / "hats" / name


@pytest.fixture(scope="module")
def sky(tmp_path_factory, client):
    """The simulated cones, the synthetic fields and the HATS catalogue made of them."""
    root = tmp_path_factory.mktemp("hats")
    sim = SimSource(_sim_cfg(root))
    rows = {n: cluster_row(sim._full_table(), n) for n in SIM_CLUSTERS}
    cones = {n: sim.cone(rows[n]) for n in SIM_CLUSTERS}
    blanco = cluster_row(sim._full_table(), "Blanco_1")
    pole = pd.Series(POLE)
    fields = {}
    for i, row in enumerate((blanco, pole)):
        radius = cone_radius_deg(50.0, row["dist_pc"])
        fields[row["name"]] = (row, _field(row, 1.4 * radius, 4000, SYNTH_ID0 + i * 10_000_000, seed=i,
                                           dtypes=cones[SIM_CLUSTERS[0]].dtypes))
    parts = [*cones.values(), *(f for _, f in fields.values())]
    everything = pd.concat(parts, ignore_index=True)
    assert everything["source_id"].is_unique
    catalog = _import_hats(parts, root, "gaia_test", client)
    return {"root": root, "catalog": catalog, "rows": rows, "cones": cones,
            "fields": fields, "n": len(everything)}


def _hats_cfg(sky, **cone):
    cfg = load_config(source="hats", local_dir=str(sky["root"] / "nodata"),
                      output_dir=str(sky["root"] / "out"))
    return cfg.replace(source={"hats_catalog": str(sky["catalog"])},
                       cone={"radius_pc": RADIUS_PC, **cone})


def test_factory_and_version(sky):
    source = get_source(_hats_cfg(sky))
    assert isinstance(source, HatsSource)
    version = source.version()
    assert version["catalog_name"] == "gaia_test"
    assert version["total_rows"] == str(sky["n"])
    assert set(source.columns()) == set(GAIA_COLUMNS)


@pytest.mark.parametrize("name", SIM_CLUSTERS)
def test_cone_equals_the_sim_source(sky, name):
    source = HatsSource(_hats_cfg(sky))
    got = source.cone(sky["rows"][name])
    want = sky["cones"][name].sort_values("source_id", kind="mergesort").reset_index(drop=True)
    assert len(got) > 100
    pd.testing.assert_frame_equal(got, want)   # same ids, values, dtypes, column order


@pytest.mark.parametrize("which", ["Blanco_1", "Pole_Test"])
@pytest.mark.parametrize("radius_pc", [RADIUS_PC, 50.0])
def test_cone_across_ra0_and_the_pole(sky, which, radius_pc):
    row, field = sky["fields"][which]
    source = HatsSource(_hats_cfg(sky, radius_pc=radius_pc))
    got = source.cone(row)
    want = _brute_force(field, row, radius_pc, source.cfg.cone.n_sigma)
    assert len(want) > 20
    assert got["source_id"].tolist() == want["source_id"].tolist()
    pd.testing.assert_frame_equal(got, want)
    if which == "Blanco_1":           # both sides of RA = 0
        assert (got["ra"] < 5).any() and (got["ra"] > 355).any()
    elif row["dec"] + cone_radius_deg(radius_pc, row["dist_pc"]) > 90:   # all around the pole
        assert (got["dec"] > 89).any() and np.ptp(got["ra"]) > 300


def test_manifest_records_the_catalogue_and_its_version(sky):
    from ocmembers.sources import cache
    from ocmembers.stages.cones import fetch_cone
    from ocmembers.stages.products import catalogue_paths, cone_path

    cfg = _hats_cfg(sky).replace(paths={"output_dir": str(sky["root"] / "stage")})
    table = pd.DataFrame([sky["rows"]["NGC_2682"]]).reset_index(drop=True)
    clusters = catalogue_paths(cfg)["clusters"]
    clusters.parent.mkdir(parents=True, exist_ok=True)
    cache.write_table(table, clusters, source="test", query="the NGC 2682 row")
    assert fetch_cone(cfg, "NGC_2682") is True
    manifest = cache.read_manifest(cone_path(cfg, "NGC_2682"))
    assert manifest["source"] == "hats"
    assert str(sky["catalog"]) in manifest["query"]
    assert f"total_rows={sky['n']}" in manifest["query"] and "hats_version=" in manifest["query"]
    assert "hats_creation_date=" in manifest["query"]
    assert fetch_cone(cfg, "NGC_2682") is False      # cached: the same query and record
    cone = cache.read_table(cone_path(cfg, "NGC_2682"))
    assert len(cone) == len(sky["cones"]["NGC_2682"])


def test_unreachable_url_names_it(sky):
    url = "http://127.0.0.1:9/none"
    source = HatsSource(_hats_cfg(sky).replace(source={"hats_catalog": url}))
    with pytest.raises(ArchiveError, match="http://127.0.0.1:9/none"):
        source.cone(sky["rows"]["NGC_2682"])
    with pytest.raises(ArchiveError, match="http://127.0.0.1:9/none"):
        source.cone_query(sky["rows"]["NGC_2682"])


def test_missing_or_invalid_path_names_it(sky, tmp_path):
    missing = tmp_path / "no_such_catalogue"
    with pytest.raises(TableParseError, match="no_such_catalogue.*does not exist"):
        HatsSource(_hats_cfg(sky).replace(source={"hats_catalog": str(missing)})).cone(sky["rows"]["NGC_2682"])
    with pytest.raises(TableParseError, match="is not a HATS catalogue"):
        HatsSource(_hats_cfg(sky).replace(source={"hats_catalog": str(tmp_path)})).cone_query(
            sky["rows"]["NGC_2682"])


def test_catalogues_come_from_the_delegate(sky, tmp_path):
    source = HatsSource(_hats_cfg(sky))
    assert source.delegate.name == "local"
    with pytest.raises(OCMembersError, match="nodata"):
        source.cluster_table()          # DATA_DIR has no CG20 table: the local source says so
    with pytest.raises(OCMembersError, match="hats_catalogues"):
        _hats_cfg(sky).replace(source={"hats_catalogues": "vizier"})


def test_real_m67_extract_through_hats_equals_the_local_source(shared_data, tmp_path, client):
    """The real Gaia DR3 extract of M67 (DATA_DIR) as a HATS catalogue: the hats cone is the
    local source's cone, and the catalogues are the local source's."""
    from ocmembers.sources.local import LocalSource, read_gaia_table

    local = LocalSource(load_config(source="local", local_dir=str(shared_data),
                                    output_dir=str(tmp_path / "out")))
    extract = read_gaia_table(local.cone_file("NGC_2682"))
    catalog = _import_hats([extract], tmp_path, "m67", client)
    cfg = load_config(source="hats", local_dir=str(shared_data), output_dir=str(tmp_path / "out"))
    source = HatsSource(cfg.replace(source={"hats_catalog": str(catalog)}))
    row = cluster_row(source.cluster_table(), "NGC_2682")
    pd.testing.assert_frame_equal(source.cluster_table(), local.cluster_table())
    want = local.cone(row).sort_values("source_id", kind="mergesort").reset_index(drop=True)
    got = source.cone(row)
    assert len(got) > 1000
    pd.testing.assert_frame_equal(got, want)
    assert source.catalogue_query("clusters").endswith(local.catalogue_query("clusters"))


def test_cone_read_inside_a_dask_worker_task(sky, client):
    """A per-cluster task reads its own cone on the worker (compute in the task), the same rows."""
    row = sky["rows"]["NGC_752"]
    source = HatsSource(_hats_cfg(sky))                       # nothing read yet: ships as a name
    got = client.submit(source.cone, row, pure=False).result(timeout=120)
    pd.testing.assert_frame_equal(got, source.cone(row))
