r"""What Gaia DR4 will add (``make forecast``, issue 15): the same simulated clusters seen by DR3 and by DR4.

``make forecast`` runs the ground-truth benchmark (:mod:`ocmembers.stages.truthbench`)
twice on the clusters of ``src/ocmembers/forecast.toml``, each run from scratch in its own
output directory:

* ``<OUTPUT_DIR>/forecast/dr3``: the simulated sky observed with DR3's errors;
* ``<OUTPUT_DIR>/forecast/dr4``: the same stars observed with DR4's (``dr4.toml`` on top:
  parallax and proper-motion errors scaled as PyGaia's DR4 model, reference epoch J2017.5,
  positional crossmatch; :data:`ocmembers.sim.errors.RELEASE_ERROR_FACTORS`).

Each run trains its own model on its own sky, so that DR4's gain is the whole method's,
not only that of sharper inputs to a DR3 model. The training and validation clusters are
never among the test clusters scored here.

This stage reads the two runs' ``truthbench_ideal.csv`` and writes, for the Deep Sets
members at :data:`THRESHOLD` and for the ideal classifier (the information limit each
release sets, :mod:`ocmembers.method.ideal`), per bin of true G summed over the test
clusters and per cluster:

* ``<out_dir>/forecast/forecast.csv``: the true members, the recovered members
  (true positives), precision and recall of each release, and the gain DR4 - DR3;
* ``forecast_clusters.csv``: the same per cluster, at G < 18 and G >= 18;
* ``forecast.md`` (printed) and ``forecast.json`` (with the record: both inputs' sha256,
  their releases and clusters, the code), read by the paper's section "What Gaia DR4 will add";
* ``figures/<run>/forecast.pdf`` (and ``.png``): recall, precision and recovered members against G.

It refuses inputs that are not a DR3 and a DR4 benchmark of the same clusters (their
manifests record the release and the clusters, :func:`ocmembers.stages.truthbench.run`).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError
from ocmembers.sim.metrics import precision_recall_f1
from ocmembers.sources import cache
from ocmembers.stages.plots import save_pdf_png
from ocmembers.stages.products import figures_dir, forecast_path
from ocmembers.stages.runner import product_sha, record, sweep, up_to_date

__all__ = ["RELEASES", "THRESHOLD", "COARSE_EDGES", "release_dir", "forecast_path", "forecast_table",
           "cluster_table", "coarse", "markdown", "run"]

#: the two runs, in order: (release, sub-directory of ``<OUTPUT_DIR>/forecast``)
RELEASES: tuple[str, ...] = ("dr3", "dr4")
#: the membership threshold of the comparison (the paper's tables use p >= 0.5)
THRESHOLD = 0.5
#: the per-cluster split (mag): the bright members CG20 already has, and the faint end
G_SPLIT = 18.0
_METHODS = {"deep_sets": "ds", "ideal": "ideal"}


def release_dir(cfg: Config, release: str) -> Path:
    """The products of the ``release`` run (``<OUTPUT_DIR>/forecast/<release>/sim``)."""
    return Path(cfg.paths.output_dir) / "forecast" / release / "sim"


def _rows(t: pd.DataFrame, release: str, variable: str) -> pd.DataFrame:
    """The rows of one release at :data:`THRESHOLD` for ``variable``, the two methods only."""
    need = {"cluster", "method", "threshold", "variable", "lo", "hi", "n_true", "tp", "fp", "fn"}
    missing = sorted(need - set(t.columns))
    if missing:
        raise OCMembersError(f"forecast: the {release} truthbench table lacks columns {missing}")
    s = t.loc[t["method"].isin(list(_METHODS)) & (t["variable"] == variable)
              & np.isclose(t["threshold"].astype(float), THRESHOLD)]
    if not (s["method"] == "deep_sets").any():
        raise OCMembersError(f"forecast: the {release} truthbench has no Deep Sets members at p >= {THRESHOLD:g} "
                             f"(run `make members` for that release before `make truthbench`)")
    return s


def _wide(s: pd.DataFrame, release: str, keys: list[str]) -> pd.DataFrame:
    """One row per ``keys``: ``n_true_<r>`` and, per method, ``<m>_tp|fp|fn_<r>``."""
    out = None
    for method, m in _METHODS.items():
        q = s.loc[s["method"] == method].groupby(keys, as_index=False)[["n_true", "tp", "fp", "fn"]].sum()
        q = q.rename(columns={"n_true": f"n_true_{m}", **{c: f"{m}_{c}" for c in ("tp", "fp", "fn")}})
        out = q if out is None else out.merge(q, on=keys, how="outer")
    assert out is not None
    out["n_true"] = out.pop("n_true_ds").fillna(out.pop("n_true_ideal"))
    return out.rename(columns={c: f"{c}_{release}" for c in out.columns if c not in keys})


def _derived(t: pd.DataFrame) -> pd.DataFrame:
    """Precision and recall of each method and release from the counts, and DR4's gain."""
    for m in _METHODS.values():
        for r in RELEASES:
            p, rec, _ = precision_recall_f1(t[f"{m}_tp_{r}"], t[f"{m}_fp_{r}"], t[f"{m}_fn_{r}"])
            t[f"{m}_precision_{r}"], t[f"{m}_recall_{r}"] = p, rec
        t[f"{m}_gain"] = t[f"{m}_tp_dr4"] - t[f"{m}_tp_dr3"]
        with np.errstate(divide="ignore", invalid="ignore"):
            t[f"{m}_gain_frac"] = np.where(t[f"{m}_tp_dr3"] > 0, t[f"{m}_gain"] / t[f"{m}_tp_dr3"], np.nan)
    return t


