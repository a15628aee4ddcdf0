"""Tests for retrieval_metrics, evaluate_retrieval, popularity_baseline, format_table."""

import math

import numpy as np
import pytest

from keras_rec.retrieval import AnnoyItemIndex
from keras_rec.retrieval import BruteForceItemIndex
from keras_rec.retrieval import HnswItemIndex
from keras_rec.retrieval import evaluate_retrieval
from keras_rec.retrieval import format_table
from keras_rec.retrieval import popularity_baseline
from keras_rec.retrieval import retrieval_metrics
from tests.retrieval.reference import overlap_at_k

# ----------------------------------------------------------------------
# retrieval_metrics against hand-computed values.


def test_single_target_at_rank_3():
    ranked = [[11, 12, 99, 14, 15, 16, 17, 18, 19, 20]]
    m = retrieval_metrics(ranked, [99], ks=(2, 10))
    assert m["recall@2"] == 0.0
    assert m["hit_rate@2"] == 0.0
    assert m["precision@2"] == 0.0
    assert m["ndcg@2"] == 0.0
    assert m["recall@10"] == 1.0
    assert m["hit_rate@10"] == 1.0
    assert m["precision@10"] == pytest.approx(0.1)
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(4))  # = 0.5
    assert m["mrr"] == pytest.approx(1 / 3)


