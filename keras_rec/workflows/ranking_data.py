"""The ranking protocol's data: CTR features, time splits, behaviour sequences.

One place for the preprocessing `keras-rec train deepfm|din|wdl|dcn`,
`bench/ranking_quality.py` and the examples share.

Protocol (every data set): the events are sorted globally by time; the
first 80% train and the last 20% test; the most recent 10% of the training
period is the validation slice that picks the best epoch. The test slice is
scored once, at the end.

- MovieLens as CTR: label = 1 if rating >= 4. Sparse features `user_id`,
  `item_id`, `gender`, `age_bucket` (MovieLens-1M's 7 groups), `occupation`,
  `zip_digit` (first character of the zip code); `genres` as a
  variable-length feature (up to 6, mean-pooled). DIN also gets the user's
  previous up-to-50 rated items *strictly before* the event in time
  (`hist_item_id`) and their first genres (`hist_genre`); the candidate's
  item id and first genre (`genre`) are the attention queries.
- Criteo: the 13 integer features are bucketed with the log-squared rule
  (missing values get their own bucket) and also fed as `log1p` dense
  values; the 26 categoricals are label-encoded with a vocabulary from the
  training rows (values seen fewer than `min_count` times, unseen and
  missing values share id 0). The file's row order is its time order.
- Synthetic (built-in, `make_synthetic_ctr`): user id, gender, age bucket,
  occupation, region, item id, category, price bucket, and the user's
  earlier clicks and their categories as behaviour sequences.
"""

import dataclasses
import os
import pathlib

import numpy as np
import pandas as pd

from keras_rec.datasets import encode_ids
from keras_rec.datasets import load_criteo
from keras_rec.datasets import load_movielens
from keras_rec.datasets import log_square_bucket
from keras_rec.datasets import make_synthetic_ctr
from keras_rec.datasets import pad_sequences
from keras_rec.features.columns import DenseFeat
from keras_rec.features.columns import SparseFeat
from keras_rec.features.columns import VarLenSparseFeat
from keras_rec.features.inputs import to_model_inputs

RANKING_DATASETS = ("synthetic", "movielens-100k", "movielens-1m", "criteo")
MAX_GENRES = 6
MAX_HISTORY = 50
SYNTHETIC_HISTORY = 20
# MovieLens-1M's age groups: <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+.
AGE_EDGES = (18, 25, 35, 45, 50, 56)
CRITEO_INTEGER = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATEGORICAL = tuple(f"C{i}" for i in range(1, 27))
TRAIN_FRACTION = 0.8
FIT_FRACTION = 0.9  # of the training period; the rest validates


@dataclasses.dataclass
class RankingData:
    """Feature columns and the train / validation / test inputs of a ranker.

    Attributes:
        dataset: str. The data set's name.
        feature_columns: list of feature columns every ranker reads.
        history_columns: list of the extra columns of DIN (candidate queries
            and behaviour sequences); empty when the data has no sequences.
        history: dict candidate name -> behaviour sequence name (DIN's
            `history_feature_list`), or None.
        train, validation, test: `(inputs, labels)` pairs: dict name ->
            array holding every column's input, and an int64 array of 0/1.
    """

    dataset: str
    feature_columns: list
    history_columns: list
    history: dict
    train: tuple
    validation: tuple
    test: tuple

    @property
    def has_history(self):
        return bool(self.history)

    def columns_for(self, model_name):
        """The feature columns of `model_name` (DIN adds its sequences)."""
        if model_name == "din":
            return self.feature_columns + self.history_columns
        return list(self.feature_columns)

    def sizes(self):
        return {
            name: len(part[1])
            for name, part in (
                ("train", self.train),
                ("validation", self.validation),
                ("test", self.test),
            )
        }


def time_split(num_rows, train_fraction=TRAIN_FRACTION, fit_fraction=FIT_FRACTION):
    """Row boundaries `(n_fit, n_train)` of a time-ordered table.

    Rows `[0, n_fit)` train, `[n_fit, n_train)` validate and `[n_train, n)`
    test.
    """
    n_train = int(train_fraction * num_rows)
    n_fit = int(fit_fraction * n_train)
    if n_fit < 1 or n_train - n_fit < 1 or num_rows - n_train < 1:
        raise ValueError(
            "Too few rows for a train / validation / test split. "
            f"Received: {num_rows} rows"
        )
    return n_fit, n_train


