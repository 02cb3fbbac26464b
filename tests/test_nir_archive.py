"""The archive route of PR22 (sources/nir_archive.py, the region requests of sources/vizier.py, the
2MASS/VISTA CMD replies of sources/parsec.py) on generated replies: no network."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from astropy.table import MaskedColumn, Table

from ocmembers.exceptions import ArchiveError, MissingColumnsError, TableParseError
from ocmembers.sources import nir_archive as na
from ocmembers.sources import vizier

from nir_replies import FakeTap, FakeVizierRegion, capture_measurements, gaia_reply, tmass_reply, virac2_reply

pytestmark = pytest.mark.filterwarnings("ignore:.*Implicitly generating an ID:Warning")

DATA = Path(__file__).parent / "data"
CLUSTER = "NGC_5606"        # the smallest simulated PR22 field (5000 sources, ~1 s)


@pytest.fixture(scope="module")
def sim(shared_data, tmp_path_factory):
    """NGC 5606's simulated VVV field, its per-survey measurements and the replies made of them."""
    from ocmembers.config import load_config
    from ocmembers.method.columns import cluster_row
    from ocmembers.sim.source import SimSource
    from ocmembers.sources.pr22 import pr22_cluster_table

    cfg = load_config(source="sim", local_dir=str(shared_data),
                      output_dir=str(tmp_path_factory.mktemp("nir") / "data")).replace(
        source={"retries": 3, "backoff_s": 0.5})
    row = cluster_row(pr22_cluster_table(SimSource(cfg)._full_table()), CLUSTER)
    field, m = capture_measurements(row, cfg)
    rng = np.random.default_rng(12)
    tm, tm_rows = tmass_reply(m, rng)
    vi, vi_rows = virac2_reply(m, rng)
    return {"cfg": cfg, "row": row, "field": field, "m": m, "gaia": gaia_reply(m), "2mass": tm,
            "2mass_rows": tm_rows, "virac2": vi, "virac2_rows": vi_rows}


def _clients(sim, **over):
    tables = {na.TMASS_PSC: sim["2mass"], na.VIRAC2: sim["virac2"]}
    tables.update(over)
    return FakeTap(sim["gaia"]), FakeVizierRegion(tables)


def _key(m: pd.DataFrame) -> np.ndarray:
    """The assembled field's source_id of each row of ``m``: Gaia's, else -srcid (row + 1)."""
    g = m["gaia_source_id"].to_numpy(np.int64)
    return np.where(g >= 0, g, -(np.arange(len(m)) + 1))


# -- requests ----------------------------------------------------------------
def test_field_requests(sim):
    row, cfg = sim["row"], sim["cfg"]
    q = na.field_queries(row, cfg)
    r = 5 * float(row["r50"])
    assert q["2mass"]["catalog"] == "II/246/out" and q["virac2"]["catalog"] == "II/387/virac2"
    for k in ("2mass", "virac2"):
        assert q[k]["region"] == {"ra": float(row["ra"]), "dec": float(row["dec"]), "radius_deg": pytest.approx(r)}
        assert q[k]["row_limit"] == -1
    assert q["2mass"]["column_filters"] == {}
    lo, hi = float(row["pmra"]) - 10 * float(row["pmra_std"]), float(row["pmra"]) + 10 * float(row["pmra_std"])
    pm = q["virac2"]["column_filters"]["pmRA"].split("..")
    assert [float(x) for x in pm] == pytest.approx([lo, hi])
    assert "CIRCLE('ICRS'" in q["gaia"] and f"AND pmra BETWEEN " in q["gaia"] and "parallax BETWEEN" not in q["gaia"]
    assert vizier.query_text(q["virac2"]) == vizier.query_text(na.virac2_query(row))   # deterministic
    for bad in ({"radius_deg": 0.0}, {"radius_deg": 11.0}, {"ra": float("nan")}):
        kw = {"ra": 10.0, "dec": -60.0, "radius_deg": 0.1} | bad
        with pytest.raises(ValueError, match="II/246/out: region"):
            vizier.build_vizier_region_query(na.TMASS_PSC, na.TMASS_COLUMNS, **kw)
    with pytest.raises(TableParseError, match="cluster NGC_5606: r50"):
        na.field_radius_deg(pd.Series({"name": CLUSTER, "r50": np.nan}))