def coarse(table: pd.DataFrame, edges: tuple[float, ...]) -> pd.DataFrame:
    """:func:`forecast_table` re-binned into the G ranges ``edges`` (each a union of its bins;
    the counts summed, precision, recall and gains recomputed), and a last row ``lo = -inf,
    hi = inf``: every G."""
    counts = [c for c in table.columns if c.startswith("n_true_") or c.endswith(
        tuple(f"_{q}_{r}" for q in ("tp", "fp", "fn") for r in RELEASES))]
    rows = []
    for lo, hi in [*zip(edges[:-1], edges[1:]), (-math.inf, math.inf)]:
        inside = (table["lo"] >= lo - 1e-9) & (table["hi"] <= hi + 1e-9)
        rows.append({"lo": lo, "hi": hi, **table.loc[inside, counts].sum().to_dict()})
    return _derived(pd.DataFrame(rows))


def forecast_table(dr3: pd.DataFrame, dr4: pd.DataFrame) -> pd.DataFrame:
    """Per bin of true G, summed over the clusters: each release's true members, the counts
    (``*_tp``, recovered members; ``*_fp``, ``*_fn``), precision and recall, of Deep Sets (``ds_``) and of the ideal classifier (``ideal_``),
    at p >= :data:`THRESHOLD`, and DR4's gain in recovered members (``*_gain``, and as a
    fraction of DR3's, ``*_gain_frac``).

    ``dr3``, ``dr4``: ``truthbench.csv``-like tables (the per-cluster rows; ``cluster = all``
    rows, if present, are dropped and the sums made here).
    """
    parts = []
    for release, t in zip(RELEASES, (dr3, dr4)):
        s = _rows(t.loc[t["cluster"] != "all"], release, "g")
        parts.append(_wide(s, release, ["lo", "hi"]))
    out = parts[0].merge(parts[1], on=["lo", "hi"], how="outer").sort_values("lo", ignore_index=True)
    return _derived(out)


