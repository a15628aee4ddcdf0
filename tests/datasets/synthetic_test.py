"""Tests of the synthetic data sets: contract, determinism and planted structure."""

import time

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

from keras_rec.datasets import make_synthetic
from keras_rec.datasets import make_synthetic_criteo
from keras_rec.datasets import make_synthetic_ctr
from keras_rec.datasets import pad_sequences
from keras_rec.datasets import synthetic
from keras_rec.datasets import train_val_test_split_by_time


@pytest.fixture(scope="module")
def default_set():
    return make_synthetic()


@pytest.fixture(scope="module")
def ctr_set():
    return make_synthetic_ctr()


# ---------------------------------------------------------------- make_synthetic


def test_synthetic_contract(default_set):
    interactions, users, items = default_set
    assert list(interactions.columns) == ["user_id", "item_id", "timestamp"]
    assert all(dt == np.int64 for dt in interactions.dtypes)
    assert len(interactions) == 60_000
    assert interactions["user_id"].min() == 1
    assert interactions["user_id"].max() == 2000
    assert interactions["item_id"].min() >= 1
    assert interactions["item_id"].max() <= 1000
    # Sorted by (user, time), strictly increasing time within a user.
    assert interactions["user_id"].is_monotonic_increasing
    same_user = np.diff(interactions["user_id"].to_numpy()) == 0
    assert np.all(np.diff(interactions["timestamp"].to_numpy())[same_user] > 0)
    # Each (user, item) once, as in MovieLens.
    assert not interactions.duplicated(["user_id", "item_id"]).any()
    sizes = interactions.groupby("user_id").size()
    assert sizes.min() == 5 and sizes.max() <= 500

    assert list(users.columns) == [
        "user_id",
        "gender",
        "age_bucket",
        "occupation",
        "region",
    ]
    np.testing.assert_array_equal(users["user_id"], np.arange(1, 2001))
    for column, cardinality in [
        ("gender", 2),
        ("age_bucket", 7),
        ("occupation", 21),
        ("region", 10),
    ]:
        assert users[column].min() >= 1
        assert users[column].max() <= cardinality
        assert users[column].nunique() == cardinality

    assert list(items.columns) == ["item_id", "category", "price_bucket", "popularity"]
    np.testing.assert_array_equal(items["item_id"], np.arange(1, 1001))
    assert sorted(items["category"].unique()) == list(range(1, 21))
    assert sorted(items["price_bucket"].unique()) == [1, 2, 3, 4, 5]
    assert items["popularity"].max() == 1.0
    # Zipf weight rank^-1: sorted weights are exactly 1/rank.
    np.testing.assert_allclose(
        np.sort(items["popularity"].to_numpy())[::-1], 1.0 / np.arange(1, 1001)
    )


def test_synthetic_is_deterministic_per_seed():
    kwargs = dict(n_users=60, n_items=80, n_interactions=900)
    a = make_synthetic(seed=3, **kwargs)
    b = make_synthetic(seed=3, **kwargs)
    c = make_synthetic(seed=4, **kwargs)
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)
    assert not a[0]["item_id"].equals(c[0]["item_id"])
    assert not a[1].equals(c[1])
    assert len(c[0]) == 900


def test_synthetic_popularity_is_zipf_like(default_set):
    interactions, _, _ = default_set
    counts = np.sort(interactions["item_id"].value_counts().to_numpy())[::-1]
    total = counts.sum()
    # Measured on seed 0: the top 10% of items get 34% of the rows, the
    # bottom half 21% (uniform: 10% and 50%).
    assert counts[:100].sum() / total > 0.30
    assert counts[-500:].sum() / total < 0.25
    # The head's rank-frequency is a power law with slope about -0.41 (the
    # planted rank^-0.7 softened by the taste terms and the no-repeat rule).
    ranks = np.arange(1, 101)
    slope = np.polyfit(np.log(ranks), np.log(counts[:100]), 1)[0]
    assert -0.8 < slope < -0.25


