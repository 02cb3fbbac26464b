"""Stage ``paper``: the manuscript with every number generated, built with latexmk.

From ``validation/statistics.json``, ``samples.json`` and the model's
history this stage writes ``generated/statistics.tex`` (``\\newcommand``
macros, names of letters only, as in Maneage / showyourwork's
``\\variable``) and ``generated/reproduction.tex`` (the published numbers of
van Groeningen et al. 2023 beside ours, also as Markdown in
``validation/reproduction.md``). ``paper/ms.tex`` only ``\\input``s them, so a
rerun updates the text; ``paper/references.bib`` holds the cited papers (bibtex,
run by latexmk).

The build happens in ``<output dir>/<source>/paper/build/`` (:func:`~ocmembers.stages.products.paper_paths`)
with the run's figures, and the PDF is ``<output dir>/<source>/paper/ms.pdf``, with a manifest:
both beside the run's other products, so whoever can write the run can build the
paper (``docker run --user``), and the container's ``data/`` mount brings the PDF out.
The PDF is rebuilt when it is missing, does not verify, or its record (the sha256
of ``ms.tex``, ``references.bib``, the generated text and the figures; this
module's code) differs. It is then copied to ``paper/ms.pdf`` and
``paper/ms-<run>.pdf`` when that directory is writable (a note otherwise).
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
from ocmembers.stages.products import (fig1_cluster, fig4_clusters, figures_dir, forecast_path, paper_paths,
                                       realism_path, run_key, statistics_path, truth_statistics_path,
                                       truthbench_ideal_path)

__all__ = ["run", "macros", "reproduction_rows", "forecast_rows", "published", "TEX_PACKAGES", "write_generated"]

#: the Debian packages of the paper stage: the Dockerfile's APT_PACKAGES (less make) and
#: scripts/install_tex.sh install these (tests/test_paper.py checks that all three agree)
TEX_PACKAGES = ("latexmk", "texlive-latex-base", "texlive-latex-recommended", "texlive-fonts-recommended")
#: the manuscript's sources in ``[paths] paper_dir``
SOURCES = ("ms.tex", "references.bib")
_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


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


def _model_name(cfg: Config) -> str:
    """The model of this run in words, for a model not trained by this run."""
    model = cfg.membership.model
    if model == "vg23":
        return ("the published model of vG23 (DS10\\_v02, trained by vG23 on real \\textit{Gaia} data; "
                "weights from the \\texttt{gaia-oc-amd} 0.2.1 package)")
    name = Path(model).name.replace("_", "\\_")
    return f"the model \\texttt{{{name}}} given in the configuration (not trained in this run)"


def _training_sentence(cfg: Config, h: dict[str, Any]) -> str:
    if cfg.membership.model != "trained":
        return (f"This run uses {_model_name(cfg)}: it brings no training history, so the training curves "
                "(vG23 Fig.~2) are not shown.")
    return (f"It was trained for {_fmt(h['n_epochs'])} epochs; the best validation $F_1={_fmt(h['best_f1'], 3)}$ "
            f"was reached at epoch {_fmt(h['best_epoch'])} (vG23: 165), Fig.~\\ref{{fig:training}}.")


def _words(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def _names(names: list[str]) -> str:
    names = [n.replace("_", " ") for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _fig4_sentence(cfg: Config) -> str:
    """What Fig. 4 shows: the clusters the figures stage draws (:func:`products.fig4_clusters`)."""
    names = fig4_clusters(cfg)
    if not names:
        return "no cluster (none was evaluated)"
    return f"{_words(len(names))} cluster{'' if len(names) == 1 else 's'} ({_names(names)})"


def _tex_path(path: Path) -> str:
    """A file name in typewriter type that may break after each ``/``."""
    parts = [p.replace("\\", "/").replace("_", "\\_").replace("%", "\\%").replace("#", "\\#")
             for p in str(path).split("/")]
    return "\\texttt{" + "/\\allowbreak ".join(parts) + "}"


def _truth_macros(cfg: Config) -> dict[str, str]:
    """The comparison with the simulated truth (``hasTruth`` 1 when ``truth_statistics.json`` exists)."""
    path = truth_statistics_path(cfg)
    keys = ("truthAllOurs", "truthAllTrue", "truthAllBoth", "truthAllPrecision", "truthAllRecall",
            "truthStrictOurs", "truthStrictTrue", "truthStrictBoth", "truthStrictPrecision", "truthStrictRecall")
    if not path.is_file():
        return {"hasTruth": "0", **{k: "--" for k in keys}}
    t = json.loads(_verified(path).read_text())
    out = {"hasTruth": "1"}
    for part, key in (("All", "venn_all"), ("Strict", "venn_strict")):
        v = t[key]
        out[f"truth{part}Ours"], out[f"truth{part}True"], out[f"truth{part}Both"] = (
            _fmt(v["ours"]), _fmt(v["t22"]), _fmt(v["both"]))
        out[f"truth{part}Precision"] = _fmt(v["both"] / v["ours"], 3) if v["ours"] else "--"
        out[f"truth{part}Recall"] = _fmt(v["both"] / v["t22"], 3) if v["t22"] else "--"
    return out


#: the realism statistics quoted in the appendix: (macro stem, key of ``method.realism``)
_REALISM_KEYS = (("N", "n"), ("Ten", "frac_r_gt_10pc"), ("Twenty", "frac_r_gt_20pc"),
                 ("Thirty", "frac_r_gt_30pc"), ("Radius", "r_median_pc"), ("SigPm", "sigma_pmra"),
                 ("SigPlx", "sigma_parallax"), ("G", "g_q50"), ("Faint", "frac_g_gt_17"))
def _t22_words(sky: dict) -> str:
    """How the run's T22-like lists were made (the realism report's ``sky``), in words."""
    if "t22_sky" not in sky:
        return "--"
    first, other = (("position and astrometry", "parallax and proper motion") if sky["t22_sky"]
                    else ("parallax and proper motion, as T22", "position and astrometry"))
    check = (f"; a list that does not look like the real T22 lists do against their catalogue entry "
             f"(size, dispersions) is replaced by the one on {other}") if sky.get("t22_check") else \
        f"; on {other} where that finds no group"
    return f"on {first}{check}"


_SKY_WORDS = {"core_halo": "a King/Plummer core and halo only",
              "corona_tails": "a core and halo plus the stars lost over the age (corona and tidal tails)",
              "ad_hoc": "an empirical RUWE distribution", "orbit": "RUWE from each binary's photocentre orbit"}


def _median_of(per_cluster: dict[str, Any], side: str, key: str) -> float:
    x = [float(v[side].get(key, math.nan)) for v in per_cluster.values()]
    x = [v for v in x if math.isfinite(v)]
    return float(pd.Series(x).median()) if x else math.nan


def _realism_macros(cfg: Config) -> dict[str, str]:
    """The simulated sky against the real lists, for the appendix (``hasRealism`` 1 when the
    ``realism`` stage's report of this run exists)."""
    path = realism_path(cfg)
    stems = [f"realism{a}{b}" for a, _ in _REALISM_KEYS for b in ("Real", "Sim", "Ratio", "Spread")]
    ruwe = ("realismRuweReal", "realismRuweSim", "realismRuweDiff", "realismRuweAllReal", "realismRuweAllSim")
    words = ("realismTenTrue", "realismTwentyTrue", "realismRadiusTrue", "realismClusters", "realismStructure", "realismRuweModel", "realismTTwoTwoFeatures", "realismKsG", "realismKsR")
    jacobi = tuple(f"realismJacobi{a}" for a, _ in _JACOBI_KEYS) + ("realismJacobiClusters",)
    if not path.is_file():
        return {"hasRealism": "0", "hasRealismMSixSeven": "0", "hasRealismJacobi": "0",
                **{k: "--" for k in (*stems, *ruwe, *words, *jacobi)}}
    rep = json.loads(_verified(path).read_text())
    out = {"hasRealism": "1"}
    t22 = (rep.get("t22") or {}).get("per_cluster") or {}
    summ = (rep.get("t22") or {}).get("summary") or {}
    dig = {"N": 0, "Radius": 1}
    for a, key in _REALISM_KEYS:
        d = dig.get(a, 3)
        out[f"realism{a}Real"] = _fmt(_median_of(t22, "real", key), d) if t22 else "--"
        out[f"realism{a}Sim"] = _fmt(_median_of(t22, "sim", key), d) if t22 else "--"
        v = summ.get(key, {})
        out[f"realism{a}Ratio"] = _fmt(v.get("median"), 2) if v.get("n_clusters") else "--"
        out[f"realism{a}Spread"] = (f"{_fmt(v['p16'], 2)}--{_fmt(v['p84'], 2)}" if v.get("n_clusters") else "--")
    truth = (rep.get("t22_truth") or {}).get("per_cluster") or {}
    for a, key in (("Ten", "frac_r_gt_10pc"), ("Twenty", "frac_r_gt_20pc"), ("Radius", "r_median_pc")):
        out[f"realism{a}True"] = _fmt(_median_of(truth, "sim", key), dig.get(a, 3)) if truth else "--"
    for a, key in (("G", "ks_g"), ("R", "ks_r")):
        out[f"realismKs{a}"] = _fmt(float(pd.Series([v.get(key, math.nan) for v in t22.values()],
                                                    dtype=float).median()), 2) if t22 else "--"
    out["realismClusters"] = f"{_fmt(len(t22))} cluster{'' if len(t22) == 1 else 's'}"
    sky = rep.get("sky") or {}
    out["realismStructure"] = _SKY_WORDS.get(sky.get("structure", ""), "--")
    out["realismRuweModel"] = _SKY_WORDS.get(sky.get("ruwe_model", ""), "--")
    out["realismTTwoTwoFeatures"] = _t22_words(sky)
    m = rep.get("m67")
    out["hasRealismMSixSeven"] = "1" if m else "0"
    if m:
        r = m["ruwe"]
        out["realismRuweReal"] = _pct(r["real_members_cg18"]["frac_gt_1.4"])
        out["realismRuweSim"] = _pct(r["sim_true_members_g_lt_18"]["frac_gt_1.4"])
        out["realismRuweDiff"] = f"{m['ruwe_members_difference_pp']:+.1f}"
        out["realismRuweAllReal"] = _pct(r["real_all_g_lt_18"]["frac_gt_1.4"])
        out["realismRuweAllSim"] = _pct(r["sim_all_g_lt_18"]["frac_gt_1.4"])
    else:
        out.update({k: "--" for k in ruwe})
    # beyond Hunt & Reffert's (2024) Jacobi radius: medians over the clusters of each list's share
    j = rep.get("jacobi") or {}
    n_j = len(j.get("per_cluster") or {})
    out["hasRealismJacobi"] = "1" if n_j else "0"
    for a, key in _JACOBI_KEYS:
        v = (j.get("summary") or {}).get(key, {})
        out[f"realismJacobi{a}"] = (_fmt(v.get("median"), 1 if key == "r_jacobi_pc" else 2)
                                    if n_j and v.get("n_clusters") else "--")
    out["realismJacobiClusters"] = f"{_fmt(n_j)} cluster{'' if n_j == 1 else 's'}" if n_j else "--"
    return out


#: The Jacobi-radius summaries of the realism report the appendix quotes: (macro stem, key).
_JACOBI_KEYS = (("Radius", "r_jacobi_pc"), ("Hunt", "hunt24"), ("Real", "real_t22"), ("Sim", "sim_t22_like"),
                ("True", "sim_truth_g_lt_18"))


#: the G ranges of the information-limit table: (macro stem, lo, hi)
_IDEAL_RANGES = (("Bright", -math.inf, 18.0), ("Eighteen", 18.0, 19.0), ("Nineteen", 19.0, 20.0),
                 ("Twenty", 20.0, 21.0))
#: calibration bins quoted need at least this many sources
_IDEAL_CALIB_MIN_N = 20


def _ideal_verdict(m: dict[str, str]) -> str:
    """The sentence on the faint end: is Deep Sets' loss of recall the method's or the data's?"""
    def num(k: str) -> float:
        try:
            return float(m[k])
        except (KeyError, ValueError):
            return math.nan
    r_ds, r_id, err = num("dsNineteenR"), num("idealNineteenR"), num("idealNineteenErr")
    if not all(math.isfinite(v) for v in (r_ds, r_id, err)):
        return ""
    if r_id - r_ds > max(3 * err, 0.05):
        return (f"At $G=19$--20 Deep Sets recovers a fraction {m['dsNineteenR']} of the true members and the ideal "
                f"classifier {m['idealNineteenR']}, at a precision of {m['idealNineteenP']}: the loss at the faint end "
                "is the method's, not the limit that the \\textit{Gaia} DR3 errors set.")
    return (f"At $G=19$--20 Deep Sets recovers {m['dsNineteenR']} of the true members, the ideal classifier "
            f"{m['idealNineteenR']}: Deep Sets is at the limit the \\textit{{Gaia}} DR3 errors set.")


def _ideal_macros(cfg: Config) -> dict[str, str]:
    """The ideal classifier against Deep Sets at p >= 0.5, summed over the test clusters, in
    the G ranges of :data:`_IDEAL_RANGES` (``hasIdeal`` 1 when ``make truthbench`` wrote
    ``truthbench_ideal.csv`` for this run)."""
    path = truthbench_ideal_path(cfg)
    keys = [f"{w}{r}{q}" for r, _, _ in _IDEAL_RANGES for w, qs in (("ideal", ("P", "R", "Err")),
                                                                     ("ds", ("P", "R", "Frac"))) for q in qs]
    words = ("idealClusters", "idealCalibGap", "dsCalibGap", "dsCalibWorstP", "dsCalibWorstFrac", "idealVerdict")
    if not path.is_file():
        return {"hasIdeal": "0", **{k: "--" for k in (*keys, *words)}}
    t = pd.read_csv(_verified(path))
    t = t.loc[(t["cluster"] == "all") & (t["variable"] == "g") & ((t["threshold"] - 0.5).abs() < 1e-9)]
    out = {"hasIdeal": "1"}
    for stem, lo, hi in _IDEAL_RANGES:
        for method, w in (("ideal", "ideal"), ("deep_sets", "ds")):
            s = t.loc[(t["method"] == method) & (t["lo"] >= lo - 1e-9) & (t["hi"] <= hi + 1e-9)]
            tp, fp, fn = (float(s[c].sum()) for c in ("tp", "fp", "fn"))
            p = tp / (tp + fp) if len(s) and tp + fp > 0 else math.nan
            r = tp / (tp + fn) if len(s) and tp + fn > 0 else math.nan
            out[f"{w}{stem}P"], out[f"{w}{stem}R"] = _fmt(p, 3), _fmt(r, 3)
            if method == "ideal":
                out[f"ideal{stem}Err"] = _fmt(float(s["d_recall"].abs().max()), 3) if len(s) else "--"
                f1_ideal = 2 * p * r / (p + r) if p + r > 0 else math.nan
            else:
                f1 = 2 * p * r / (p + r) if p + r > 0 else (0.0 if math.isfinite(p + r) else math.nan)
                out[f"ds{stem}Frac"] = _fmt(f1 / f1_ideal, 2) if f1_ideal and math.isfinite(f1_ideal) else "--"
    out["idealVerdict"] = _ideal_verdict(out)
    n = int(pd.read_csv(path)["cluster"].nunique()) - 1
    out["idealClusters"] = f"{_fmt(n)} test cluster{'' if n == 1 else 's'}"
    cal_path = path.with_name("truthbench_calibration.csv")
    cal = pd.read_csv(_verified(cal_path)) if cal_path.is_file() else pd.DataFrame(columns=["method", "g_lo", "n"])
    cal = cal.loc[~pd.to_numeric(cal["g_lo"]).apply(math.isfinite) & (cal["n"] >= _IDEAL_CALIB_MIN_N)]
    for method, w in (("ideal", "ideal"), ("deep_sets", "ds")):
        c = cal.loc[cal["method"] == method]
        out[f"{w}CalibGap"] = _fmt(float(c["gap"].abs().max()), 2) if len(c) else "--"
        if w == "ds":
            worst = c.loc[c["gap"].abs().idxmax()] if len(c) else None
            out["dsCalibWorstP"] = _fmt(float(worst["mean_p"]), 2) if worst is not None else "--"
            out["dsCalibWorstFrac"] = _fmt(float(worst["frac_true"]), 2) if worst is not None else "--"
    return out


#: the G ranges of the DR4 forecast quoted in the text: (macro stem, lo, hi)
_FORECAST_RANGES = (("Faint", 18.0, math.inf), ("Nineteen", 19.0, 20.0), ("All", -math.inf, math.inf))


def _forecast_load(cfg: Config) -> dict[str, Any] | None:
    path = forecast_path(cfg)
    return json.loads(_verified(path).read_text()) if path.is_file() else None


def _forecast_range(bins: list[dict[str, Any]], lo: float, hi: float) -> dict[str, float]:
    """The forecast's per-bin counts summed over [lo, hi): recovered members, P and R per method and release."""
    out: dict[str, float] = {}
    inside = [b for b in bins if b["lo"] >= lo - 1e-9 and b["hi"] <= hi + 1e-9]
    for m in ("ds", "ideal"):
        for r in ("dr3", "dr4"):
            tp, fp, fn = (sum(float(b.get(f"{m}_{q}_{r}") or 0.0) for b in inside) for q in ("tp", "fp", "fn"))
            out[f"{m}_tp_{r}"] = tp
            out[f"{m}_p_{r}"] = tp / (tp + fp) if tp + fp > 0 else math.nan
            out[f"{m}_r_{r}"] = tp / (tp + fn) if tp + fn > 0 else math.nan
        out["n_true"] = sum(float(b.get("n_true_dr3") or 0.0) for b in inside)
    return out


def _forecast_macros(cfg: Config) -> dict[str, str]:
    """DR3 against DR4 (``make forecast``): ``hasForecast`` 1 when its report exists for this run."""
    keys = [f"forecast{w}{stem}{q}{r}" for stem, _, _ in _FORECAST_RANGES for w in ("Ds", "Ideal")
            for q in ("N", "P", "R") for r in ("Three", "Four")]
    keys += [f"forecast{w}{stem}Gain" for stem, _, _ in _FORECAST_RANGES for w in ("Ds", "Ideal")]
    keys += [f"forecast{stem}True" for stem, _, _ in _FORECAST_RANGES]
    rep = _forecast_load(cfg)
    if rep is None:
        return {"hasForecast": "0", "forecastClusters": "--", "forecastClusterNames": "--",
                **{k: "--" for k in keys}}
    out = {"hasForecast": "1"}
    n = len(rep["clusters"])
    out["forecastClusters"] = f"{_fmt(n)} test cluster{'' if n == 1 else 's'}"
    out["forecastClusterNames"] = ", ".join(c.replace("_", "~") for c in rep["clusters"])
    for stem, lo, hi in _FORECAST_RANGES:
        v = _forecast_range(rep["bins"], lo, hi)
        out[f"forecast{stem}True"] = _fmt(int(v["n_true"]))
        for m, w in (("ds", "Ds"), ("ideal", "Ideal")):
            for r, rr in (("dr3", "Three"), ("dr4", "Four")):
                out[f"forecast{w}{stem}N{rr}"] = _fmt(int(v[f"{m}_tp_{r}"]))
                out[f"forecast{w}{stem}P{rr}"] = _fmt(v[f"{m}_p_{r}"], 3)
                out[f"forecast{w}{stem}R{rr}"] = _fmt(v[f"{m}_r_{r}"], 3)
            t3, t4 = v[f"{m}_tp_dr3"], v[f"{m}_tp_dr4"]
            out[f"forecast{w}{stem}Gain"] = (f"{'+' if t4 >= t3 else '$-$'}{_pct(abs(t4 - t3) / t3)}\\,\\%"
                                            if t3 > 0 else "--")
    return out


def forecast_rows(cfg: Config) -> list[list[str]]:
    """The rows of the forecast table (``generated/forecast.tex``): per G range of the stage's
    report, the true members, and per method and release recall, precision and recovered members."""
    rep = _forecast_load(cfg)
    if rep is None:
        return []
    rows = []
    for r in rep["ranges"]:
        lo, hi = float(r["lo"]), float(r["hi"])
        g = "all" if not math.isfinite(lo) else (f"$<{hi:g}$" if lo <= 3.0 + 1e-9 else f"{lo:g}--{hi:g}")
        row = [g, _fmt(int(r["n_true_dr3"]))]
        for m in ("ds", "ideal"):     # the forecast stage's sums over the range (stages.forecast.coarse)
            row += [_fmt(r[f"{m}_recall_dr3"], 3), _fmt(r[f"{m}_recall_dr4"], 3), _fmt(r[f"{m}_precision_dr3"], 3),
                    _fmt(r[f"{m}_precision_dr4"], 3)]
        row += [_fmt(int(r["ds_tp_dr3"])), _fmt(int(r["ds_tp_dr4"]))]
        rows.append(row)
    return rows


def macros(stats: dict[str, Any], samples: dict[str, Any], cfg: Config) -> dict[str, str]:
    """Name -> LaTeX text of every generated number (names of letters only)."""
    h = _history(cfg)
    trained = cfg.membership.model == "trained"
    n_train, n_val = len(samples.get("train", [])), len(samples.get("validation", []))
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
        ("Offline, the member lists of \\citet{CantatGaudin2018} stand in for those of CG20: fewer clusters "
         "reach the thresholds of $p=1$ members." if cfg.source.name != "archive" else "")
    out = {
        "ocmVersion": __version__, "ocmSource": cfg.source.name, "ocmCrossmatch": xm,
        "statisticsFile": _tex_path(statistics_path(cfg)),
        "modelTrained": "1" if trained else "0",
        # who learned from which clusters: this run's training, or a model made elsewhere
        "abstractModel": (f"a Deep Sets network learns, from reliable members of {_fmt(n_train)} training and "
                          f"{_fmt(n_val)} validation clusters," if trained else
                          "the published Deep Sets network of vG23 (DS10\\_v02, trained by vG23 on their clusters "
                          "of real \\textit{Gaia} data, not retrained here) knows" if cfg.membership.model == "vg23"
                          else f"a Deep Sets network, {_model_name(cfg)}, knows"),
        "selectionSplit": (f"They are split 70/30 by cluster into {_fmt(n_train)} training and {_fmt(n_val)} "
                           "validation clusters." if trained else
                           "No model was trained in this run, which uses " +
                           ("the published model of vG23" if cfg.membership.model == "vg23" else "a given model") +
                           ": the training and validation clusters selected here are not used."),
        "figFourClusters": _fig4_sentence(cfg),
        **_truth_macros(cfg),
        **_realism_macros(cfg),
        **_ideal_macros(cfg),
        **_forecast_macros(cfg),
        "nTrainClusters": _fmt(n_train), "nValClusters": _fmt(n_val),
        "nTrainValClusters": _fmt(n_train + n_val),
        "nTestClusters": _fmt(stats["n_clusters"]), "selectionNote": note,
        "testClustersText": f"{_fmt(stats['n_clusters'])} test cluster{'' if stats['n_clusters'] == 1 else 's'}",
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
    trained = cfg.membership.model == "trained"
    not_trained = ("no training in this run: " + ("the published model of vG23 (DS10_v02)"
                                                  if cfg.membership.model == "vg23" else "a given model"))
    return [
        ("training + validation clusters", str(pub["n_train_validation_clusters"]),
         str(ntv) if trained else "--", sel_train if trained else not_trained),
        ("test clusters", str(pub["n_test_clusters"]), str(stats["n_clusters"]), sel_test),
        ("best epoch", str(pub["best_epoch"]), _fmt(h["best_epoch"]) if trained else "--",
         f"early stopping, patience {cfg.training.patience}; Adam step {cfg.training.learning_rate:g} "
         "(the authors' code: 1e-6, batch 32)" if trained else not_trained),
        ("clusters with 100% strict T22 recovered", str(pub["n_clusters_full_recovery"]), str(stats["n_clusters_full_recovery"]), ""),
        ("T22 members missed", pc(pub["fraction_t22_missed"]), pc(m["fraction_of_t22"]),
         "; ".join(x for x in (ref, _radial_note(cfg)) if x)),
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
        ("extra members with RUWE>1.4", pc(pub["fraction_extra_ruwe"]), pc(stats["ruwe"]["fraction_extra_ruwe_gt_max"]),
         _ruwe_note(stats, cfg)),
        _wall_time_row(cfg),
    ]


def _realism_report(cfg: Config) -> dict[str, Any] | None:
    """This run's realism report (the simulated sky against the real lists), when it exists."""
    path = realism_path(cfg)
    return json.loads(_verified(path).read_text()) if cfg.source.name == "sim" and path.is_file() else None


def _radial_note(cfg: Config) -> str:
    """Why the simulated T22-like lists miss fewer members: how far out they reach against
    the real T22 lists (the realism report's medians of sim/real)."""
    rep = _realism_report(cfg)
    summ = ((rep or {}).get("t22") or {}).get("summary") or {}
    parts = [f"{what} {summ[k]['median']:.2f}" for k, what in
             (("frac_r_gt_10pc", "beyond 10 pc"), ("frac_r_gt_20pc", "20 pc"), ("r_median_pc", "median radius"))
             if summ.get(k, {}).get("n_clusters")]
    return (f"the T22-like lists against the real T22 lists, sim/real: {', '.join(parts)} (realism)"
            if parts else "")


def _ruwe_note(stats: dict[str, Any], cfg: Config) -> str:
    """What sets the RUWE row: T22's cut, and (on the simulated sky) how many large-RUWE stars
    the sky holds against the real M67 cone."""
    cut = cfg.methods.hdbscan_ruwe_max
    words = [f"of {stats['ruwe']['n_extra_bright']} members (p>=0.1, G<18) not in T22"]
    if cfg.source.name == "sim":
        words.append(f"the T22-like lists leave out RUWE>{cut:g} as T22 did" if math.isfinite(cut)
                     else "the T22-like lists keep RUWE>1.4 ([methods] hdbscan_ruwe_max = inf), T22 did not")
        m = (_realism_report(cfg) or {}).get("m67")
        r = (m or {}).get("ruwe") or {}
        pairs = [f"{what} {100 * r[a]['frac_gt_1.4']:.1f}/{100 * r[b]['frac_gt_1.4']:.1f}%"
                 for what, a, b in (("members", "real_members_cg18", "sim_true_members_g_lt_18"),
                                    ("field", "real_field_g_lt_18", "sim_field_g_lt_18")) if a in r and b in r]
        if pairs:
            words.append(f"RUWE>1.4 at G<18 in the M67 window, real/sim: {', '.join(pairs)} (realism)")
    return "; ".join(words)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _wall_time_row(cfg: Config) -> tuple[str, str, str, str]:
    """Wall time of the last run of each stage before this one (``reports/timings.jsonl``): the
    run that made the products in this text, not the sum of every run ever recorded."""
    from ocmembers.stages.runner import read_timings
    last: dict[str, dict] = {}
    for r in read_timings(cfg):
        if r.get("stage") != "paper":
            last.pop(r.get("stage"), None)   # keeps the order of the last runs
            last[r.get("stage")] = r
    if not last:
        return ("wall time of the last run", "--", "--", "no stage times recorded")
    wall = sum(float(r.get("wall_s", 0.0)) for r in last.values())
    cpus = sorted({r.get("cpus") for r in last.values() if r.get("cpus")})
    jobs = sorted({r.get("jobs") for r in last.values() if r.get("jobs")})
    return ("wall time of the last run", "--", _duration(wall),
            f"the last run of each of {', '.join(last)}; {'/'.join(map(str, cpus))} CPUs, "
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
    stats_path = statistics_path(cfg)
    if not stats_path.is_file():
        raise OCMembersError(f"paper: {stats_path} missing; run the validate stage")
    stats = json.loads(_verified(stats_path).read_text())
    samples_path = cfg.out_dir / "samples.json"
    samples = json.loads(_verified(samples_path).read_text()) if samples_path.is_file() else {}
    mac = macros(stats, samples, cfg)
    _write(gen_dir / "statistics.tex", "% generated by ocmembers.stages.paper -- do not edit\n" +
           "".join(f"\\newcommand{{\\{k}}}{{{v}}}\n" for k, v in mac.items()))
    rows = reproduction_rows(stats, samples, cfg)
    # the table spans the page; the quantity and the note wrap within it (a plain tabular of
    # these notes ran 549 pt off the page)
    tex = ["\\begin{table*}", "\\caption{Published numbers of vG23 and ours.}\\label{tab:repro}", "\\centering",
           "\\small", "\\begin{tabularx}{\\textwidth}{@{}>{\\raggedright\\arraybackslash}p{0.27\\textwidth}ll"
           ">{\\raggedright\\arraybackslash}X@{}}",
           "\\toprule", "quantity & vG23 & this run & note \\\\", "\\midrule"]
    tex += [" & ".join(_tex_escape(c) for c in r) + " \\\\" for r in rows]
    tex += ["\\bottomrule", "\\end{tabularx}", "\\end{table*}", ""]
    _write(gen_dir / "reproduction.tex", "\n".join(tex))
    # the whole tabular: a row \input between \hline's breaks LaTeX's \noalign
    frows = forecast_rows(cfg)
    _write(gen_dir / "forecast.tex", "% generated by ocmembers.stages.paper -- do not edit\n" + (
        "\n".join(["\\begin{tabular}{lrrrrrrrrrrr}", "\\hline",
                   "$G$ & true & \\multicolumn{4}{c}{Deep Sets} & \\multicolumn{4}{c}{ideal} & "
                   "\\multicolumn{2}{c}{found} \\\\",
                   " & & $R_3$ & $R_4$ & $P_3$ & $P_4$ & $R_3$ & $R_4$ & $P_3$ & $P_4$ & DR3 & DR4 \\\\",
                   "\\hline", *(" & ".join(r) + " \\\\" for r in frows), "\\hline", "\\end{tabular}", ""])
        if frows else ""))
    md = ["| quantity | vG23 | this run | note |", "|---|---|---|---|"] + ["| " + " | ".join(r) + " |" for r in rows]
    _write(cfg.out_dir / "validation" / "reproduction.md", "\n".join(md) + "\n")
    return mac


def _copy_sources(paper_dir: Path, build: Path) -> None:
    for name in SOURCES:
        src = paper_dir / name
        if not src.is_file():
            raise OCMembersError(f"paper: {src} not found (run from the repository root, or set "
                                 "[paths] paper_dir)")
        shutil.copyfile(src, build / name)


def _copy_figures(cfg: Config, figs: Path) -> None:
    """The run's figures into the build, and only those (a figure no longer made is removed)."""
    figs.mkdir(parents=True, exist_ok=True)
    current = {f.name: f for f in figures_dir(cfg).glob("*.pdf")}
    for old in figs.glob("*.pdf"):
        if old.name not in current:
            old.unlink()
    for name, f in current.items():
        shutil.copyfile(f, figs / name)


def _publish(cfg: Config, pdf: Path) -> None:
    """Copy the PDF to ``paper/ms.pdf`` and ``paper/ms-<run>.pdf``, where that directory is writable."""
    paper_dir = Path(cfg.paths.paper_dir)
    for name in ("ms.pdf", f"ms-{run_key(cfg)}.pdf"):
        try:
            with atomic_path(paper_dir / name) as tmp:
                shutil.copyfile(pdf, tmp)
        except OSError as exc:
            print(f"paper: not copied to {paper_dir / name} ({exc.strerror or exc}); the PDF is {pdf}",
                  file=sys.stderr)
            return


def run(cfg: Config) -> Path:
    """Write the generated text, build the PDF in the run's ``paper/build/`` (unless the PDF is
    up to date) and return its path, ``<out_dir>/paper/ms.pdf``."""
    from ocmembers.sources import cache
    from ocmembers.stages.runner import record, up_to_date
    paper_dir = Path(cfg.paths.paper_dir)
    paths = paper_paths(cfg)
    build, pdf = paths["build"], paths["pdf"]
    if not (paper_dir / "ms.tex").is_file():
        raise OCMembersError(f"paper: {paper_dir / 'ms.tex'} not found (run from the repository root)")
    build.mkdir(parents=True, exist_ok=True)
    write_generated(cfg, build / "generated")
    _copy_sources(paper_dir, build)
    _copy_figures(cfg, build / "figures")
    inputs = {str(f.relative_to(build)): cache.sha256_file(f)
              for f in sorted([*(build / n for n in SOURCES), *(build / "generated").glob("*.tex"),
                               *(build / "figures").glob("*.pdf")])}
    rec = record(cfg, "paper", inputs=inputs)
    if up_to_date([pdf], rec):
        print(f"paper: {pdf} up to date", file=sys.stderr)
        _publish(cfg, pdf)
        return pdf
    latexmk = shutil.which("latexmk")
    if latexmk is None:
        raise StageNotBuiltError("paper: latexmk is not installed (Debian, as root: apt-get install "
                                 f"{' '.join(TEX_PACKAGES)}; or bash scripts/install_tex.sh); "
                                 f"the generated text is in {build / 'generated'}")
    r = subprocess.run([latexmk, "-pdf", "-bibtex", "-interaction=nonstopmode", "-halt-on-error", "ms.tex"],
                       cwd=build, capture_output=True, text=True)
    if r.returncode != 0:
        log = (build / "ms.log")
        tail = log.read_text(errors="replace").splitlines()[-25:] if log.is_file() else r.stdout.splitlines()[-25:]
        raise OCMembersError(f"paper: LaTeX failed in {build}:\n" + "\n".join(tail))
    with atomic_path(pdf) as tmp:
        shutil.copyfile(build / "ms.pdf", tmp)
    cache.write_manifest(pdf, source=cfg.source.name, query="paper ms.tex", record=rec)
    _publish(cfg, pdf)
    print(f"paper: {pdf}", file=sys.stderr)
    return pdf
