"""Tests of the negative samplers: their distributions and the exclusion rule."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from keras_rec.datasets import add_negatives
from keras_rec.datasets import hard_negatives
from keras_rec.datasets import negatives_for_strategy
from keras_rec.datasets import popularity_negatives
from keras_rec.datasets import popularity_suppressed_negatives
from keras_rec.datasets import uniform_negatives
from keras_rec.datasets.negative_sampling import suppressed_acceptance

N_ITEMS = 50


def _chi_square_p(samples, expected_probs):
    """p-value of a chi-square goodness-of-fit test over ids 1..len(probs)."""
    observed = np.bincount(samples.ravel(), minlength=len(expected_probs) + 1)[1:]
    expected = expected_probs / expected_probs.sum() * samples.size
    support = expected > 0
    assert observed[~support].sum() == 0  # never an item of probability 0
    return stats.chisquare(observed[support], expected[support]).pvalue


@pytest.fixture
def pairs():
    # Three users; user 3 has most of the catalogue as positives.
    users = np.array([1, 1, 1, 2, 2] + [3] * 45)
    items = np.array([1, 2, 3, 2, 10] + list(range(1, 46)))
    return users, items


def test_uniform_distribution_chi_square():
    users = np.arange(4000)
    items = np.ones(4000, dtype=np.int64)
    out = uniform_negatives(
        users, items, N_ITEMS, num_negatives=25, seed=0, exclude_positives=False
    )
    assert out.shape == (4000, 25) and out.dtype == np.int64
    assert out.min() == 1 and out.max() == N_ITEMS
    assert _chi_square_p(out, np.ones(N_ITEMS)) > 1e-3
    # With exclusion, item 1 (everyone's positive) disappears and the rest
    # stay uniform.
    out = uniform_negatives(users, items, N_ITEMS, num_negatives=25, seed=0)
    expected = np.ones(N_ITEMS)
    expected[0] = 0.0
    assert _chi_square_p(out, expected) > 1e-3


def test_never_returns_own_positives(pairs):
    users, items = pairs
    positives = pd.Series(items).groupby(users).apply(set).to_dict()
    for sampler in (
        uniform_negatives,
        popularity_negatives,
        popularity_suppressed_negatives,
    ):
        kwargs = {} if sampler is uniform_negatives else {"item_counts": np.ones(50)}
        out = sampler(users, items, N_ITEMS, num_negatives=40, seed=1, **kwargs)
        for user, row in zip(users, out):
            assert not set(row.tolist()) & positives[user], sampler.__name__
        # User 3 can only get items 46..50, drawn exactly (exact fallback).
        assert set(out[users == 3].ravel().tolist()) == {46, 47, 48, 49, 50}


def test_no_negative_possible_is_an_error():
    users = np.full(N_ITEMS, 7)
    items = np.arange(1, N_ITEMS + 1)
    with pytest.raises(ValueError, match="No negative can be sampled for user 7"):
        uniform_negatives(users, items, N_ITEMS, num_negatives=1, seed=0)


def test_popularity_distribution_is_count_to_the_power():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 1000, size=N_ITEMS).astype(float)
    counts[5] = 0.0
    users = np.arange(5000)
    items = np.full(5000, 6)  # item 6 has count 0: never sampled anyway
    out = popularity_negatives(
        users, items, N_ITEMS, 20, seed=2, item_counts=counts, power=0.75
    )
    assert 6 not in out
    assert _chi_square_p(out, counts**0.75) > 1e-3
    # Item counts may also be indexed by id (length n_items + 1).
    again = popularity_negatives(
        users, items, N_ITEMS, 20, seed=2, item_counts=np.r_[0.0, counts]
    )
    np.testing.assert_array_equal(out, again)
    # power=1 is proportional to the counts; the default counts come from
    # the positives themselves.
    out = popularity_negatives(
        users, items, N_ITEMS, 20, seed=3, item_counts=counts, power=1.0
    )
    assert _chi_square_p(out, counts) > 1e-3
    sampled = popularity_negatives(
        [1, 2, 3, 4], [1, 1, 1, 2], 3, 1000, seed=0, exclude_positives=False
    )
    # counts 3 and 1 -> probabilities 3^.75 / (3^.75 + 1) = 0.695 and 0.305.
    assert abs((sampled == 1).mean() - 0.695) < 0.01
    assert not (sampled == 3).any()


def test_suppressed_distribution_follows_word2vec_subsampling():
    counts = np.r_[np.full(5, 1000.0), np.full(45, 10.0)]  # 5 hot items
    threshold = 1e-3
    accept = suppressed_acceptance(np.r_[0.0, counts], threshold)[1:]
    freq = counts / counts.sum()
    np.testing.assert_allclose(accept, np.minimum(1.0, np.sqrt(threshold / freq)))
    # f_hot = 1000 / 5450 = 0.183 -> kept with prob sqrt(1e-3 / 0.183) = 0.074.
    assert accept[0] == pytest.approx(0.0738, abs=1e-3)
    users = np.arange(5000)
    items = np.full(5000, 50)
    out = popularity_suppressed_negatives(
        users,
        items,
        N_ITEMS,
        20,
        seed=4,
        item_counts=counts,
        threshold=threshold,
        exclude_positives=False,
    )
    assert _chi_square_p(out, accept) > 1e-3
    hot_share = np.isin(out, np.arange(1, 6)).mean()
    # Uniform would give 10%; suppressed, hot items get 5*0.074/(5*0.074+45).
    assert hot_share == pytest.approx(5 * 0.0738 / (5 * 0.0738 + 45), abs=0.003)


def test_samplers_are_deterministic_and_thread_a_generator(pairs):
    users, items = pairs
    a = uniform_negatives(users, items, N_ITEMS, 5, seed=11)
    b = uniform_negatives(users, items, N_ITEMS, 5, seed=11)
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(11)
    first = uniform_negatives(users, items, N_ITEMS, 5, seed=rng)
    second = uniform_negatives(users, items, N_ITEMS, 5, seed=rng)
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second)


def test_sampler_argument_errors(pairs):
    users, items = pairs
    with pytest.raises(
        ValueError, match="must be in \\[1, n_items=40\\]. Received: 41"
    ):
        uniform_negatives(users, items, 40, 1)
    with pytest.raises(ValueError, match="same length. Received: 50 and 3"):
        uniform_negatives(users, items[:3], N_ITEMS, 1)
    with pytest.raises(ValueError, match="Received: num_negatives=-1"):
        uniform_negatives(users, items, N_ITEMS, -1)
    with pytest.raises(ValueError, match="Received: 7 entries"):
        popularity_negatives(users, items, N_ITEMS, 1, item_counts=np.ones(7))
    with pytest.raises(ValueError, match="Received: threshold=0"):
        popularity_suppressed_negatives(users, items, N_ITEMS, 1, threshold=0)
    with pytest.raises(ValueError, match="Received: power=-1"):
        popularity_negatives(users, items, N_ITEMS, 1, power=-1)


# --------------------------------------------------------------- hard negatives


def test_hard_negatives_come_from_the_band_and_skip_positives():
    rankings = {
        1: np.arange(1, 41),  # ranks 0..39 -> items 1..40
        2: np.arange(40, 0, -1),  # reversed
    }
    positives = {1: {12, 15}, 2: {30}}
    users = np.array([1] * 3000 + [2] * 3000)
    out = hard_negatives(
        users, rankings, positives, band=(10, 20), num_negatives=3, seed=0
    )
    assert out.shape == (6000, 3)
    user1 = out[:3000]
    allowed1 = set(range(11, 21)) - {12, 15}  # ranks 10..19 = items 11..20
    assert set(user1.ravel().tolist()) == allowed1
    # Without replacement within a row.
    assert all(len(set(row)) == 3 for row in user1.tolist())
    # Uniform over the 8 admissible items.
    counts = np.bincount(user1.ravel(), minlength=41)[sorted(allowed1)]
    assert stats.chisquare(counts).pvalue > 1e-3
    user2 = set(out[3000:].ravel().tolist())
    assert user2 == set(range(21, 31)) - {30}  # ranks 10..19 reversed


def test_hard_negatives_array_input_replacement_and_errors():
    rankings = np.array([[5, 6, 7, 8, 0, 0], [1, 2, 3, 4, 5, 6]])
    out = hard_negatives(
        [10, 20], rankings, {10: [7]}, band=(1, 6), num_negatives=4, seed=0
    )
    # Row 0's band holds 6, 8 (7 is positive, zeros are padding): drawn with
    # replacement.
    assert set(out[0].tolist()) <= {6, 8}
    assert set(out[1].tolist()) <= {2, 3, 4, 5, 6}  # ranks 1..5, no padding
    assert len(set(out[1].tolist())) == 4
    with pytest.raises(ValueError, match="No hard negative for user 10"):
        hard_negatives([10], rankings[:1], {10: [6, 7, 8]}, band=(1, 6), seed=0)
    with pytest.raises(ValueError, match="Received: band=\\(5, 5\\)"):
        hard_negatives([10], rankings[:1], None, band=(5, 5))
    with pytest.raises(ValueError, match="no ranking for user 3"):
        hard_negatives([3], {1: [1, 2]}, None, band=(0, 1))


# ------------------------------------------------------------------- dispatcher


def test_negatives_for_strategy_dispatch(pairs):
    users, items = pairs
    for strategy in ("none", "in_batch"):
        out = negatives_for_strategy(strategy, users, items, N_ITEMS, 5)
        assert out.shape == (len(users), 0)
    np.testing.assert_array_equal(
        negatives_for_strategy("uniform", users, items, N_ITEMS, 4, seed=9),
        uniform_negatives(users, items, N_ITEMS, 4, seed=9),
    )
    np.testing.assert_array_equal(
        negatives_for_strategy("suppressed", users, items, N_ITEMS, 4, seed=9),
        popularity_suppressed_negatives(users, items, N_ITEMS, 4, seed=9),
    )
    rankings = {u: np.arange(1, 51) for u in (1, 2, 3)}
    hard = negatives_for_strategy(
        "hard",
        users,
        items,
        N_ITEMS,
        2,
        seed=0,
        candidate_rankings=rankings,
        band=(0, 50),
    )
    positives = pd.Series(items).groupby(users).apply(set).to_dict()
    for user, row in zip(users, hard):
        assert not set(row.tolist()) & positives[user]
    with pytest.raises(ValueError, match="Received: strategy='random'"):
        negatives_for_strategy("random", users, items, N_ITEMS, 1)
    with pytest.raises(ValueError, match="needs `candidate_rankings`"):
        negatives_for_strategy("hard", users, items, N_ITEMS, 1)


# ---------------------------------------------------------------- add_negatives


def test_add_negatives_builds_pointwise_rows():
    df = pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "item_id": [3, 4, 3],
            "gender": [2, 2, 1],
            "timestamp": [100, 200, 300],
            "category": [30, 40, 30],
        }
    )
    items = pd.DataFrame(
        {"item_id": np.arange(1, 11), "category": np.arange(1, 11) * 10}
    )
    out = add_negatives(df, "uniform", num_negatives=3, seed=0, items=items)
    assert len(out) == 12
    assert out["label"].tolist() == [1, 0, 0, 0] * 3
    # User columns are copied from the positive row.
    assert out["user_id"].tolist() == [1] * 8 + [2] * 4
    assert out["gender"].tolist() == [2] * 8 + [1] * 4
    assert out["timestamp"].tolist() == [100] * 4 + [200] * 4 + [300] * 4
    # Item features follow the item, negatives included.
    np.testing.assert_array_equal(out["category"], out["item_id"] * 10)
    # Negatives are never one of the user's positives; catalogue = 1..10.
    neg = out[out["label"] == 0]
    assert not neg[neg["user_id"] == 1]["item_id"].isin([3, 4]).any()
    assert not neg[neg["user_id"] == 2]["item_id"].isin([3]).any()
    assert neg["item_id"].between(1, 10).all()

    plain = add_negatives(df, "in_batch", num_negatives=3)
    assert plain["label"].tolist() == [1, 1, 1]
    pd.testing.assert_frame_equal(plain.drop(columns="label"), df)
    with pytest.raises(ValueError, match="already has a `label` column"):
        add_negatives(plain, "uniform", 1)
