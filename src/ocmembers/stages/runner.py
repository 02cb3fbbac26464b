"""Running a stage over many clusters: parallel, resumable, failures collected.

A failure in one cluster (bad input, too few members, a failed query) is
reported with the cluster's name and the cause, and the other clusters go on;
at the end a summary lists the failures, and ``reports/<stage>.json`` keeps
them. The run goes on to the next stage with the clusters that succeeded
(a failed cone leaves its cluster out of every later stage); only a stage
in which every cluster failed raises :class:`PipelineError`, which stops
``make``. ``ocmembers report`` (and the end of ``make all``) prints every
stage's failures again.

One up-to-date rule for every stage (:func:`up_to_date`): a cluster's
product is up to date iff it exists, verifies against its manifest (sha256),
and the manifest's ``record`` equals what the stage would record now
(:func:`record`): the digest of the configuration keys the stage reads, the
sha256 of every input, and the version of the stage's code
(:func:`code_version`, a hash of the source of the stage's modules). A stage
redoes exactly the clusters whose record differs; ``make`` runs every stage
and leaves the decision to it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ocmembers.config import Config
from ocmembers.exceptions import OCMembersError
from ocmembers.sources.executor import map_clusters

__all__ = ["PipelineError", "StageReport", "for_each_cluster", "cluster_names", "up_to_date", "record",
           "code_version", "input_shas", "product_sha", "sweep", "n_clusters"]

log = logging.getLogger(__name__)


def n_clusters(n: int, role: str = "") -> str:
    """``"1 test cluster"``, ``"264 clusters"``: a count of clusters in words (``role`` ``all`` or
    empty: no qualifier)."""
    kind = f"{role} " if role and role != "all" else ""
    return f"{n} {kind}cluster{'' if n == 1 else 's'}"


class PipelineError(OCMembersError):
    """One or more clusters failed in a stage; the others were processed."""


@dataclass
class StageReport:
    stage: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{self.stage}: {len(self.done)} done, {len(self.skipped)} up to date, "
                 f"{len(self.failed)} failed"]
        for name, why in sorted(self.failed.items()):
            lines.append(f"  FAILED {name}: {why}")
        return "\n".join(lines)


def _call(cfg: Config, name: str, func: Callable[[Config, str], bool | None]) -> tuple[str, str | None, bool]:
    try:
        did = func(cfg, name)
        return name, None, did is not False
    except OCMembersError as exc:
        return name, f"{type(exc).__name__}: {exc}", False
    except (ValueError, KeyError, OSError) as exc:  # input problems deep in a library
        return name, f"{type(exc).__name__}: {exc}", False


def for_each_cluster(cfg: Config, names: Sequence[str], func: Callable[[Config, str], bool | None],
                     desc: str, *, raise_on_failure: bool | None = None) -> StageReport:
    """Run ``func(cfg, name)`` for every cluster through the one executor
    (:func:`ocmembers.sources.executor.map_clusters`): in-process for ``JOBS=1``, on an
    embedded Dask ``LocalCluster`` of ``JOBS`` workers, or on the Dask scheduler of
    ``SCHEDULER``. ``func`` gets the configuration and the name and loads its own inputs.

    ``func`` returns ``False`` when it found the cluster up to date and did
    nothing. Errors of type :class:`OCMembersError` (and input errors) are
    collected per cluster and written to ``reports/<desc>.json``; anything
    else is a bug and propagates. ``raise_on_failure``: ``True`` raises on
    any failure, ``False`` never, ``None`` (default) when no cluster succeeded.
    """
    report = StageReport(stage=desc)
    for p in (cfg.out_dir / "reports").glob(f".{desc}.json.*.tmp"):  # this stage's report only
        p.unlink(missing_ok=True)
    for out in map_clusters(cfg, names, _call, func, desc=desc):
        # a task Dask gave up on (it killed its worker every time) fails its cluster only
        _record(report, out.value if out.lost is None else (out.name, out.lost, False))
    print(report.summary(), file=sys.stderr)
    _write_report(cfg, report)
    all_failed = bool(report.failed) and not (report.done or report.skipped)
    if report.failed and (raise_on_failure or (raise_on_failure is None and all_failed)):
        raise PipelineError(f"{desc}: {len(report.failed)} of {n_clusters(len(names))} failed: "
                            + ", ".join(sorted(report.failed)))
    return report


def _write_report(cfg: Config, report: StageReport) -> None:
    """``reports/<stage>.json``: this run's clusters replace their own entries; the entries of
    clusters other runs processed (another ``CLUSTERS`` subset) are kept."""
    from ocmembers.sources.cache import write_json
    path = cfg.out_dir / "reports" / f"{report.stage}.json"
    old: dict = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
    mine = set(report.done) | set(report.skipped) | set(report.failed)
    keep = {k: [n for n in old.get(k, []) if n not in mine] for k in ("done", "up_to_date")}
    failed = {n: why for n, why in old.get("failed", {}).items() if n not in mine} | report.failed
    write_json({"stage": report.stage, "done": sorted(keep["done"] + report.done),
                "up_to_date": sorted(keep["up_to_date"] + report.skipped),
                "failed": dict(sorted(failed.items()))}, path)


def failed_clusters(cfg: Config, stage: str) -> dict[str, str]:
    """Clusters that failed ``stage`` in its last run (``reports/<stage>.json``)."""
    path = cfg.out_dir / "reports" / f"{stage}.json"
    return json.loads(path.read_text()).get("failed", {}) if path.is_file() else {}


def print_failures(cfg: Config) -> int:
    """Print the failures of every stage's last run; return their number."""
    n = 0
    for path in sorted((cfg.out_dir / "reports").glob("*.json")):
        failed = json.loads(path.read_text()).get("failed", {})
        if failed:
            print(f"{path.stem}: {n_clusters(len(failed))} failed:", file=sys.stderr)
            for name, why in failed.items():
                print(f"  {name}: {why}", file=sys.stderr)
            n += len(failed)
    # a stage that failed as a whole (bad config, every cluster failed, a crash) is in the
    # timings, not in the per-cluster reports: its last run's exit status counts too
    last: dict[str, dict] = {}
    for rec in read_timings(cfg):
        last[rec.get("stage", "?")] = rec
    for stage, rec in last.items():
        if rec.get("status", 0) not in (0, None):
            print(f"{stage}: its last run ({rec.get('started_utc', '?')}, clusters "
                  f"{rec.get('clusters', 'all')}) exited with status {rec['status']}", file=sys.stderr)
            n += 1
    if n == 0:
        print("no cluster failed in any stage", file=sys.stderr)
    return n