def cluster_table(dr3: pd.DataFrame, dr4: pd.DataFrame) -> pd.DataFrame:
    """Per cluster, at G < :data:`G_SPLIT` and G >= :data:`G_SPLIT`: the columns of
    :func:`forecast_table` (``g_range`` says which)."""
    parts = []
    for release, t in zip(RELEASES, (dr3, dr4)):
        s = _rows(t.loc[t["cluster"] != "all"], release, "g").copy()
        s["g_range"] = np.where(s["hi"] <= G_SPLIT + 1e-9, f"G<{G_SPLIT:g}", f"G>={G_SPLIT:g}")
        parts.append(_wide(s, release, ["cluster", "g_range"]))
    out = parts[0].merge(parts[1], on=["cluster", "g_range"], how="outer")
    return _derived(out.sort_values(["cluster", "g_range"], ignore_index=True))


def _fmt(v: Any, nd: int = 3) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(v) else (f"{v:.0f}" if nd == 0 else f"{v:.{nd}f}")


#: the G ranges of the Markdown table and of the paper's
COARSE_EDGES: tuple[float, ...] = (3.0, 17.0, 18.0, 19.0, 20.0, 21.0)


def markdown(table: pd.DataFrame, clusters: list[str]) -> str:
    """:func:`forecast_table` in the ranges :data:`COARSE_EDGES` (and all G), as Markdown."""
    t = coarse(table, COARSE_EDGES)
    head = ("| G | true | DS R DR3 | DS R DR4 | DS P DR3 | DS P DR4 | DS found DR3 | DS found DR4 | gain "
            "| ideal R DR3 | ideal R DR4 | ideal P DR3 | ideal P DR4 | ideal gain |")
    lines = [f"Gaia DR3 against DR4 on the same simulated stars: Deep Sets (DS, each release's own model) and the "
             f"ideal classifier, p >= {THRESHOLD:g}, summed over {len(clusters)} test clusters "
             f"({', '.join(clusters)}); found = true members recovered:", "", head, "|---" * 14 + "|"]
    for r in t.itertuples(index=False):
        g = "all" if not math.isfinite(r.lo) else f"{r.lo:g}-{r.hi:g}"
        true = _fmt(r.n_true_dr3, 0) + ("" if r.n_true_dr3 == r.n_true_dr4 else f" / {_fmt(r.n_true_dr4, 0)}")
        lines.append(f"| {g} | {true} | {_fmt(r.ds_recall_dr3)} | {_fmt(r.ds_recall_dr4)} | {_fmt(r.ds_precision_dr3)} "
                     f"| {_fmt(r.ds_precision_dr4)} | {_fmt(r.ds_tp_dr3, 0)} | {_fmt(r.ds_tp_dr4, 0)} | {r.ds_gain:+.0f} "
                     f"| {_fmt(r.ideal_recall_dr3)} | {_fmt(r.ideal_recall_dr4)} | {_fmt(r.ideal_precision_dr3)} "
                     f"| {_fmt(r.ideal_precision_dr4)} | {r.ideal_gain:+.0f} |")
    return "\n".join(lines) + "\n"