def _hit_rate_at_50(scores, seen, targets):
    scores = scores.astype(np.float64).copy()
    scores[seen] = -np.inf
    top = np.argpartition(-scores, 50, axis=1)[:, :50]
    return float(np.mean((top == targets[:, None]).any(axis=1)))


def test_history_beats_popularity_on_leave_last_out(default_set):
    interactions, users, _ = default_set
    n_users, n_items = 2000, 1000
    # Leave-last-out: rows are sorted by (user, time), so the last row per
    # user is the target.
    is_last = np.r_[np.diff(interactions["user_id"].to_numpy()) != 0, True]
    train = interactions[~is_last]
    targets = interactions.loc[is_last, "item_id"].to_numpy() - 1
    seen = np.zeros((n_users, n_items), dtype=bool)
    seen[train["user_id"] - 1, train["item_id"] - 1] = True
    pop = np.bincount(train["item_id"] - 1, minlength=n_items).astype(np.float64)

    pop_hr = _hit_rate_at_50(np.tile(pop, (n_users, 1)), seen, targets)

    # Demographic popularity: counts within the user's (gender, age) group.
    group = (users["gender"] * 10 + users["age_bucket"]).to_numpy()
    group_scores = np.zeros((n_users, n_items))
    for g in np.unique(group):
        members = group == g
        group_scores[members] = seen[members].sum(axis=0) + 0.01 * pop
    group_hr = _hit_rate_at_50(group_scores, seen, targets)

    # Item-item co-occurrence with the user's last training item.
    x = seen.astype(np.float64)
    cooc = x.T @ x
    np.fill_diagonal(cooc, 0.0)
    last_item = train.groupby("user_id")["item_id"].last().to_numpy() - 1
    history_hr = _hit_rate_at_50(cooc[last_item] + 1e-3 * pop, seen, targets)

    # Measured on seed 0: popularity 0.234, (gender, age) popularity 0.321,
    # co-occurrence with the last item 0.486, true model 0.693.
    assert 0.15 < pop_hr < 0.30
    assert group_hr > pop_hr + 0.04
    assert history_hr > pop_hr + 0.15
    assert history_hr < 0.65


def test_attributes_predict_interests(default_set):
    interactions, users, items = default_set
    merged = interactions.merge(users, on="user_id").merge(items, on="item_id")
    # Category shares by gender differ (total variation distance 0.20 on
    # seed 0), far more than by chance (a shuffled gender gives 0.03).
    shares = pd.crosstab(merged["gender"], merged["category"], normalize="index")
    tv = 0.5 * np.abs(shares.iloc[0] - shares.iloc[1]).sum()
    assert tv > 0.12


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_users=0), "`n_users` must be >= 1. Received: n_users=0"),
        (dict(n_items=1), "`n_items` must be >= 2. Received: n_items=1"),
        (
            dict(n_users=10, n_interactions=5),
            "`n_interactions` must be >= 10. Received: n_interactions=5",
        ),
        (
            dict(n_users=10, n_items=10, n_interactions=60),
            "Received: n_interactions=60",
        ),
        (dict(seed=-1), "`seed` must be >= 0. Received: seed=-1"),
        (dict(n_categories=0), "Received: n_categories=0"),
    ],
)
def test_synthetic_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as info:
        make_synthetic(**kwargs)
    assert message in str(info.value)


def test_synthetic_rejects_non_integers():
    with pytest.raises(TypeError, match="`n_users` must be an integer"):
        make_synthetic(n_users=2.5)
    with pytest.raises(TypeError, match="Received: seed=True"):
        make_synthetic(seed=True)


def test_synthetic_small_edge_cases():
    interactions, users, items = make_synthetic(
        n_users=1, n_items=2, n_interactions=1, n_categories=5
    )
    assert len(interactions) == 1 and len(users) == 1 and len(items) == 2
    interactions, _, _ = make_synthetic(n_users=3, n_items=20, n_interactions=30)
    assert interactions.groupby("user_id").size().max() <= 10


# ------------------------------------------------------------ make_synthetic_ctr


