"""Behaviour shared by every backend: ids, validation, exclusion, save / load."""

import json
import os

import numpy as np
import pytest

from keras_rec import io_utils
from keras_rec.retrieval import AnnoyItemIndex
from keras_rec.retrieval import BruteForceItemIndex
from keras_rec.retrieval import HnswItemIndex
from keras_rec.retrieval import ItemIndex
from keras_rec.retrieval import base

BACKENDS = {
    "brute_force": lambda metric="angular": BruteForceItemIndex(metric),
    "annoy": lambda metric="angular": AnnoyItemIndex(
        metric, n_trees=20, search_k=2_000, seed=0
    ),
    "hnsw": lambda metric="angular": HnswItemIndex(metric, seed=0),
}
BACKEND_NAMES = list(BACKENDS)


def _random_items(num=400, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    items = rng.normal(size=(num, dim)).astype(np.float32)
    users = rng.normal(size=(30, dim)).astype(np.float32)
    return items, users


@pytest.fixture(params=BACKEND_NAMES)
def built(request):
    """(backend name, index over 400 random 8-d items with ids 1000.., users)."""
    items, users = _random_items()
    index = BACKENDS[request.param]().build(
        np.arange(400) + 1_000,
        items,
        metadata={"model_name": "dssm", "model_version": 3},
    )
    return request.param, index, users


# ----------------------------------------------------------------------
# Exclusion.


def test_exclusion_removes_items_and_keeps_k(built):
    _, index, users = built
    top, _ = index.query(users, 10)
    # Exclude each user's own top 10 plus ids unknown to the index.
    exclude = [set(row.tolist()) | {-5, 99_999} for row in top]
    ids, scores = index.query(users, 10, exclude=exclude)
    assert ids.shape == (30, 10)
    for row, excluded in zip(ids, exclude):
        assert not set(row.tolist()) & excluded
        assert len(set(row.tolist())) == 10
        assert (row >= 1_000).all()
    assert np.isfinite(scores).all()
    # The next-best items: every new score is <= the worst of the old top 10.
    old_top, old_scores = index.query(users, 10)
    assert (scores.max(axis=1) <= old_scores.min(axis=1) + 1e-5).all()
    # Rows without exclusions are untouched by the other rows' exclusions.
    mixed = [None] + exclude[1:]
    ids_mixed, _ = index.query(users, 10, exclude=mixed)
    np.testing.assert_array_equal(ids_mixed[0], old_top[0])


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_exclusion_leaving_fewer_than_k_items_pads(name):
    items = np.eye(5, dtype=np.float32) + 0.1
    index = BACKENDS[name]("dot").build([10, 11, 12, 13, 14], items)
    ids, scores = index.query(items[:1], 4, exclude=[[10, 11, 12]])
    assert sorted(ids[0, :2].tolist()) == [13, 14]
    assert ids[0, 2:].tolist() == [-1, -1]
    assert np.isneginf(scores[0, 2:]).all() and np.isfinite(scores[0, :2]).all()
    # String ids pad with "".
    index = BACKENDS[name]("dot").build(list("abcde"), items)
    ids, _ = index.query(items[:1], 4, exclude=[{"a", "b", "c"}])
    assert sorted(ids[0, :2].tolist()) == ["d", "e"] and ids[0, 2:].tolist() == ["", ""]


def test_exclude_argument_errors(built):
    _, index, users = built
    with pytest.raises(ValueError, match=r"one entry per query \(30\). Received: len"):
        index.query(users, 5, exclude=[[1_000]])
    with pytest.raises(ValueError, match="`exclude` must be a sequence"):
        index.query(users, 5, exclude=1_000)
    with pytest.raises(ValueError, match="must be int ids"):
        index.query(users[:1], 5, exclude=[["a"]])


# ----------------------------------------------------------------------
# Argument validation.


def test_k_out_of_range_names_k_and_num_items(built):
    _, index, users = built
    with pytest.raises(
        ValueError,
        match=r"`k` must be between 1 and the number of items \(400\). Received: k=401",
    ):
        index.query(users, 401)
    with pytest.raises(ValueError, match="Received: k=0"):
        index.query(users, 0)
    with pytest.raises(ValueError, match="`k` must be an integer. Received: k=2.5"):
        index.query(users, 2.5)


def test_query_embedding_errors(built):
    _, index, users = built
    with pytest.raises(ValueError, match=r"dimension \(8\).*shape \(30, 9\)"):
        index.query(np.zeros((30, 9)), 5)
    bad = users.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"contains NaN in row 7"):
        index.query(bad, 5)
    with pytest.raises(ValueError, match=r"reshape\(1, -1\)"):
        index.query(users[0], 5)
    zero = users.copy()
    zero[2] = 0.0
    with pytest.raises(ValueError, match=r"row 2 is all zeros"):
        index.query(zero, 5)


