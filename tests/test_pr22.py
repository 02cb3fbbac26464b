"""Stage pr22: Peña Ramírez et al. (2022) on the simulated VVV sky (stages/pr22.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ocmembers.method.member_table import MethodError

#: PR22's settings made small enough for a test (the stage's defaults are 200 bootstraps, 100 UPMASK
#: iterations, 200 EM iterations).
FAST = {"xd_bootstrap": 20, "pr22_upmask_iterations": 4, "xd_max_iter": 30, "upmask_random_fields": 40}


@pytest.fixture(scope="module")
def stage_run(shared_data, tmp_path_factory):
    """The stage on two clusters, one of whose XD fits is made to fail."""
    from ocmembers.config import load_config
    from ocmembers.stages import pr22, pr22_cluster

    out = tmp_path_factory.mktemp("pr22")
    mp = pytest.MonkeyPatch()
    mp.setattr(pr22, "PAPER_DIR", out / "paper")
    real = pr22_cluster.penaramirez22_members

    def flaky(table, row, cfg):
        if row["name"] == "NGC_5606":
            raise MethodError("cluster NGC_5606: XDGMM: every component lost its stars")
        return real(table, row, cfg)

    mp.setattr(pr22_cluster, "penaramirez22_members", flaky)
    cfg = load_config(source="sim", local_dir=str(shared_data), output_dir=str(out / "data"),
                      clusters=["NGC_5606", "Teutsch_84"]).replace(methods=FAST)
    # the plumbing on a field where the shortened fit (FAST) finds the cluster: with the escaped
    # stars of corona_tails (65 of 15,104 sources) its 30 iterations settle on a field component
    cfg = cfg.replace(sim={"structure": "core_halo"})
    report = pr22.run(cfg)
    yield cfg, report, out
    mp.undo()


def test_a_failed_fit_is_reported_and_the_batch_goes_on(stage_run):
    cfg, report, _ = stage_run
    assert report.done == ["Teutsch_84"] and "NGC_5606" in report.failed
    st = json.loads((cfg.out_dir / "pr22" / "statistics.json").read_text())
    assert st["n_clusters_run"] == 1 and "NGC_5606" in st["failed"]
    assert "every component lost its stars" in st["failed"]["NGC_5606"]


def test_cluster_products(stage_run):
    cfg, _, out = stage_run
    s = json.loads((cfg.out_dir / "pr22" / "clusters" / "Teutsch_84.json").read_text())
    assert s["photometry"] == "J,H,Ks" and s["n_literature_p09"] == 108 and s["n_pr22_p09"] == 184
    assert s["xd_bootstrap"] == FAST["xd_bootstrap"] and isinstance(s["xd_converged"], bool)
    assert s["n_p09"] > 5 and s["wall_s"] > 0
    m = {(r["method"], r["threshold"]): r for r in s["metrics"]}
    r = m[("xdgmm_upmask", 0.9)]
    # counted against the truth of the field (the fast settings give no meaningful precision)
    assert r["n_selected"] == s["n_p09"] and r["n_true"] == s["n_true_members"] and 0.0 <= r["precision"] <= 1.0
    assert m[("xdgmm_upmask", 0.5)]["n_selected"] >= r["n_selected"]
    members = pd.read_parquet(cfg.out_dir / "pr22" / "clusters" / "Teutsch_84.parquet")
    assert int((members["probability"] >= 0.9).sum()) == s["n_p09"]
    cmp_ = json.loads((cfg.out_dir / "pr22" / "compare" / "Teutsch_84.json").read_text())
    runs = {r["method"]: r["status"] for r in cmp_["runs"]}
    assert runs["hdbscan_t22"] == "ok" and runs["deep_sets"].startswith("not run")
    numbers = (out / "paper" / "build" / "numbers.tex").read_text()
    assert "\\newcommand{\\nOursTotal}{" in numbers and "\\newcommand{\\precxdgmmupmaskPNine}{" in numbers
    for f in ("pr22_fig1_counts.pdf", "pr22_fig2_cmd.pdf", "pr22_mass.pdf", "pr22_field_counts.pdf",
              "pr22_appendix_cmds.pdf"):
        assert (cfg.out_dir / "pr22" / "figures" / f).stat().st_size > 1000
    counts = pd.read_csv(cfg.out_dir / "pr22" / "field_counts.csv")
    assert (counts["vvv_all_per_deg2"] > counts["tmass_ks14.3_per_deg2"]).all()


def test_rerun_is_up_to_date(stage_run):
    from ocmembers.stages import pr22, pr22_cluster
    cfg, _, out = stage_run
    mp = pytest.MonkeyPatch()
    mp.setattr(pr22, "PAPER_DIR", out / "paper")
    mp.setattr(pr22_cluster, "penaramirez22_members", lambda *a: pytest.fail("redone"))
    try:
        report = pr22.run(cfg.replace(clusters={"names": ("Teutsch_84",)}))
    finally:
        mp.undo()
    assert report.skipped == ["Teutsch_84"]


def test_no_nir_coverage_runs_on_the_gaia_dimensions():
    from ocmembers.stages.pr22 import pr22_input
    cone = pd.DataFrame({"source_id": [1, 2], "ra": [0.0, 0.1], "dec": [0.0, 0.1],
                         "Jmag": [np.nan, np.nan], "e_Jmag": [np.nan, np.nan], "Hmag": [np.nan, np.nan],
                         "Ksmag": [np.nan, np.nan], "phot_g_mean_mag": [15.0, 16.0], "tmass_j": [np.nan] * 2})
    table, phot = pr22_input(cone)
    assert phot.startswith("gaia only") and "phot_g_mean_mag" in table and "Jmag" not in table
    cone.loc[0, "Jmag"] = 14.0
    table, phot = pr22_input(cone)
    assert phot == "J,H,Ks" and "phot_g_mean_mag" not in table and "Jmag" in table


def test_the_archive_route_needs_the_cluster_table(shared_data, tmp_path):
    """SOURCE=archive/local fetch the NIR field (tests/test_pr22_archive.py), from the clusters of the
    catalogues stage: without them, one clear error and no request."""
    from ocmembers.config import load_config
    from ocmembers.exceptions import ConfigError
    from ocmembers.stages import pr22, pr22_cluster
    mp = pytest.MonkeyPatch()
    mp.setattr(pr22_cluster, "fetch_field", lambda *a, **k: pytest.fail("fetched"))
    try:
        for source in ("local", "archive"):
            cfg = load_config(source=source, local_dir=str(shared_data), output_dir=str(tmp_path / source))
            with pytest.raises(ConfigError, match=f"SOURCE={source} needs the cluster table .*make catalogues"):
                pr22.run(cfg)
    finally:
        mp.undo()


def test_editing_the_summary_redoes_no_cluster():
    """The per-cluster products record the code of ``pr22_cluster`` and what it imports, which
    holds none of the statistics, figures and paper of ``pr22`` (a figure fix reruns no fit)."""
    from ocmembers.stages.runner import code_modules
    mods = set(code_modules("ocmembers.stages.pr22_cluster"))
    assert "ocmembers.method.xdgmm" in mods and "ocmembers.sim.vvv" in mods
    assert "ocmembers.stages.pr22" not in mods and "ocmembers.stages.pr22_compare" not in mods


def test_deep_sets_runs_on_a_pr22_cluster_outside_the_papers_sky(stage_run):
    """Teutsch 84 is none of the clusters SimSource simulates for the paper: the comparison gives
    Deep Sets the cluster's own row and CG20-like members (it was 'not in CG20' before)."""
    from ocmembers.stages.pr22_compare import compare_cluster
    cfg, _, _ = stage_run
    cfg = cfg.replace(membership={"model": "vg23", "n_samples": 4})
    assert compare_cluster(cfg, "Teutsch_84") is True
    c = json.loads((cfg.out_dir / "pr22" / "compare" / "Teutsch_84.json").read_text())
    runs = {r["method"]: r["status"] for r in c["runs"]}
    assert runs == {"hdbscan_t22": "ok", "deep_sets": "ok"}
    ds = [r for r in c["metrics"] if r["method"] == "deep_sets"]
    assert {r["threshold"] for r in ds} == {0.5, 0.9} and all(r["n_true"] > 0 for r in ds)
    assert compare_cluster(cfg, "Teutsch_84") is False            # up to date: its record matches
