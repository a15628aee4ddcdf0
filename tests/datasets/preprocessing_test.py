"""Tests of the preprocessing helpers, against hand-computed or NumPy references."""

import math
import time

import numpy as np
import pandas as pd
import pytest

from keras_rec.datasets import LOG_SQUARE_MISSING
from keras_rec.datasets import build_history_sequences
from keras_rec.datasets import encode_ids
from keras_rec.datasets import example_age
from keras_rec.datasets import leave_last_out_split
from keras_rec.datasets import log_square_bucket
from keras_rec.datasets import make_synthetic
from keras_rec.datasets import pad_sequences
from keras_rec.datasets import scale_dense
from keras_rec.datasets import train_val_test_split_by_time
from keras_rec.datasets import user_histories


@pytest.fixture
def events():
    # User 1 has a timestamp tie (items 9 and 8 at t=20); user 2 has 1 event.
    return pd.DataFrame(
        {
            "user_id": [1, 2, 1, 1, 1, 3, 3],
            "item_id": [7, 5, 9, 8, 6, 1, 2],
            "timestamp": [10, 3, 20, 20, 40, 1, 2],
            "category": [70, 50, 90, 80, 60, 10, 20],
        }
    )


# ------------------------------------------------------------------ encode_ids


def test_encode_ids_builds_sorted_vocabulary_from_one():
    codes, vocab = encode_ids(["b", "a", "c", "b", None])
    np.testing.assert_array_equal(codes, [2, 1, 3, 2, 0])
    assert codes.dtype == np.int64
    assert vocab.tolist() == ["a", "b", "c"]
    codes, vocab = encode_ids(np.array([30, 10, 30, 20]))
    np.testing.assert_array_equal(codes, [3, 1, 3, 2])
    np.testing.assert_array_equal(vocab, [10, 20, 30])


def test_encode_ids_unknown_and_missing_are_zero():
    codes, vocab = encode_ids([5, 7, 9, np.nan], vocabulary=[9, 5])
    np.testing.assert_array_equal(codes, [2, 0, 1, 0])
    np.testing.assert_array_equal(vocab, [9, 5])
    # Round trip: codes from one call decode through the vocabulary.
    values = pd.Series(["x", "y", "x", "z"], dtype="str")
    codes, vocab = encode_ids(values)
    assert [vocab[c - 1] for c in codes] == ["x", "y", "x", "z"]
    again, _ = encode_ids(["z", "w"], vocabulary=vocab)
    np.testing.assert_array_equal(again, [3, 0])


def test_encode_ids_rejects_bad_vocabulary():
    with pytest.raises(ValueError, match="must not hold duplicates. Received: 'a'"):
        encode_ids(["a"], vocabulary=["a", "b", "a"])
    with pytest.raises(ValueError, match="`values` must be 1-D"):
        encode_ids(np.zeros((2, 2)))


# -------------------------------------------------------- leave_last_out_split


def test_leave_last_out_split_by_time_then_item(events):
    train, test = leave_last_out_split(events)
    # User 1: order 7 (t10), 8 (t20), 9 (t20), 6 (t40) -> test 6.
    # User 2: one event -> stays in train. User 3: test item 2.
    assert test[["user_id", "item_id"]].values.tolist() == [[1, 6], [3, 2]]
    assert train[["user_id", "item_id"]].values.tolist() == [
        [1, 7],
        [1, 8],
        [1, 9],
        [2, 5],
        [3, 1],
    ]
    assert list(train.columns) == list(events.columns)


def test_leave_last_out_split_n_last(events):
    train, test = leave_last_out_split(events, n_last=2)
    # The tie at t=20 is broken by item id: 9 is later than 8.
    assert test["item_id"].tolist() == [9, 6]
    assert sorted(train["user_id"].tolist()) == [1, 1, 2, 3, 3]
    assert len(train) + len(test) == len(events)
    with pytest.raises(ValueError, match="`n_last` must be >= 1. Received: n_last=0"):
        leave_last_out_split(events, n_last=0)
    with pytest.raises(ValueError, match="missing the column"):
        leave_last_out_split(events, user_col="uid")


# ------------------------------------------------- build_history_sequences


def test_build_history_sequences_hand_example(events):
    out = build_history_sequences(events, maxlen=2, extra_cols=("category",))
    assert out[["user_id", "item_id"]].values.tolist() == [
        [1, 8],
        [1, 9],
        [1, 6],
        [3, 2],
    ]
    assert [h.tolist() for h in out["hist_item_id"]] == [[7], [7, 8], [8, 9], [1]]
    assert [h.tolist() for h in out["hist_category"]] == [
        [70],
        [70, 80],
        [80, 90],
        [10],
    ]
    assert out["hist_len"].tolist() == [1, 2, 2, 1]
    # Target columns come along.
    assert out["category"].tolist() == [80, 90, 60, 20]


