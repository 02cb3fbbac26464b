"""The paper stage: generated macros cover the manuscript, and the PDF builds."""

import json
import os
import re
import shutil
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ocmembers import load_config  # noqa: E402
from ocmembers.stages.paper import macros, reproduction_rows, run  # noqa: E402
from ocmembers.stages.validate import summarise  # noqa: E402

from test_validate import _table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _run_dir(tmp_path, *, output="data", model="trained", test=("X",), counts=None):
    out_dir = str(tmp_path / output)
    cfg = load_config(source="sim", output_dir=out_dir)
    cfg = cfg.replace(paths={"output_dir": out_dir, "figures_dir": str(tmp_path / "figures"),
                             "paper_dir": str(tmp_path / "paper")}, membership={"model": model})
    stats, _ = summarise([_table()], cfg)
    out = cfg.out_dir
    (out / "validation").mkdir(parents=True)
    (out / "validation" / "statistics.json").write_text(json.dumps(stats))
    (out / "samples.json").write_text(json.dumps({"train": ["A", "B"], "validation": ["C"], "test": list(test),
                                                   "counts": counts or {}}))
    return cfg, stats


def test_every_macro_of_the_manuscript_is_generated(tmp_path):
    cfg, stats = _run_dir(tmp_path)
    mac = macros(stats, json.loads((cfg.out_dir / "samples.json").read_text()), cfg)
    text = (REPO / "paper" / "ms.tex").read_text()
    used = set(re.findall(r"\\([a-z]+[A-Z][A-Za-z]*)", text)) - {"ocmAA"}  # camelCase names are ours
    assert used <= set(mac), used - set(mac)
    assert mac["vennAllBoth"] == "2" and mac["pctMissed"] == "60.0"
    # "1 test clusters": the count and its noun come generated together
    assert mac["testClustersText"] == "1 test cluster"
    assert not re.search(r"\\nTestClusters\\ (test )?clusters", text)
    rows = reproduction_rows(stats, {"train": [1], "validation": []}, cfg)
    assert ("test clusters", "167", "1", "simulated sky") in rows
    # the selection from the real catalogues (the full simulated run) says what it used and left
    counts = {"train": {"all CG20 clusters": 2017, ">= 80 members with p >= 1.0": 261},
              "test": {"has T22 list": 387, ">= 20 members with p >= 1.0": 178}}
    rows = {r[0]: r for r in reproduction_rows(stats, {"train": [1], "validation": [], "counts": counts}, cfg)}
    assert rows["test clusters"][3] == ("simulated sky; CG18 member lists stand in for CG20 offline (fewer p = 1 "
                                        "members); has T22 list: 387; >= 20 members with p >= 1.0: 178")
    assert "T22-like" in rows["T22 members missed"][3]


#: the selection notes of the full simulated run: the longest cells of Table 1
LONG_COUNTS = {"train": {"all CG20 clusters": 2017, "distance < 2 kpc": 1047, ">= 80 members with p >= 1.0": 261,
                         "not a test cluster": 118},
               "test": {"has T22 list": 387, "in CG20": 380, ">= 20 members with p >= 1.0": 178,
                        "cone within 50 pc": 147}}
FIGURES = ("fig1_sets", "fig2_training", "fig3_venn", "fig4_clusters_t22", "figA2_architecture")


def _need_latexmk():
    if shutil.which("latexmk") is None:
        if os.environ.get("CI"):
            pytest.fail("latexmk missing under CI (.ci/run installs it with scripts/install_tex.sh)")
        pytest.skip("needs latexmk (make installs it for the paper stage)")


def _sources(tmp_path):
    paper = tmp_path / "paper"
    paper.mkdir(exist_ok=True)
    for name in ("ms.tex", "references.bib"):
        shutil.copy2(REPO / "paper" / name, paper / name)
    return paper


def _figures(cfg, names=FIGURES):
    from ocmembers.stages.products import figures_dir
    figs = figures_dir(cfg)
    figs.mkdir(parents=True, exist_ok=True)
    for name in names:
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1])
        fig.savefig(figs / f"{name}.pdf")
        plt.close(fig)


def _built_aux(tmp_path, cfg) -> str | None:
    """Build the paper of ``cfg`` with stand-in figures and return its ``ms.aux`` (None where
    latexmk is missing outside CI; under CI a missing latexmk fails)."""
    if shutil.which("latexmk") is None:
        if os.environ.get("CI"):
            pytest.fail("latexmk missing under CI (.ci/run installs it with scripts/install_tex.sh)")
        return None
    from ocmembers.stages.paper import run
    from ocmembers.stages.products import paper_paths
    _sources(tmp_path)
    _figures(cfg, FIGURES)
    run(cfg)
    return (paper_paths(cfg)["build"] / "ms.aux").read_text()