def _embedding_init(init_std):
    if init_std is None:
        return None
    return {"class_name": "RandomNormal", "config": {"stddev": init_std}}


# ----------------------------------------------------------------------
# MovieLens as CTR.


def strictly_earlier(user, timestamp, values, maxlen, keep=None):
    """Per event, `values` of the same user's events strictly earlier in time.

    Args:
        user, timestamp: int arrays `(n,)`, any order.
        values: dict name -> array `(n,)` collected into the histories.
        maxlen: int. The most recent `maxlen` earlier events are kept.
        keep: bool array `(n,)` or None. Only these events enter histories
            (e.g. positively rated ones).

    Returns:
        Dict name -> int32 array `(n, maxlen)`: oldest first, padded with 0
        after the most recent one. Events at the same time as the row's own
        event (including itself) are never in its history.
    """
    keep = np.ones(len(user), bool) if keep is None else keep
    # Ties in time are ordered by the first value (the item id), so that
    # which of them a 50-long window keeps does not depend on row order.
    order = np.lexsort((next(iter(values.values())), timestamp, user))
    order = order[keep[order]]
    # One sortable key per event: user-major, then time.
    span = int(timestamp.max()) + 1
    keys = user[order].astype(np.int64) * span + timestamp[order]
    event_keys = user.astype(np.int64) * span + timestamp
    end = np.searchsorted(keys, event_keys, side="left")  # first not-earlier
    start_of_user = np.searchsorted(keys, user.astype(np.int64) * span, side="left")
    start = np.maximum(start_of_user, end - maxlen)
    out = {}
    for name, column in values.items():
        column = column[order]
        out[name] = pad_sequences(
            [column[a:b] for a, b in zip(start, end)], maxlen=maxlen
        )
    return out


def load_movielens_ctr(
    variant="100k", data_dir=None, download=False, max_history=MAX_HISTORY
):
    """MovieLens ratings as CTR events with encoded features and histories.

    Args:
        variant: str. `"100k"` or `"1m"`.
        data_dir: str or None. Folder of the MovieLens files.
        download: bool. Fetch from the publisher when absent.
        max_history: int. Length of the behaviour sequences. Defaults to 50.

    Returns:
        `(frame, n_genres)`: one row per rating, sorted by `(timestamp,
        user_id, item_id)`, with `label`, the sparse features, `genres`
        (padded arrays of `MAX_GENRES`), `genre` (first genre) and
        `hist_item_id`, `hist_genre`, `hist_rating` (padded arrays of
        `max_history`, strictly earlier events only).
    """
    ratings, users, items = load_movielens(
        variant, data_dir=data_dir, download=download
    )
    users = users.assign(
        gender=encode_ids(users["gender"])[0],
        age_bucket=np.searchsorted(AGE_EDGES, users["age"], side="right") + 1,
        occupation=encode_ids(users["occupation"])[0],
        zip_digit=encode_ids(users["zip"].astype(str).str[:1])[0],
    )[["user_id", "gender", "age_bucket", "occupation", "zip_digit"]]
    genre_names = sorted({g for genres in items["genres"] for g in genres})
    genre_code = {g: i + 1 for i, g in enumerate(genre_names)}
    genres = [[genre_code[g] for g in gs][:MAX_GENRES] for gs in items["genres"]]
    items = pd.DataFrame(
        {
            "item_id": items["item_id"],
            "genres": list(pad_sequences(genres, maxlen=MAX_GENRES)),
            "genre": [g[0] if g else 0 for g in genres],
        }
    )
    frame = ratings.merge(users, on="user_id").merge(items, on="item_id")
    frame["label"] = (frame["rating"] >= 4).astype(np.int64)
    user = frame["user_id"].to_numpy()
    timestamp = frame["timestamp"].to_numpy()
    values = {
        "item_id": frame["item_id"].to_numpy(),
        "genre": frame["genre"].to_numpy(),
        "rating": frame["rating"].to_numpy(),
    }
    for name, array in strictly_earlier(user, timestamp, values, max_history).items():
        frame[f"hist_{name}"] = list(array)
    frame = frame.sort_values(["timestamp", "user_id", "item_id"], kind="stable")
    return frame.reset_index(drop=True), len(genre_names)


