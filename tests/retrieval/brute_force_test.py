"""Tests for BruteForceItemIndex: exact against a naive full sort."""

import numpy as np
import pytest

from keras_rec.retrieval import BruteForceItemIndex
from keras_rec.retrieval import brute_force
from tests.retrieval.reference import naive_scores
from tests.retrieval.reference import naive_top_k
from tests.retrieval.reference import stable_top_k


@pytest.mark.parametrize("metric", ["angular", "dot"])
def test_matches_naive_full_sort(metric):
    rng = np.random.default_rng(1)
    items = rng.normal(size=(2_000, 16)).astype(np.float32)
    users = rng.normal(size=(300, 16)).astype(np.float32)
    item_ids = rng.permutation(10_000)[:2_000]
    # batch_size=64: several query blocks, including a ragged last one.
    index = BruteForceItemIndex(metric=metric, batch_size=64).build(item_ids, items)
    ids, scores = index.query(users, 25)
    expected_ids, expected_scores = naive_top_k(item_ids, items, users, 25, metric)
    np.testing.assert_array_equal(ids, expected_ids)
    assert scores.dtype == np.float32 and scores.shape == (300, 25)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", ["angular", "dot"])
def test_k_equal_to_num_items_is_a_full_sort(metric):
    rng = np.random.default_rng(2)
    items = rng.normal(size=(50, 8)).astype(np.float32)
    users = rng.normal(size=(7, 8)).astype(np.float32)
    item_ids = np.arange(50)
    ids, _ = BruteForceItemIndex(metric).build(item_ids, items).query(users, 50)
    expected_ids, _ = naive_top_k(item_ids, items, users, 50, metric)
    np.testing.assert_array_equal(ids, expected_ids)


def test_scores_are_true_cosine_and_dot():
    items = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, -2.0]], dtype=np.float32)
    user = np.array([[2.0, 0.0]], dtype=np.float32)
    ids, scores = (
        BruteForceItemIndex("angular").build([10, 11, 12], items).query(user, 3)
    )
    # cos: item 11 -> 1, item 10 -> 3/5, item 12 -> 0.
    np.testing.assert_array_equal(ids, [[11, 10, 12]])
    np.testing.assert_allclose(scores, [[1.0, 0.6, 0.0]], atol=1e-6)
    ids, scores = BruteForceItemIndex("dot").build([10, 11, 12], items).query(user, 3)
    np.testing.assert_array_equal(ids, [[10, 11, 12]])
    np.testing.assert_allclose(scores, [[6.0, 2.0, 0.0]], atol=1e-6)


def test_tiny_rows_are_normalised_without_underflow():
    # Squares of 1e-25 underflow in float32: the norm must not become 0.
    items = np.array([[3e-25, 4e-25], [1.0, 0.0], [0.0, -2.0]], dtype=np.float32)
    users = np.array([[1e-30, 0.0], [0.0, 1.0]], dtype=np.float32)
    ids, scores = (
        BruteForceItemIndex("angular").build([10, 11, 12], items).query(users, 3)
    )
    np.testing.assert_array_equal(ids, [[11, 10, 12], [10, 11, 12]])
    np.testing.assert_allclose(scores, [[1.0, 0.6, 0.0], [0.8, 0.0, -1.0]], atol=1e-6)


def test_exclusion_is_exact():
    # Gaussian data: no float32 near-ties, so exact id equality is fair.
    rng = np.random.default_rng(9)
    items = rng.normal(size=(3_000, 16)).astype(np.float32)
    users = rng.normal(size=(50, 16)).astype(np.float32)
    item_ids = np.arange(3_000) * 2 + 1
    index = BruteForceItemIndex().build(item_ids, items)
    top, _ = index.query(users, 20)
    # Exclude every second item of each user's exact top 20.
    exclude = [set(row[::2]) for row in top]
    ids, scores = index.query(users, 20, exclude=exclude)
    expected_ids, expected_scores = naive_top_k(
        item_ids, items, users, 20, "angular", exclude=exclude
    )
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)


def test_large_catalogue_shrinks_the_query_block(monkeypatch):
    # Force tiny score blocks: the results must not depend on the blocking.
    rng = np.random.default_rng(3)
    items = rng.normal(size=(500, 8)).astype(np.float32)
    users = rng.normal(size=(40, 8)).astype(np.float32)
    index = BruteForceItemIndex("dot").build(np.arange(500), items)
    expected, _ = index.query(users, 10)
    monkeypatch.setattr(brute_force, "_MAX_BLOCK_ENTRIES", 1_500)  # 3 rows/block
    ids, scores = index.query(users, 10)
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(
        scores,
        np.sort(naive_scores(items, users, "dot"), axis=1)[:, ::-1][:, :10],
        atol=1e-5,
    )


# ----------------------------------------------------------------------
# The strided-slice selection against a naive full sort.


