"""The verified cache of raw products (and atomic writes for every stage).

Every product is a file with a JSON manifest beside it
(``<file>.manifest.json``) recording where it came from (source and query
text), when, how many rows, its size and its sha256. Reading verifies the
checksum, so a truncated or altered file is detected and never used; writes
go to a temporary file in the same directory followed by an atomic rename,
so an interrupted run leaves either the old product or the new one, never
half of one.

The manifest also holds the product's ``record``: what made it (the digest
of the configuration keys its stage reads, the sha256 of every input, the
version of the stage's code; :mod:`ocmembers.stages.runner`). The product is
written first, its manifest last: the manifest is the commit point, and a
product without a matching manifest is not up to date. A refetch keeps the
last verified product until its replacement is complete: the new data is
fetched into memory, written to a temporary file, checked, and only then
renamed over the old one (:func:`sweep_orphans` removes the temporary files
of a killed run).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ocmembers.exceptions import CacheCorruptedError

__all__ = [
    "sha256_file", "atomic_path", "write_table", "read_table", "write_bytes",
    "read_bytes", "manifest_path", "read_manifest", "is_valid", "cached_table",
    "cached_bytes", "write_json", "write_json_product", "read_json", "write_manifest", "verify",
    "is_current", "sweep_orphans", "frame_digest", "json_digest",
]

log = logging.getLogger(__name__)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".manifest.json")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    An :class:`OSError` of the writer that names no file (pyarrow's "No space
    left on device") is re-raised naming ``path``, so the message says where.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes 0600 files; products are ordinary files (0666 less the umask)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise type(exc)(exc.errno, os.strerror(exc.errno), str(path)) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write JSON atomically (sorted keys, so equal content gives equal bytes)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")
    return Path(path)


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_manifest(path: str | os.PathLike, *, source: str, query: str, rows: int | None = None,
                   extra: dict[str, Any] | None = None,
                   record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the manifest of the (already written) product at ``path``: the commit point.

    ``record``: what made the product (``config``, ``inputs``, ``code``); the
    stages compare it with what they would record now
    (:func:`ocmembers.stages.runner.up_to_date`). The manifest holds the time
    it was written; the product itself never does.
    """
    from ocmembers._version import __version__
    path = Path(path)
    manifest = {
        "product": path.name,
        "source": source,
        "query": query,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "rows": rows,
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "software": f"ocmembers {__version__}",
    }
    if extra:
        manifest["extra"] = extra
    if record is not None:
        manifest["record"] = record
    write_json(manifest, manifest_path(path))
    return manifest


_write_manifest = write_manifest


def write_table(table: pd.DataFrame, path: str | os.PathLike, *, source: str, query: str,
                extra: dict[str, Any] | None = None, record: dict[str, Any] | None = None,
                manifest: bool = True) -> dict[str, Any] | None:
    """Write ``table`` as Parquet atomically, then (unless ``manifest=False``) its manifest.

    The temporary file is checked (its row count read back) before it
    replaces the old product. ``manifest=False`` leaves the commit to the
    caller (:func:`write_manifest`), for products written in several files.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
        import pyarrow.parquet as pq
        n = pq.read_metadata(tmp).num_rows
        if n != len(table):
            raise CacheCorruptedError(f"{path}: {n} rows written, {len(table)} expected")
    if not manifest:
        return None
    return write_manifest(path, source=source, query=query, rows=len(table), extra=extra, record=record)


def write_bytes(data: bytes, path: str | os.PathLike, *, source: str, query: str,
                rows: int | None = None, extra: dict[str, Any] | None = None,
                record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write raw bytes (e.g. a CMD reply) atomically with a manifest."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        if tmp.stat().st_size != len(data):
            raise CacheCorruptedError(f"{path}: short write")
    return write_manifest(path, source=source, query=query, rows=rows, extra=extra, record=record)


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode()


def write_json_product(obj: Any, path: str | os.PathLike, *, source: str, query: str,
                       record: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON product (``params.json``, ``statistics.json``...) with its manifest."""
    return write_bytes(_json_bytes(obj), path, source=source, query=query, record=record)


def read_json(path: str | os.PathLike) -> Any:
    """A JSON product, verified against its manifest."""
    verify(path)
    return json.loads(Path(path).read_text())


def json_digest(obj: Any) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=_json_default).encode()).hexdigest()


def frame_digest(table: pd.DataFrame) -> str:
    """sha256 of the content of ``table`` (columns, dtypes and values; not the index)."""
    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in table.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return h.hexdigest()