def test_ctr_contract(ctr_set):
    impressions, users, items = ctr_set
    assert list(impressions.columns) == [
        "user_id",
        "item_id",
        "timestamp",
        "label",
        "hist_item_id",
        "hist_category",
    ]
    assert len(impressions) == 100_000
    assert set(impressions["label"].unique()) == {0, 1}
    # Measured on seed 0: 27.0% positives.
    assert 0.20 < impressions["label"].mean() < 0.30
    assert impressions["user_id"].is_monotonic_increasing
    same_user = np.diff(impressions["user_id"].to_numpy()) == 0
    assert np.all(np.diff(impressions["timestamp"].to_numpy())[same_user] > 0)
    assert len(users) == 2000 and len(items) == 1000
    lengths = impressions["hist_item_id"].map(len)
    assert lengths.max() == 20 and lengths.min() == 0
    np.testing.assert_array_equal(lengths, impressions["hist_category"].map(len))


def test_ctr_history_is_exactly_the_earlier_clicks(ctr_set):
    impressions, _, items = ctr_set
    category = dict(zip(items["item_id"], items["category"]))
    for user in (1, 2, 77, 1500, 2000):
        rows = impressions[impressions["user_id"] == user]
        clicks = []  # (timestamp, item) of this user's clicks so far
        for row in rows.itertuples():
            expected = [item for t, item in clicks if t < row.timestamp][-20:]
            assert row.hist_item_id.tolist() == expected
            assert row.hist_category.tolist() == [category[i] for i in expected]
            if row.label == 1:
                clicks.append((row.timestamp, row.item_id))


def _auc_of_logistic_regression(train, test, columns, dense=()):
    encoder = OneHotEncoder(handle_unknown="ignore")
    x_train = encoder.fit_transform(train[columns])
    x_test = encoder.transform(test[columns])
    if dense:
        x_train = sparse.hstack([x_train, train[list(dense)].to_numpy()]).tocsr()
        x_test = sparse.hstack([x_test, test[list(dense)].to_numpy()]).tocsr()
    # One BLAS thread: small products on many threads only spin.
    with threadpool_limits(1):
        model = LogisticRegression(C=0.5, max_iter=2000)
        model.fit(x_train, train["label"])
    return roc_auc_score(test["label"], model.predict_proba(x_test)[:, 1])


def test_ctr_interactions_and_history_carry_signal(ctr_set):
    impressions, users, items = ctr_set
    _, _, _, labels, truth = synthetic._ctr_arrays(2000, 1000, 100_000, 20, 16, 0, 20)
    np.testing.assert_array_equal(labels, impressions["label"])
    frame = impressions.assign(
        logit=truth["logit"],
        logit_without_history=truth["logit"] - truth["history"] - truth["topic"],
    )
    frame = frame.merge(users, on="user_id").merge(items, on="item_id")
    frame["gender_x_category"] = frame["gender"] * 100 + frame["category"]
    frame["age_x_price"] = frame["age_bucket"] * 10 + frame["price_bucket"]
    # Share of the last 5 clicks in the candidate's category (0 = padding).
    recent = pad_sequences(frame["hist_category"], maxlen=5)
    same = (recent == frame["category"].to_numpy()[:, None]).sum(axis=1)
    n_recent = (recent != 0).sum(axis=1)
    frame["same_category_share"] = same / np.maximum(n_recent, 1)
    frame["has_history"] = (n_recent > 0).astype(np.float64)
    train, test = train_val_test_split_by_time(frame, fractions=(0.8, 0.2))

    base = [
        "user_id",
        "item_id",
        "gender",
        "age_bucket",
        "occupation",
        "region",
        "category",
        "price_bucket",
    ]
    crosses = base + ["gender_x_category", "age_x_price"]
    linear = _auc_of_logistic_regression(train, test, base)
    crossed = _auc_of_logistic_regression(train, test, crosses)
    with_history = _auc_of_logistic_regression(
        train, test, crosses, dense=("same_category_share", "has_history")
    )
    oracle = roc_auc_score(test["label"], test["logit"])
    oracle_without_history = roc_auc_score(test["label"], test["logit_without_history"])

    # Measured on seed 0: LR 0.692, + crosses 0.798, + history share 0.843,
    # oracle without history 0.800, oracle 0.868.
    assert oracle > linear + 0.10  # room for DeepFM over a linear model
    assert crossed > linear + 0.05  # the planted second-order terms
    assert with_history > crossed + 0.025  # room for DIN over no history
    assert oracle > oracle_without_history + 0.03
    assert oracle > with_history


