"""Result tables: rows and provenance round-trip through parquet; writes are atomic."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from fakebench.errors import InputFileError
from fakebench.tables import Provenance, config_hash, read_table, write_table


def test_round_trip_rows_and_provenance(tmp_path):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    prov = Provenance.make("metrics", config={"metrics": ["sync", "blink"], "reference": tmp_path / "ref.png"},
                           models={"blink_model": "EAR"}, weights={"syncnet_v2": weights})
    rows = [{"clip": "a.mp4", "blink_count": 2, "blink_frames": [3, 40], "sync_offset_frames": None,
             "ear_mean": np.float32(0.25)},
            {"clip": "b.mp4", "blink_count": 0, "blink_frames": [], "sync_offset_frames": 4, "ear_mean": np.nan}]
    path = write_table(tmp_path / "rows.parquet", rows, prov)
    back, got = read_table(path)
    assert got == prov
    assert got.weights["syncnet_v2"] == hashlib.sha256(b"weights").hexdigest()
    assert got.fakebench_version and got.config_hash == config_hash(got.config) and len(got.config_hash) == 64
    assert back[0]["clip"] == "a.mp4" and back[0]["blink_frames"] == [3, 40] and back[0]["sync_offset_frames"] is None
    assert back[0]["ear_mean"] == pytest.approx(0.25) and back[1]["ear_mean"] is None
    assert back[1]["blink_frames"] == [] and back[1]["sync_offset_frames"] == 4
    assert list(pd.read_parquet(path)["clip"]) == ["a.mp4", "b.mp4"]  # any parquet reader sees a plain table


def test_config_hash_changes_with_the_config():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_atomic_no_temp_file_left_and_failed_write_keeps_old_table(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    write_table(path, [{"x": 1}], Provenance.make("metrics"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]
    before = path.read_bytes()

    import pyarrow.parquet as pq

    def broken(table, where, **kwargs):
        where.write(b"PAR1 half a table")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(InputFileError, match="cannot write"):
        write_table(path, [{"x": 2}], Provenance.make("metrics"))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]
    monkeypatch.undo()
    rows, prov = read_table(path)
    assert rows == [{"x": 1}] and prov.kind == "metrics"


def test_read_table_errors(tmp_path):
    with pytest.raises(InputFileError, match="no such table"):
        read_table(tmp_path / "missing.parquet")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InputFileError, match="not a readable parquet"):
        read_table(tmp_path / "bad.parquet")
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "plain.parquet")
    assert read_table(tmp_path / "plain.parquet") == ([{"x": 1}], None)
