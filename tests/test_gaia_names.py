"""Gaia DR3 column spellings (method/gaia_names.py): VizieR I/355 files of the real M67 extract read
back to the archive's table, give the same probabilities, derived columns, one error for what is missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocmembers.exceptions import MissingColumnsError
from ocmembers.method.columns import GAIA_COLUMNS
from ocmembers.method.gaia_names import (CONE_REQUIRED, DR3_VEGA_ZERO_POINTS, GAIA_SPELLINGS,
                                         canonical_gaia_table, spellings_of)
from ocmembers.sources.cone_file import read_cone_file

#: The columns written to the VizieR-named files: those of the pipeline, the magnitudes, the colours.
KEEP = tuple(dict.fromkeys(GAIA_COLUMNS + ("phot_g_mean_mag", "phot_bp_mean_mag", "g_rp", "bp_rp")))
#: Canonical name -> its VizieR I/355 spelling (the first of GAIA_SPELLINGS).
TO_VIZIER = {c: names[0] for c, names in GAIA_SPELLINGS.items()}


@pytest.fixture(scope="module")
def m67(shared_data):
    """The real M67 extract, canonical, restricted to KEEP."""
    path = shared_data / "gaia" / "cones" / "NGC_2682.csv"
    full = read_cone_file(path)
    return full[[c for c in KEEP if c in full.columns]].copy()


def _vizier(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns=TO_VIZIER)


def _write(frame: pd.DataFrame, path) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        from astropy.table import Table
        Table.from_pandas(frame).write(path, format="fits" if path.suffix == ".fits" else "votable")


def _equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    for c in want.columns:
        np.testing.assert_array_equal(got[c].to_numpy(float), want[c].to_numpy(float), err_msg=c)


def test_spellings_are_unique_without_case_and_cover_the_cone():
    seen: dict[str, str] = {}
    for canon, names in GAIA_SPELLINGS.items():
        for n in spellings_of(canon):
            assert seen.setdefault(n.lower(), canon) == canon, n
    assert set(CONE_REQUIRED) <= set(GAIA_SPELLINGS)
    assert "ecl_lat" not in CONE_REQUIRED                    # computed from ra, dec


@pytest.mark.shared_data
@pytest.mark.parametrize("suffix", [".csv", ".fits", ".vot"])
def test_vizier_file_reads_back_to_the_archive_table(m67, tmp_path, suffix):
    viz = _vizier(m67)
    assert {"RA_ICRS", "Plx", "pmRA", "e_pmRA", "Gmag", "RPmag", "FG", "e_FG", "o_Gmag", "RUWE", "Source",
            "PlxpmRAcor", "nueff", "pscol", "Solved", "G-RP"} <= set(viz.columns)
    path = tmp_path / f"m67_vizier{suffix}"
    _write(viz, path)
    got = read_cone_file(path, require=CONE_REQUIRED)
    _equal(got, m67)
    assert got["source_id"].dtype == np.int64


@pytest.mark.shared_data
def test_the_readme_labels_of_i355_read_too(m67, tmp_path):
    """The I/355 ReadMe's byte-by-byte labels (RAdeg, e_RAdeg, PlxpmRACor capitalised as some
    exports write it) read like the names VizieR's forms serve."""
    readme = _vizier(m67).rename(columns={"RA_ICRS": "RAdeg", "DE_ICRS": "DEdeg", "e_RA_ICRS": "e_RAdeg",
                                          "e_DE_ICRS": "e_DEdeg", "PlxpmRAcor": "PlxpmRACor"})
    path = tmp_path / "m67_readme.csv"
    readme.to_csv(path, index=False)
    _equal(read_cone_file(path, require=CONE_REQUIRED), m67)


@pytest.mark.shared_data
def test_upper_case_archive_names(m67, tmp_path):
    path = tmp_path / "m67_upper.parquet"
    m67.rename(columns=str.upper).to_parquet(path)
    _equal(read_cone_file(path, require=CONE_REQUIRED), m67)


@pytest.mark.shared_data
def test_astropy_table_with_vizier_names_through_the_api_frame(m67):
    from astropy.table import Table

    from ocmembers.api import cone_frame
    _equal(cone_frame(Table.from_pandas(_vizier(m67))), m67)


@pytest.mark.shared_data
def test_missing_parallax_and_pmra_are_named_in_one_error_with_the_file(m67, tmp_path):
    path = tmp_path / "m67_no_plx_pm.csv"
    _vizier(m67).drop(columns=["Plx", "pmRA"]).to_csv(path, index=False)
    with pytest.raises(MissingColumnsError) as err:
        read_cone_file(path, require=CONE_REQUIRED)
    msg = str(err.value)
    assert str(path) in msg and "missing 2 quantities" in msg
    assert "parallax (as parallax or Plx)" in msg
    assert "pmra (as pmra or pmRA or pmRA*)" in msg