def test_build_history_sequences_min_history(events):
    out = build_history_sequences(events, min_history=0)
    assert len(out) == len(events)
    first = out[out["user_id"] == 2]
    assert first["hist_len"].tolist() == [0] and len(first["hist_item_id"].iloc[0]) == 0
    out = build_history_sequences(events, min_history=3)
    assert out["item_id"].tolist() == [6]
    with pytest.raises(ValueError, match="already has the output column"):
        build_history_sequences(out)


def test_build_history_sequences_has_no_leakage():
    interactions, _, _ = make_synthetic(n_users=300, n_items=200, n_interactions=6000)
    # Add timestamp ties within users to exercise the tie rule.
    interactions["timestamp"] = interactions["timestamp"] // 200_000
    rng = np.random.default_rng(0)
    interactions = interactions.sample(frac=1.0, random_state=0)  # any order
    out = build_history_sequences(interactions, maxlen=7)
    time_of = {(u, i): t for u, i, t in interactions.to_numpy()}
    for row in out.sample(n=500, random_state=1).itertuples():
        target = (row.timestamp, row.item_id)
        for item in row.hist_item_id:
            assert (time_of[(row.user_id, item)], item) < target
        assert row.item_id not in row.hist_item_id
    # Compare with a reference built by a plain loop, for a few users.
    for user in rng.choice(300, size=10, replace=False) + 1:
        mine = interactions[interactions["user_id"] == user]
        ordered = sorted(zip(mine["timestamp"], mine["item_id"]))
        items = [i for _, i in ordered]
        rows = out[out["user_id"] == user]
        assert rows["item_id"].tolist() == items[1:]
        expected = [items[max(0, t - 7) : t] for t in range(1, len(items))]
        assert [h.tolist() for h in rows["hist_item_id"]] == expected


def test_build_history_sequences_is_fast():
    rng = np.random.default_rng(0)
    interactions = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(1, 1001), 100),
            "item_id": rng.integers(1, 5000, size=100_000),
            "timestamp": rng.integers(0, 10**9, size=100_000),
        }
    )
    start = time.process_time()
    out = build_history_sequences(interactions, maxlen=50)
    assert time.process_time() - start < 2.0  # about 0.2 s here
    assert len(out) == 100_000 - 1000
    with pytest.raises(ValueError):
        out["hist_item_id"].iloc[0][0] = 5  # read-only views


def test_user_histories(events):
    out = user_histories(events, maxlen=3, extra_cols="category")
    assert out["user_id"].tolist() == [1, 2, 3]
    assert [h.tolist() for h in out["hist_item_id"]] == [[8, 9, 6], [5], [1, 2]]
    assert [h.tolist() for h in out["hist_category"]] == [[80, 90, 60], [50], [10, 20]]
    assert out["hist_len"].tolist() == [3, 1, 2]
    with pytest.raises(ValueError, match="`maxlen` must be >= 1. Received: maxlen=0"):
        user_histories(events, maxlen=0)


# --------------------------------------------------------------- pad_sequences


def test_pad_sequences_defaults_keep_most_recent_and_pad_post():
    out = pad_sequences([[1, 2, 3, 4], [5], []], maxlen=3)
    np.testing.assert_array_equal(out, [[2, 3, 4], [5, 0, 0], [0, 0, 0]])
    assert out.dtype == np.int32


@pytest.mark.parametrize(
    "padding, truncating, expected",
    [
        ("pre", "pre", [[2, 3, 4], [0, 0, 5]]),
        ("pre", "post", [[1, 2, 3], [0, 0, 5]]),
        ("post", "post", [[1, 2, 3], [5, 0, 0]]),
    ],
)
def test_pad_sequences_modes(padding, truncating, expected):
    out = pad_sequences(
        [[1, 2, 3, 4], [5]], maxlen=3, padding=padding, truncating=truncating
    )
    np.testing.assert_array_equal(out, expected)


def test_pad_sequences_matches_loop_reference():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 100, size=rng.integers(0, 12)) for _ in range(300)]
    for padding in ("pre", "post"):
        for truncating in ("pre", "post"):
            out = pad_sequences(
                pd.Series(seqs),
                maxlen=6,
                padding=padding,
                truncating=truncating,
                value=-1,
                dtype="int64",
            )
            for row, s in zip(out, seqs):
                kept = list(s[-6:] if truncating == "pre" else s[:6])
                pad = [-1] * (6 - len(kept))
                assert row.tolist() == (kept + pad if padding == "post" else pad + kept)