def _truth(cfg):
    stats, _ = summarise([_table()], cfg)
    (cfg.out_dir / "validation" / "truth_statistics.json").write_text(json.dumps(stats))


def _overfull_pt(log: str) -> list[float]:
    return [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]


def test_pdf_builds_with_its_reference_list_and_a_table_that_fits(tmp_path, capsys):
    _need_latexmk()
    cfg, _ = _run_dir(tmp_path, counts=LONG_COUNTS)
    _sources(tmp_path)
    _figures(cfg)
    from ocmembers.stages.products import paper_paths
    from ocmembers.sources import cache
    out = run(cfg)
    paths = paper_paths(cfg)
    assert out == paths["pdf"] and out.read_bytes()[:5] == b"%PDF-"
    cache.verify(out)                                    # a product with its manifest
    assert (tmp_path / "paper" / "ms.pdf").read_bytes() == out.read_bytes()   # and the copy in paper/
    build = paths["build"]
    gen = (build / "generated" / "statistics.tex").read_text()
    assert "\\newcommand{\\nTestClusters}{1}" in gen
    log = (build / "ms.log").read_text(errors="replace")
    # Table 1 (the long selection notes) and everything else stays within the page
    assert max(_overfull_pt(log), default=0.0) < 1.0, _overfull_pt(log)
    assert "undefined" not in log.lower(), [x for x in log.splitlines() if "ndefined" in x]
    # the reference list: bibtex ran and every cited paper is in it
    bbl = (build / "ms.bbl").read_text()
    for key in ("vanGroeningen2023", "Tarricq2022", "CantatGaudin2020", "Zaheer2017", "GaiaVallenari2023"):
        assert f"{{{key}}}" in bbl, key


def test_the_up_to_date_check_looks_at_the_pdf_itself(tmp_path, capsys):
    # the container keeps paper/ inside itself: a record elsewhere must never stop the rebuild of
    # a PDF that is not there
    _need_latexmk()
    cfg, _ = _run_dir(tmp_path)
    _sources(tmp_path)
    _figures(cfg)
    pdf = run(cfg)
    capsys.readouterr()
    assert run(cfg) == pdf
    assert "up to date" in capsys.readouterr().err
    pdf.unlink()
    (tmp_path / "paper" / "ms.pdf").unlink()
    assert run(cfg).is_file() and "up to date" not in capsys.readouterr().err
    assert (tmp_path / "paper" / "ms.pdf").is_file()
    pdf.write_bytes(b"%PDF- corrupted")                  # does not verify: rebuilt
    run(cfg)
    assert "up to date" not in capsys.readouterr().err and pdf.read_bytes() != b"%PDF- corrupted"


def test_published_model_pdf_claims_no_training_and_has_no_fig2_placeholder(tmp_path):
    cfg, stats = _run_dir(tmp_path, model="vg23")
    samples = json.loads((cfg.out_dir / "samples.json").read_text())
    mac = macros(stats, samples, cfg)
    assert mac["modelTrained"] == "0"
    assert "published" in mac["abstractModel"] and "2 training" not in mac["abstractModel"]
    assert "not used" in mac["selectionSplit"] and "2 training" not in mac["selectionSplit"]
    assert "no training history" in mac["methodTraining"] and "\\ref{fig:training}" not in mac["methodTraining"]
    rows = {r[0]: r for r in reproduction_rows(stats, samples, cfg)}
    assert rows["training + validation clusters"][2] == "--" and rows["best epoch"][2] == "--"
    assert "published model" in rows["training + validation clusters"][3]
    trained = macros(stats, samples, _run_dir(tmp_path / "t")[0])
    assert trained["modelTrained"] == "1" and "2 training and 1 validation" in trained["abstractModel"]
    text = (REPO / "paper" / "ms.tex").read_text()
    fig2 = text.index("fig2_training.pdf")
    assert text.rfind("\\ifnum\\modelTrained=1", 0, fig2) > text.rfind("\\fi", 0, fig2)
    if shutil.which("latexmk") is None:
        return
    _sources(tmp_path)
    _figures(cfg, [f for f in FIGURES if f != "fig2_training"])   # the figures stage makes no Fig. 2
    from ocmembers.stages.products import paper_paths
    run(cfg)
    build = paper_paths(cfg)["build"]
    assert "fig:training" not in (build / "ms.aux").read_text()
    assert "not made in this run" not in (build / "ms.log").read_text(errors="replace")