def test_missing_correlations_say_how_to_get_them():
    frame = pd.DataFrame({"Source": [1], "RA_ICRS": [1.0], "DE_ICRS": [2.0]})
    with pytest.raises(MissingColumnsError, match=r"cone x: missing .*PlxpmRAcor.*columns=\['\*\*'\]"):
        canonical_gaia_table(frame, "cone x")


@pytest.mark.shared_data
def test_magnitudes_from_fluxes_match_the_archive(m67):
    """Within the float32 spacing of the archive's magnitudes (<= 1.9e-6 mag at G >= 16)."""
    mags = [f"phot_{b}_mean_mag" for b in DR3_VEGA_ZERO_POINTS]
    got = canonical_gaia_table(_vizier(m67).drop(columns=["Gmag", "BPmag", "RPmag"]), "m67", CONE_REQUIRED)
    for c in mags:
        want = m67[c].to_numpy(float)
        diff = np.abs(got[c].to_numpy(float) - want)
        ok = np.isfinite(want)
        assert np.array_equal(np.isfinite(got[c].to_numpy(float)), ok), c
        spacing = np.spacing(np.abs(want[ok]).astype(np.float32)).astype(float)
        assert np.all(diff[ok] <= spacing), (c, diff[ok].max())
        assert diff[ok].max() < 2e-6 and np.abs(np.mean(got[c].to_numpy(float)[ok] - want[ok])) < 1e-7


@pytest.mark.shared_data
def test_flux_errors_from_magnitude_errors_and_derived_columns(m67):
    viz = _vizier(m67)
    for band, f in (("G", "FG"), ("BP", "FBP"), ("RP", "FRP")):
        viz[f"e_{band}mag"] = 2.5 / np.log(10) * viz[f"e_{f}"] / viz[f]
    viz = viz.drop(columns=["e_FG", "e_FBP", "e_FRP", "RPmag", "Solved"])
    got = canonical_gaia_table(viz, "m67", CONE_REQUIRED)
    for b in ("g", "bp", "rp"):
        np.testing.assert_allclose(got[f"phot_{b}_mean_flux_error"], m67[f"phot_{b}_mean_flux_error"],
                                   rtol=1e-12)
        assert f"phot_{b}_mean_mag_error" not in got.columns     # the method's are the DPAC model's
    # G_RP from G and G - G_RP (float32 colour of the archive), the solution type from the colours
    np.testing.assert_allclose(got["phot_rp_mean_mag"], m67["phot_rp_mean_mag"], atol=5e-6)
    np.testing.assert_array_equal(got["astrometric_params_solved"].to_numpy(float),
                                  m67["astrometric_params_solved"].to_numpy(float))


@pytest.mark.shared_data
def test_vizier_file_gives_the_same_probabilities(m67, shared_data, tmp_path):
    import ocmembers
    from ocmembers import load_config
    import importlib.util
    import os
    if importlib.util.find_spec("gaia_oc_amd") is None and not os.environ.get("CI"):
        pytest.skip("the published model (gaia-oc-amd==0.2.1) is not installed")
    cfg = load_config(source="local", local_dir=str(shared_data), output_dir=str(tmp_path / "data"))
    archive, vizier = tmp_path / "m67.csv", tmp_path / "m67_vizier.csv"
    m67.to_csv(archive, index=False)
    _vizier(m67).to_csv(vizier, index=False)
    ref = ocmembers.members(archive, "NGC_2682", "vg23", config=cfg, n_samples=5)
    got = ocmembers.members(vizier, "NGC_2682", "vg23", config=cfg, n_samples=5)
    assert len(got) > 100
    np.testing.assert_array_equal(np.asarray(got["source_id"]), np.asarray(ref["source_id"]))
    np.testing.assert_array_equal(np.asarray(got["probability"]), np.asarray(ref["probability"]))


@pytest.mark.shared_data
def test_repeated_identical_rows_are_dropped_and_conflicting_ones_refused(m67, tmp_path, caplog):
    from ocmembers.exceptions import TableParseError
    twice = pd.concat([m67, m67.iloc[:40]], ignore_index=True)     # two overlapping queries
    path = tmp_path / "twice.csv"
    twice.to_csv(path, index=False)
    with caplog.at_level("WARNING"):
        got = read_cone_file(path)
    assert len(got) == len(m67) and got["source_id"].is_unique
    assert got.attrs["n_duplicates_dropped"] == 40
    assert "40 repeated row(s)" in caplog.text and str(path) in caplog.text
    _equal(got[m67.columns.tolist()], read_cone_file(_csv(m67, tmp_path / "once.csv"))[m67.columns.tolist()])
    clash = twice.copy()
    clash.loc[len(m67), "parallax"] += 0.5                         # the same star, other values
    clash.to_csv(path, index=False)
    with pytest.raises(TableParseError, match=r"twice.csv: 1 source_id\(s\) appear more than once with different"):
        read_cone_file(path)


def _csv(frame: pd.DataFrame, path):
    frame.to_csv(path, index=False)
    return path
