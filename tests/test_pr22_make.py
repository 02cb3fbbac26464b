"""`make all SOURCE=sim` runs the pr22 stage (issue 12), which does nothing when CLUSTERS names none of
PR22's clusters; other sources leave it out of `make all`, and `make pr22` needs their catalogues."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _dry_run(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("no make")
    out = subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=REPO, capture_output=True,
                         text=True, check=True)
    return out.stdout


def test_make_all_on_the_simulated_sky_includes_pr22():
    sim = _dry_run("all", "SOURCE=sim", "PYTHON=python3")
    line = next(ln for ln in sim.splitlines() if "ocmembers.cli pr22" in ln)
    assert "--source sim" in line and "--if-any" in line
    # after the first paper: PR22's Deep Sets comparison reads the model its train stage makes
    assert sim.index("ocmembers.cli train") < sim.index("ocmembers.cli paper") < sim.index("ocmembers.cli pr22")
    for source in ("archive", "local"):
        assert "ocmembers.cli pr22" not in _dry_run("all", f"SOURCE={source}", "PYTHON=python3")


def test_make_pr22_on_the_archive_runs_the_catalogues_first():
    text = _dry_run("pr22", "SOURCE=archive", "PYTHON=python3")
    assert text.index("ocmembers.cli catalogues") < text.index("ocmembers.cli pr22")
    assert "ocmembers.cli catalogues" not in _dry_run("pr22", "SOURCE=sim", "PYTHON=python3")


def test_if_any_does_nothing_without_a_pr22_cluster(tmp_path, capsys):
    from ocmembers import cli
    args = ["pr22", "--source", "sim", "--output-dir", str(tmp_path), "--clusters", "NGC_2682"]
    assert cli.main(args + ["--if-any"]) == 0
    assert "none of CLUSTERS (NGC_2682) is among PR22's 37 clusters; nothing to do" in capsys.readouterr().out
    assert not (tmp_path / "sim" / "pr22").exists()
    assert cli.main(args) == 2                                  # an explicit `make pr22` says why it cannot
    assert "none of CLUSTERS" in capsys.readouterr().err