def test_the_abstract_names_the_statistics_file_of_the_run(tmp_path):
    cfg, stats = _run_dir(tmp_path, output="data/demo")
    mac = macros(stats, {}, cfg)
    plain = re.sub(r"\\texttt\{(.*)\}", r"\1", mac["statisticsFile"]).replace("\\allowbreak ", "").replace("\\_", "_")
    from ocmembers.stages.products import statistics_path
    assert plain == str(statistics_path(cfg)) and "/demo/sim/validation/statistics.json" in plain
    text = (REPO / "paper" / "ms.tex").read_text()
    assert "\\statisticsFile" in text and "validation/statistics.json" not in text


def test_fig4_sentence_counts_the_clusters_the_figure_shows(tmp_path):
    from ocmembers.stages.figures import figure_jobs
    cfg, stats = _run_dir(tmp_path, test=("NGC_2682", "NGC_752", "Other_1"))
    fig4 = {j.name: j for j in figure_jobs(cfg)}["fig4_clusters_t22"]
    drawn = fig4.args[2:]
    assert drawn == ["NGC_752", "NGC_2682"]
    assert macros(stats, {}, cfg)["figFourClusters"] == "two clusters (NGC 752 and NGC 2682)"
    cfg1, stats1 = _run_dir(tmp_path / "one", test=("Other_1",))
    assert macros(stats1, {}, cfg1)["figFourClusters"] == "one cluster (Other 1)"
    text = (REPO / "paper" / "ms.tex").read_text()
    assert "four clusters" not in text and "\\figFourClusters" in text


def test_no_generated_macro_swallows_the_space_after_it(tmp_path):
    # "\methodTraining<newline>Membership" printed "Fig. 2.Membership": a control word eats the
    # blank after it, so each generated macro followed by text needs "{}" or "\ "
    cfg, stats = _run_dir(tmp_path)
    names = sorted(macros(stats, {}, cfg), key=len, reverse=True)
    text = re.sub(r"(?<!\\)%.*", "", (REPO / "paper" / "ms.tex").read_text())
    bad = [m.group(0).strip() for name in names
           for m in re.finditer(rf"\\{name}(?![A-Za-z])[ \t]*\n?[ \t]*(?=[A-Za-z(\[])", text)
           if m.group(0) != f"\\{name}"]
    assert not bad, bad


def test_truth_venn_is_in_the_paper_when_the_truth_exists(tmp_path):
    cfg, stats = _run_dir(tmp_path)
    assert macros(stats, {}, cfg)["hasTruth"] == "0"
    _truth(cfg)
    mac = macros(stats, {}, cfg)
    assert mac["hasTruth"] == "1" and mac["truthAllBoth"] == "2" and mac["truthAllPrecision"] == "0.400"
    from ocmembers.stages.figures import figure_jobs
    assert "fig3_venn_truth" in {j.name for j in figure_jobs(cfg)}
    text = (REPO / "paper" / "ms.tex").read_text()
    venn = text.index("fig3_venn_truth.pdf")
    assert text.rfind("\\ifnum\\hasTruth=1", 0, venn) > text.rfind("\\fi", 0, venn)
    if shutil.which("latexmk") is None:
        return
    _sources(tmp_path)
    _figures(cfg, [*FIGURES, "fig3_venn_truth"])
    from ocmembers.stages.products import paper_paths
    run(cfg)
    aux = (paper_paths(cfg)["build"] / "ms.aux").read_text()
    assert "fig:venntruth" in aux


def test_wall_time_is_that_of_the_last_run_not_the_sum_of_all(tmp_path):
    cfg, stats = _run_dir(tmp_path)
    reports = cfg.out_dir / "reports"
    reports.mkdir()
    runs = [("catalogues", 1000.0), ("sets", 2000.0), ("catalogues", 30.0), ("sets", 60.0), ("paper", 500.0)]
    reports.joinpath("timings.jsonl").write_text("".join(
        json.dumps({"stage": st, "wall_s": w, "cpu_s": w, "status": 0, "jobs": 1, "cpus": 2}) + "\n"
        for st, w in runs))
    row = {r[0]: r for r in reproduction_rows(stats, {}, cfg)}["wall time of the last run"]
    assert row[2] == "90 s", row
    assert "last run of each of catalogues, sets" in row[3]