def test_empty_query_batch(built):
    _, index, _ = built
    ids, scores = index.query(np.zeros((0, 8), dtype=np.float32), 5)
    assert ids.shape == (0, 5) and scores.shape == (0, 5)


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_build_errors(name):
    items = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"`item_ids` must be unique.*e\.g\. 2"):
        BACKENDS[name]().build([1, 2, 2], items)
    with pytest.raises(ValueError, match=r"may not contain -1"):
        BACKENDS[name]().build([1, -1, 2], items)
    with pytest.raises(ValueError, match=r"one row per item id \(2\)"):
        BACKENDS[name]().build([1, 2], items)
    bad = items.copy()
    bad[1, 0] = np.inf
    with pytest.raises(ValueError, match="contains infinite values in row 1"):
        BACKENDS[name]().build([1, 2, 3], bad)
    with pytest.raises(ValueError, match="integers or strings"):
        BACKENDS[name]().build([1.5, 2.5, 3.5], items)
    with pytest.raises(ValueError, match=r"reserved keys \['dimension'\]"):
        BACKENDS[name]().build([1, 2, 3], items, metadata={"dimension": 3})
    with pytest.raises(RuntimeError, match="call `build"):
        BACKENDS[name]().query(items, 1)
    # A failed rebuild keeps the earlier index.
    index = BACKENDS[name]().build([1, 2, 3], np.eye(3, 4, dtype=np.float32))
    with pytest.raises(ValueError, match="must be unique"):
        index.build([7, 7, 8], items, metric="dot")
    assert index.item_ids.tolist() == [1, 2, 3] and index.metric == "angular"
    assert index.query(np.eye(1, 4, dtype=np.float32), 1)[0].tolist() == [[1]]


# ----------------------------------------------------------------------
# String ids.


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_string_item_ids(name, tmp_path):
    items, users = _random_items(num=50, seed=1)
    item_ids = [f"item-{i}" for i in range(50)]
    index = BACKENDS[name]("dot").build(item_ids, items)
    ids, scores = index.query(users, 5)
    exact, _ = BruteForceItemIndex("dot").build(item_ids, items).query(users, 5)
    assert ids.dtype.kind == "U"
    assert (ids[:, 0] == exact[:, 0]).mean() >= 0.9
    excluded, _ = index.query(users, 5, exclude=[[row[0]] for row in ids])
    assert not (excluded[:, 0] == ids[:, 0]).any()
    index.save(tmp_path / "idx")
    assert (tmp_path / "idx" / "item_ids.json").is_file()
    assert not (tmp_path / "idx" / "item_ids.npy").exists()
    loaded = ItemIndex.load(tmp_path / "idx")
    reloaded_ids, reloaded_scores = loaded.query(users, 5)
    np.testing.assert_array_equal(reloaded_ids, ids)
    np.testing.assert_array_equal(reloaded_scores, scores)
    np.testing.assert_array_equal(index.ids_to_positions(["item-3", "item-0"]), [3, 0])


# ----------------------------------------------------------------------
# Save / load.


def test_save_load_round_trip_gives_identical_results(built, tmp_path):
    name, index, users = built
    ids, scores = index.query(users, 20)
    index.save(tmp_path / "idx")
    files = sorted(os.listdir(tmp_path / "idx"))
    backend_file = {"brute_force": [], "annoy": ["index.ann"], "hnsw": ["index.hnsw"]}
    assert files == sorted(
        ["metadata.json", "item_ids.npy", "item_embeddings.npy", *backend_file[name]]
    )
    for loader in (type(index), ItemIndex):
        loaded = loader.load(
            tmp_path / "idx", expected_dimension=8, expected_metric="angular"
        )
        assert type(loaded) is type(index)
        assert loaded.metadata == index.metadata
        assert loaded.metadata["model_version"] == 3
        loaded_ids, loaded_scores = loaded.query(users, 20)
        np.testing.assert_array_equal(loaded_ids, ids)
        np.testing.assert_array_equal(loaded_scores, scores)
        np.testing.assert_array_equal(loaded.item_embeddings, index.item_embeddings)


