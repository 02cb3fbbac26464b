"""Shared fixtures: the real reference data in ../shared/data, a fresh output dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$OCMEMBERS_SHARED_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("OCMEMBERS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real catalogues, isochrones and Gaia extracts (read-only).

    CI has them at the same relative path; a run without them skips the
    tests that need them, except under CI, where their absence is a failure.
    """
    path = shared_data_dir()
    if not (path / "README.md").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"shared data not found at {path} (set OCMEMBERS_SHARED_DATA)")
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture
def tmp_cfg(tmp_path, shared_data):
    """A local-source configuration writing under a temporary directory."""
    from ocmembers import load_config
    return load_config(source="local", local_dir=str(shared_data), output_dir=str(tmp_path / "data"))


def run_sim_chain(conf: Path, data: Path, out: Path, chain: tuple[str, ...]):
    """Run the CLI stages ``chain`` on the sim source with config file ``conf``; return
    ``(stage, cfg)``: a function running one more stage with the same settings, and the config."""
    from ocmembers.cli import main
    from ocmembers.config import load_config

    base = ["--source", "sim", "--data-dir", str(data), "--output-dir", str(out), "--config", str(conf)]

    def stage(name: str, *extra: str) -> int:
        return main([name, *base, *extra])

    for s in chain:
        assert stage(s) == 0, s
    return stage, load_config(str(conf), source="sim", local_dir=str(data), output_dir=str(out))