def record_timing(cfg: Config, stage: str, *, wall_s: float, cpu_s: float, status: int,
                  started: str, peak_rss_mb: float | None = None) -> None:
    """Append one run of ``stage`` to ``reports/timings.jsonl`` (wall and CPU time, exit status,
    and ``peak_rss_mb``: the peak resident memory of the stage's process and its workers together,
    :class:`ocmembers.sources.resources.PeakMemory`).

    One short line per run, appended: a run killed half-way loses only its own
    line, never the earlier ones.
    """
    path = cfg.out_dir / "reports" / "timings.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {"stage": stage, "started_utc": started, "wall_s": round(wall_s, 3), "cpu_s": round(cpu_s, 3),
           "status": status, "jobs": cfg.clusters.jobs, "cpus": os.cpu_count(),
           "clusters": ",".join(cfg.clusters.names) or "all"}
    if peak_rss_mb is not None:
        rec["peak_rss_mb"] = round(float(peak_rss_mb), 1)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec) + "\n")


def read_timings(cfg: Config) -> list[dict]:
    """The runs recorded by :func:`record_timing` (unreadable lines skipped)."""
    path = cfg.out_dir / "reports" / "timings.jsonl"
    out = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def timing_summary(cfg: Config, records: list[dict] | None = None) -> dict[str, dict[str, float]]:
    """Per stage: runs, summed wall and CPU time (s) of all recorded runs (``records``, default
    :func:`read_timings`), in first-run order, and the largest ``peak_rss_mb`` of its runs
    (NaN when no run recorded one)."""
    summary: dict[str, dict[str, float]] = {}
    for r in read_timings(cfg) if records is None else records:
        s = summary.setdefault(r["stage"], {"runs": 0, "wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mb": float("nan")})
        s["runs"] += 1
        s["wall_s"] += float(r.get("wall_s", 0.0))
        s["cpu_s"] += float(r.get("cpu_s", 0.0))
        if r.get("peak_rss_mb") is not None:
            mb = float(r["peak_rss_mb"])
            s["peak_rss_mb"] = mb if math.isnan(s["peak_rss_mb"]) else max(s["peak_rss_mb"], mb)
    return summary