@dataclasses.dataclass
class MovieLensColumns:
    """MovieLens CTR feature columns, by role.

    Attributes:
        base: the columns of every model.
        din_extra: DIN's candidate `genre` and sequences `hist_item_id`,
            `hist_genre` (sharing the candidates' tables).
        din_history: DIN's `{candidate: sequence}` mapping.
        ratings_extra: `din_extra` plus the past ratings (`hist_rating`) and
            their constant query (`query_rating`, 5 on every row: a learned
            vector asking "which of these were rated highly", no information
            about the label).
        ratings_history: the mapping with ratings.
    """

    base: list
    din_extra: list
    din_history: dict
    ratings_extra: list
    ratings_history: dict


def movielens_ctr_columns(
    frame, n_genres, embedding_dim=8, init_std=1e-4, max_history=MAX_HISTORY
):
    """The feature columns of `load_movielens_ctr`'s frame (a `MovieLensColumns`).

    Vocabulary sizes are the largest code in `frame` plus one.

    Args:
        frame: DataFrame from `load_movielens_ctr`.
        n_genres: int. Number of genres.
        embedding_dim: int. Width of every embedding. Defaults to 8.
        init_std: float or None. Stddev of the `RandomNormal` embedding
            initializer (DeepCTR's default, 1e-4); None keeps the column's
            default. Defaults to 1e-4.
        max_history: int. Length of the behaviour sequences. Defaults to 50.
    """
    init = _embedding_init(init_std)
    n_items = int(frame["item_id"].max()) + 1

    def sparse(name, size=None, **kwargs):
        size = size or int(frame[name].max()) + 1
        if init is not None:
            kwargs["embeddings_initializer"] = init
        return SparseFeat(name, size, embedding_dim, **kwargs)

    def sequence(name, table, size, maxlen=max_history):
        return VarLenSparseFeat(sparse(name, size, embedding_name=table), maxlen)

    base = [
        sparse("user_id"),
        sparse("item_id"),
        sparse("gender"),
        sparse("age_bucket"),
        sparse("occupation"),
        sparse("zip_digit"),
        sequence("genres", "genre", n_genres + 1, MAX_GENRES),
    ]
    # The candidate's first genre is the query of the genre sequence.
    din_extra = [
        sparse("genre", n_genres + 1),
        sequence("hist_item_id", "item_id", n_items),
        sequence("hist_genre", "genre", n_genres + 1),
    ]
    din_history = {"item_id": "hist_item_id", "genre": "hist_genre"}
    ratings_extra = din_extra + [
        sparse("query_rating", 6, embedding_name="rating"),
        sequence("hist_rating", "rating", 6),
    ]
    ratings_history = {**din_history, "query_rating": "hist_rating"}
    return MovieLensColumns(
        base, din_extra, din_history, ratings_extra, ratings_history
    )


def split_frame(frame, columns):
    """Time-ordered `frame` -> `[(inputs, labels)]` for fit / validation / test."""
    n_fit, n_train = time_split(len(frame))
    parts = [frame.iloc[:n_fit], frame.iloc[n_fit:n_train], frame.iloc[n_train:]]
    return [(to_model_inputs(p, columns), p["label"].to_numpy()) for p in parts]


