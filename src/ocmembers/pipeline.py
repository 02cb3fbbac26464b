"""Running a stage over many clusters: parallel, resumable, failures collected.

A failure in one cluster (bad input, too few members, a failed query) is
reported with the cluster's name and the cause, and the other clusters go on;
at the end a summary lists the failures and :class:`PipelineError` is raised
so that ``make`` stops with a non-zero status.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .config import Config
from .exceptions import OCMembersError

__all__ = ["PipelineError", "StageReport", "for_each_cluster", "cluster_names", "is_up_to_date"]

log = logging.getLogger(__name__)


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


def _call(func: Callable[[Config, str], bool | None], cfg: Config, name: str) -> tuple[str, str | None, bool]:
    try:
        did = func(cfg, name)
        return name, None, did is not False
    except OCMembersError as exc:
        return name, f"{type(exc).__name__}: {exc}", False
    except (ValueError, KeyError, OSError) as exc:  # input problems deep in a library
        return name, f"{type(exc).__name__}: {exc}", False


def for_each_cluster(cfg: Config, names: Sequence[str], func: Callable[[Config, str], bool | None],
                     desc: str, *, raise_on_failure: bool = True) -> StageReport:
    """Run ``func(cfg, name)`` for every cluster, ``cfg.clusters.jobs`` at a time.

    ``func`` returns ``False`` when it found the cluster up to date and did
    nothing. Errors of type :class:`OCMembersError` (and input errors) are
    collected per cluster; anything else is a bug and propagates.
    """
    report = StageReport(stage=desc)
    jobs = min(cfg.clusters.jobs, max(len(names), 1))
    results: Iterable[tuple[str, str | None, bool]]
    bar = tqdm(total=len(names), desc=desc, unit="cluster", disable=None, file=sys.stderr)
    if jobs == 1:
        for name in names:
            out = _call(func, cfg, name)
            _record(report, out)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_call, func, cfg, n) for n in names]
            for fut in as_completed(futures):
                _record(report, fut.result())
                bar.update()
    bar.close()
    print(report.summary(), file=sys.stderr)
    if report.failed and raise_on_failure:
        raise PipelineError(f"{desc}: {len(report.failed)} of {len(names)} cluster(s) failed: "
                            + ", ".join(sorted(report.failed)))
    return report


def _record(report: StageReport, out: tuple[str, str | None, bool]) -> None:
    name, err, did = out
    if err is not None:
        report.failed[name] = err
        log.error("%s: %s", name, err)
    elif did:
        report.done.append(name)
    else:
        report.skipped.append(name)


def cluster_names(cfg: Config, role: str = "all") -> list[str]:
    """The clusters a stage works on.

    ``role`` is ``train``, ``validation``, ``test`` or ``all``. The selection
    written by the ``catalogues`` stage to ``samples.json`` gives each role;
    ``CLUSTERS`` (``cfg.clusters.names``) restricts the training roles to
    the named clusters and replaces ``test`` and ``all`` (so that
    ``make members CLUSTERS=NGC_2682`` evaluates M67 whatever its role).
    """
    wanted = list(cfg.clusters.names)
    samples = cfg.out_dir / "samples.json"
    sel = json.loads(samples.read_text()) if samples.is_file() else None
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


def is_up_to_date(outputs: Sequence[str | os.PathLike], inputs: Sequence[str | os.PathLike]) -> bool:
    """True when every output exists and is newer than every existing input."""
    outs = [Path(p) for p in outputs]
    if not all(p.exists() for p in outs):
        return False
    newest_in = max((Path(p).stat().st_mtime for p in inputs if Path(p).exists()), default=0.0)
    return min(p.stat().st_mtime for p in outs) >= newest_in