def _plot(table: pd.DataFrame, base: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = 0.5 * (table["lo"].to_numpy(float) + table["hi"].to_numpy(float))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for m, colour, label in (("ds", "C0", "Deep Sets"), ("ideal", "k", "ideal")):
        for release, style in (("dr3", "-"), ("dr4", "--")):
            kw = dict(color=colour, ls=style, marker="o", ms=3, label=f"{label}, {release.upper()}")
            axes[0].plot(x, table[f"{m}_recall_{release}"], **kw)
            axes[1].plot(x, table[f"{m}_precision_{release}"], **kw)
            axes[2].plot(x, table[f"{m}_tp_{release}"], **kw)
    axes[2].plot(x, table["n_true_dr3"], color="0.6", lw=4, alpha=0.5, label="true members")
    for ax, title in zip(axes, ("recall", "precision", "true members recovered")):
        ax.set_xlabel("true $G$ (mag)")
        ax.set_title(f"{title}, $p\\geq{THRESHOLD:g}$")
    axes[0].set_ylim(-0.02, 1.02)
    axes[1].set_ylim(-0.02, 1.02)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    return save_pdf_png(fig, base)


def _records(t: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON objects: NaN -> null, +-inf (the all-G row's bounds) kept as strings."""
    def cell(v: Any) -> Any:
        if isinstance(v, (float, np.floating)):
            return None if math.isnan(v) else (str(float(v)) if math.isinf(v) else float(v))
        return v.item() if isinstance(v, np.generic) else v
    return [{k: cell(v) for k, v in row.items()} for row in t.to_dict(orient="records")]


def _read(cfg: Config, release: str) -> tuple[pd.DataFrame, Path, dict]:
    path = release_dir(cfg, release) / "truthbench" / "truthbench_ideal.csv"
    if not path.is_file():
        raise OCMembersError(f"forecast: {path} missing; run `make forecast` (it runs `make truthbench` for "
                             f"{release.upper()} into {path.parents[2]})")
    if not cache.manifest_path(path).is_file():
        raise OCMembersError(f"forecast: {path} has no manifest (made before the benchmark recorded its release); "
                             f"run `make truthbench` for {release.upper()} again")
    manifest = cache.verify(path)
    extra = manifest.get("extra") or {}
    if extra.get("release") != release:
        raise OCMembersError(f"forecast: {path} is a benchmark of the {extra.get('release')!r} sky, not {release!r} "
                             f"(its manifest's release)")
    return pd.read_csv(path), path, extra


def run(cfg: Config) -> dict[str, Any]:
    """The DR3-against-DR4 tables and figure (module docstring) from the two benchmarks."""
    if cfg.source.name != "sim":
        raise OCMembersError(f"forecast compares two simulated skies: SOURCE=sim, got {cfg.source.name!r}")
    (t3, p3, e3), (t4, p4, e4) = (_read(cfg, r) for r in RELEASES)
    if list(e3.get("clusters", [])) != list(e4.get("clusters", [])):
        raise OCMembersError(f"forecast: the two benchmarks scored different clusters: DR3 {e3.get('clusters')} "
                             f"({p3}), DR4 {e4.get('clusters')} ({p4}); run both with the same CONFIG")
    clusters = list(e3["clusters"])
    out_json = forecast_path(cfg)
    fig_base = figures_dir(cfg) / "forecast.pdf"
    sweep(out_json.parent)
    rec = record(cfg, "forecast", inputs={f"forecast/{r}/sim/truthbench/truthbench_ideal.csv": product_sha(p)
                                           for r, p in zip(RELEASES, (p3, p4))},
                 extra_config={"threshold": THRESHOLD, "g_split": G_SPLIT})
    if up_to_date([out_json], rec) and fig_base.is_file():
        print(f"forecast: up to date ({out_json})", file=sys.stderr)
        return cache.read_json(out_json)
    table, per = forecast_table(t3, t4), cluster_table(t3, t4)
    md = markdown(table, clusters)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    with cache.atomic_path(out_json.with_name("forecast.csv")) as tmp:
        table.to_csv(tmp, index=False)
    with cache.atomic_path(out_json.with_name("forecast_clusters.csv")) as tmp:
        per.to_csv(tmp, index=False)
    with cache.atomic_path(out_json.with_name("forecast.md")) as tmp:
        tmp.write_text(md)
    _plot(table, fig_base)
    report = {"clusters": clusters, "threshold": THRESHOLD, "g_split": G_SPLIT,
              "inputs": {r: str(p) for r, p in zip(RELEASES, (p3, p4))},
              "bins": _records(table), "ranges": _records(coarse(table, COARSE_EDGES)),
              "per_cluster": _records(per)}
    cache.write_json_product(report, out_json, source="sim", query=f"forecast DR3 vs DR4, {len(clusters)} clusters",
                             record=rec)
    print(md)
    print(f"forecast: -> {out_json.parent}/forecast.{{csv,md,json}}, forecast_clusters.csv, {fig_base}",
          file=sys.stderr)
    return report