def test_pad_sequences_maxlen_none_and_errors():
    out = pad_sequences([[1], [2, 3]])
    np.testing.assert_array_equal(out, [[1, 0], [2, 3]])
    assert pad_sequences([], maxlen=4).shape == (0, 4)
    with pytest.raises(ValueError, match="Received: padding='left'"):
        pad_sequences([[1]], padding="left")
    with pytest.raises(ValueError, match="outside the range of dtype=int32"):
        pad_sequences([[2**40]])
    with pytest.raises(ValueError, match="`maxlen` must be >= 0. Received: maxlen=-1"):
        pad_sequences([[1]], maxlen=-1)


# ---------------------------------------------------------- log_square_bucket


def test_log_square_bucket_matches_reference():
    values = np.array([-3, -1, 0, 1, 2, 3, 5, 10, 100, 1000, 12345, 3e6])
    expected = [int(math.log(x) ** 2) if x > 2 else int(x) for x in values]
    np.testing.assert_array_equal(log_square_bucket(values), expected)
    # Hand values: log(3)^2 = 1.21, log(100)^2 = 21.2.
    np.testing.assert_array_equal(log_square_bucket([3, 100]), [1, 21])


def test_log_square_bucket_missing_bucket():
    out = log_square_bucket(pd.Series([np.nan, 7.0, np.nan]))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(
        out, [LOG_SQUARE_MISSING, int(math.log(7) ** 2), LOG_SQUARE_MISSING]
    )
    assert LOG_SQUARE_MISSING not in log_square_bucket(np.arange(-3, 10**6, 97))


# ---------------------------------------------------------------- scale_dense


def test_scale_dense_minmax_fit_on_train_apply_on_test():
    train = pd.DataFrame({"a": [1.0, 3.0, np.nan, 5.0], "b": [2.0, 2.0, 2.0, 2.0]})
    test = pd.DataFrame({"a": [7.0, 1.0], "b": [3.0, np.nan]})
    scaled, stats = scale_dense(train, ["a", "b"])
    assert stats == {"a": {"min": 1.0, "max": 5.0}, "b": {"min": 2.0, "max": 2.0}}
    np.testing.assert_allclose(scaled["a"], [0.0, 0.5, np.nan, 1.0])
    np.testing.assert_allclose(scaled["b"], [0.0, 0.0, 0.0, 0.0])
    out, same = scale_dense(test, ["a", "b"], stats=stats, fill_value=0.0)
    assert same is stats
    np.testing.assert_allclose(out["a"], [1.5, 0.0])  # may leave [0, 1]
    np.testing.assert_allclose(out["b"], [1.0, 0.0])
    np.testing.assert_allclose(train["a"], [1.0, 3.0, np.nan, 5.0])  # untouched


def test_scale_dense_standard_matches_numpy():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(3.0, 2.0, size=1000)})
    scaled, stats = scale_dense(df, "x", method="standard")
    x = df["x"].to_numpy()
    assert stats["x"] == {
        "mean": pytest.approx(x.mean()),
        "std": pytest.approx(x.std()),
    }
    np.testing.assert_allclose(scaled["x"], (x - x.mean()) / x.std())
    with pytest.raises(ValueError, match="`stats` has no standard statistics"):
        scale_dense(df, ["x"], method="standard", stats={"x": {"min": 0, "max": 1}})
    with pytest.raises(ValueError, match="Received: method='robust'"):
        scale_dense(df, ["x"], method="robust")


# ----------------------------------------------------------------- example_age


def test_example_age_in_days_log1p():
    day = 86_400
    ages = example_age([0, day, 3 * day, 5 * day], reference_time=3 * day)
    np.testing.assert_allclose(ages, np.log1p([3.0, 2.0, 0.0, 0.0]), rtol=1e-6)
    assert ages.dtype == np.float32
    raw = example_age([0, day], log=False)  # reference = the latest event
    np.testing.assert_allclose(raw, [1.0, 0.0])
    hours = example_age([0], reference_time=7200, unit_seconds=3600, log=False)
    np.testing.assert_allclose(hours, [2.0])
    with pytest.raises(ValueError, match="`unit_seconds` must be > 0"):
        example_age([0], unit_seconds=0)


# ------------------------------------------------- train_val_test_split_by_time


def test_split_by_time_is_global_and_ordered():
    df = pd.DataFrame({"timestamp": [5, 1, 9, 3, 7, 2, 8, 4, 6, 0], "v": range(10)})
    train, test = train_val_test_split_by_time(df)
    assert train["timestamp"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert test["timestamp"].tolist() == [8, 9]
    parts = train_val_test_split_by_time(df, fractions=(0.6, 0.2, 0.2))
    assert [len(p) for p in parts] == [6, 2, 2]
    assert parts[0]["timestamp"].max() < parts[1]["timestamp"].min()
    with pytest.raises(ValueError, match="`fractions` must sum to 1"):
        train_val_test_split_by_time(df, fractions=(0.8, 0.1))
    with pytest.raises(ValueError, match="`fractions` must be positive"):
        train_val_test_split_by_time(df, fractions=(1.2, -0.2))