def is_current(path: str | os.PathLike, record: dict[str, Any] | None = None, *,
               query: str | None = None, source: str | None = None) -> bool:
    """True when ``path`` verifies against its manifest and the manifest records ``record``
    (and ``query``/``source``, when given)."""
    try:
        manifest = verify(path)
    except CacheCorruptedError:
        return False
    if query is not None and manifest.get("query") != query:
        return False
    if source is not None and manifest.get("source") != source:
        return False
    return record is None or manifest.get("record") == _normalise(record)


def _normalise(record: dict[str, Any]) -> Any:
    """``record`` as it reads back from JSON (tuples become lists ...)."""
    return json.loads(json.dumps(record, sort_keys=True, default=_json_default))


def sweep_orphans(*dirs: str | os.PathLike) -> list[Path]:
    """Remove the temporary files (``.<name>.XXXX.tmp``) a killed run left under ``dirs``.

    Call it at the start of a stage, in its parent process, on the stage's own
    output directories only (never while workers write there).
    """
    removed = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            continue
        for p in d.rglob(".*.tmp"):
            if p.is_file():
                try:
                    p.unlink()
                    removed.append(p)
                except OSError:
                    pass
    if removed:
        log.warning("removed %d temporary file(s) of an interrupted run (%s ...)", len(removed), removed[0])
    return removed


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    mpath = manifest_path(path)
    if not mpath.is_file():
        raise CacheCorruptedError(f"{path}: no manifest ({mpath.name}); the product is incomplete")
    try:
        return json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise CacheCorruptedError(f"{mpath}: manifest is not valid JSON ({exc})") from exc


def verify(path: str | os.PathLike) -> dict[str, Any]:
    """Check ``path`` against its manifest; return the manifest or raise."""
    path = Path(path)
    if not path.is_file():
        raise CacheCorruptedError(f"{path}: missing")
    manifest = read_manifest(path)
    size = path.stat().st_size
    if size != manifest.get("bytes"):
        raise CacheCorruptedError(
            f"{path}: {size} bytes, the manifest says {manifest.get('bytes')} (truncated or altered)")
    digest = sha256_file(path)
    if digest != manifest.get("sha256"):
        raise CacheCorruptedError(f"{path}: sha256 {digest[:12]}... does not match the manifest "
                                  f"({str(manifest.get('sha256'))[:12]}...)")
    return manifest


def is_valid(path: str | os.PathLike) -> bool:
    """True when ``path`` exists and matches its manifest."""
    try:
        verify(path)
    except CacheCorruptedError:
        return False
    return True


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a cached Parquet table after verifying it (rows included)."""
    manifest = verify(path)
    table = pd.read_parquet(path)
    if manifest.get("rows") is not None and len(table) != manifest["rows"]:
        raise CacheCorruptedError(f"{path}: {len(table)} rows, the manifest says {manifest['rows']}")
    return table


def read_bytes(path: str | os.PathLike) -> bytes:
    verify(path)
    return Path(path).read_bytes()


def _cached(path: Path, fetch: Callable[[], Any], *, source: str, query: str, refresh: bool,
            read: Callable[[Path], Any], write: Callable[..., Any],
            record: dict[str, Any] | None = None) -> Any:
    """The verified product at ``path``, or ``fetch()`` written there atomically.

    The old product (and its manifest) stay in place until the fetch has
    succeeded and its result is written: a failed refetch loses nothing.
    """
    if path.exists() and not refresh:
        try:
            manifest = verify(path)
            if (manifest.get("query") == query and manifest.get("source") == source
                    and (record is None or manifest.get("record") == _normalise(record))):
                return read(path)
            log.info("%s: made for another request, inputs or code; fetching it again", path)
        except CacheCorruptedError as exc:
            log.warning("%s; fetching it again", exc)
    data = fetch()
    write(data, path, source=source, query=query, record=record)
    return data


def cached_table(path: str | os.PathLike, fetch: Callable[[], pd.DataFrame], *, source: str,
                 query: str, refresh: bool = False, record: dict[str, Any] | None = None) -> pd.DataFrame:
    """Return the verified cached table at ``path``, fetching and caching it if needed.

    A product whose manifest records another query (the request changed) or
    another ``record`` (inputs, configuration or code), or that fails
    verification, is fetched again; the fetch result is written atomically
    before it is returned, and until then the old product stays.
    """
    return _cached(Path(path), fetch, source=source, query=query, refresh=refresh,
                   read=read_table, write=write_table, record=record)


def cached_bytes(path: str | os.PathLike, fetch: Callable[[], bytes], *, source: str,
                 query: str, refresh: bool = False, record: dict[str, Any] | None = None) -> bytes:
    """As :func:`cached_table`, for raw bytes (service replies kept verbatim)."""
    return _cached(Path(path), fetch, source=source, query=query, refresh=refresh,
                   read=lambda p: p.read_bytes(), write=write_bytes, record=record)
