"""Stage ``paper``: the manuscript with every number generated, built with latexmk.

From ``validation/statistics.json``, ``samples.json`` and the model's
history this stage writes ``generated/statistics.tex`` (``\\newcommand``
macros, names of letters only, as in Maneage / showyourwork's
``\\variable``) and ``generated/reproduction.tex`` (the published numbers of
van Groeningen et al. 2023 beside ours, also as Markdown in
``validation/reproduction.md``). ``paper/ms.tex`` only ``\\input``s them, so a
rerun updates the text. The build happens in ``paper/build/<run>/`` with the
run's figures; the PDF is copied to ``paper/ms.pdf``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from ocmembers._version import __version__
from ocmembers.sources.cache import atomic_path
from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError, StageNotBuiltError
from ocmembers.stages.products import fig1_cluster, figures_dir, run_key

__all__ = ["run", "macros", "reproduction_rows", "published"]


def published() -> dict[str, Any]:
    """The published numbers of vG23 (``data/published_vg23.json``)."""
    return json.loads(resources.files("ocmembers").joinpath("data/published_vg23.json").read_text())


def _fmt(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "--"
    if isinstance(x, int):
        return f"{x:,}".replace(",", "\\,")
    return f"{x:.{digits}f}"


def _pct(x: float) -> str:
    return _fmt(100.0 * x, 1) if x is not None and math.isfinite(x) else "--"


def _triple(p: list[float]) -> str:
    lo, mid, hi = p
    if not all(math.isfinite(v) for v in p):
        return "--"
    return f"{mid:.3f}^{{+{hi - mid:.3f}}}_{{-{mid - lo:.3f}}}"


def _history(cfg: Config) -> dict[str, Any]:
    path = cfg.out_dir / "model" / "history.csv"
    if not path.is_file():
        return {"n_epochs": None, "best_epoch": None, "best_f1": float("nan")}
    _verified(path)
    h = pd.read_csv(path)
    col = next((c for c in ("val_f1", "validation_f1", "f1_val", "f1_validation") if c in h), None)
    if col is None:
        return {"n_epochs": len(h), "best_epoch": None, "best_f1": float("nan")}
    i = int(h[col].idxmax())
    epoch = int(h["epoch"].iloc[i]) if "epoch" in h else i + 1
    return {"n_epochs": len(h), "best_epoch": epoch, "best_f1": float(h[col].iloc[i])}


def _n_params(cfg: Config) -> int | None:
    meta = cfg.out_dir / "model" / "model.json"
    if meta.is_file():
        m = json.loads(meta.read_text())
        for k in ("n_parameters", "n_params"):
            if k in m:
                return int(m[k])
    try:
        from ocmembers.method.network import DeepSetsNet
        net = DeepSetsNet(hidden=cfg.model.hidden, n_blocks=cfg.model.n_blocks, dropout=cfg.model.dropout)
        return int(sum(p.numel() for p in net.parameters()))
    except Exception:  # noqa: BLE001 -- a count for the text only
        return None


def _training_sentence(cfg: Config, h: dict[str, Any]) -> str:
    model = cfg.membership.model
    if model == "vg23":
        return ("This run uses the published model of vG23 (DS10\\_v02, trained on 605 clusters of real "
                "\\textit{Gaia} data; weights from the \\texttt{gaia-oc-amd} 0.2.1 package), so Fig.~\\ref{fig:training} "
                "is not remade.")
    if model != "trained":
        name = Path(model).name.replace("_", "\\_")
        return f"This run uses the model \\texttt{{{name}}} given in the configuration."
    return (f"It was trained for {_fmt(h['n_epochs'])} epochs; the best validation $F_1={_fmt(h['best_f1'], 3)}$ "
            f"was reached at epoch {_fmt(h['best_epoch'])} (vG23: 165), Fig.~\\ref{{fig:training}}.")


def macros(stats: dict[str, Any], samples: dict[str, Any], cfg: Config) -> dict[str, str]:
    """Name -> LaTeX text of every generated number (names of letters only)."""
    h = _history(cfg)
    m = stats["t22_missed"]
    fail = m["non_candidates_failing"]
    va, vs = stats["venn_all"], stats["venn_strict"]
    th = stats["thresholds"]
    n_strict = vs["t22"]
    xm = {"archive": "\\texttt{gaiadr3.dr2\\_neighbourhood}", "local": "position after propagation to J2016.0",
          "sim": "position after propagation to J2016.0 (simulated DR2 epoch)",
          "hats": ("\\texttt{gaiadr3.dr2\\_neighbourhood}" if cfg.source.hats_catalogues == "archive"
                   else "position after propagation to J2016.0")}[cfg.source.name]
    counts = samples.get("counts", {})
    note = "The roles of the clusters were given in the configuration." if "given in the configuration" in json.dumps(counts) else \
        ("Offline, the member lists of Cantat-Gaudin et al.\\ (2018) stand in for those of CG20: fewer clusters "
         "reach the thresholds of $p=1$ members." if cfg.source.name != "archive" else "")
    out = {
        "ocmVersion": __version__, "ocmSource": cfg.source.name, "ocmCrossmatch": xm,
        "nTrainClusters": _fmt(len(samples.get("train", []))), "nValClusters": _fmt(len(samples.get("validation", []))),
        "nTrainValClusters": _fmt(len(samples.get("train", [])) + len(samples.get("validation", []))),
        "nTestClusters": _fmt(stats["n_clusters"]), "selectionNote": note,
        "nParams": _fmt(_n_params(cfg)), "nEpochs": _fmt(h["n_epochs"]), "bestEpoch": _fmt(h["best_epoch"]),
        "bestFOne": _fmt(h["best_f1"], 3), "nSamples": _fmt(cfg.membership.n_samples),
        "pAll": f"{th['p_all']:g}", "pStrict": f"{th['p_strict']:g}", "radiusPc": f"{th['radius_pc']:g}",
        "gMax": f"{th['g_max']:g}",
        "vennAllOurs": _fmt(va["ours"]), "vennAllTT": _fmt(va["t22"]), "vennAllBoth": _fmt(va["both"]),
        "vennStrictOurs": _fmt(vs["ours"]), "vennStrictTT": _fmt(vs["t22"]), "vennStrictBoth": _fmt(vs["both"]),
        "pctStrictRecovered": _pct(vs["both"] / n_strict) if n_strict else "--",
        "nFullRecovery": _fmt(stats["n_clusters_full_recovery"]), "nStrictClusters": _fmt(stats["n_clusters_with_strict_t22"]),
        "pctMissed": _pct(m["fraction_of_t22"]), "pctMissedCand": _pct(m["fraction_candidates"]),
        "pctMissedOut": _pct(m["fraction_not_in_cone"]),
        "missedRadius": _fmt(m["low_p_candidates_radius_pc_mean"]), "missedRadiusStd": _fmt(m["low_p_candidates_radius_pc_std"]),
        "pctFailPM": _pct(fail["proper_motion"]), "pctFailPlx": _pct(fail["parallax"]), "pctFailIso": _pct(fail["isochrone"]),
        "pctFaint": _pct(stats["faint"]["median_fraction_g_gt_gmax_p_all"]),
        "pctFaintMax": _pct(stats["faint"]["max_fraction_g_gt_gmax_p_all"]),
        # used inside math mode in ms.tex
        "fplxOurs": _triple(stats["percentiles"]["ours"]["f_plx"]), "fpmOurs": _triple(stats["percentiles"]["ours"]["f_pm"]),
        "fplxT": _triple(stats["percentiles"]["t22"]["f_plx"]), "fpmT": _triple(stats["percentiles"]["t22"]["f_pm"]),
        "pctRuwe": _pct(stats["ruwe"]["fraction_extra_ruwe_gt_max"]),
        "figOneCluster": (fig1_cluster(cfg) or "--").replace("_", " "),
        "methodTraining": _training_sentence(cfg, h),
    }
    bad = [k for k in out if not re.fullmatch(r"[A-Za-z]+", k)]
    assert not bad, bad  # LaTeX macro names: letters only
    return out


def reproduction_rows(stats: dict[str, Any], samples: dict[str, Any], cfg: Config) -> list[tuple[str, str, str, str]]:
    """(quantity, published, ours, note) for every number of vG23 we recompute."""
    pub = {k: v["value"] for k, v in published().items() if not k.startswith("_")}
    h = _history(cfg)
    m = stats["t22_missed"]
    f = m["non_candidates_failing"]
    pc = lambda x: f"{100 * x:.1f}%" if x is not None and math.isfinite(x) else "--"  # noqa: E731
    tri = lambda p: "/".join(f"{v:.3f}" for v in p)  # noqa: E731
    src = {"archive": "Gaia DR3 archive, VizieR, CMD", "local": "local files (CG18 members stand in for CG20)",
           "sim": "simulated sky",
           "hats": f"a HATS Gaia DR3 catalogue (lsdb), catalogues from the {cfg.source.hats_catalogues} source"}[cfg.source.name]
    ntv = len(samples.get("train", [])) + len(samples.get("validation", []))
    counts = samples.get("counts", {})

    def steps(role: str) -> str:
        c = counts.get(role, {})
        return "; ".join(f"{k}: {v}" for k, v in c.items()) if isinstance(c, dict) else ""

    # the selection ran on real catalogues offline (local files, or the sim's real selection)
    from_catalogues = any(">= " in k for c in counts.values() if isinstance(c, dict) for k in c)
    member_note = ("CG18 member lists stand in for CG20 offline (fewer p = 1 members)"
                   if cfg.source.name != "archive" and from_catalogues else "")
    ref = {"sim": "against the simulated T22-like lists (HDBSCAN on the simulated 50 pc fields), not T22's own",
           "local": "against the T22 lists of the clusters with local data",
           "archive": "against the T22 lists (VizieR J/A+A/659/A59)"}[cfg.source.name]
    sel_train = "; ".join(x for x in (src, member_note, steps("train")) if x)
    sel_test = "; ".join(x for x in (src, member_note, steps("test")) if x)
    return [
        ("training + validation clusters", str(pub["n_train_validation_clusters"]), str(ntv), sel_train),
        ("test clusters", str(pub["n_test_clusters"]), str(stats["n_clusters"]), sel_test),
        ("best epoch", str(pub["best_epoch"]), str(h["best_epoch"]),
         f"early stopping, patience {cfg.training.patience}; Adam step {cfg.training.learning_rate:g} "
         "(the authors' code: 1e-6, batch 32)"),
        ("clusters with 100% strict T22 recovered", str(pub["n_clusters_full_recovery"]), str(stats["n_clusters_full_recovery"]), ""),
        ("T22 members missed", pc(pub["fraction_t22_missed"]), pc(m["fraction_of_t22"]), ref),
        ("missed that are candidates", pc(pub["fraction_missed_candidates"]), pc(m["fraction_candidates"]), ""),
        ("missed that are outside our cone", "--", pc(m["fraction_not_in_cone"]), "not reported by vG23"),
        ("their mean projected radius [pc]", str(pub["missed_candidates_radius_pc_mean"]), f"{m['low_p_candidates_radius_pc_mean']:.1f}", ""),
        ("non-candidates failing pm", pc(pub["non_candidates_fail_pm"]), pc(f["proper_motion"]), ""),
        ("non-candidates failing parallax", pc(pub["non_candidates_fail_plx"]), pc(f["parallax"]), ""),
        ("non-candidates failing isochrone", pc(pub["non_candidates_fail_iso"]), pc(f["isochrone"]), ""),
        ("strict members, ours", str(pub["ours_strict_total"]), str(stats["venn_strict"]["ours"]), "p>=0.5, r<20 pc, G<18"),
        ("strict members, T22", str(pub["t22_strict_total"]), str(stats["venn_strict"]["t22"]), ""),
        ("median fraction G>18 (p>=0.1)", pc(pub["median_fraction_faint"]), pc(stats["faint"]["median_fraction_g_gt_gmax_p_all"]),
         "set by the faint field density and errors of the simulated sky" if cfg.source.name == "sim" else ""),
        ("f_plx ours 15/50/85", tri(pub["ours_f_plx"]), tri(stats["percentiles"]["ours"]["f_plx"]), "mas"),
        ("f_mu ours 15/50/85", tri(pub["ours_f_pm"]), tri(stats["percentiles"]["ours"]["f_pm"]), "mas/yr"),
        ("f_plx T22 15/50/85", tri(pub["t22_f_plx"]), tri(stats["percentiles"]["t22"]["f_plx"]), "mas"),
        ("f_mu T22 15/50/85", tri(pub["t22_f_pm"]), tri(stats["percentiles"]["t22"]["f_pm"]), "mas/yr"),
        ("extra members with RUWE>1.4", pc(pub["fraction_extra_ruwe"]), pc(stats["ruwe"]["fraction_extra_ruwe_gt_max"]), ""),
        _wall_time_row(cfg),
    ]


def _wall_time_row(cfg: Config) -> tuple[str, str, str, str]:
    """Wall time of the stages that made this run (``reports/timings.jsonl``)."""
    from ocmembers.stages.runner import read_timings, timing_summary
    records = read_timings(cfg)
    summary = timing_summary(cfg, records)
    if not summary:
        return ("wall time of the run", "--", "--", "no stage times recorded")
    wall = sum(s["wall_s"] for s in summary.values())
    cpus = sorted({r.get("cpus") for r in records if r.get("cpus")})
    jobs = sorted({r.get("jobs") for r in records if r.get("jobs")})
    return ("wall time of the run", "--", f"{wall / 3600:.2f} h",
            f"sum over the recorded runs of {', '.join(summary)}; {'/'.join(map(str, cpus))} CPUs, "
            f"JOBS={'/'.join(map(str, jobs))}; vG23 give none")


def _tex_escape(s: str) -> str:
    return s.replace("%", "\\%").replace("_", "\\_").replace(">=", "$\\geq$").replace("<", "$<$").replace(">", "$>$")


def _verified(path: Path) -> Path:
    """``path`` checked against its manifest when it has one (every product of the
    pipeline does; a file written by hand has none). Raises when corrupted."""
    from ocmembers.sources import cache
    if cache.manifest_path(path).is_file():
        cache.verify(path)
    return path


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_generated(cfg: Config, gen_dir: Path) -> dict[str, str]:
    stats_path = cfg.out_dir / "validation" / "statistics.json"
    if not stats_path.is_file():
        raise OCMembersError(f"paper: {stats_path} missing; run the validate stage")
    stats = json.loads(_verified(stats_path).read_text())
    samples_path = cfg.out_dir / "samples.json"
    samples = json.loads(_verified(samples_path).read_text()) if samples_path.is_file() else {}
    mac = macros(stats, samples, cfg)
    _write(gen_dir / "statistics.tex", "% generated by ocmembers.stages.paper -- do not edit\n" +
           "".join(f"\\newcommand{{\\{k}}}{{{v}}}\n" for k, v in mac.items()))
    rows = reproduction_rows(stats, samples, cfg)
    tex = ["\\begin{table*}", "\\caption{Published numbers of vG23 and ours.}\\label{tab:repro}", "\\centering",
           "\\begin{tabular}{llll}", "\\toprule", "quantity & vG23 & this run & note \\\\", "\\midrule"]
    tex += [" & ".join(_tex_escape(c) for c in r) + " \\\\" for r in rows]
    tex += ["\\bottomrule", "\\end{tabular}", "\\end{table*}", ""]
    _write(gen_dir / "reproduction.tex", "\n".join(tex))
    md = ["| quantity | vG23 | this run | note |", "|---|---|---|---|"] + ["| " + " | ".join(r) + " |" for r in rows]
    _write(cfg.out_dir / "validation" / "reproduction.md", "\n".join(md) + "\n")
    return mac


def run(cfg: Config) -> Path:
    paper_dir = Path(cfg.paths.paper_dir)
    src = paper_dir / "ms.tex"
    if not src.is_file():
        raise OCMembersError(f"paper: {src} not found (run from the repository root)")
    build = paper_dir / "build" / run_key(cfg)
    write_generated(cfg, build / "generated")
    shutil.copy2(src, build / "ms.tex")
    figs = build / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    for f in figures_dir(cfg).glob("*.pdf"):
        shutil.copy2(f, figs / f.name)
    latexmk = shutil.which("latexmk")
    if latexmk is None:
        raise StageNotBuiltError("paper: latexmk is not installed (Debian: apt-get install latexmk "
                                 "texlive-latex-base texlive-latex-recommended texlive-publishers); "
                                 f"the generated text is in {build / 'generated'}")
    r = subprocess.run([latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", "ms.tex"],
                       cwd=build, capture_output=True, text=True)
    if r.returncode != 0:
        log = (build / "ms.log")
        tail = log.read_text(errors="replace").splitlines()[-25:] if log.is_file() else r.stdout.splitlines()[-25:]
        raise OCMembersError("paper: LaTeX failed:\n" + "\n".join(tail))
    out = paper_dir / "ms.pdf"
    with atomic_path(out) as tmp:
        shutil.copyfile(build / "ms.pdf", tmp)
    shutil.copyfile(build / "ms.pdf", paper_dir / f"ms-{run_key(cfg)}.pdf")
    print(f"paper: {out}", file=sys.stderr)
    return out