def test_region_request_through_astroquery(sim, monkeypatch):
    """fetch_vizier's region path through astroquery's own Vizier.query_region (the HTTP layer faked)."""
    from test_vizier import FakeVizierServer
    import io
    from astropy.io.votable import from_table

    buf = io.BytesIO()
    from_table(Table(sim["virac2"][:5])).to_xml(buf)
    server = FakeVizierServer(body=buf.getvalue()).install(monkeypatch)
    payload = na.virac2_query(sim["row"])
    table = vizier.fetch_vizier(payload, cfg=sim["cfg"])
    assert len(table) == 5
    method, url, body = server.requests[0]
    assert method == "POST" and "-source=II/387/virac2" in body
    assert f"pmRA={payload['column_filters']['pmRA']}" in body and f"pmDE={payload['column_filters']['pmDE']}" in body
    assert "-c=" in body and "-c.r" in body
    assert "-out=srcid,RAJ2000,DEJ2000" in body


# -- parsers -----------------------------------------------------------------
def test_2mass_qflg_upper_limits_and_poor_bands_are_nan():
    t = Table({"_2MASS": ["a", "b", "c", "d"], "RAJ2000": [10.0, 10.1, 10.2, np.nan],
               "DEJ2000": [-60.0, -60.1, -60.2, -60.3],
               "Jmag": [12.0, 17.1, 13.0, 12.0], "e_Jmag": MaskedColumn([0.02, 0.0, 0.03, 0.02], mask=[0, 1, 0, 0]),
               "Hmag": [11.5, 12.0, 12.5, 11.0], "e_Hmag": [0.02, 0.05, 0.04, 0.02],
               "Kmag": [11.2, 11.9, 12.2, 11.0], "e_Kmag": [0.02, 0.05, 0.9, 0.02],
               "Qflg": ["AAA", "UBE", "CXF", "AAA"]})
    p = na.parse_2mass_psc(t)
    assert list(p["tmass_id"]) == ["a", "b", "c"]                     # no position: left out
    assert p["tmass_j"].tolist()[0] == 12.0 and np.isnan(p["tmass_j"][1]) and p["tmass_j"][2] == 13.0
    assert p["tmass_h"].tolist()[:2] == [11.5, 12.0] and np.isnan(p["tmass_h"][2])        # X
    assert p["tmass_ks"][0] == 11.2 and np.isnan(p["tmass_ks"][1]) and np.isnan(p["tmass_ks"][2])     # E, F
    assert np.isnan(p["tmass_j_error"][1]) and p["tmass_ks_error"][0] == 0.02
    t.rename_column("_2MASS", "2MASS")
    assert list(na.parse_2mass_psc(t)["tmass_id"]) == ["a", "b", "c"]


def test_2mass_generated_reply_limits(sim):
    p = na.parse_2mass_psc(sim["2mass"])
    m = sim["m"].iloc[sim["2mass_rows"]]
    for b in ("j", "h", "ks"):
        want = m[f"tmass_{b}"].to_numpy(float)
        got = p[f"tmass_{b}"].to_numpy(float)
        assert np.array_equal(np.isnan(got), np.isnan(want)) and np.array_equal(got[~np.isnan(got)],
                                                                                 want[~np.isnan(want)])
    assert (p["tmass_qflg"].str.contains("U")).sum() > 0      # the reply holds upper limits


def test_virac2_spellings_and_missing_columns(sim):
    p = na.parse_virac2(sim["virac2"])
    assert len(p) == len(sim["virac2"]) and p["virac_srcid"].dtype == np.int64
    t = Table(sim["virac2"][:3])
    t.rename_column("Plx", "plx")
    t.rename_column("e_Plx", "e_plx")
    assert np.array_equal(na.parse_virac2(t)["virac_parallax"], p["virac_parallax"][:3], equal_nan=True)
    t.remove_column("pmDE")
    with pytest.raises(MissingColumnsError, match="no column pmDE / pmdec"):
        na.parse_virac2(t)
    t2 = Table(sim["virac2"][:3])
    t2["srcid"] = MaskedColumn([1, 2, 3], mask=[0, 1, 0])
    with pytest.raises(TableParseError, match="1 row\\(s\\) without a srcid"):
        na.parse_virac2(t2)


