"""``ocmembers report``: the clusters that failed in each stage's last run, and why."""

from __future__ import annotations

from .config import Config
from .pipeline import print_failures

__all__ = ["run"]


def run(cfg: Config) -> int:
    return print_failures(cfg)
