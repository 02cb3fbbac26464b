"""The memory readings the benchmarks print (Linux ``/proc/self``), in one place.

A row's peak is the resident high-water mark (``VmHWM``) since :func:`reset_peak`; it falls
back to ``ru_maxrss`` (the process's peak since it started) where ``/proc`` is not there.
"""

from __future__ import annotations

import resource
from pathlib import Path

__all__ = ["reset_peak", "peak_mb", "rss_mb"]


def _status_mb(field: str) -> float | None:
    """A ``kB`` line of ``/proc/self/status`` in MB, or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak() -> None:
    """Start a new high-water mark (writing 5 to ``clear_refs`` resets ``VmHWM``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mb() -> float:
    """The resident peak (MB) since :func:`reset_peak`."""
    mb = _status_mb("VmHWM")
    return mb if mb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """The resident set now (MB): what a row's peak stands on; NaN without ``/proc``."""
    mb = _status_mb("VmRSS")
    return mb if mb is not None else float("nan")
