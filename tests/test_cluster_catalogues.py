"""Any catalogued cluster, by any of its names, or the user's own (issue 11, item 2)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ocmembers import load_config
from ocmembers.exceptions import UnknownClusterError
from ocmembers.method.columns import cluster_row
from ocmembers.sources.cluster_tables import read_cluster_table

pytestmark = pytest.mark.shared_data
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def tables(shared_data):
    cat = shared_data / "catalogues"
    return {"cg20": read_cluster_table(cat / "cg20_table1.csv"),
            "hr23": read_cluster_table(cat / "hunt2023_table.csv"),
            "hr24": read_cluster_table(cat / "hunt2024_table.csv")}


def test_hunt_reffert_tables_read_into_the_canonical_columns(tables):
    for which, n in (("hr23", 6806), ("hr24", 5647)):
        t = tables[which]
        assert len(t) == n and t["name"].is_unique
        row = cluster_row(t, "Melotte_22")                     # HR23 writes "Melotte 22"
        # the 50th percentiles of the posteriors (logAge50, AV50, dist50), dispersions s_pm*, s_Plx
        assert row["log_age"] == pytest.approx(8.085, abs=1e-3)
        assert row["dist_pc"] == pytest.approx(134.84134) and row["pmra_std"] == pytest.approx(0.99627)
        assert "Pleiades" in row["aliases"].split(",") and np.isfinite(row["parallax_std"])


@pytest.mark.parametrize("name, expected", [
    ("Pleiades", "Melotte_22"), ("M45", "Melotte_22"), ("m 45", "Melotte_22"), ("M67", "NGC_2682"),
    ("ngc 2682", "NGC_2682"), ("NGC2682", "NGC_2682"), ("Praesepe", "NGC_2632"), ("Hyades", "Melotte_25"),
    ("Collinder_42", "Melotte_22"),                           # an alias only Hunt & Reffert list
])
def test_common_and_alternative_names_resolve_in_cg20(tables, name, expected):
    aliases = tables["hr24"][["name", "aliases"]]
    assert cluster_row(tables["cg20"], name, aliases=aliases)["name"] == expected


def test_alternative_names_of_the_hunt_reffert_rows(tables):
    assert cluster_row(tables["hr23"], "Pleiades")["name"] == "Melotte_22"
    assert cluster_row(tables["hr24"], "Melotte 94")["name"] == "NGC_2682"   # M67's Melotte number


def test_an_unknown_name_suggests_the_close_ones(tables):
    with pytest.raises(UnknownClusterError, match=r"'Plejades' is not in the cluster catalogue.*Pleiades"):
        cluster_row(tables["cg20"], "Plejades")


def _published_model():
    if importlib.util.find_spec("gaia_oc_amd") is None and not os.environ.get("CI"):
        pytest.skip("the published model (gaia-oc-amd==0.2.1) is not installed")


def test_members_of_m67_with_hunt_reffert_parameters(shared_data):
    """An HR24 cluster by its common name: the parameters of HR24, the CG20 members by position."""
    import ocmembers
    _published_model()
    cfg = load_config(source="local", local_dir=str(shared_data),
                      overrides=["source.cluster_catalogue=hr24"])
    t = ocmembers.members(shared_data / "gaia" / "cones" / "NGC_2682.csv", "M67", "vg23", config=cfg,
                          n_samples=3)
    assert t.meta["cluster"] == "NGC_2682" and "Eqs. 1-2" in t.meta["cone_cuts"]
    s = np.asarray(t["status"])
    assert (s == "training_member").sum() > 100 and len(t) == 1494


def test_the_hunt_reffert_table_from_vizier(shared_data, tmp_path):
    """The archive route asks VizieR for J/A+A/686/A42/clusters with the HR columns; the reply
    (here a VOTable written from the offline file, as VizieR serves it) reads like the file."""
    from astropy.table import Table
    from ocmembers.sources import vizier
    from ocmembers.sources.archive import ArchiveSource
    raw = pd.read_csv(shared_data / "catalogues" / "hunt2024_table.csv")
    raw = raw.loc[raw["Name"].isin(["Melotte_22", "NGC_2682", "NGC_752"]), list(vizier.HR_COLUMNS)]
    Table.from_pandas(raw).write(tmp_path / "hr24.vot", format="votable", overwrite=True)

    class Vizier:
        calls: list = []

        def query_constraints(self, catalog, cache=True, **constraints):
            self.calls.append(catalog)
            return {catalog: Table.read(tmp_path / "hr24.vot")}

    client = Vizier()
    src = ArchiveSource(load_config(local_dir=str(tmp_path)), vizier_client=client)
    table = src.cluster_catalogue("hr24")
    assert client.calls == ["J/A+A/686/A42/clusters"]
    assert cluster_row(table, "Pleiades")["dist_pc"] == pytest.approx(134.84134)
    assert src.cluster_aliases()["name"].tolist() == table["name"].tolist()   # the same reply, cached
    assert client.calls == ["J/A+A/686/A42/clusters"]


def _cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "ocmembers.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def test_your_own_cluster_offline_with_the_default_archive_source(shared_data, tmp_path):
    """Parameters in a TOML file, the user's member list as the support-set pool, an isochrone
    file: nothing is fetched, so the default source (archive) runs with no network."""
    from astropy.table import Table
    _published_model()
    cone = shared_data / "gaia" / "cones" / "NGC_2682.csv"
    ids = pd.read_csv(cone, usecols=["source_id"])["source_id"]
    cg18 = pd.read_csv(shared_data / "catalogues" / "cg18_members_dr2.csv.gz")
    dr2 = set(cg18.loc[(cg18["cluster"] == "NGC_2682") & (cg18["PMemb"] >= 1.0), "Source"])
    pd.DataFrame({"source_id": ids[ids.isin(dr2)]}).to_csv(tmp_path / "mine.csv", index=False)
    (tmp_path / "m67.toml").write_text('[cluster]\nname = "my_m67"\nra = 132.85\ndec = 11.81\n'
                                       "parallax = 1.135\npmra = -10.97\npmdec = -2.94\nlog_age = 9.63\n"
                                       "a0 = 0.07\ndist_pc = 859\n")
    iso = next((shared_data / "isochrones").glob("parsec12s_gaiaedr3_Z0.020500_*.dat"))
    r = _cli("members", "--cone", str(cone), "--cluster-params", "m67.toml", "--training-members",
             "mine.csv", "--isochrone", str(iso), "--model", "vg23", "--output", "m67.fits",
             "--set", "membership.n_samples=3", "--set", "source.retries=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    t = Table.read(tmp_path / "m67.fits")
    s = np.asarray(t["status"]).astype(str)
    assert len(t) == 1494 and (s == "training_member").sum() > 90
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("text, match", [
    ("ra = 132.85\nage = 9.6\n", r"m67.toml: unknown key\(s\) age"),
    ("ra = 'far'\n", r"m67.toml: ra = 'far' is not a number"),
    ("ra = [\n", r"m67.toml: not valid TOML"),
])
def test_bad_cluster_parameters_are_refused_naming_the_key(shared_data, tmp_path, text, match):
    import re
    (tmp_path / "m67.toml").write_text(text)
    r = _cli("members", "--cone", str(shared_data / "gaia" / "cones" / "NGC_2682.csv"),
             "--cluster-params", "m67.toml", cwd=tmp_path)
    assert r.returncode == 2 and re.search(match, r.stderr) and "Traceback" not in r.stderr


def test_readme_own_cone_example_runs_and_prints_what_it_shows(shared_data, tmp_path):
    """The README's VizieR-file + HR23 example, run as written (../shared/data pointed at the data)."""
    import re
    _published_model()
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Your own cone"):text.index("## Python API")]
    commands, shown = re.findall(r"```bash\n(.*?)```\n\n```\n(.*?)```", section, re.S)[0]
    env = {**os.environ, "PYTHONPATH": str(SRC), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    script = commands.replace("../shared/data", str(shared_data)).replace(
        "ocmembers members", f"{sys.executable} -m ocmembers.cli members").replace("python -c", f"{sys.executable} -c")
    r = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert shown.strip() in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m67_hr23.fits", "m67_vizier.csv"]
