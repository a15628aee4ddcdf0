"""The ranking protocol's data: labels, time splits, strictly-past histories."""

import os
import pathlib

import numpy as np
import pandas as pd
import pytest

from keras_rec.datasets import make_synthetic_criteo
from keras_rec.workflows import ranking_data as rd

MOVIELENS_DIR = pathlib.Path(
    os.environ.get(
        "KERAS_REC_MOVIELENS_100K",
        pathlib.Path(__file__).resolve().parents[3]
        / "shared"
        / "data"
        / "movielens-100k",
    )
)
CRITEO_DIR = MOVIELENS_DIR.parent / "criteo-sample"
needs_movielens = pytest.mark.skipif(
    not (MOVIELENS_DIR / "u.data").is_file(),
    reason=f"MovieLens 100K not found at {MOVIELENS_DIR} "
    "(set KERAS_REC_MOVIELENS_100K to its folder)",
)


def test_strictly_earlier_excludes_the_event_and_same_time_events():
    # User 1: items 10 @ t=1, 11 @ t=2, 12 @ t=2 (a tie), 13 @ t=5; user 2: one.
    user = np.array([1, 1, 1, 1, 2])
    timestamp = np.array([5, 2, 1, 2, 1])
    item = np.array([13, 12, 10, 11, 10])
    out = rd.strictly_earlier(user, timestamp, {"item_id": item}, maxlen=2)
    np.testing.assert_array_equal(
        out["item_id"],
        [
            [11, 12],  # t=5: the two most recent earlier ones, oldest first
            [10, 0],  # t=2: not its tie partner 11, not itself
            [0, 0],  # t=1: nothing earlier
            [10, 0],
            [0, 0],  # another user's events never leak in
        ],
    )


def test_time_split_rejects_too_few_rows():
    assert rd.time_split(100) == (72, 80)
    with pytest.raises(ValueError, match="Received: 2 rows"):
        rd.time_split(2)


def test_synthetic_ranking_data_is_time_split_with_din_sequences():
    data = rd.synthetic_ranking_data(seed=0, scale=0.1)
    sizes = data.sizes()
    total = sum(sizes.values())
    assert total == 6000
    n_fit, n_train = rd.time_split(total)
    assert sizes == {"train": n_fit, "validation": n_train - n_fit, "test": 1200}
    assert data.history == {"item_id": "hist_item_id", "category": "hist_category"}
    names = {c.name for c in data.columns_for("din")}
    assert {"hist_item_id", "hist_category", "item_id", "category"} <= names
    assert {c.name for c in data.columns_for("deepfm")} == set(rd.SYNTHETIC_SPARSE)
    for x, y in (data.train, data.validation, data.test):
        assert set(np.unique(y)) == {0, 1}
        assert x["hist_item_id"].shape == (len(y), rd.SYNTHETIC_HISTORY)


def test_criteo_vocabulary_comes_from_training_rows_only():
    frame = make_synthetic_criteo(n_rows=2000, seed=0)
    data = rd.criteo_ranking_data(frame, embedding_dim=4)
    n_fit, n_train = rd.time_split(2000)
    assert data.sizes() == {"train": n_fit, "validation": n_train - n_fit, "test": 400}
    assert not data.has_history
    assert len(data.feature_columns) == 13 + 26 + 13
    # Missing integers have their own bucket; missing categoricals are id 0.
    missing = frame["C3"].isna().to_numpy()
    all_x = {
        k: np.concatenate([data.train[0][k], data.validation[0][k], data.test[0][k]])
        for k in data.train[0]
    }
    if missing.any():
        assert (all_x["C3"][missing] == 0).all()
    # A value first seen in the test rows is out of vocabulary (id 0).
    train_values = set(frame["C20"][:n_train].dropna())
    new = ~frame["C20"].isin(train_values).to_numpy() & frame["C20"].notna().to_numpy()
    assert new[:n_train].sum() == 0
    assert (all_x["C20"][new] == 0).all()
    np.testing.assert_allclose(
        all_x["I1_log"][:, 0], np.log1p(np.maximum(frame["I1"].fillna(0), 0))
    )


@pytest.mark.skipif(
    not CRITEO_DIR.is_dir(), reason=f"Criteo samples not found at {CRITEO_DIR}"
)
def test_load_ranking_data_reads_the_largest_criteo_file():
    data = rd.load_ranking_data("criteo", data_dir=CRITEO_DIR)
    assert sum(data.sizes().values()) == 1000


