"""``ocmembers report``: the clusters that failed in each stage's last run, and why; and the
wall and CPU time of every stage (``reports/timings.jsonl``)."""

from __future__ import annotations

from ocmembers.config import Config
from ocmembers.stages.runner import PipelineError, print_failures, print_timings

__all__ = ["run"]


def run(cfg: Config) -> int:
    """Print the failures and the timings; exit status 1 (:class:`PipelineError`) when any
    cluster or stage failed in its last run, so that ``make all`` fails with it."""
    n = print_failures(cfg)
    print_timings(cfg)
    if n:
        raise PipelineError(f"{n} failure(s) in the last runs of the stages (listed above)")
    return n
