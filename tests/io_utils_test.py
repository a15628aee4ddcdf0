"""Atomic writes leave either the old artifact or the new one, never a half."""

import json
import os

import numpy as np
import pytest

from keras_rec.io_utils import atomic_directory
from keras_rec.io_utils import atomic_write
from keras_rec.io_utils import write_json_atomic


def test_atomic_write_writes_text_and_binary(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    with atomic_write(path) as f:
        f.write("héllo")
    assert path.read_text(encoding="utf-8") == "héllo"
    with atomic_write(tmp_path / "b.bin", "wb") as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.bin", "sub"]


def test_atomic_write_failure_keeps_old_content_and_no_temp_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path) as f:
            f.write("new, half written")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_atomic_write_failure_without_old_file_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "a.txt") as f:
            f.write("x")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_atomic_write_rejects_bad_mode(tmp_path):
    with pytest.raises(ValueError, match="mode='a'"):
        with atomic_write(tmp_path / "a.txt", mode="a"):
            pass
    assert os.listdir(tmp_path) == []


def test_write_json_atomic_handles_numpy_values(tmp_path):
    path = tmp_path / "m.json"
    write_json_atomic(path, {"recall": np.float32(0.5), "ks": np.array([1, 5])})
    assert json.loads(path.read_text()) == {"ks": [1, 5], "recall": 0.5}
    with pytest.raises(TypeError, match="object"):
        write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ks": [1, 5], "recall": 0.5}
    assert os.listdir(tmp_path) == ["m.json"]


def test_atomic_directory_creates_directory(tmp_path):
    target = tmp_path / "index"
    with atomic_directory(target) as tmp:
        assert not target.exists()
        with open(os.path.join(tmp, "data.bin"), "wb") as f:
            f.write(b"abc")
    assert (target / "data.bin").read_bytes() == b"abc"
    assert os.listdir(tmp_path) == ["index"]


def test_atomic_directory_failure_keeps_old_directory_and_no_temp(tmp_path):
    target = tmp_path / "index"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target, overwrite=True) as tmp:
            with open(os.path.join(tmp, "new.txt"), "w") as f:
                f.write("new")
            raise RuntimeError("boom")
    assert os.listdir(target) == ["old.txt"]
    assert (target / "old.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["index"]


def test_atomic_directory_refuses_existing_without_overwrite(tmp_path):
    target = tmp_path / "index"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(FileExistsError, match="index"):
        with atomic_directory(target):
            pytest.fail("the block must not run")
    assert os.listdir(target) == ["old.txt"]
    assert os.listdir(tmp_path) == ["index"]


def test_atomic_directory_overwrite_replaces_whole_directory(tmp_path):
    target = tmp_path / "index"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target, overwrite=True) as tmp:
        with open(os.path.join(tmp, "new.txt"), "w") as f:
            f.write("new")
    assert os.listdir(target) == ["new.txt"]
    assert (target / "new.txt").read_text() == "new"
    assert os.listdir(tmp_path) == ["index"]
