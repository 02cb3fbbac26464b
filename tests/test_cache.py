import json
import os

import pandas as pd
import pytest

from ocmembers.sources import cache
from ocmembers.exceptions import CacheCorruptedError


@pytest.fixture
def table():
    return pd.DataFrame({"source_id": [1, 2, 3], "g": [10.0, 11.5, 19.2]})


def test_roundtrip_with_manifest(tmp_path, table):
    path = tmp_path / "raw" / "t.parquet"
    m = cache.write_table(table, path, source="local", query="Q")
    assert m["rows"] == 3 and m["sha256"] == cache.sha256_file(path)
    on_disk = json.loads(cache.manifest_path(path).read_text())
    assert on_disk["query"] == "Q" and on_disk["source"] == "local" and "time" in on_disk
    pd.testing.assert_frame_equal(cache.read_table(path), table)


def test_truncated_file_is_detected(tmp_path, table):
    path = tmp_path / "t.parquet"
    cache.write_table(table, path, source="s", query="q")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CacheCorruptedError, match="truncated"):
        cache.read_table(path)


def test_altered_file_is_detected(tmp_path, table):
    path = tmp_path / "t.parquet"
    cache.write_table(table, path, source="s", query="q")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))
    with pytest.raises(CacheCorruptedError, match="sha256"):
        cache.read_table(path)


def test_missing_manifest_means_incomplete(tmp_path, table):
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    with pytest.raises(CacheCorruptedError, match="no manifest"):
        cache.read_table(path)


def test_cached_table_fetches_once_and_refetches_corrupted(tmp_path, table):
    path = tmp_path / "t.parquet"
    calls = []

    def fetch():
        calls.append(1)
        return table

    cache.cached_table(path, fetch, source="s", query="q")
    cache.cached_table(path, fetch, source="s", query="q")
    assert len(calls) == 1
    path.write_bytes(path.read_bytes()[:10])  # corrupt it
    out = cache.cached_table(path, fetch, source="s", query="q")
    assert len(calls) == 2
    pd.testing.assert_frame_equal(out, table)
    assert cache.is_valid(path)
    cache.cached_table(path, fetch, source="s", query="another query")
    assert len(calls) == 3


def test_interrupted_write_leaves_previous_product(tmp_path, table):
    path = tmp_path / "t.parquet"
    cache.write_table(table, path, source="s", query="q")
    before = path.read_bytes()

    class Boom(RuntimeError):
        pass

    with pytest.raises(Boom):
        with cache.atomic_path(path) as tmp:
            tmp.write_bytes(b"half a file")
            raise Boom
    assert path.read_bytes() == before
    assert cache.is_valid(path)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_failed_fetch_writes_nothing(tmp_path):
    path = tmp_path / "t.parquet"

    def fetch():
        raise OSError("service down")

    with pytest.raises(OSError):
        cache.cached_table(path, fetch, source="s", query="q")
    assert not path.exists() and not cache.manifest_path(path).exists()
    assert os.listdir(tmp_path) == []