def test_load_ranking_data_errors_name_the_argument():
    with pytest.raises(ValueError, match="dataset='netflix'"):
        rd.load_ranking_data("netflix")
    with pytest.raises(ValueError, match="data_dir=None"):
        rd.load_ranking_data("criteo")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        rd.load_ranking_data("criteo", data_dir="/nowhere")
    with pytest.raises(ValueError, match="scale=0"):
        rd.load_ranking_data("synthetic", scale=0)


@pytest.fixture(scope="module")
def movielens():
    frame, n_genres = rd.load_movielens_ctr("100k", MOVIELENS_DIR)
    data, columns = rd.movielens_ranking_data("100k", MOVIELENS_DIR)
    return frame, n_genres, data, columns


@needs_movielens
def test_movielens_ctr_labels_and_time_split(movielens):
    frame, n_genres, data, _ = movielens
    ratings = pd.read_csv(
        MOVIELENS_DIR / "u.data",
        sep="\t",
        names=["user_id", "item_id", "rating", "timestamp"],
    )
    assert len(frame) == len(ratings) == 100_000
    assert n_genres == 19
    # label = rating >= 4: 55,375 of MovieLens 100K's ratings.
    assert frame["label"].sum() == (ratings["rating"] >= 4).sum() == 55_375
    assert data.sizes() == {"train": 72_000, "validation": 8_000, "test": 20_000}
    # Globally time-ordered: each slice ends no later than the next begins.
    time = frame["timestamp"].to_numpy()
    assert (np.diff(time) >= 0).all()
    assert time[:72_000].max() <= time[72_000:80_000].min()
    assert time[72_000:80_000].max() <= time[80_000:].min()
    # The split's arrays are the frame's rows in order.
    np.testing.assert_array_equal(data.test[1], frame["label"].to_numpy()[80_000:])
    np.testing.assert_array_equal(
        data.validation[0]["item_id"], frame["item_id"].to_numpy()[72_000:80_000]
    )


@needs_movielens
def test_movielens_histories_hold_only_strictly_earlier_events(movielens):
    frame = movielens[0]
    hist = np.stack(frame["hist_item_id"].to_numpy())  # (n, 50)
    assert hist.shape == (100_000, rd.MAX_HISTORY)
    rows = np.repeat(np.arange(len(frame)), rd.MAX_HISTORY)
    items = hist.ravel()
    valid = items > 0
    pairs = pd.DataFrame(
        {
            "row": rows[valid],
            "user_id": frame["user_id"].to_numpy()[rows[valid]],
            "item_id": items[valid],
            "event_time": time_of(frame, rows[valid]),
        }
    )
    rated = frame[["user_id", "item_id", "timestamp"]]
    pairs = pairs.merge(rated, on=["user_id", "item_id"], how="left")
    # Every history item is one the same user rated, strictly before the event
    # (so never the event itself, nor anything at the same second or later).
    assert pairs["timestamp"].notna().all()
    assert (pairs["timestamp"] < pairs["event_time"]).all()
    # And the window is complete: the most recent up-to-50 earlier ratings,
    # oldest first, checked by brute force on a sample of rows.
    rng = np.random.default_rng(0)
    by_user = {u: g for u, g in rated.groupby("user_id")}
    for i in rng.choice(len(frame), 300, replace=False):
        row = frame.iloc[i]
        g = by_user[row["user_id"]]
        earlier = g[g["timestamp"] < row["timestamp"]].sort_values(
            ["timestamp", "item_id"]
        )["item_id"]
        expected = earlier.to_numpy()[-rd.MAX_HISTORY :]
        got = hist[i][hist[i] > 0]
        np.testing.assert_array_equal(got, expected)
    # Genres follow the items.
    genre = frame.drop_duplicates("item_id").set_index("item_id")["genre"]
    hist_genre = np.stack(frame["hist_genre"].to_numpy())
    np.testing.assert_array_equal(
        hist_genre[hist > 0], genre.loc[hist[hist > 0]].to_numpy()
    )


def time_of(frame, rows):
    return frame["timestamp"].to_numpy()[rows]


@needs_movielens
def test_movielens_din_columns_share_the_candidate_tables(movielens):
    data = movielens[2]
    columns = {c.name: c for c in data.columns_for("din")}
    assert data.history == {"item_id": "hist_item_id", "genre": "hist_genre"}
    assert columns["hist_item_id"].embedding_name == "item_id"
    assert columns["hist_genre"].embedding_name == "genre"
    assert columns["genres"].maxlen == rd.MAX_GENRES
    assert {c.name for c in data.columns_for("deepfm")} == {
        "user_id",
        "item_id",
        "gender",
        "age_bucket",
        "occupation",
        "zip_digit",
        "genres",
    }
