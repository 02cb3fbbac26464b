"""The memory a stage run holds: this process and every process it started (Dask workers), together.

``ru_maxrss`` is the peak of one process, and the peaks of Dask's worker
processes reach it only once they have exited and been waited for, after a
stage has recorded its time. :class:`PeakMemory` samples instead the summed
resident set of the whole process tree, the figure a machine's memory has to
hold (issue 14: "peak RSS of the full run at most 8 GB; name the stage that
sets the peak").
"""

from __future__ import annotations

import resource
import threading

__all__ = ["PeakMemory", "tree_rss_bytes"]


def tree_rss_bytes() -> int:
    """Resident set (bytes) of this process and all its descendants now (processes that vanish
    while being read are skipped)."""
    import psutil   # a dependency of distributed; imported here so that the CLI starts fast

    me = psutil.Process()
    total = 0
    for p in [me, *me.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return total


class PeakMemory:
    """Context manager: the peak of :func:`tree_rss_bytes` while inside, sampled every ``interval`` s.

    Attributes after exit: ``peak_mb`` (the process tree, sampled; at least
    this process's own ``ru_maxrss``, which catches a peak between samples).
    A sampling failure leaves ``peak_mb`` at the process's own peak.
    """

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = float(interval)
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_mb: float = 0.0

    def _sample(self) -> None:
        try:
            while True:
                self._peak = max(self._peak, tree_rss_bytes())
                if self._stop.wait(self.interval):
                    return
        except Exception:  # noqa: BLE001 - memory accounting must never fail a stage
            return

    def __enter__(self) -> "PeakMemory":
        self._thread = threading.Thread(target=self._sample, name="ocmembers-peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self._peak = max(self._peak, tree_rss_bytes())
        except Exception:  # noqa: BLE001
            pass
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # KiB on Linux
        self.peak_mb = max(self._peak, own) / 2 ** 20