def test_references_hold_every_cited_paper(tmp_path):
    cfg, stats = _run_dir(tmp_path)
    bib = (REPO / "paper" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    text = (REPO / "paper" / "ms.tex").read_text() + "".join(macros(stats, {}, cfg).values())
    cited = {k.strip() for group in re.findall(r"\\cite[a-z]*(?:\[[^\]]*\])*\{([^}]+)\}", text)
             for k in group.split(",")}
    assert cited and cited <= keys, cited - keys
    assert "\\bibliography{references}" in text


def test_the_paper_stage_runs_for_a_user_who_cannot_write_paper(tmp_path, capsys):
    """``docker run --user 1000:1000``: the image's paper/ belongs to root (it failed with
    ``PermissionError: 'paper/build'``). The stage builds in the run's output directory; only the
    convenience copy into paper/ is skipped, with a note."""
    from ocmembers.cli import main
    from ocmembers.stages.products import paper_paths
    cfg, _ = _run_dir(tmp_path)
    _figures(cfg)
    paper = _sources(tmp_path)
    if os.geteuid() == 0:
        # root writes into any directory: the copies are refused another way (an OSError too)
        (paper / "ms.pdf").mkdir()
        (paper / "ms-sim.pdf").mkdir()
    else:
        paper.chmod(0o555)
    try:
        status = main(["paper", "--source", "sim", "--output-dir", str(tmp_path / "data"),
                       "--set", f"paths.paper_dir={paper}", "--set", f"paths.figures_dir={tmp_path / 'figures'}"])
    finally:
        paper.chmod(0o755)
    err = capsys.readouterr().err
    assert not (paper / "build").exists() and sorted(p.name for p in paper.iterdir()) == sorted(
        ["ms.tex", "references.bib", *(["ms.pdf", "ms-sim.pdf"] if os.geteuid() == 0 else [])])
    if shutil.which("latexmk") is None:
        assert status == 3 and "latexmk is not installed" in err, err
        assert (paper_paths(cfg)["build"] / "generated" / "statistics.tex").is_file()
    else:
        assert status == 0, err
        assert paper_paths(cfg)["pdf"].is_file() and "not copied to" in err


def test_tex_packages_agree_across_the_stage_the_script_and_the_image():
    from ocmembers.stages.paper import TEX_PACKAGES
    dockerfile = (REPO / "Dockerfile").read_text()
    apt = re.search(r'ARG APT_PACKAGES="([^"]+)"', dockerfile).group(1).split()
    script = (REPO / "scripts" / "install_tex.sh").read_text()
    listed = re.search(r"TEX_PACKAGES=\"([^\"]+)\"", script).group(1).split()
    assert set(apt) - {"make"} == set(TEX_PACKAGES) == set(listed)


def test_install_tex_as_a_user_installs_nothing_and_says_what_to_run(tmp_path):
    # make paper runs scripts/install_tex.sh when latexmk is missing: only root may apt-get
    import subprocess
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")       # a user, not root
    (bin_dir / "apt-get").write_text("#!/bin/sh\necho apt-get ran >&2\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    r = subprocess.run(["/bin/bash", str(REPO / "scripts" / "install_tex.sh")], capture_output=True, text=True,
                       env={"PATH": str(bin_dir)}, timeout=30)
    assert r.returncode == 1 and "apt-get ran" not in r.stderr
    from ocmembers.stages.paper import TEX_PACKAGES
    assert f"sudo apt-get install {' '.join(TEX_PACKAGES)}" in r.stderr and "\n" not in r.stderr.strip()


def _realism_report(cfg):
    """A realism report of two clusters with known medians, as the ``realism`` stage writes it."""
    from ocmembers.stages.products import realism_path

    def lists(frac20_sim, frac20_real, r_sim, r_real):
        sim = {"n": 100.0, "frac_r_gt_10pc": 0.3, "frac_r_gt_20pc": frac20_sim, "frac_r_gt_30pc": 0.1,
               "r_median_pc": r_sim, "sigma_pmra": 0.2, "sigma_parallax": 0.05, "g_q50": 15.0,
               "frac_g_gt_17": 0.2}
        real = {**sim, "frac_r_gt_20pc": frac20_real, "r_median_pc": r_real, "n": 200.0}
        return {"sim": sim, "real": real, "sim_over_real": {k: sim[k] / real[k] for k in sim},
                "ks_g": 0.1, "ks_r": 0.3}
    per = {"A": lists(0.2, 0.25, 6.0, 8.0), "B": lists(0.1, 0.25, 4.0, 8.0)}
    from ocmembers.method.realism import summarise_ratios
    frac = lambda x: {"n": 50.0, "frac_gt_1.4": x}  # noqa: E731
    rep = {"clusters": ["A", "B"], "sky": {"structure": "corona_tails", "ruwe_model": "orbit", "t22_sky": False,
                                                 "t22_check": True},
           "t22": {"per_cluster": per, "summary": summarise_ratios(per)},
           "t22_truth": {"per_cluster": {"A": lists(0.3, 0.25, 7.0, 8.0)}, "summary": {}},
           "m67": {"ruwe": {"real_members_cg18": frac(0.025), "sim_true_members_g_lt_18": frac(0.03),
                            "real_all_g_lt_18": frac(0.044), "sim_all_g_lt_18": frac(0.04),
                            "real_field_g_lt_18": frac(0.05), "sim_field_g_lt_18": frac(0.002)},
                   "ruwe_members_difference_pp": 0.5},
           "jacobi": {"per_cluster": {"A": {}, "B": {}},
                      "summary": {k: {"median": v, "p16": v, "p84": v, "n_clusters": 2} for k, v in
                                  (("r_jacobi_pc", 12.25), ("hunt24", 0.062), ("real_t22", 0.42),
                                   ("sim_t22_like", 0.304), ("sim_truth_g_lt_18", 0.255))}}}
    path = realism_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rep))


