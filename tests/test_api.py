"""The public Python API: ``ocmembers.members`` on the real M67 extract, its errors, the README example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ocmembers
from ocmembers import load_config
from ocmembers.exceptions import ConfigError, ModelMismatchError, UnknownClusterError

REPO = Path(__file__).resolve().parents[1]
N_SAMPLES = 10                     # enough for identity checks, and fast (2 cores)


def test_import_ocmembers_loads_no_torch_pandas_or_stage():
    code = ("import sys, ocmembers\n"
            "print(ocmembers.__version__)\n"
            "assert 'members' in dir(ocmembers) and 'DeepSetsClassifier' in ocmembers.__all__\n"
            "heavy = sorted(m for m in sys.modules if m in ('torch', 'pandas', 'astropy', 'sklearn')"
            " or m.startswith('ocmembers.stages') or m == 'ocmembers.api')\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == ocmembers.__version__
    assert "HEAVY []" in out.stdout, out.stdout


def test_lazy_public_names():
    from ocmembers.api import members, members_from_cone
    from ocmembers.method.classifier import DeepSetsClassifier
    assert ocmembers.members is members and ocmembers.members_from_cone is members_from_cone
    assert ocmembers.DeepSetsClassifier is DeepSetsClassifier
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ocmembers.nope  # noqa: B018


# ---------------------------------------------------------------------------
# Real data: the M67 extract of ../shared/data, the published model
# ---------------------------------------------------------------------------
def _vg23():
    try:
        from ocmembers.sources.vg23 import load_vg23
        return load_vg23()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the published model is not installed: {exc}")


@pytest.fixture(scope="module")
def m67(shared_data, tmp_path_factory):
    """The configuration, catalogues, cone and the reference member table (cone as DataFrame, name)."""
    from ocmembers.sources import get_source
    from ocmembers.sources.cone_file import read_cone_file
    model = _vg23()
    cfg = load_config(source="local", local_dir=str(shared_data),
                      output_dir=str(tmp_path_factory.mktemp("api") / "data"))
    path = shared_data / "gaia" / "cones" / "NGC_2682.csv"
    cone = read_cone_file(path)
    ref = ocmembers.members(cone, "NGC_2682", "vg23", config=cfg, n_samples=N_SAMPLES)
    src = get_source(cfg)
    cats = {"clusters": src.cluster_table(), "train_members": src.training_members()}
    return {"cfg": cfg, "cone": cone, "path": path, "ref": ref, "cats": cats, "model": model}


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a["source_id"]), np.asarray(b["source_id"]))
    np.testing.assert_array_equal(np.asarray(a["probability"]), np.asarray(b["probability"]))


@pytest.mark.shared_data
def test_members_table_units_and_meta(m67):
    from astropy.table import Table
    t = m67["ref"]
    # one row per input row (1494 in the file), 1426 evaluated after the cone cuts (issue 11 item 4)
    assert isinstance(t, Table) and len(t) == 1494 and len(np.unique(t["source_id"])) == len(t)
    status = np.asarray(t["status"])
    assert dict(zip(*np.unique(status, return_counts=True))) == t.meta["status_counts"]
    assert t.meta["status_counts"]["cut_eq1_2"] == 33 and t.meta["status_counts"]["missing_photometry"] == 1
    evaluated = np.isin(status, ["candidate", "training_member", "dubious_member"])
    assert evaluated.sum() == 1426 and np.isnan(np.asarray(t["probability"], float)[~evaluated]).all()
    assert t["status"].info.meta["ucd"] == "meta.code.status" and t["ra"].info.meta["ucd"] == "pos.eq.ra;meta.main"
    t = t[evaluated]
    units = {"ra": "deg", "dec": "deg", "parallax": "mas", "parallax_error": "mas", "pmra": "mas / yr",
             "pmdec_error": "mas / yr", "phot_g_mean_mag": "mag", "g_rp": "mag", "f_r": "pc"}
    for col, unit in units.items():
        assert t[col].unit == unit, col
    assert t["probability"].unit is None and "Sect. 3.4" in t["probability"].description
    p = np.asarray(t["probability"])
    assert np.all((p >= 0) & (p <= 1)) and np.allclose(p * N_SAMPLES, np.round(p * N_SAMPLES))
    tm = np.asarray(t["training_member"], bool)
    assert tm.sum() >= 100 and np.mean(p[tm] >= 0.5) > 0.9     # the published model finds its members
    meta = t.meta
    assert meta["cluster"] == "NGC_2682" and meta["model_id"] == m67["model"].model_id_
    assert meta["n_samples"] == N_SAMPLES and meta["membership_seed"] == 2023
    assert meta["n_support"] == 10 and meta["software"] == f"ocmembers {ocmembers.__version__}"
    from ocmembers.method.membership import cluster_seed
    assert meta["seed"] == cluster_seed(2023, "NGC_2682")


@pytest.mark.shared_data
def test_cone_as_table_qtable_and_path_give_the_same_probabilities(m67):
    from astropy import units as u
    from astropy.table import MaskedColumn, QTable, Table
    cone, cats, cfg = m67["cone"], m67["cats"], m67["cfg"]
    kw = dict(config=cfg, n_samples=N_SAMPLES, catalogues=cats)
    # an astropy Table with upper-case names (some exports) and a masked float column
    t = Table.from_pandas(cone.rename(columns={"ra": "RA", "dec": "DEC", "pmra": "PMRA"}))
    bp = np.asarray(t["phot_bp_mean_mag"], float)
    t["phot_bp_mean_mag"] = MaskedColumn(np.nan_to_num(bp, nan=99.0), mask=~np.isfinite(bp))
    assert t["phot_bp_mean_mag"].mask.any()
    _same(ocmembers.members(t, "NGC_2682", "vg23", **kw), m67["ref"])
    # a QTable with Quantities in other units: converted once
    q = QTable(Table.from_pandas(cone))
    q["parallax"] = (np.asarray(cone["parallax"]) * u.mas).to(u.arcsec)
    q["ra"] = (np.asarray(cone["ra"]) * u.deg).to(u.rad)
    _same(ocmembers.members(q, "NGC_2682", "vg23", **kw), m67["ref"])
    # a path; the model as a fitted classifier; the name as it is often written
    _same(ocmembers.members(m67["path"], "NGC 2682", m67["model"], **kw), m67["ref"])


@pytest.mark.shared_data
def test_cluster_as_parameters_gives_the_same_probabilities(m67):
    from astropy.table import Table
    row = m67["cats"]["clusters"].set_index("name").loc["NGC_2682"]
    params = {"name": "NGC 2682", "ra": row["ra"], "dec": row["dec"], "pmra": row["pmra"],
              "pmdec": row["pmdec"], "parallax": row["parallax"], "pmra_std": row["pmra_std"],
              "pmdec_std": row["pmdec_std"], "parallax_std": row["parallax_std"],
              "dist_pc": row["dist_pc"], "dist_mod": row["dist_mod"], "a0": row["a0"],
              "log_age": row["log_age"]}
    kw = dict(config=m67["cfg"], n_samples=N_SAMPLES, catalogues=m67["cats"])
    _same(ocmembers.members(m67["cone"], params, "vg23", **kw), m67["ref"])
    one_row = Table(rows=[params])                       # a one-row table does the same
    _same(ocmembers.members(m67["cone"], one_row, "vg23", **kw), m67["ref"])


@pytest.mark.shared_data
def test_membership_proba_is_the_member_list_probability(m67):
    import pandas as pd
    from ocmembers.api import members_from_cone
    cfg = m67["cfg"].replace(membership={"n_samples": N_SAMPLES})
    table, sets = members_from_cone(m67["cone"], "NGC_2682", m67["model"], cfg, catalogues=m67["cats"],
                                    return_sets=True, every_source=True)
    _same(table, m67["ref"])
    table = table.loc[table["probability"].notna()]
    p = m67["model"].membership_proba(sets.candidates, sets.members, sets.params, sets.isochrone_curve,
                                      n_samples=N_SAMPLES, seed=2023, name="NGC_2682")
    by_id = pd.Series(p, index=sets.candidates["source_id"].to_numpy())
    np.testing.assert_array_equal(by_id.loc[table["source_id"].to_numpy()].to_numpy(),
                                  table["probability"].to_numpy())


@pytest.mark.shared_data
def test_errors_name_what_is_wrong(m67, tmp_path):
    cone, cfg, cats = m67["cone"], m67["cfg"], m67["cats"]
    kw = dict(n_samples=N_SAMPLES, catalogues=cats)
    with pytest.raises(UnknownClusterError, match="NGC_26820.*did you mean NGC_2682"):
        ocmembers.members(cone, "NGC_26820", config=cfg, **kw)
    with pytest.raises(ConfigError, match="cluster NGC_2682: parameters lack log_age"):
        ocmembers.members(cone, {"name": "NGC_2682", "a0": 0.1, "dist_pc": 860.0}, config=cfg, **kw)
    with pytest.raises(ConfigError, match="dist_pc or dist_mod"):
        ocmembers.members(cone, {"name": "NGC_2682", "a0": 0.1, "log_age": 9.6}, config=cfg, **kw)
    with pytest.raises(ConfigError, match="without a name: pass training_members="):
        ocmembers.members(cone, {"a0": 0.1, "log_age": 9.6, "dist_pc": 860.0}, config=cfg, **kw)
    # a config whose [model] disagrees with the model: loaded by name, or given fitted
    other = cfg.replace(model={"n_support": 5})
    for model in ("vg23", m67["model"]):
        with pytest.raises(ModelMismatchError, match="n_support = 10 in the model, 5 in the configuration"):
            ocmembers.members(cone, "NGC_2682", model, config=other, **kw)
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        ocmembers.members(cone, "NGC_2682", tmp_path / "absent.pt", config=cfg, **kw)
    with pytest.raises(TypeError, match="fitted DeepSetsClassifier"):
        ocmembers.members(cone, "NGC_2682", 42, config=cfg, **kw)
    with pytest.raises(TypeError, match="cone"):
        ocmembers.members([1, 2], "NGC_2682", config=cfg, **kw)
    # a source without the catalogue: the message says what to pass instead
    empty = load_config(source="local", local_dir=str(tmp_path), output_dir=str(tmp_path / "out"))
    with pytest.raises(ConfigError, match=r"cluster catalogue of source 'local'.*load_config\(source=\"local\""):
        ocmembers.members(cone, "NGC_2682", config=empty, n_samples=N_SAMPLES)


@pytest.mark.shared_data
def test_readme_python_api_example_runs(shared_data, monkeypatch, capsys):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "ocmembers.members(" in code
    _vg23()
    monkeypatch.chdir(REPO)
    exec(compile(code.replace("../shared/data", str(shared_data)), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "NGC_2682 vg23-DS10_v02" in out and "1494 rows" in out and "'cut_eq1_2': 33" in out
    assert "with p >= 0.5" in out