def test_multi_target_hand_computed():
    # Targets {1, 2, 3}; hits at ranks 1 and 3 of 5.
    ranked = [[1, 50, 2, 51, 52]]
    m = retrieval_metrics(ranked, [{1, 2, 3}], ks=(2, 5))
    assert m["recall@2"] == pytest.approx(1 / 3)
    assert m["precision@2"] == pytest.approx(1 / 2)
    # DCG@2 = 1/log2(2); IDCG@2 = 1 + 1/log2(3).
    assert m["ndcg@2"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert m["recall@5"] == pytest.approx(2 / 3)
    assert m["precision@5"] == pytest.approx(2 / 5)
    # DCG@5 = 1 + 1/log2(4); IDCG@5 = 1 + 1/log2(3) + 1/log2(4).
    assert m["ndcg@5"] == pytest.approx(1.5 / (1.5 + 1 / math.log2(3)))
    assert m["hit_rate@5"] == 1.0
    assert m["mrr"] == 1.0


def test_ideal_dcg_uses_min_of_targets_and_k():
    # 5 targets, K=2, both top slots relevant: NDCG@2 must be exactly 1.
    m = retrieval_metrics([[1, 2, 9]], [[1, 2, 3, 4, 5]], ks=(2,))
    assert m["ndcg@2"] == pytest.approx(1.0)
    assert m["recall@2"] == pytest.approx(2 / 5)
    assert m["precision@2"] == 1.0


def test_average_over_users_and_miss_counts_zero():
    ranked = [[5, 7, 9], [1, 2, 3], [4, 4, 4]]
    m = retrieval_metrics(ranked, [9, 1, 8], ks=(3,))
    # Users: rank 3, rank 1, miss.
    assert m["recall@3"] == pytest.approx(2 / 3)
    assert m["mrr"] == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert m["ndcg@3"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert list(m) == ["recall@3", "hit_rate@3", "precision@3", "ndcg@3", "mrr"]


def test_duplicates_count_once():
    # A repeated hit in the ranked list and a repeated target count once.
    m = retrieval_metrics([[7, 7, 1]], [[7, 7]], ks=(3,))
    assert m["recall@3"] == 1.0
    assert m["precision@3"] == pytest.approx(1 / 3)
    assert m["ndcg@3"] == pytest.approx(1.0)
    m = retrieval_metrics([[7, 7, 1]], [7], ks=(3,))
    assert m["precision@3"] == pytest.approx(1 / 3)


def test_string_ids_and_mixed_target_shapes():
    ranked = np.array([["a", "b", "c"], ["c", "b", "a"]])
    m = retrieval_metrics(ranked, ["b", {"a", "z"}], ks=(1, 3))
    assert m["recall@1"] == 0.0
    # User 0: "b" at rank 2 (recall 1); user 1: "a" at rank 3 (recall 1/2).
    assert m["recall@3"] == pytest.approx((1 + 0.5) / 2)
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_metric_argument_errors():
    with pytest.raises(ValueError, match=r"ks=\(2, 4\)"):
        retrieval_metrics([[1, 2, 3]], [1], ks=(2, 4))
    with pytest.raises(ValueError, match=r"len\(target_item_ids\)=1"):
        retrieval_metrics([[1, 2], [3, 4]], [1], ks=(1,))
    with pytest.raises(ValueError, match=r"target_item_ids\[0\] empty"):
        retrieval_metrics([[1, 2]], [[]], ks=(1,))
    with pytest.raises(ValueError, match="both be integer ids or both string"):
        retrieval_metrics([[1, 2]], ["1"], ks=(1,))
    with pytest.raises(ValueError, match="`ks` must be >= 1. Received: ks=0"):
        retrieval_metrics([[1, 2]], [1], ks=(0,))


# ----------------------------------------------------------------------
# evaluate_retrieval.


def _line_index(index_class, **kwargs):
    # Dot scores for the user [1, 0]: A=3, B=2, C=1, D=0.
    items = np.array([[3, 0], [2, 0], [1, 0], [0, 1]], dtype=np.float32)
    return index_class(metric="dot", **kwargs).build(["A", "B", "C", "D"], items)


def test_evaluate_retrieval_exclude_seen_hand_computed():
    index = _line_index(BruteForceItemIndex)
    report = evaluate_retrieval(
        index, [[1.0, 0.0]], ["B"], ks=(1, 2), seen_item_ids=[["A"]]
    )
    assert report["backend"] == "brute_force"
    assert report["num_users"] == 1 and report["num_items"] == 4
    include, exclude = (
        report["results"]["include_seen"],
        report["results"]["exclude_seen"],
    )
    # Seen item A ranks first; the target B is second unless A is excluded.
    assert include["recall@1"] == 0.0
    assert include["mrr"] == pytest.approx(0.5)
    assert include["ndcg@2"] == pytest.approx(1 / math.log2(3))
    assert exclude["recall@1"] == 1.0
    assert exclude["mrr"] == 1.0
    # Exact index: no ANN recall to report.
    assert "ann_recall@1" not in include


def test_evaluate_retrieval_requires_seen_for_exclusion():
    index = _line_index(BruteForceItemIndex)
    with pytest.raises(ValueError, match="seen_item_ids=None"):
        evaluate_retrieval(index, [[1.0, 0.0]], ["B"], ks=(1,))
    report = evaluate_retrieval(index, [[1.0, 0.0]], ["B"], ks=(1,), exclude_seen=False)
    assert list(report["results"]) == ["include_seen"]
    with pytest.raises(ValueError, match=r"number of items \(4\)"):
        evaluate_retrieval(index, [[1.0, 0.0]], ["B"], ks=(5,), exclude_seen=False)


def test_evaluate_retrieval_ann_recall_matches_manual_overlap(clustered_data):
    item_ids, items, users = clustered_data
    # A deliberately weak Annoy index, so that ann_recall is far from 1.
    index = AnnoyItemIndex(n_trees=2, search_k=40, seed=0).build(item_ids, items)
    report = evaluate_retrieval(
        index, users, item_ids[:500], ks=(10, 50), exclude_seen=False
    )
    ann_ids, _ = index.query(users, 50)
    exact_ids, _ = BruteForceItemIndex().build(item_ids, items).query(users, 50)
    results = report["results"]["include_seen"]
    for k in (10, 50):
        expected = overlap_at_k(ann_ids, exact_ids, k)
        assert results[f"ann_recall@{k}"] == pytest.approx(expected)
    assert results["ann_recall@10"] < 0.9  # the weak index is visibly weak
    assert report["backend"] == "annoy"
    assert report["index_params"]["n_trees"] == 2
    assert report["index_params"]["search_k"] == 40
    assert "HnswItemIndex" in report["note"]


def test_evaluate_retrieval_ann_recall_with_exclusion(clustered_data):
    item_ids, items, users = clustered_data
    users = users[:100]
    index = HnswItemIndex(seed=0).build(item_ids, items)
    seen = [item_ids[i : i + 20] for i in range(100)]
    report = evaluate_retrieval(
        index, users, item_ids[:100], ks=(10,), seen_item_ids=seen
    )
    for setting in ("include_seen", "exclude_seen"):
        assert report["results"][setting]["ann_recall@10"] >= 0.95


def test_evaluate_retrieval_rejects_mismatched_exact_index():
    index = _line_index(BruteForceItemIndex)
    other = BruteForceItemIndex(metric="angular").build(
        [1, 2], np.eye(2, dtype=np.float32)
    )
    with pytest.raises(ValueError, match="`exact_index` must index the same items"):
        evaluate_retrieval(
            index, [[1.0, 0.0]], ["B"], ks=(1,), exclude_seen=False, exact_index=other
        )


# ----------------------------------------------------------------------
# popularity_baseline and format_table.


def test_popularity_baseline_hand_computed():
    train = [1, 1, 1, 2, 2, 3]  # ranking: 1, 2, 3
    report = popularity_baseline(train, [2, 3], ks=(1, 2), seen_item_ids=[[1], [1, 2]])
    include = report["results"]["include_seen"]
    # Both users get [1, 2]: user 0 finds 2 at rank 2, user 1 misses 3.
    assert include["recall@1"] == 0.0
    assert include["recall@2"] == pytest.approx(0.5)
    assert include["mrr"] == pytest.approx(0.25)
    exclude = report["results"]["exclude_seen"]
    # User 0 gets [2, 3], user 1 gets [3, pad]: both hit at rank 1.
    assert exclude["recall@1"] == 1.0
    assert exclude["mrr"] == 1.0
    assert exclude["precision@2"] == pytest.approx(0.5)
    assert report["backend"] == "popularity"


def test_popularity_ties_broken_by_id():
    report = popularity_baseline(["b", "a"], ["a", "b"], ks=(1,), exclude_seen=False)
    # Tie: "a" ranks first for everyone.
    assert report["results"]["include_seen"]["recall@1"] == pytest.approx(0.5)


def test_format_table_lists_every_run_metric_and_note():
    index = _line_index(BruteForceItemIndex)
    report = evaluate_retrieval(
        index, [[1.0, 0.0]], ["B"], ks=(1, 2), seen_item_ids=[["A"]]
    )
    popular = popularity_baseline(
        ["A", "A", "B"], ["B"], ks=(1, 2), seen_item_ids=[["A"]]
    )
    table = format_table([report, popular])
    lines = table.splitlines()
    assert lines[0].split() == [
        "metric",
        "brute_force/include_seen",
        "brute_force/exclude_seen",
        "popularity/include_seen",
        "popularity/exclude_seen",
    ]
    assert lines[1].split() == ["recall@1", "0.0000", "1.0000", "0.0000", "1.0000"]
    mrr = next(line for line in lines if line.startswith("mrr"))
    assert mrr.split() == ["mrr", "0.5000", "1.0000", "0.5000", "1.0000"]
    assert any("exact search" in line for line in lines)
    assert format_table({"mine": {"recall@1": 0.25}}).splitlines()[1].split() == [
        "recall@1",
        "0.2500",
    ]