def movielens_ranking_data(
    variant="100k",
    data_dir=None,
    download=False,
    embedding_dim=8,
    init_std=1e-4,
    with_ratings=False,
):
    """`RankingData` of MovieLens as CTR (see the module docstring).

    Args:
        with_ratings: bool. DIN's history also holds the past ratings
            (`hist_rating`, queried by the constant `query_rating`).
            Defaults to False.

    Returns:
        `(RankingData, MovieLensColumns)`.
    """
    frame, n_genres = load_movielens_ctr(variant, data_dir, download)
    columns = movielens_ctr_columns(frame, n_genres, embedding_dim, init_std)
    frame["query_rating"] = 5
    extra = columns.ratings_extra if with_ratings else columns.din_extra
    history = columns.ratings_history if with_ratings else columns.din_history
    fit, validation, test = split_frame(frame, columns.base + extra)
    data = RankingData(
        dataset=f"movielens-{variant}",
        feature_columns=columns.base,
        history_columns=extra,
        history=history,
        train=fit,
        validation=validation,
        test=test,
    )
    return data, columns


# ----------------------------------------------------------------------
# Criteo.


def find_criteo_file(path):
    """The Criteo file at `path`, or the largest .txt / .tsv / .csv file in it."""
    path = pathlib.Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(
            f"No Criteo file or folder at {os.fspath(path)!r}. "
            f"Received: data_dir={os.fspath(path)!r}"
        )
    files = sorted(path.glob("*.txt")) + sorted(path.glob("*.tsv"))
    files += sorted(path.glob("*.csv"))
    if not files:
        raise FileNotFoundError(
            f"No .txt / .tsv / .csv file in {os.fspath(path)!r}. "
            f"Received: data_dir={os.fspath(path)!r}"
        )
    return max(files, key=lambda f: f.stat().st_size)  # the largest


def encode_criteo(frame, n_train, min_count=5):
    """Sparse ids (vocabulary from the first `n_train` rows) and log1p dense values.

    Args:
        frame: DataFrame with `I1..I13`, `C1..C26` (as from `load_criteo`).
        n_train: int. Rows whose values make the vocabularies.
        min_count: int. Values seen fewer times there share id 0 with
            unseen and missing ones. Defaults to 5.

    Returns:
        Dict name -> array: `I1..I13` (bucket ids), `C1..C26` (ids) and
        `I1_log..I13_log` (float).
    """
    data = {}
    for name in CRITEO_INTEGER + CRITEO_CATEGORICAL:
        values = frame[name]
        if name in CRITEO_INTEGER:
            values = log_square_bucket(values)
        values = pd.Series(np.asarray(values))
        counts = values[:n_train].value_counts()  # missing values left out
        vocabulary = counts.index[counts >= min_count].to_numpy()
        data[name] = encode_ids(values, vocabulary)[0]
    for name in CRITEO_INTEGER:
        data[f"{name}_log"] = np.log1p(np.maximum(frame[name].fillna(0.0), 0.0))
    return data


def criteo_columns(data, embedding_dim=8, init_std=None):
    """Sparse columns of the 39 encoded features plus the 13 dense `log1p` ones."""
    init = _embedding_init(init_std)
    kwargs = {} if init is None else {"embeddings_initializer": init}
    return [
        SparseFeat(name, int(data[name].max()) + 1, embedding_dim, **kwargs)
        for name in CRITEO_INTEGER + CRITEO_CATEGORICAL
    ] + [DenseFeat(f"{name}_log") for name in CRITEO_INTEGER]


def criteo_min_count(n_train, min_count=5):
    # Tiny samples would lose almost every value to the rare bucket.
    return min_count if n_train >= 10_000 else 1


def criteo_ranking_data(frame, embedding_dim=8, init_std=None, min_count=5):
    """`RankingData` of a Criteo table in time (file) order."""
    n_fit, n_train = time_split(len(frame))
    data = encode_criteo(frame, n_train, criteo_min_count(n_train, min_count))
    columns = criteo_columns(data, embedding_dim, init_std)
    x = to_model_inputs(data, columns)
    y = frame["label"].to_numpy()
    bounds = [(0, n_fit), (n_fit, n_train), (n_train, len(y))]
    parts = [({k: v[a:b] for k, v in x.items()}, y[a:b]) for a, b in bounds]
    return RankingData("criteo", columns, [], None, *parts)


# ----------------------------------------------------------------------
# Synthetic CTR.

SYNTHETIC_SPARSE = (
    "user_id",
    "gender",
    "age_bucket",
    "occupation",
    "region",
    "item_id",
    "category",
    "price_bucket",
)
SYNTHETIC_HISTORY_FEATURES = ("item_id", "category")