# -- matching ----------------------------------------------------------------
def test_matching_recovers_the_simulated_pairs(sim):
    m = sim["m"]
    f = na.assemble_field(sim["gaia"].to_pandas(), na.parse_2mass_psc(sim["2mass"]), na.parse_virac2(sim["virac2"]))
    by_id = f.set_index("source_id")
    key = _key(m)
    # VIRAC2: every VVV detection is paired with its own Gaia source (srcid = row + 1)
    want_v = np.full(len(m), -1)
    want_v[sim["virac2_rows"]] = sim["virac2_rows"] + 1
    assert np.array_equal(by_id.loc[key, "virac_srcid"].to_numpy(), want_v)
    # 2MASS (epoch 2000, 60 mas noise): every detection with its own Gaia or VIRAC2-only source
    want_t = np.full(len(m), "", dtype=object)
    want_t[sim["2mass_rows"]] = np.asarray(sim["2mass"]["2MASS"], dtype=str)
    assert np.array_equal(by_id.loc[key, "tmass_id"].to_numpy(str), want_t.astype(str))
    a = f.attrs
    assert a["n_2mass_unmatched"] == 0 and a["n_gaia_virac2"] + a["n_virac2_only"] == len(sim["virac2"])


def test_matching_moves_each_position_to_the_other_epoch():
    """A star of 300 mas/yr: its 2MASS position (2000.0) is 4.8" from its Gaia one (2016.0), where a
    faint 2MASS neighbour sits 0.5" away; its VIRAC2 position (2014.0) 0.6" away."""
    ra, dec, pmra, pmdec = 200.0, -60.0, 0.0, 300.0
    gaia = pd.DataFrame({"source_id": [7], "ra": [ra], "dec": [dec], "parallax": [5.0], "parallax_error": [0.02],
                         "pmra": [pmra], "pmra_error": [0.02], "pmdec": [pmdec], "pmdec_error": [0.02],
                         "phot_g_mean_mag": [12.0]})
    d2000 = dec - 16 * pmdec / 3.6e6
    tm = na.parse_2mass_psc(Table({"2MASS": ["near", "true"], "RAJ2000": [ra, ra],
                                   "DEJ2000": [dec + 0.5 / 3600, d2000], "Jmag": [16.0, 10.0],
                                   "e_Jmag": [0.1, 0.02], "Hmag": [15.5, 9.6], "e_Hmag": [0.1, 0.02],
                                   "Kmag": [15.3, 9.5], "e_Kmag": [0.1, 0.02], "Qflg": ["AAA", "AAA"]}))
    vi = na.parse_virac2(Table({"srcid": [3], "RAJ2000": [ra], "DEJ2000": [dec - 2 * pmdec / 3.6e6],
                                "Plx": [5.1], "e_Plx": [0.5], "pmRA": [0.1], "e_pmRA": [0.5], "pmDE": [299.0],
                                "e_pmDE": [0.5], "Jmag": [10.05], "e_Jmag": [0.01], "Hmag": [9.6],
                                "e_Hmag": [0.01], "Ksmag": [9.5], "e_Ksmag": [0.01]}))
    f = na.assemble_field(gaia, tm, vi)
    assert len(f) == 1 and f.loc[0, "tmass_id"] == "true" and f.loc[0, "virac_srcid"] == 3
    assert f.loc[0, "astrometry"] == "gaia+virac2" and f.attrs["n_2mass_unmatched"] == 1
    # without the epochs the faint neighbour would have been taken
    i1, i2 = na.mutual_nearest(gaia["ra"], gaia["dec"], tm["tmass_ra"], tm["tmass_dec"], na.MATCH_ARCSEC)
    assert tm["tmass_id"][i2].tolist() == ["near"]


