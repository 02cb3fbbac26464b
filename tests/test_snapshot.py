import tarfile

import pandas as pd
import pytest

from ocmembers import load_config

from ocmembers.sources import cache
from ocmembers.exceptions import CacheCorruptedError
from ocmembers.stages.snapshot import restore_snapshot, write_snapshot


def _in_git_checkout() -> bool:
    import subprocess
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True).returncode == 0
    except OSError:
        return False


def test_snapshot_outside_git_is_a_clear_error(tmp_path, monkeypatch):
    from ocmembers.exceptions import OCMembersError
    monkeypatch.chdir(tmp_path)  # no repository here
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    cfg = load_config(source="sim", output_dir=str(tmp_path / "data"))
    with pytest.raises(OCMembersError, match="needs the git checkout"):
        write_snapshot(cfg, out_dir=tmp_path / "snap")


def test_snapshot_roundtrip_and_corruption(tmp_path):
    if not _in_git_checkout():  # e.g. the container, which holds the code without .git
        pytest.skip("the code is archived with git archive: needs the repository checkout")
    cfg = load_config(source="sim", output_dir=str(tmp_path / "data"))
    cfg = cfg.replace(paths={"output_dir": str(tmp_path / "data"), "figures_dir": str(tmp_path / "fig"),
                             "paper_dir": str(tmp_path / "paper")})
    cache.write_table(pd.DataFrame({"a": [1, 2]}), cfg.raw_dir / "cones" / "X.parquet", source="sim", query="q")
    cache.write_json({"train": ["X"]}, cfg.out_dir / "samples.json")
    (cfg.out_dir / "members").mkdir(parents=True)
    (cfg.out_dir / "members" / "X.ecsv").write_text("# %ECSV 1.0\n")
    out = write_snapshot(cfg, allow_dirty=True, out_dir=tmp_path / "snap")
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert any(n.endswith("/code/Makefile") for n in names)
    assert any(n.endswith("data/sim/raw/cones/X.parquet.manifest.json") for n in names)
    assert not any(n.endswith("data/sim/raw/cones/X.parquet") for n in names)  # raw data only on request
    assert any(n.endswith("/SNAPSHOT.md") for n in names)

    target = load_config(source="sim", output_dir=str(tmp_path / "restored"))
    assert restore_snapshot(out, target) == 3
    assert (tmp_path / "restored" / "sim" / "members" / "X.ecsv").read_text() == "# %ECSV 1.0\n"

    with_raw = write_snapshot(cfg, with_raw=True, allow_dirty=True, out_dir=tmp_path / "snap2")
    restored = load_config(source="sim", output_dir=str(tmp_path / "r2"))
    restore_snapshot(with_raw, restored)
    assert cache.read_table(restored.raw_dir / "cones" / "X.parquet")["a"].tolist() == [1, 2]

    # a tampered archive is refused
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(out) as src, tarfile.open(bad, "w:gz") as dst:
        for m in src.getmembers():
            f = src.extractfile(m) if m.isfile() else None
            if m.name.endswith("members/X.ecsv"):
                import io
                data = b"tampered"
                m.size = len(data)
                f = io.BytesIO(data)
            dst.addfile(m, f)
    with pytest.raises(CacheCorruptedError, match="X.ecsv"):
        restore_snapshot(bad, load_config(source="sim", output_dir=str(tmp_path / "r3")))
