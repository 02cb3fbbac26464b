"""Stage ``verify``: re-hash every product of a run against its manifest.

``ocmembers verify`` (``make verify``) walks ``<output_dir>/<source>/`` and the
run's figures, checks every product that has a manifest (size and sha256,
:func:`ocmembers.sources.cache.verify`) and counts the product files that have
none (a product without its manifest was never committed). One line per
stage::

    sets: 35 ok, 1 corrupted, 0 missing manifest

then one line per bad file. Exit status 1 when anything is corrupted or
lacks its manifest. It reads the files only; nothing is rebuilt (the stage
that owns a bad product rebuilds it on its next run).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ocmembers.config import Config
from ocmembers.exceptions import CacheCorruptedError, OCMembersError
from ocmembers.sources import cache
from ocmembers.stages.products import figures_dir

__all__ = ["run", "STAGE_DIRS", "scan"]

#: the product directories of each stage (relative to the run's output directory)
STAGE_DIRS: dict[str, tuple[str, ...]] = {
    "catalogues": ("raw/catalogues", "samples.json"),
    "cones": ("raw/cones", "raw/sim"),
    "crossmatch": ("raw/crossmatch",),
    "isochrones": ("isochrones", "raw/isochrones"),
    "sets": ("sets",),
    "train": ("model",),
    "members": ("members",),
    # the lists and the catalogue's manifest (the HATS files are hashed in members.json)
    "catalogue_members": ("catalogue_members/clusters", "catalogue_members/members.json"),
    "validate": ("validation",),
    "paper": ("paper/ms.pdf",),
}
#: files a stage writes beside its products that are not products (no manifest expected)
_NOT_PRODUCTS = ("*.manifest.json", "*.meta.json", "*.png", "checkpoint.pt", ".*", "reproduction.md")
_PRODUCT_SUFFIXES = (".parquet", ".ecsv", ".json", ".pt", ".csv", ".dat", ".pdf")


def _files(root: Path, entry: str) -> list[Path]:
    p = root / entry
    if p.is_file():
        return [p]
    if not p.is_dir():
        return []
    return sorted(f for f in p.rglob("*") if f.is_file())


def _is_product(path: Path) -> bool:
    if any(path.match(pat) for pat in _NOT_PRODUCTS):
        return False
    return path.name.endswith(_PRODUCT_SUFFIXES)


def scan(cfg: Config) -> dict[str, dict[str, list[str]]]:
    """Per stage: ``ok``, ``corrupted`` (with the reason) and ``missing`` (no manifest) files."""
    groups = {stage: [f for e in entries for f in _files(cfg.out_dir, e)] for stage, entries in STAGE_DIRS.items()}
    groups["figures"] = [f for f in _files(figures_dir(cfg), ".") if f.suffix == ".pdf"]
    result: dict[str, dict[str, list[str]]] = {}
    for stage, files in groups.items():
        r: dict[str, list[str]] = {"ok": [], "corrupted": [], "missing": []}
        for f in files:
            if not _is_product(f):
                continue
            if not cache.manifest_path(f).is_file():
                r["missing"].append(str(f))
                continue
            try:
                cache.verify(f)
                r["ok"].append(str(f))
            except CacheCorruptedError as exc:
                r["corrupted"].append(f"{f}: {exc}")
        result[stage] = r
    return result


def run(cfg: Config) -> dict[str, dict[str, list[str]]]:
    result = scan(cfg)
    bad = 0
    for stage, r in result.items():
        print(f"{stage}: {len(r['ok'])} ok, {len(r['corrupted'])} corrupted, "
              f"{len(r['missing'])} missing manifest", file=sys.stderr)
        for line in r["corrupted"]:
            print(f"  CORRUPTED {line}", file=sys.stderr)
        for line in r["missing"]:
            print(f"  NO MANIFEST {line}", file=sys.stderr)
        bad += len(r["corrupted"]) + len(r["missing"])
    if bad:
        raise OCMembersError(f"verify: {bad} product(s) corrupted or without a manifest in {cfg.out_dir}; "
                             "rerun their stages (make <stage>) to rebuild them")
    if not any(r["ok"] for r in result.values()):
        print(f"verify: no product under {cfg.out_dir}", file=sys.stderr)
    return result