# -- the assembled field ------------------------------------------------------
def test_assembled_field_equals_the_simulated_combination(sim):
    """The same per-survey measurements give the same 8-dimensional field on both routes: the archive's
    replies parsed, matched and combined against sim.vvv.combine of the measurements."""
    from ocmembers.sim.vvv import combine

    m = sim["m"]
    f = na.assemble_field(sim["gaia"].to_pandas(), na.parse_2mass_psc(sim["2mass"]), na.parse_virac2(sim["virac2"]))
    assert list(f.columns) == list(na.FIELD_COLUMNS) and f["source_id"].is_monotonic_increasing
    ref = combine(m)
    ref.index = _key(m)
    got = f.set_index("source_id")
    assert sorted(got.index) == sorted(ref.index) and len(got) == len(sim["field"].cone)
    ref = ref.loc[got.index]
    for c in na.FIELD_COLUMNS:
        if c in ("source_id", "tmass_id", "virac_srcid", "ra", "dec"):
            continue
        a, b = got[c].to_numpy(), ref[c].to_numpy()
        if c == "astrometry":
            assert (a == b).all()
        else:
            assert np.array_equal(a.astype(float), b.astype(float), equal_nan=True), c
    gaia_rows = got["gaia_source_id"].to_numpy() >= 0
    assert np.array_equal(got["ra"].to_numpy()[gaia_rows], ref["ra"].to_numpy()[gaia_rows])
    # VIRAC2-only: the 2014 position moved with VIRAC2's own (noisy) proper motion vs the true position
    sep = np.hypot((got["ra"] - ref["ra"]) * np.cos(np.deg2rad(ref["dec"])), got["dec"] - ref["dec"]) * 3.6e6
    assert (~gaia_rows).sum() > 50 and sep[~gaia_rows].max() < 50.0
    # and the simulated field of the stage is the same combination
    sim_cone = sim["field"].cone.set_index("source_id")
    assert np.array_equal(np.sort(sim_cone["Ksmag"].to_numpy()), np.sort(got["Ksmag"].to_numpy()), equal_nan=True)


# -- fetch_field: clients, empty replies, errors, retries ---------------------
def test_fetch_field_with_fake_clients(sim):
    tap, viz = _clients(sim)
    f = na.fetch_field(sim["row"], sim["cfg"], gaia_client=tap, vizier_client=viz)
    ref = na.assemble_field(sim["gaia"].to_pandas(), na.parse_2mass_psc(sim["2mass"]), na.parse_virac2(sim["virac2"]))
    pd.testing.assert_frame_equal(f, ref)
    assert tap.queries == [na.build_gaia_field_adql(sim["row"], sim["cfg"])]
    assert [c["catalog"] for c in viz.calls] == ["II/246/out", "II/387/virac2"]
    assert viz.calls[1]["column_filters"] == na.virac2_query(sim["row"])["column_filters"]
    assert viz.calls[0]["radius_deg"] == pytest.approx(5 * float(sim["row"]["r50"]))
    assert f.attrs["empty_catalogues"] == [] and set(f.attrs["queries"]) == {"gaia", "2mass", "virac2"}


def test_empty_nir_replies_leave_nan_columns_and_are_reported(sim, caplog):
    empty_t = Table(sim["2mass"][:0])
    empty_v = Table(sim["virac2"][:0])
    tap, viz = _clients(sim, **{na.TMASS_PSC: empty_t, na.VIRAC2: empty_v})
    with caplog.at_level(logging.WARNING):
        f = na.fetch_field(sim["row"], sim["cfg"], gaia_client=tap, vizier_client=viz)
    assert f.attrs["empty_catalogues"] == ["2mass", "virac2"]
    g = sim["gaia"].to_pandas()
    five = np.isfinite(g["pmra"]) & np.isfinite(g["parallax"])       # 2-parameter sources dropped
    assert len(f) == int(five.sum()) < len(g) and (f["astrometry"] == "gaia").all()
    for c in ("Jmag", "e_Jmag", "Hmag", "Ksmag", "tmass_j", "vvv_ks"):
        assert f[c].isna().all(), c
    assert "cluster NGC_5606: 2MASS PSC (VizieR II/246/out at vizier.cds.unistra.fr): VizieR returned no rows" \
        in caplog.text and "VIRAC2 (VizieR II/387/virac2" in caplog.text
    from ocmembers.stages.pr22 import pr22_input
    table, phot = pr22_input(f)
    assert phot.startswith("gaia only") and "phot_g_mean_mag" in table


def test_errors_name_the_cluster_the_catalogue_and_the_host(sim):
    sleeps = []
    tap, viz = _clients(sim, **{na.VIRAC2: requests.ConnectionError("connection refused")})
    with pytest.raises(ArchiveError) as err:
        na.fetch_field(sim["row"], sim["cfg"], gaia_client=tap, vizier_client=viz, sleep=sleeps.append)
    msg = str(err.value)
    assert "cluster NGC_5606" in msg and "II/387/virac2" in msg and "vizier.cds.unistra.fr" in msg
    assert "failed after 3 tries" in msg and sleeps == [0.5, 1.0]
    tap, viz = _clients(sim)
    tap.reply = requests.Timeout("read timed out")
    with pytest.raises(ArchiveError, match="cluster NGC_5606: PR22 Gaia field from gea.esac.esa.int"):
        na.fetch_field(sim["row"], sim["cfg"], gaia_client=tap, vizier_client=viz, sleep=lambda s: None)