def test_ctr_deterministic_and_validated():
    kwargs = dict(n_users=30, n_items=50, n_impressions=600, history_length=4)
    a = make_synthetic_ctr(seed=1, **kwargs)[0]
    b = make_synthetic_ctr(seed=1, **kwargs)[0]
    c = make_synthetic_ctr(seed=2, **kwargs)[0]
    pd.testing.assert_frame_equal(a, b)
    assert not a["label"].equals(c["label"])
    assert a["hist_item_id"].map(len).max() == 4
    with pytest.raises(ValueError, match="Received: history_length=0"):
        make_synthetic_ctr(history_length=0)
    with pytest.raises(ValueError, match="Received: n_impressions=5"):
        make_synthetic_ctr(n_users=10, n_impressions=5)


# --------------------------------------------------------- make_synthetic_criteo


def test_criteo_like_schema_and_rates():
    frame = make_synthetic_criteo(n_rows=200_000, seed=0)
    expected = ["label"] + [f"I{i}" for i in range(1, 14)]
    expected += [f"C{i}" for i in range(1, 27)]
    assert list(frame.columns) == expected
    assert frame["label"].dtype == np.int64
    assert abs(frame["label"].mean() - 0.25) < 0.01
    dense = frame[[f"I{i}" for i in range(1, 14)]]
    assert all(dt == np.float64 for dt in dense.dtypes)
    np.testing.assert_allclose(
        dense.isna().mean().to_numpy(), synthetic._CRITEO_MISSING_RATES, atol=0.01
    )
    assert dense["I2"].min() == -3 and dense.drop(columns="I2").min().min() == 0
    vocab = synthetic._criteo_schema()
    assert vocab.min() >= 10 and vocab.max() <= 100_000
    for j in range(26):
        codes = frame[f"C{j + 1}"].to_numpy()
        assert codes.dtype == np.int64
        assert codes.min() >= 0 and codes.max() <= vocab[j]
    # Zipf-like: in the largest vocabulary the top code alone holds ~8% of
    # the present values and the top 1% of codes over half.
    big = int(np.argmax(vocab))
    counts = frame[f"C{big + 1}"].value_counts().to_numpy()
    assert 0.04 < counts[0] / counts.sum() < 0.15
    assert counts[: vocab[big] // 100].sum() / counts.sum() > 0.5


def test_criteo_like_label_depends_on_features():
    frame = make_synthetic_criteo(n_rows=100_000, seed=1)
    # The planted I1-missingness effect: fewer clicks when I1 is missing.
    rate_missing = frame.loc[frame["I1"].isna(), "label"].mean()
    rate_present = frame.loc[frame["I1"].notna(), "label"].mean()
    assert rate_present - rate_missing > 0.05


def test_criteo_like_deterministic_and_fast():
    a = make_synthetic_criteo(n_rows=5000, seed=7)
    pd.testing.assert_frame_equal(a, make_synthetic_criteo(n_rows=5000, seed=7))
    assert not a.equals(make_synthetic_criteo(n_rows=5000, seed=8))
    start = time.process_time()
    frame = make_synthetic_criteo()
    elapsed = time.process_time() - start
    assert frame.shape == (1_000_000, 40)
    assert elapsed < 10.0  # about 2.5 s of CPU here
    with pytest.raises(ValueError, match="`n_rows` must be >= 1. Received: n_rows=0"):
        make_synthetic_criteo(n_rows=0)
