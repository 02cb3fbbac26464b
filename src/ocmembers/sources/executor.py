"""The one executor for per-cluster work: in-process, an embedded Dask ``LocalCluster``, or a
remote Dask scheduler.

- ``JOBS=1`` (``[clusters] jobs``) and no scheduler: the tasks run one after the other in this
  process; no Dask cluster is started.
- ``JOBS=N>1``: an embedded ``distributed.LocalCluster`` of ``N`` worker processes with one
  thread each (started once per process and reused by the later stages of the same run); its
  dashboard address is printed.
- ``SCHEDULER=tcp://host:8786`` (``[clusters] scheduler``, ``--scheduler``): the same tasks on an
  existing Dask cluster (``distributed.Client(address)``); ``JOBS`` is then ignored, the
  cluster's workers decide the parallelism. An unreachable scheduler is one
  :class:`SchedulerError` naming the address (after :data:`CONNECT_TIMEOUT_S`).

A task is ``func(cfg, name, *args)``: it gets the cluster's name and the (picklable, frozen)
configuration and loads its own inputs inside the task, so the client ships names, never
tables. :func:`map_clusters` submits every task with ``client.map`` and yields the results
as they complete (``as_completed``), with a progress bar in the client's terminal. A worker
that dies mid-task is replaced and its task rescheduled by Dask (up to
``distributed.scheduler.allowed-failures`` times, 3 by default); a task that kills every
worker it lands on comes back as :class:`Outcome` ``lost``. The products a task writes are
written atomically, so a killed task leaves them whole or absent.

Torch threads: inside a task, :func:`worker_threads` is the CPUs of the worker's machine
shared out among the task slots (worker threads) of that machine, so that N workers on one
machine do not oversubscribe it (``stages.membership_run.torch_threads`` uses it). Nested
use (a task that itself calls :func:`map_clusters`) runs in-process.

The module never changes a product: it is left out of every code version
(``stages.runner._NOT_CODE``).
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ocmembers.config import Config
from ocmembers.exceptions import ConfigError

__all__ = ["Outcome", "SchedulerError", "CONNECT_TIMEOUT_S", "map_clusters", "worker_threads",
           "in_task", "in_process", "shutdown"]

#: seconds to wait for a remote scheduler before giving up
CONNECT_TIMEOUT_S = 10.0


class SchedulerError(ConfigError):
    """The Dask scheduler of ``SCHEDULER`` cannot be reached (or the address is malformed)."""


@dataclass(frozen=True)
class Outcome:
    """The result of one cluster's task: ``value`` (what ``func`` returned), or ``lost`` (why
    Dask gave the task up: it killed its workers ``allowed-failures`` times)."""

    name: str
    value: Any = None
    lost: str | None = None


#: set in a worker process while a task of :func:`map_clusters` runs there
_TASK = threading.local()
#: embedded LocalClusters of this process: n_workers -> (cluster, client)
_LOCAL: dict[int, tuple[Any, Any]] = {}
_LOCK = threading.Lock()


def in_task() -> bool:
    """True inside a task of :func:`map_clusters` that runs on a Dask worker."""
    return bool(getattr(_TASK, "active", False))


def worker_threads() -> int | None:
    """Inside a task on a Dask worker: the CPUs of its machine divided by the task slots of
    that machine (>= 1); ``None`` elsewhere (in-process runs keep torch's default)."""
    return getattr(_TASK, "threads", None) if in_task() else None


def _run_task(func: Callable[..., Any], cfg: Config, name: str, threads: dict[str, int],
              args: tuple) -> Any:
    """The task on the worker: note the share of torch threads, then ``func(cfg, name, *args)``."""
    from distributed import get_worker
    try:
        worker = get_worker()
        address, host = worker.address, worker.ip
    except ValueError:  # not on a worker (cannot happen through map_clusters)
        address, host = "", ""
    share = threads.get(address)
    if share is None:  # a worker that joined after the batch was submitted
        slots = threads.get(f"host:{host}")
        share = max(1, (os.cpu_count() or 1) // slots) if slots else max(1, os.cpu_count() or 1)
    _TASK.active, _TASK.threads = True, share
    try:
        return func(cfg, name, *args)
    finally:
        _TASK.active, _TASK.threads = False, None


def _dashboard_address() -> str:
    """``:8787`` (Dask's default) when free, else any free port (no warning from distributed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", 8787))
        except OSError:
            return ":0"
    return ":8787"


def _local_client(n_workers: int) -> Any:
    with _LOCK:
        if n_workers in _LOCAL:
            cluster, client = _LOCAL[n_workers]
            if client.status == "running":
                return client
            _close(n_workers)
        import dask
        from distributed import Client, LocalCluster
        # The nanny's default MALLOC_TRIM_THRESHOLD_=65536 makes glibc give memory back on
        # every free: our tasks allocate large numpy arrays again and again, and ran 2x slower
        # (NGC 752 simulated: 2.03 s in a worker with it, 1.00 s without; 40 cones with JOBS=2:
        # ratio 1.06 with it). Memory stays bounded by the task (one cluster at a time).
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=_dashboard_address())
        client = Client(cluster)
        _LOCAL[n_workers] = (cluster, client)
        print(f"Dask LocalCluster: {n_workers} worker(s), dashboard {client.dashboard_link}",
              file=sys.stderr)
        return client


def _close(n_workers: int) -> None:
    cluster, client = _LOCAL.pop(n_workers)
    for thing in (client, cluster):
        try:
            thing.close()
        except Exception:  # noqa: BLE001 - closing at exit, nothing left to report to
            pass


def shutdown() -> None:
    """Close the embedded LocalClusters of this process (also at exit)."""
    with _LOCK:
        for n in list(_LOCAL):
            _close(n)


atexit.register(shutdown)


def _remote_client(address: str) -> Any:
    from distributed import Client
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise SchedulerError(f"cannot reach the Dask scheduler {address} (SCHEDULER / "
                             f"[clusters] scheduler) within {CONNECT_TIMEOUT_S:g} s: "
                             f"{type(exc).__name__}: {exc}") from None
    print(f"Dask scheduler {address}: {len(client.scheduler_info().get('workers', {}))} "
          f"worker(s), dashboard {client.dashboard_link}", file=sys.stderr)
    return client


def _thread_shares(client: Any) -> dict[str, int]:
    """``{worker address: torch threads}`` (and ``host:<ip>``: task slots of that machine)."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    slots: Counter[str] = Counter()
    for info in workers.values():
        slots[info.get("host", "")] += int(info.get("nthreads", 1) or 1)
    cpus = client.run(os.cpu_count) if workers else {}
    shares: dict[str, int] = {f"host:{h}": n for h, n in slots.items()}
    for address, info in workers.items():
        n_cpu = cpus.get(address) or 1
        shares[address] = max(1, n_cpu // max(1, slots[info.get("host", "")]))
    return shares


def in_process(cfg: Config, n_tasks: int) -> bool:
    """Whether :func:`map_clusters` would run ``n_tasks`` tasks in this process (``JOBS=1`` and
    no scheduler, fewer than two tasks without a scheduler, or inside a task)."""
    if in_task() or n_tasks == 0:
        return True
    return not cfg.clusters.scheduler.strip() and min(int(cfg.clusters.jobs), n_tasks) <= 1


def map_clusters(cfg: Config, names: Sequence[str], func: Callable[..., Any], *args: Any,
                 desc: str = "clusters", progress: bool = True) -> Iterator[Outcome]:
    """``func(cfg, name, *args)`` for every name, as :class:`Outcome` in completion order.

    ``func`` must be importable (a module-level function) and return something picklable;
    it should catch the failures it reports itself. An exception it raises is a bug and
    propagates here (the remaining tasks are cancelled).
    """
    from tqdm.auto import tqdm

    names = list(names)
    address = cfg.clusters.scheduler.strip()
    jobs = min(int(cfg.clusters.jobs), max(len(names), 1))
    bar = tqdm(total=len(names), desc=desc, unit="cluster", disable=None if progress else True,
               file=sys.stderr)
    try:
        if in_process(cfg, len(names)):
            for name in names:
                yield Outcome(name, func(cfg, name, *args))
                bar.update()
            return
        client = _remote_client(address) if address else _local_client(jobs)
        try:
            yield from _submit(client, cfg, names, func, args, bar)
        finally:
            if address:
                client.close()
    finally:
        bar.close()


def _submit(client: Any, cfg: Config, names: list[str], func: Callable[..., Any], args: tuple,
            bar: Any) -> Iterator[Outcome]:
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    shares = _thread_shares(client)
    # pure=False: a rerun of the same cluster is a new task (its inputs may have changed on disk)
    futures = client.map(_run_task, [func] * len(names), [cfg] * len(names), names,
                         [shares] * len(names), [args] * len(names), pure=False,
                         key=[f"{desc_key(func)}-{n}-{os.urandom(4).hex()}" for n in names])
    by_key = {f.key: n for f, n in zip(futures, names)}
    try:
        for fut in as_completed(futures, loop=client.loop):
            name = by_key[fut.key]
            try:
                yield Outcome(name, fut.result())
            except KilledWorker as exc:
                yield Outcome(name, lost=f"KilledWorker: the task killed its worker every time "
                                         f"it ran ({exc})")
            finally:
                fut.release()
            bar.update()
    finally:
        for fut in futures:
            if not fut.done():
                fut.cancel()


def desc_key(func: Callable[..., Any]) -> str:
    """A readable task-key prefix (the dashboard shows it): ``module.function``."""
    return f"{getattr(func, '__module__', 'task')}.{getattr(func, '__qualname__', 'func')}".replace(
        "ocmembers.", "")