def print_timings(cfg: Config) -> None:
    """Print :func:`timing_summary` as a table (stderr)."""
    summary = timing_summary(cfg)
    if not summary:
        return
    def gb(mb: float) -> str:
        return f"{'-':>9s}" if math.isnan(mb) else f"{mb / 1024:9.2f}"

    print(f"{'stage':<12s} {'runs':>4s} {'wall/s':>9s} {'cpu/s':>9s} {'peak/GB':>9s}", file=sys.stderr)
    for stage, s in summary.items():
        print(f"{stage:<12s} {int(s['runs']):4d} {s['wall_s']:9.1f} {s['cpu_s']:9.1f} {gb(s['peak_rss_mb'])}",
              file=sys.stderr)
    tot_w = sum(s["wall_s"] for s in summary.values())
    tot_c = sum(s["cpu_s"] for s in summary.values())
    peaks = {k: s["peak_rss_mb"] for k, s in summary.items() if not math.isnan(s["peak_rss_mb"])}
    top = max(peaks, key=peaks.get) if peaks else None
    print(f"{'total':<12s} {'':4s} {tot_w:9.1f} {tot_c:9.1f} {gb(peaks[top]) if top else gb(float('nan'))}"
          f"  ({tot_w / 3600:.2f} h wall on {os.cpu_count()} cpus"
          + (f"; peak memory in {top}: its process and workers together)" if top else ")"),
          file=sys.stderr)


def _record(report: StageReport, out: tuple[str, str | None, bool]) -> None:
    name, err, did = out
    if err is not None:
        report.failed[name] = err
        log.debug("%s: %s", name, err)  # the summary lists every failure
    elif did:
        report.done.append(name)
    else:
        report.skipped.append(name)


def cluster_names(cfg: Config, role: str = "all", *, retry_failed_cones: bool = False) -> list[str]:
    """The clusters a stage works on.

    ``role`` is ``train``, ``validation``, ``test`` or ``all``. The selection
    written by the ``catalogues`` stage to ``samples.json`` gives each role;
    ``CLUSTERS`` (``cfg.clusters.names``) restricts the training roles to
    the named clusters and replaces ``test`` and ``all`` (so that
    ``make members CLUSTERS=NGC_2682`` evaluates M67 whatever its role).
    Clusters whose cone failed (``reports/cones.json``) are left out, with a
    note, except for the cones stage itself (``retry_failed_cones``).
    """
    names = _role_names(cfg, role)
    if retry_failed_cones:
        return names
    failed = failed_clusters(cfg, "cones")
    if failed:
        kept = [n for n in names if n not in failed]
        if len(kept) < len(names):
            print(f"({n_clusters(len(names) - len(kept), role)} without a cone left out; see "
                  f"{cfg.out_dir / 'reports' / 'cones.json'})", file=sys.stderr)
        return kept
    return names


def _role_names(cfg: Config, role: str) -> list[str]:
    wanted = list(cfg.clusters.names)
    samples = cfg.out_dir / "samples.json"
    sel = None
    if samples.is_file():
        from ocmembers.sources import cache
        if cache.manifest_path(samples).is_file():
            cache.verify(samples)  # the catalogues stage's product: verified before use
        sel = json.loads(samples.read_text())
    if role in ("train", "validation"):
        if sel is None:
            raise OCMembersError(f"no {role} clusters: run the catalogues stage to write {samples}")
        names = list(sel.get(role, []))
        return [n for n in names if n in wanted] if wanted else names
    if wanted:
        return wanted
    if sel is None:
        raise OCMembersError(f"no clusters to process: set CLUSTERS, or run the catalogues stage "
                             f"to write {samples}")
    if role == "all":
        return sorted(set(sel.get("train", [])) | set(sel.get("validation", [])) | set(sel.get("test", [])))
    return list(sel.get(role, []))


# ---------------------------------------------------------------------------
# The record of a product, and the one up-to-date rule
# ---------------------------------------------------------------------------
_PKG = Path(__file__).resolve().parents[1]
#: modules that cannot change a product (scheduling: the runner and the executor, plots beside the products, the CLI,
#: the re-export of the root package): left out of every code version
#: ``stages.products`` (paths and verified readers) is left out too: otherwise every stage
#: would depend on all the method modules whose types the readers return
_NOT_CODE = frozenset({"ocmembers", "ocmembers.stages.runner", "ocmembers.sources.executor",
                       "ocmembers.stages.plots",
                       "ocmembers.stages.verify", "ocmembers.stages.products", "ocmembers.cli"})


def _module_file(mod: str) -> Path | None:
    rel = Path(*mod.split(".")[1:]) if mod != "ocmembers" else Path()
    for p in (_PKG / rel.with_suffix(".py") if mod != "ocmembers" else None, _PKG / rel / "__init__.py"):
        if p is not None and p.is_file():
            return p
    return None