def synthetic_ctr_frame(seed=0, scale=1.0, history_length=SYNTHETIC_HISTORY):
    """The built-in CTR impressions joined with user and item features.

    `scale` 1 is 2,000 users, 1,000 items and 60,000 impressions. The frame
    is sorted by time (stable), so the split is by time.
    """
    if not scale > 0:
        raise ValueError(f"`scale` must be > 0. Received: scale={scale!r}")
    n_users = max(10, round(2000 * scale))
    impressions, users, items = make_synthetic_ctr(
        n_users=n_users,
        n_items=max(20, round(1000 * min(scale, 50.0))),
        n_impressions=max(n_users, round(60_000 * scale)),
        history_length=history_length,
        seed=seed,
    )
    frame = impressions.merge(users, on="user_id").merge(items, on="item_id")
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def synthetic_columns(
    frame, embedding_dim=8, init_std=None, history_length=SYNTHETIC_HISTORY
):
    """`(base, din_extra, history)` columns of `synthetic_ctr_frame`'s frame."""
    init = _embedding_init(init_std)
    kwargs = {} if init is None else {"embeddings_initializer": init}
    base = [
        SparseFeat(n, int(frame[n].max()) + 1, embedding_dim, **kwargs)
        for n in SYNTHETIC_SPARSE
    ]
    size = {c.name: c.vocabulary_size for c in base}
    extra = [
        VarLenSparseFeat(
            SparseFeat(
                f"hist_{name}", size[name], embedding_dim, embedding_name=name, **kwargs
            ),
            history_length,
        )
        for name in SYNTHETIC_HISTORY_FEATURES
    ]
    history = {name: f"hist_{name}" for name in SYNTHETIC_HISTORY_FEATURES}
    return base, extra, history


def synthetic_ranking_data(seed=0, scale=1.0, embedding_dim=8, init_std=None):
    """`RankingData` of the built-in synthetic CTR impressions."""
    frame = synthetic_ctr_frame(seed, scale)
    base, extra, history = synthetic_columns(frame, embedding_dim, init_std)
    fit, validation, test = split_frame(frame, base + extra)
    return RankingData("synthetic", base, extra, history, fit, validation, test)


# ----------------------------------------------------------------------
# By name.


def load_ranking_data(
    dataset,
    data_dir=None,
    download=False,
    embedding_dim=8,
    init_std=1e-4,
    seed=0,
    scale=1.0,
    nrows=None,
):
    """`RankingData` for a data set name of `RANKING_DATASETS`.

    Args:
        dataset: str. `"synthetic"`, `"movielens-100k"`, `"movielens-1m"` or
            `"criteo"`.
        data_dir: str or None. Folder of the MovieLens files, or the Criteo
            file (or a folder holding it; the largest file is read).
        download: bool. Fetch MovieLens from the publisher when absent.
        embedding_dim: int. Width of every embedding. Defaults to 8.
        init_std: float or None. Stddev of the embedding initializer.
            Defaults to 1e-4.
        seed: int. Seed of the synthetic data. Defaults to 0.
        scale: float. Size of the synthetic data. Defaults to 1.
        nrows: int or None. Criteo rows to read. Defaults to all.
    """
    if dataset == "synthetic":
        return synthetic_ranking_data(seed, scale, embedding_dim, init_std)
    if dataset in ("movielens-100k", "movielens-1m"):
        variant = dataset.split("-")[1]
        return movielens_ranking_data(
            variant, data_dir, download, embedding_dim, init_std
        )[0]
    if dataset == "criteo":
        if data_dir is None:
            raise ValueError(
                "`--dataset criteo` needs `--data-dir`: the Criteo file (Kaggle "
                "train.txt or DeepCTR CSV) or a folder holding it. "
                "Received: data_dir=None"
            )
        frame = load_criteo(find_criteo_file(data_dir), nrows=nrows)
        return criteo_ranking_data(frame, embedding_dim, init_std)
    raise ValueError(
        f"`dataset` must be one of {RANKING_DATASETS}. Received: dataset={dataset!r}"
    )
