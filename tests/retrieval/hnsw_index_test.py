"""Tests for HnswItemIndex: recall against exact search, scores, optional import."""

import sys

import numpy as np
import pytest

from keras_rec.retrieval import BruteForceItemIndex
from keras_rec.retrieval import HnswItemIndex
from tests.retrieval.reference import naive_scores
from tests.retrieval.reference import overlap_at_k


@pytest.mark.parametrize("metric", ["angular", "dot"])
def test_recall_against_brute_force(clustered_data, metric):
    # Same 5,000 clustered 32-d items as the Annoy test; with the defaults
    # (M=16, ef_construction=200, ef=200) HNSW finds >= 95% of the exact
    # top-10 (measured 0.999 for both metrics).
    item_ids, items, users = clustered_data
    ids, _ = HnswItemIndex(metric, seed=0).build(item_ids, items).query(users, 10)
    exact, _ = BruteForceItemIndex(metric).build(item_ids, items).query(users, 10)
    assert overlap_at_k(ids, exact, 10) >= 0.95


@pytest.mark.parametrize("metric", ["angular", "dot"])
def test_scores_are_true_cosine_or_dot(metric):
    rng = np.random.default_rng(7)
    items = rng.normal(size=(300, 12)).astype(np.float32) * 3.0
    users = rng.normal(size=(20, 12)).astype(np.float32)
    index = HnswItemIndex(metric, seed=0).build(np.arange(300), items)
    ids, scores = index.query(users, 10)
    reference = naive_scores(items, users, metric)
    np.testing.assert_allclose(
        scores, np.take_along_axis(reference, ids, axis=1), rtol=1e-5, atol=1e-4
    )


def test_k_larger_than_ef_still_returns_k_items():
    rng = np.random.default_rng(8)
    items = rng.normal(size=(500, 8)).astype(np.float32)
    users = rng.normal(size=(5, 8)).astype(np.float32)
    index = HnswItemIndex("dot", ef=10, seed=0).build(np.arange(500), items)
    ids, scores = index.query(users, 100)
    assert ids.shape == (5, 100) and (ids >= 0).all()
    assert np.isfinite(scores).all()
    assert all(len(set(row)) == 100 for row in ids)


def test_missing_hnswlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "hnswlib", None)  # makes `import` fail
    index = HnswItemIndex()
    with pytest.raises(ImportError, match=r"pip install keras-rec\[hnsw\]"):
        index.build([1, 2], np.eye(2, dtype=np.float32))
    # The failed build leaves the index empty, not half-built.
    assert not index.is_built


def test_a_batch_is_one_hnswlib_call(clustered_data, monkeypatch):
    # The wrapper adds no per-row work: one knn_query for the whole batch,
    # and its results match queries sent one at a time.
    item_ids, items, users = clustered_data
    index = HnswItemIndex(seed=0).build(item_ids, items)
    singles = [index.query(users[row : row + 1], 10) for row in range(20)]
    calls = []
    real = index._hnsw.knn_query

    class Spy:
        def __getattr__(self, name):
            return getattr(real.__self__, name)

        def knn_query(self, *args, **kwargs):
            calls.append(len(args[0]))
            return real(*args, **kwargs)

    monkeypatch.setattr(index, "_hnsw", Spy())
    ids, scores = index.query(users[:20], 10)
    assert calls == [20]
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(ids, np.concatenate([s[0] for s in singles]))
    np.testing.assert_allclose(
        scores, np.concatenate([s[1] for s in singles]), rtol=1e-6
    )