@functools.lru_cache(maxsize=None)
def _imports(mod: str) -> tuple[str, ...]:
    """The ``ocmembers`` modules that ``mod`` imports (inside functions too), and its packages."""
    path = _module_file(mod)
    if path is None:
        return ()
    here = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out: set[str] = set()
    parts = mod.split(".")
    out.update(".".join(parts[:i]) for i in range(2, len(parts)))   # the packages above it
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "ocmembers")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                base_mod = ".".join(base + ([node.module] if node.module else []))
            else:
                base_mod = node.module or ""
            if base_mod.split(".")[0] != "ocmembers":
                continue
            for a in node.names:
                sub = f"{base_mod}.{a.name}"
                out.add(sub if _module_file(sub) is not None else base_mod)
    return tuple(sorted(m for m in out if _module_file(m) is not None))


@functools.lru_cache(maxsize=None)
def code_modules(*modules: str) -> tuple[str, ...]:
    """``modules`` and every ``ocmembers`` module they import, transitively (less :data:`_NOT_CODE`)."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        m = todo.pop()
        if m in seen or m in _NOT_CODE or _module_file(m) is None:
            continue
        seen.add(m)
        todo.extend(_imports(m))
    return tuple(sorted(seen))


@functools.lru_cache(maxsize=None)
def code_version(*modules: str) -> str:
    """sha256 over the source files of :func:`code_modules` (``modules`` and what they import).

    Nothing to bump by hand: a change to any file a stage runs changes its
    code version, and a change to a file it does not import does not.
    """
    h = hashlib.sha256()
    for m in code_modules(*modules):
        path = _module_file(m)
        h.update(m.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())  # type: ignore[union-attr]
    return h.hexdigest()


def source_module(cfg: Config) -> str:
    """The module of the data source of ``cfg`` (part of the code of the raw stages)."""
    from ocmembers.sources import SOURCES
    return SOURCES.get(cfg.source.name, "ocmembers.sources:").split(":")[0]


def product_sha(path: str | os.PathLike) -> str:
    """The sha256 of a product as its manifest records it, after verifying it (raises when
    it is corrupted or has no manifest); a plain file's own sha256 otherwise."""
    from ocmembers.sources import cache
    p = Path(path)
    if cache.manifest_path(p).is_file():
        return str(cache.verify(p)["sha256"])
    return cache.sha256_file(p)


def input_shas(paths: Mapping[str, str | os.PathLike] | Iterable[str | os.PathLike],
               root: str | os.PathLike | None = None) -> dict[str, str]:
    """``{name: sha256}`` of input files (:func:`product_sha`); names are the given keys, or the
    paths relative to ``root`` (the run's output directory)."""
    if isinstance(paths, Mapping):
        items = list(paths.items())
    else:
        items = []
        for p in paths:
            p = Path(p)
            try:
                key = str(p.relative_to(root)) if root is not None else str(p)
            except ValueError:
                key = str(p)
            items.append((key, p))
    return {k: product_sha(p) for k, p in items}


def record(cfg: Config, stage: str, *, sections: Sequence[str] = (),
           exclude: tuple[tuple[str, str], ...] = (), inputs: Mapping[str, str] | None = None,
           modules: Sequence[str] = (), extra_config: Mapping[str, object] | None = None,
           code_of: Sequence[str] | None = None) -> dict:
    """What a stage records in its products' manifests, and compares to decide whether to redo them.

    ``config``: :meth:`Config.digest` of exactly ``sections`` (less ``exclude``) the stage reads,
    plus ``extra_config`` (settings outside those sections, e.g. the cluster names);
    ``inputs``: the sha256 of every input; ``code``: :func:`code_version` of the stage's module
    (``ocmembers.stages.<stage>``) and ``modules``, or of ``code_of`` alone (the raw products:
    the data source's module, so that editing a stage's orchestration refetches nothing).
    """
    config = cfg.digest(*sections, exclude=exclude) if sections else hashlib.sha256(b"{}").hexdigest()
    if extra_config:
        config = hashlib.sha256((config + json.dumps(dict(extra_config), sort_keys=True, default=list))
                                .encode()).hexdigest()
    return {"stage": stage, "config": config, "inputs": dict(sorted((inputs or {}).items())),
            "code": code_version(*(code_of if code_of is not None
                                   else (f"ocmembers.stages.{stage}", *modules)))}


def up_to_date(paths: Sequence[str | os.PathLike], rec: dict | None) -> bool:
    """The one rule: every product in ``paths`` exists, verifies against its manifest, and
    records ``rec``. A product without a matching manifest is not up to date."""
    from ocmembers.sources import cache
    return all(cache.is_current(p, rec) for p in paths)


def sweep(*dirs: str | os.PathLike) -> None:
    """Remove the temporary files a killed run of this stage left in its output ``dirs``
    (at the start of the stage, in the parent process)."""
    from ocmembers.sources.cache import sweep_orphans
    sweep_orphans(*dirs)