def test_the_realism_appendix_is_in_the_paper_when_the_report_exists(tmp_path):
    """The appendix quotes the realism report of the run (issue 16): medians over clusters of
    the simulated and real values, sim/real medians with their spread, and M67's RUWE."""
    cfg, stats = _run_dir(tmp_path)
    mac = macros(stats, {}, cfg)
    assert mac["hasRealism"] == "0" and mac["realismTwentySim"] == "--"
    _realism_report(cfg)
    mac = macros(stats, {}, cfg)
    assert mac["hasRealism"] == "1" and mac["hasRealismMSixSeven"] == "1"
    assert (mac["realismTwentySim"], mac["realismTwentyReal"], mac["realismTwentyRatio"]) == ("0.150", "0.250", "0.60")
    assert (mac["realismRadiusSim"], mac["realismRadiusReal"], mac["realismRadiusRatio"]) == ("5.0", "8.0", "0.62")
    assert (mac["realismTwentyTrue"], mac["realismRadiusTrue"]) == ("0.300", "7.0")
    assert mac["realismClusters"] == "2 clusters" and "tidal tails" in mac["realismStructure"]
    assert mac["realismTTwoTwoFeatures"].startswith("on parallax and proper motion, as T22; a list that")
    assert (mac["realismRuweReal"], mac["realismRuweSim"], mac["realismRuweDiff"]) == ("2.5", "3.0", "+0.5")
    assert mac["hasRealismJacobi"] == "1" and mac["realismJacobiClusters"] == "2 clusters"
    assert [mac[f"realismJacobi{a}"] for a in ("Radius", "Hunt", "Real", "Sim", "True")] == [
        "12.2", "0.06", "0.42", "0.30", "0.26"]
    # the reproduction table's notes say why two rows differ from vG23 on the simulated sky
    from ocmembers.stages.paper import reproduction_rows
    notes = {r[0]: r[3] for r in reproduction_rows(stats, {}, cfg)}
    assert "sim/real: beyond 10 pc 1.00, 20 pc 0.60, median radius 0.62 (realism)" in notes["T22 members missed"]
    assert "leave out RUWE>1.4 as T22 did" in notes["extra members with RUWE>1.4"]
    assert "members 2.5/3.0%, field 5.0/0.2% (realism)" in notes["extra members with RUWE>1.4"]
    text = (REPO / "paper" / "ms.tex").read_text()
    fig, start = text.index("realism.pdf"), text.index("\\ifnum\\hasRealism=1")
    end = text.index("\\fi\n", text.index("\\end{figure*}", fig))
    assert text.index("\\appendix") < start < fig < end
    assert text[start:end].count("\\ifnum") == text[start:end].count("\\fi") + 1   # the section closes at end
    if shutil.which("latexmk") is None:
        return
    _sources(tmp_path)
    _figures(cfg, [*FIGURES, "realism"])
    from ocmembers.stages.products import paper_paths
    run(cfg)
    aux = (paper_paths(cfg)["build"] / "ms.aux").read_text()
    assert "fig:realism" in aux and "app:realism" in aux
