"""The verified cache of raw products (and atomic writes for every stage).

Every product is a file with a JSON manifest beside it
(``<file>.manifest.json``) recording where it came from (source and query
text), when, how many rows, its size and its sha256. Reading verifies the
checksum, so a truncated or altered file is detected and never used; writes
go to a temporary file in the same directory followed by an atomic rename,
so an interrupted run leaves either the old product or the new one, never
half of one.
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
    "cached_bytes", "write_json",
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


def _write_manifest(path: Path, *, source: str, query: str, rows: int | None,
                    extra: dict[str, Any] | None) -> dict[str, Any]:
    from ocmembers._version import __version__
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
    write_json(manifest, manifest_path(path))
    return manifest


def write_table(table: pd.DataFrame, path: str | os.PathLike, *, source: str, query: str,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``table`` as Parquet atomically, then its manifest; return the manifest."""
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    return _write_manifest(path, source=source, query=query, rows=len(table), extra=extra)


def write_bytes(data: bytes, path: str | os.PathLike, *, source: str, query: str,
                rows: int | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write raw bytes (e.g. a CMD reply) atomically with a manifest."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return _write_manifest(path, source=source, query=query, rows=rows, extra=extra)


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


def _discard(path: Path, why: str) -> None:
    log.warning("%s; fetching it again", why)
    for p in (path, manifest_path(path)):
        if p.exists():
            p.unlink()


def _cached(path: Path, fetch: Callable[[], Any], *, source: str, query: str, refresh: bool,
            read: Callable[[Path], Any], write: Callable[..., Any]) -> Any:
    """The verified product at ``path``, or ``fetch()`` written there atomically."""
    if path.exists() and not refresh:
        try:
            manifest = verify(path)
            if manifest.get("query") == query and manifest.get("source") == source:
                return read(path)
            _discard(path, f"{path}: cached for another query or source")
        except CacheCorruptedError as exc:
            _discard(path, str(exc))
    data = fetch()
    write(data, path, source=source, query=query)
    return data


def cached_table(path: str | os.PathLike, fetch: Callable[[], pd.DataFrame], *, source: str,
                 query: str, refresh: bool = False) -> pd.DataFrame:
    """Return the verified cached table at ``path``, fetching and caching it if needed.

    A product whose manifest records another query (the request changed) or
    that fails verification is fetched again; the fetch result is written
    atomically before it is returned.
    """
    return _cached(Path(path), fetch, source=source, query=query, refresh=refresh,
                   read=read_table, write=write_table)


def cached_bytes(path: str | os.PathLike, fetch: Callable[[], bytes], *, source: str,
                 query: str, refresh: bool = False) -> bytes:
    """As :func:`cached_table`, for raw bytes (service replies kept verbatim)."""
    return _cached(Path(path), fetch, source=source, query=query, refresh=refresh,
                   read=lambda p: p.read_bytes(), write=write_bytes)
