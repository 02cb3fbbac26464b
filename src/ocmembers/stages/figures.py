"""Stage ``figures``: every figure of the paper, one script each in ``figures/``.

Each ``figures/fig_<name>.py`` takes its input and output paths as
arguments (the showyourwork / reproducible-paper convention), so a figure
can be remade by hand from the products in ``data/``. This stage runs them
all for the current source and writes vector PDF and PNG files under
``figures/<run>/`` (``<run>`` is the source, prefixed by the output
directory's name when it is not ``data``: ``figures/demo-sim/`` for
``make demo``). A figure whose inputs are missing is reported and the others
are still made.

Each figure's PDF has a manifest whose record holds the sha256 of the
figure's inputs (verified before the script runs: a corrupted product is
never drawn), of its script, and the code of this stage: a figure is redrawn
exactly when that record differs. ``--only NAME[,NAME]`` (``make fig-NAME``)
draws some of them. ``SOURCE_DATE_EPOCH`` is set, so a PDF holds no time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError
from ocmembers.stages.products import FIG4_CLUSTERS, cluster_role, fig1_cluster, fig4_clusters, figures_dir
from ocmembers.sources import cache
from ocmembers.stages.runner import PipelineError, product_sha, record, up_to_date

__all__ = ["run", "figure_jobs", "FIG4_CLUSTERS", "MEMBER_LABELS"]

#: the legend of the members of Fig. 1's cluster, by its role in ``samples.json``
MEMBER_LABELS = {"train": "training members", "validation": "validation members",
                 "test": "catalogue members (support sets)", None: "catalogue members"}


@dataclass
class FigureJob:
    name: str
    script: str
    args: list[str]
    inputs: list[Path]


def figure_jobs(cfg: Config) -> list[FigureJob]:
    """The figures that the products of this run allow, with their arguments."""
    out, fig = cfg.out_dir, figures_dir(cfg)
    stats = out / "validation" / "statistics.json"
    jobs = [FigureJob("fig3_venn", "fig_venn.py", [str(stats), str(fig / "fig3_venn.pdf")], [stats]),
            FigureJob("figA2_architecture", "fig_architecture.py", [str(fig / "figA2_architecture.pdf")], [])]
    if cfg.membership.model == "trained":  # a published or given model brings no training history
        jobs.insert(0, FigureJob("fig2_training", "fig_training.py",
                                 [str(out / "model" / "history.csv"), str(fig / "fig2_training.pdf")],
                                 [out / "model" / "history.csv"]))
    else:
        print(f"figures: no Fig. 2: [membership] model = {cfg.membership.model!r} was not trained in this run",
              file=sys.stderr)
    fig1 = fig1_cluster(cfg)
    if fig1:
        jobs.insert(0, FigureJob("fig1_sets", "fig_sets.py",
                                 [str(out / "sets" / fig1), str(out / "members" / f"{fig1}.parquet"),
                                  str(fig / "fig1_sets.pdf"), MEMBER_LABELS[cluster_role(cfg, fig1)]],
                                 [*(out / "sets" / fig1 / f"{k}.parquet" for k in
                                    ("members", "candidates", "non_members", "isochrone")),
                                  out / "sets" / fig1 / "params.json",
                                  # the probabilities are drawn when the cluster was evaluated (a
                                  # training cluster of the demo is not): an input only then
                                  *[m for m in (out / "members" / f"{fig1}.parquet",) if m.is_file()]]))
    fig4 = fig4_clusters(cfg)
    if fig4:
        jobs.append(FigureJob("fig4_clusters_t22", "fig_clusters_t22.py",
                              [str(out), str(fig / "fig4_clusters_t22.pdf"), *fig4],
                              [out / "members" / f"{c}.parquet" for c in fig4]
                              + [cfg.raw_dir / "catalogues" / "t22_members.parquet"]))
    field = cfg.local_dir / "gaia" / "fields" / "ra45_dec0_r0.5deg.parquet"
    m67 = cfg.local_dir / "gaia" / "cones" / "NGC_2682.csv"
    if cfg.source.name == "sim" and field.is_file() and m67.is_file():
        # the simulated sky against real DR3 (issue 4), when the real files are at hand
        jobs.append(FigureJob("fig_sim_vs_gaia", "fig_sim_vs_gaia.py", [str(field), str(m67), str(fig / "fig_sim_vs_gaia.pdf")],
                              [field, m67]))
    truth_png = out / "truthbench" / "truthbench.png"
    if cfg.source.name == "sim" and truth_png.is_file():
        print(f"figures: the ground-truth benchmark figure is {truth_png} (make truthbench)", file=sys.stderr)
    truth = out / "validation" / "truth_statistics.json"
    if cfg.source.name == "sim" and truth.is_file():
        jobs.append(FigureJob("fig3_venn_truth", "fig_venn.py",
                              [str(truth), str(fig / "fig3_venn_truth.pdf"), "this work", "truth", "venn"], [truth]))
    return jobs


def run(cfg: Config, only: list[str] | None = None) -> list[Path]:
    scripts = Path("figures")
    if not any(scripts.glob("fig_*.py")):
        # a container's mount over /work/figures of an empty directory hides the scripts
        raise OCMembersError(f"figures: no figure scripts (fig_*.py) in {scripts.resolve()}: run from the "
                             "repository root; a mount over the container's /work/figures must be the "
                             "repository's own figures/ directory (run docker from the checkout)")
    made, current, failed = [], [], {}
    jobs = figure_jobs(cfg)
    if only:
        unknown = set(only) - {j.name for j in jobs}
        if unknown:
            raise OCMembersError(f"figures: no figure {', '.join(sorted(unknown))} in this run "
                                 f"(one of {', '.join(j.name for j in jobs)})")
        jobs = [j for j in jobs if j.name in only]
    env = {**os.environ, "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "0")}
    for job in jobs:
        script = scripts / job.script
        missing = [str(p) for p in job.inputs if not p.exists()]
        pdf = next(Path(a) for a in job.args if a.endswith(".pdf"))
        if not script.is_file():
            failed[job.name] = f"no script {script} (run from the repository root)"
            continue
        if missing:
            failed[job.name] = f"inputs missing: {', '.join(missing)}"
            continue
        try:   # every input verified before it is drawn
            inputs = {str(p): product_sha(p) for p in job.inputs}
        except OCMembersError as exc:
            failed[job.name] = str(exc)
            continue
        inputs[str(script)] = cache.sha256_file(script)
        rec = record(cfg, "figures", inputs=inputs, extra_config={"args": job.args})
        if up_to_date([pdf], rec):
            current.append(pdf)
            continue
        r = subprocess.run([sys.executable, str(script), *job.args], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            failed[job.name] = (r.stderr.strip().splitlines() or ["failed"])[-1]
        else:
            cache.write_manifest(pdf, source=cfg.source.name, query=f"figure {job.name}", record=rec)
            made.append(pdf)
            print(f"figures: {job.name} -> {made[-1]}", file=sys.stderr)
    for name, why in failed.items():
        print(f"figures: FAILED {name}: {why}", file=sys.stderr)
    print(f"figures: {len(made)} done, {len(current)} up to date, {len(failed)} failed", file=sys.stderr)
    if failed:
        raise PipelineError(f"figures: {len(failed)} figure(s) failed: {', '.join(failed)}")
    if not made and not current:
        raise OCMembersError("figures: nothing to draw; run the earlier stages first")
    return made + current


def main(args, cfg: Config) -> None:
    only = [n for n in (getattr(args, "only", None) or "").replace(",", " ").split() if n]
    run(cfg, only or None)