def _tied_data(num_items, dim=6, num_users=40, seed=0):
    # Small integer vectors: every dot product is a small integer, exact in
    # float32 whatever the summation order, so scores tie massively and the
    # comparison with the reference is exact.
    rng = np.random.default_rng(seed)
    items = rng.integers(-2, 3, size=(num_items, dim)).astype(np.float32)
    users = rng.integers(-2, 3, size=(num_users, dim)).astype(np.float32)
    return items, users


@pytest.mark.parametrize(
    "num_items, k",
    [
        (20_000, 10),  # 62 slices of 322 columns plus a tail of 36
        (64_000, 5),  # 64 slices, no tail
        (3_000, 50),  # too few items per slice: exact k-th score
        (700, 700),  # k = num_items: a full sort
    ],
)
def test_equals_a_stable_full_sort_with_ties(num_items, k):
    items, users = _tied_data(num_items)
    item_ids = np.arange(num_items) * 7 + 3
    index = BruteForceItemIndex("dot", batch_size=16).build(item_ids, items)
    ids, scores = index.query(users, k)
    order, expected_scores = stable_top_k(users @ items.T, k)
    np.testing.assert_array_equal(ids, item_ids[order])
    np.testing.assert_array_equal(scores, expected_scores)


def test_select_top_k_equals_a_stable_full_sort():
    # The selection on its own, on score blocks built to hit every branch:
    # Gaussian (no ties), few distinct values (ties at the threshold), all
    # equal (every slice reaches the threshold: the row-by-row fallback),
    # zeros of both signs (equal, though their bits differ) and mostly -inf
    # (fewer than k eligible items).
    rng = np.random.default_rng(11)
    for trial in range(300):
        num_items = int(rng.integers(1, 30_000))
        k = int(rng.integers(1, min(num_items, 80) + 1))
        kind = trial % 5
        if kind == 0:
            scores = rng.normal(size=(3, num_items))
        elif kind == 1:
            scores = rng.integers(0, 4, size=(3, num_items))
        elif kind == 2:
            scores = np.ones((3, num_items))
        elif kind == 3:
            scores = rng.choice([-1.0, -0.0, 0.0], size=(3, num_items))
        else:
            scores = rng.normal(size=(3, num_items))
            scores[rng.random(scores.shape) < 0.95] = -np.inf
        scores = scores.astype(np.float32)
        positions, values = brute_force._select_top_k(scores, k)
        expected_positions, expected_values = stable_top_k(scores, k)
        np.testing.assert_array_equal(positions, expected_positions)
        np.testing.assert_array_equal(values, expected_values)


def test_duplicated_items_and_exclusion_keep_the_position_order():
    # 30 copies of one vector: ties among the best items go to the earliest
    # positions, also after excluding some of them.
    rng = np.random.default_rng(12)
    items = rng.normal(size=(50_000, 8)).astype(np.float32)
    items[1_000:50_000:1_630] = items[0] * 10  # far ahead for the user below
    user = items[:1]
    index = BruteForceItemIndex("dot").build(np.arange(50_000), items)
    ids, _ = index.query(user, 10)
    np.testing.assert_array_equal(ids[0], np.arange(1_000, 50_000, 1_630)[:10])
    ids, _ = index.query(user, 10, exclude=[[1_000, 2_630]])
    np.testing.assert_array_equal(ids[0], np.arange(1_000, 50_000, 1_630)[2:12])


def test_items_are_normalised_once_at_build(monkeypatch):
    calls = []
    real = brute_force._l2_normalize

    def spy(x):
        calls.append(np.shape(x))
        return real(x)

    monkeypatch.setattr(brute_force, "_l2_normalize", spy)
    rng = np.random.default_rng(13)
    items = rng.normal(size=(1_000, 8)).astype(np.float32)
    index = BruteForceItemIndex("angular", batch_size=7).build(np.arange(1_000), items)
    assert calls == [(1_000, 8)]
    index.query(rng.normal(size=(50, 8)), 5)  # 8 blocks of queries
    assert calls == [(1_000, 8), (50, 8)]  # the queries, once per call


def test_reused_score_buffer_is_safe_across_calls_and_threads():
    # Calls of different sizes reuse one buffer, and concurrent calls from
    # several threads never share it: every result equals a fresh index's.
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(14)
    items = rng.normal(size=(3_000, 8)).astype(np.float32)
    batches = [rng.normal(size=(n, 8)).astype(np.float32) for n in (40, 3, 17, 1)]
    index = BruteForceItemIndex("dot", batch_size=16).build(np.arange(3_000), items)
    expected = [naive_top_k(np.arange(3_000), items, q, 10, "dot")[0] for q in batches]
    for queries, ids in zip(batches, expected):
        np.testing.assert_array_equal(index.query(queries, 10)[0], ids)
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            results = list(pool.map(lambda q: index.query(q, 10)[0], batches * 3))
            for ids, reference in zip(results, expected * 3):
                np.testing.assert_array_equal(ids, reference)
