"""One line, the path named, the documented exit code, nothing lost (issue 11, item 5)."""

from __future__ import annotations

import errno
import importlib.util
import os

import pytest

from ocmembers import cli

pytestmark = pytest.mark.shared_data


@pytest.fixture
def cone_args(shared_data, monkeypatch, tmp_path):
    if importlib.util.find_spec("gaia_oc_amd") is None and not os.environ.get("CI"):
        pytest.skip("the published model (gaia-oc-amd==0.2.1) is not installed")
    monkeypatch.chdir(tmp_path)                       # anything written to the cwd would show here
    return ["members", "--source", "local", "--data-dir", str(shared_data),
            "--cone", str(shared_data / "gaia" / "cones" / "NGC_2682.csv"), "--cluster", "NGC_2682",
            "--set", "membership.n_samples=3"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_a_bad_model_path_is_one_line_and_exit_2(cone_args, capsys, tmp_path):
    assert cli.main([*cone_args, "--model", str(tmp_path / "nope" / "model.pt")]) == 2
    assert "nope/model.pt" in _one_line(capsys)


def test_an_output_path_under_a_file_is_one_line_and_exit_2(cone_args, capsys, tmp_path):
    (tmp_path / "afile").write_text("mine\n")
    assert cli.main([*cone_args, "--model", "vg23", "--output", str(tmp_path / "afile" / "m67.ecsv")]) == 2
    err = _one_line(capsys)
    assert "afile" in err and "a file is in the way" in err
    assert (tmp_path / "afile").read_text() == "mine\n"


def test_a_full_disk_is_exit_1_naming_the_file_and_keeps_the_old_product(cone_args, capsys, tmp_path,
                                                                          monkeypatch):
    out = tmp_path / "out" / "m67.ecsv"
    out.parent.mkdir()
    out.write_text("an earlier member list\n")
    from ocmembers.sources import cache

    def full(fd):                                     # what pyarrow raises: an errno, no file name
        raise OSError(errno.ENOSPC, "Error writing bytes to file")
    monkeypatch.setattr(cache.os, "fsync", full)
    assert cli.main([*cone_args, "--model", "vg23", "--output", str(out)]) == 1
    err = _one_line(capsys)
    assert "No space left on device" in err and str(out.parent) in err
    assert out.read_text() == "an earlier member list\n"
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_members_cone_with_output_writes_nothing_into_the_cwd(cone_args, capsys, tmp_path):
    out = tmp_path / "elsewhere" / "m67.ecsv"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    os.chdir(cwd)
    assert cli.main([*cone_args, "--model", "vg23", "--output", str(out)]) == 0
    assert out.is_file()
    assert list(cwd.iterdir()) == []                  # no data/<source>/reports/ here


def test_a_cluster_name_with_a_path_is_refused_before_any_work(cone_args, capsys, tmp_path):
    args = [a if a != "NGC_2682" else "../../x" for a in cone_args]
    assert cli.main([*args, "--model", "vg23"]) == 2
    assert "'../../x' is not a cluster name" in _one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_cone_help_and_error_say_how_to_run_offline(shared_data, tmp_path, capsys, monkeypatch):
    """`--cone` with the default archive source fetches the catalogues: --help says so and names
    the offline routes, and so does the error when the catalogue cannot be read."""
    with pytest.raises(SystemExit):
        cli.main(["members", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the default 'archive' fetches them (network)" in text and "--source local --data-dir" in text
    if importlib.util.find_spec("gaia_oc_amd") is None and not os.environ.get("CI"):
        pytest.skip("the published model (gaia-oc-amd==0.2.1) is not installed")
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    status = cli.main(["members", "--source", "local", "--data-dir", str(empty), "--cone",
                       str(shared_data / "gaia" / "cones" / "NGC_2682.csv"), "--cluster", "NGC_2682",
                       "--model", "vg23"])
    err = _one_line(capsys)
    assert status == 2 and "--source local --data-dir DIR" in err and "--cluster-params" in err