def test_load_mismatch_errors(built, tmp_path):
    name, index, _ = built
    index.save(tmp_path / "idx")
    with pytest.raises(ValueError, match=r"dimension 8.*expected_dimension=64"):
        type(index).load(tmp_path / "idx", expected_dimension=64)
    with pytest.raises(ValueError, match=r"metric 'angular'.*expected_metric='dot'"):
        type(index).load(tmp_path / "idx", expected_metric="dot")
    other = AnnoyItemIndex if name != "annoy" else BruteForceItemIndex
    with pytest.raises(ValueError, match=f"saved by the '{name}' backend"):
        other.load(tmp_path / "idx")


def test_missing_and_truncated_files_are_named(built, tmp_path):
    _, index, _ = built
    for case in ("no_ids", "short_embeddings", "bad_json", "no_metadata"):
        index.save(tmp_path / case)
    os.remove(tmp_path / "no_ids" / "item_ids.npy")
    with pytest.raises(FileNotFoundError, match=r"no_ids/item_ids\.npy is missing"):
        ItemIndex.load(tmp_path / "no_ids")
    path = tmp_path / "short_embeddings" / "item_embeddings.npy"
    path.write_bytes(path.read_bytes()[:-16])
    with pytest.raises(ValueError, match=r"item_embeddings\.npy is truncated"):
        ItemIndex.load(tmp_path / "short_embeddings")
    path = tmp_path / "bad_json" / "metadata.json"
    path.write_text(path.read_text()[:40])
    with pytest.raises(ValueError, match=r"metadata\.json is not valid JSON"):
        ItemIndex.load(tmp_path / "bad_json")
    os.remove(tmp_path / "no_metadata" / "metadata.json")
    with pytest.raises(FileNotFoundError, match=r"metadata\.json is missing"):
        ItemIndex.load(tmp_path / "no_metadata")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        ItemIndex.load(tmp_path / "nowhere")


def test_metadata_json_content(built, tmp_path):
    name, index, _ = built
    index.save(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx" / "metadata.json").read_text())
    assert meta["backend"] == name
    assert (meta["dimension"], meta["metric"], meta["num_items"]) == (8, "angular", 400)
    assert meta["model_name"] == "dssm"
    for file_name, record in meta["files"].items():
        assert record["bytes"] == os.path.getsize(tmp_path / "idx" / file_name)
        assert len(record["sha256"]) == 64


# ----------------------------------------------------------------------
# Atomic saves.


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_failed_save_leaves_nothing_and_keeps_the_old_index(
    name, tmp_path, monkeypatch
):
    items, users = _random_items(num=100)
    old = BACKENDS[name]().build(np.arange(100), items)
    old_ids, old_scores = old.query(users, 5)
    old.save(tmp_path / "kept")
    new = BACKENDS[name]().build(np.arange(100), items[::-1].copy())

    def fail(*args, **kwargs):
        # Called last in `save`, after every data file has been written.
        raise OSError("disk full (injected)")

    monkeypatch.setattr(base.io_utils, "write_json_atomic", fail)
    with pytest.raises(OSError, match="injected"):
        new.save(tmp_path / "fresh")
    with pytest.raises(OSError, match="injected"):
        new.save(tmp_path / "kept", overwrite=True)
    monkeypatch.undo()

    assert not (tmp_path / "fresh").exists()
    # Only the earlier index remains: no temporary directories are left.
    assert os.listdir(tmp_path) == ["kept"]
    loaded = ItemIndex.load(tmp_path / "kept")
    ids, scores = loaded.query(users, 5)
    np.testing.assert_array_equal(ids, old_ids)
    np.testing.assert_array_equal(scores, old_scores)
    with pytest.raises(FileExistsError, match="Refusing to overwrite"):
        new.save(tmp_path / "kept")


def test_failure_inside_the_backend_file_write(tmp_path, monkeypatch):
    items, _ = _random_items(num=100)
    index = AnnoyItemIndex(n_trees=2, seed=0).build(np.arange(100), items)
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("index.ann"):
            raise OSError("rename failed (injected)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="injected"):
        index.save(tmp_path / "idx")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_atomic_directory_is_the_one_used(monkeypatch, tmp_path):
    # Guard against a refactor that writes straight into the destination.
    calls = []
    real = io_utils.atomic_directory

    def spy(path, overwrite=False):
        calls.append(os.fspath(path))
        return real(path, overwrite=overwrite)

    monkeypatch.setattr(base.io_utils, "atomic_directory", spy)
    items, _ = _random_items(num=10)
    BruteForceItemIndex().build(np.arange(10), items).save(tmp_path / "x")
    assert calls == [os.fspath(tmp_path / "x")]
