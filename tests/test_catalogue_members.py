"""The whole-catalogue member run (``make catalogue-members``): one HATS member catalogue.

Two small simulated clusters (NGC 188 and M67, each simulated in about a second) through
catalogues .. sets, then the ``catalogue-members`` stage with the published model and a few
Monte Carlo samples, driven through the command line as ``make`` drives it.
"""

from __future__ import annotations

import json

import pytest

from conftest import run_sim_chain
from ocmembers.sources import cache
from ocmembers.stages import products

#: lsdb 0.11 calls NestedFrame.drop(inplace=True) when it opens a catalogue (pandas warns)
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in NestedFrame.drop")

CLUSTERS = ("NGC_188", "NGC_2682")
CHAIN = ("catalogues", "cones", "crossmatch", "isochrones", "sets")


@pytest.fixture
def run(tmp_path):
    pytest.importorskip("lsdb")
    pytest.importorskip("hats_import")
    conf = tmp_path / "run.toml"
    conf.write_text(f"""
[samples]
test_clusters = {list(CLUSTERS)!r}
[sim]
demo_clusters = []
[membership]
model = "vg23"
n_samples = 5
""".replace("'", '"'))
    data, out = tmp_path / "datadir", tmp_path / "out"
    data.mkdir()
    stage, cfg = run_sim_chain(conf, data, out, CHAIN)
    return {"stage": stage, "cfg": cfg}


def _summary(err: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("catalogue_members: ") and "list(s)" in line)


def test_catalogue_written_opened_resumed_and_redone(run, capsys):
    import lsdb
    stage, cfg = run["stage"], run["cfg"]
    paths = products.catalogue_members_paths(cfg)

    # the clusters come from the catalogues stage's cluster table
    capsys.readouterr()
    assert stage("catalogue-members", "--list") == 0
    assert capsys.readouterr().out.split() == list(CLUSTERS)

    assert stage("catalogue-members") == 0
    err = capsys.readouterr().err
    assert "2 list(s) done, 0 up to date, 0 failed; catalogue written: 2 clusters" in _summary(err)
    lists = {n: cache.read_table(products.catalogue_list_paths(cfg, n)[0]) for n in CLUSTERS}
    n_rows = sum(len(t) for t in lists.values())
    assert all(len(t) > 0 for t in lists.values())

    cat = lsdb.open_catalog(paths["catalogue"])
    assert cat.hc_structure.catalog_info.total_rows == n_rows
    df = cat.compute()
    assert len(df) == n_rows
    assert df["cluster"].value_counts().to_dict() == {n: len(t) for n, t in lists.items()}
    assert not df[["cluster", "source_id"]].duplicated().any()
    assert {"ra", "dec", "source_id", "probability", "training_member"} <= set(df.columns)

    # provenance: the manifest of the catalogue, verified
    doc = cache.read_json(paths["provenance"])
    assert doc["clusters"] == 2 and doc["rows"] == n_rows
    assert doc["model_id"].startswith("vg23") and doc["membership_seed"] == cfg.membership.seed
    rec = cache.read_manifest(paths["provenance"])["record"]
    assert doc["config_digest"] == rec["config"] and doc["code_version"] == rec["code"]
    assert set(doc["lists"]) == set(CLUSTERS) and doc["files"]
    props = (paths["catalogue"] / "hats.properties").read_text()
    assert f"ocmembers_model_id={doc['model_id']}" in props and "ocmembers_clusters=2" in props

    # a second run: every list and the catalogue up to date
    assert stage("catalogue-members") == 0
    assert "0 list(s) done, 2 up to date, 0 failed; catalogue up to date" in _summary(capsys.readouterr().err)
    rep = json.loads((cfg.out_dir / "reports" / "catalogue_members.json").read_text())
    assert sorted(rep["up_to_date"]) == sorted(CLUSTERS) and rep["failed"] == {}

    # a changed membership seed redoes every list, and the catalogue
    assert stage("catalogue-members", "--set", "membership.seed=7") == 0
    assert "2 list(s) done, 0 up to date, 0 failed; catalogue written" in _summary(capsys.readouterr().err)
    doc2 = cache.read_json(paths["provenance"])
    assert doc2["membership_seed"] == 7 and doc2["config_digest"] != doc["config_digest"]
    assert len(lsdb.open_catalog(paths["catalogue"]).compute()) == doc2["rows"]

    # a damaged file of the catalogue (not a list): the catalogue alone is rebuilt
    part = next(p for p in sorted((paths["catalogue"] / "dataset").rglob("*.parquet")) if p.name.startswith("Npix"))
    part.write_bytes(b"broken")
    assert stage("catalogue-members", "--set", "membership.seed=7") == 0
    assert "0 list(s) done, 2 up to date, 0 failed; catalogue written" in _summary(capsys.readouterr().err)
    assert len(lsdb.open_catalog(paths["catalogue"]).compute()) == doc2["rows"]
