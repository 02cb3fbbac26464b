"""``ocmembers report``: the clusters that failed in each stage's last run, and why; and the
wall and CPU time of every stage (``reports/timings.jsonl``)."""

from __future__ import annotations

from ocmembers.config import Config
from ocmembers.stages.runner import print_failures, print_timings

__all__ = ["run"]


def run(cfg: Config) -> int:
    n = print_failures(cfg)
    print_timings(cfg)
    return n