def test_a_transient_failure_is_retried(sim):
    sleeps = []
    tap, viz = _clients(sim, **{na.TMASS_PSC: [requests.ConnectionError("reset"), sim["2mass"]]})
    f = na.fetch_field(sim["row"], sim["cfg"], gaia_client=tap, vizier_client=viz, sleep=sleeps.append)
    assert sleeps == [0.5] and [c["catalog"] for c in viz.calls] == ["II/246/out"] * 2 + ["II/387/virac2"]
    assert f.attrs["n_2mass_matched"] == len(sim["2mass"])


# -- CMD replies in the 2MASS and VISTA systems --------------------------------
def _cmd_reply(system_line: str, bands: list[str]) -> str:
    """The recorded CMD output (Gaia EDR3) rewritten as a CMD reply in another system: the same
    header, its photometric-system line and band columns replaced, J, H, Ks from the Gaia bands
    (Evans et al. 2018), Z and Y as J + 0.5, J + 0.3 for VISTA."""
    from ocmembers.sim.nir import twomass_from_gaia
    lines = (DATA / "archive_cmd_output.dat").read_text().splitlines()
    out = []
    for ln in lines:
        if ln.startswith("# Photometric system"):
            out.append(f"# Photometric system: {system_line}")
        elif ln.lstrip("# ").startswith("Zini"):
            cols = ln.lstrip("# ").split()
            out.append("# " + " ".join(cols[:cols.index("Gmag")] + bands))
        elif ln.startswith("#") or not ln.strip():
            out.append(ln)
        else:
            v = ln.split()
            g, bp, rp = (np.array([float(x)]) for x in v[11:14])
            nir = twomass_from_gaia(g, bp, rp)
            mags = {"Jmag": nir["j"][0], "Hmag": nir["h"][0], "Ksmag": nir["ks"][0],
                    "Zmag": nir["j"][0] + 0.5, "Ymag": nir["j"][0] + 0.3}
            out.append(" ".join(v[:11] + [f"{mags[b]:.3f}" for b in bands]))
    return "\n".join(out) + "\n"


def test_cmd_replies_in_the_2mass_and_vista_systems():
    from ocmembers.sources.parsec import read_cmd
    tm = read_cmd(_cmd_reply("2MASS JHKs (Vegamags)", ["Jmag", "Hmag", "Ksmag"]), name="cmd 2mass",
                  photsys="2mass")
    assert len(tm) == 40 and {"Jmag", "Hmag", "Ksmag", "Mini", "label"} <= set(tm.columns)
    assert "Gmag" not in tm and tm.attrs["photometric_system"].startswith("2MASS")
    assert (tm["Jmag"] > tm["Ksmag"]).all() and tm["label"].dtype == np.int64
    vi = read_cmd(_cmd_reply("VISTA ZYJHKs (Vegamags)", ["Zmag", "Ymag", "Jmag", "Hmag", "Ksmag"]),
                  photsys="vista")
    assert list(vi.columns[-5:]) == ["Zmag", "Ymag", "Jmag", "Hmag", "Ksmag"]
    # a Gaia reply where 2MASS was asked for, or a reply lacking a band
    with pytest.raises(TableParseError, match="photometric system 'Gaia EDR3.*not the 2mass requested"):
        read_cmd((DATA / "archive_cmd_output.dat").read_text(), photsys="2mass")
    with pytest.raises(TableParseError, match="missing required column\\(s\\) Ksmag of the vista reply"):
        read_cmd(_cmd_reply("VISTA ZYJHKs", ["Zmag", "Ymag", "Jmag", "Hmag"]), photsys="vista")
    with pytest.raises(TableParseError, match="missing required column\\(s\\) Gmag"):
        read_cmd(_cmd_reply("Gaia EDR3", ["Jmag", "Hmag", "Ksmag"]))
    with pytest.raises(ValueError, match="'ukidss' not one of"):
        read_cmd("", photsys="ukidss")
