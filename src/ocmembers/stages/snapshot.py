"""Stage ``snapshot``: one archive, ready for Zenodo, from which everything regenerates.

``make snapshot`` writes ``snapshots/ocmembers-<version>-<run>-<commit>.tar.gz``
holding:

* ``code/``: the repository at its commit (``git archive``; a dirty tree is
  refused unless ``--allow-dirty``, so the archive is what the commit says);
* ``data/<source>/``: every manifest of the raw products (query, time, rows,
  sha256), ``samples.json``, the model, the member lists (Parquet and ECSV
  with units), the statistics; with ``--with-raw``, the raw products themselves;
* ``figures/`` and ``paper/ms.pdf``;
* ``SNAPSHOT.md``: how to regenerate everything from it, and ``checksums.sha256``.

``ocmembers snapshot --restore FILE`` unpacks a snapshot's ``data/`` into the
output directory after checking every file against ``checksums.sha256``, so
``make all`` starts from its products instead of querying the archives
(cached raw products are verified against their manifests as usual).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from ocmembers._version import __version__
from ocmembers.sources.cache import atomic_path
from ocmembers.config import Config
from ocmembers.exceptions import CacheCorruptedError, OCMembersError
from ocmembers.stages.products import figures_dir, paper_paths, run_key

__all__ = ["run", "write_snapshot", "restore_snapshot", "main"]

KEEP = ("*.manifest.json", "samples.json", "model/*", "members/*", "validation/*", "sets/*/params.json")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise OCMembersError("snapshot: needs the git checkout of the repository (the archived code is "
                             f"`git archive HEAD`); git {' '.join(args)} failed: {exc}") from exc


def _files(cfg: Config, with_raw: bool) -> list[Path]:
    root = cfg.out_dir
    if not root.is_dir():
        raise OCMembersError(f"snapshot: {root} does not exist; run the pipeline first")
    files = {p for pat in KEEP for p in root.rglob(pat.split("/")[-1]) if p.is_file()
             and p.relative_to(root).match(pat)}
    if with_raw:
        files |= {p for p in (root / "raw").rglob("*") if p.is_file()}
    return sorted(files)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(mtime), 0o644
    tar.addfile(info, io.BytesIO(data))


def write_snapshot(cfg: Config, *, with_raw: bool = False, allow_dirty: bool = False,
                   out_dir: Path = Path("snapshots")) -> Path:
    commit = _git("rev-parse", "--short=12", "HEAD")
    if _git("status", "--porcelain", "--untracked-files=no") and not allow_dirty:
        raise OCMembersError("snapshot: the working tree has uncommitted changes; commit them "
                             "(or pass --allow-dirty) so that the archived code is the commit's")
    name = f"ocmembers-{__version__}-{run_key(cfg)}-{commit}"
    out = out_dir / f"{name}.tar.gz"
    now = time.time()
    code = subprocess.run(["git", "archive", "--format=tar", f"--prefix={name}/code/", "HEAD"],
                          capture_output=True, check=True).stdout
    sums: list[str] = []
    with atomic_path(out) as tmp, tarfile.open(tmp, "w:gz") as tar:
        with tarfile.open(fileobj=io.BytesIO(code)) as code_tar:
            for member in code_tar.getmembers():
                tar.addfile(member, code_tar.extractfile(member) if member.isfile() else None)
        entries = [(p, f"data/{cfg.source.name}/{p.relative_to(cfg.out_dir)}") for p in _files(cfg, with_raw)]
        entries += [(p, f"figures/{p.name}") for p in sorted(figures_dir(cfg).glob("*")) if p.is_file()]
        pdf = paper_paths(cfg)["pdf"]                  # the paper stage's product (a copy in paper/)
        if not pdf.is_file():
            pdf = Path(cfg.paths.paper_dir) / f"ms-{run_key(cfg)}.pdf"
        if pdf.is_file():
            entries.append((pdf, "paper/ms.pdf"))
        for path, arc in entries:
            data = path.read_bytes()
            sums.append(f"{hashlib.sha256(data).hexdigest()}  {arc}")
            _add_bytes(tar, f"{name}/{arc}", data, path.stat().st_mtime)
        _add_bytes(tar, f"{name}/checksums.sha256", ("\n".join(sums) + "\n").encode(), now)
        readme = f"""# {name}

Snapshot of ocmembers {__version__} at commit {commit}, source `{cfg.source.name}`.

- `code/`: the repository at that commit.
- `data/{cfg.source.name}/`: manifests of every raw product (query, time, rows, sha256){', the raw products' if with_raw else ''},
  the cluster selection, the model, the member lists (Parquet, ECSV), the statistics.
- `figures/`, `paper/ms.pdf`: the figures and the paper of this run.

Regenerate everything: `cd code && make all SOURCE={cfg.source.name}`; to start from this
snapshot's products instead of querying the archives:
`ocmembers snapshot --restore ../{name}.tar.gz --source {cfg.source.name}` first.
Every file is listed with its sha256 in `checksums.sha256`.
"""
        _add_bytes(tar, f"{name}/SNAPSHOT.md", readme.encode(), now)
    print(f"snapshot: {len(sums)} files -> {out}", file=sys.stderr)
    return out


def restore_snapshot(path: Path, cfg: Config) -> int:
    """Unpack a snapshot's ``data/`` into ``cfg.paths.output_dir`` after verifying checksums."""
    with tarfile.open(path, "r:gz") as tar:
        members = tar.getmembers()
        top = members[0].name.split("/")[0]
        sums_f = tar.extractfile(f"{top}/checksums.sha256")
        if sums_f is None:
            raise CacheCorruptedError(f"{path}: no checksums.sha256")
        sums = dict(reversed(line.split("  ", 1)) for line in sums_f.read().decode().splitlines() if line)
        n = 0
        for arc, digest in sums.items():
            if not arc.startswith("data/"):
                continue
            data = tar.extractfile(f"{top}/{arc}").read()
            if hashlib.sha256(data).hexdigest() != digest:
                raise CacheCorruptedError(f"{path}: {arc} does not match its checksum; nothing restored after it")
            dest = Path(cfg.paths.output_dir) / arc.removeprefix("data/")
            with atomic_path(dest) as tmp:
                tmp.write_bytes(data)
            n += 1
    print(f"snapshot: restored {n} files into {cfg.paths.output_dir}", file=sys.stderr)
    return n


def main(args: argparse.Namespace, cfg: Config) -> None:
    if args.restore:
        restore_snapshot(Path(args.restore), cfg)
    else:
        write_snapshot(cfg, with_raw=args.with_raw, allow_dirty=args.allow_dirty)


def run(cfg: Config) -> Path:
    return write_snapshot(cfg)
