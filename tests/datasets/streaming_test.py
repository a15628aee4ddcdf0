"""Tests of the streaming pipelines against the in-memory path (`to_model_inputs`)."""

import dataclasses
import os
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from keras_rec.datasets import LOG_SQUARE_MISSING
from keras_rec.datasets import build_vocabularies
from keras_rec.datasets import feature_columns_from_vocabularies
from keras_rec.datasets import log_square_bucket
from keras_rec.datasets import make_dataset
from keras_rec.datasets import tf_log_square_bucket
from keras_rec.datasets import write_tfrecord_shards
from keras_rec.features import DenseFeat
from keras_rec.features import SparseFeat
from keras_rec.features import to_model_inputs
from keras_rec.models import DeepFM

N_ROWS = 300
MAXLEN = 4
DENSE_FILL = -1.0
VOCABULARY_SPEC = {
    "user_id": ["user_id"],
    "item_id": ["item_id", "hist_item_id"],
    "I1": ["I1"],
}


def _frame():
    """Raw rows: string and integer raw ids, encoded ids, NaN dense values,
    2-d vectors, histories (some empty, some longer than MAXLEN), a Criteo-like
    count column and a label that depends on `cat`."""
    rng = np.random.default_rng(0)
    users = np.array([f"u{i}" for i in rng.zipf(1.5, N_ROWS) % 40], dtype=object)
    users[[5, 77]] = None
    cat = rng.integers(1, 10, N_ROWS)
    price = rng.normal(size=N_ROWS)
    price[rng.random(N_ROWS) < 0.1] = np.nan
    counts = np.floor(rng.lognormal(2.0, 2.0, N_ROWS))
    counts[rng.random(N_ROWS) < 0.2] = np.nan
    return pd.DataFrame(
        {
            "label": (cat <= 4).astype(np.int64),
            "user_id": users,
            "item_id": 1000 + rng.zipf(1.3, N_ROWS) % 60,
            "cat": cat,
            "price": price,
            "vec": [rng.normal(size=2) for _ in range(N_ROWS)],
            "hist_item_id": [
                list(1000 + rng.integers(0, 80, rng.integers(0, 7)))
                for _ in range(N_ROWS)
            ],
            "I1": counts,
        }
    )


@pytest.fixture(autouse=True)
def _quiet_end_of_stream():
    # Keras warns whenever a dataset of unknown length ends, i.e. after
    # every pass over a stream.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Your input ran out of data")
        yield


def _join(values):
    return "|".join(str(v) for v in values)


@pytest.fixture(scope="module")
def frame():
    return _frame()


@pytest.fixture(scope="module")
def shards(frame, tmp_path_factory):
    """The frame as 3 CSV shards, 2 Parquet shards and 2 TFRecord shards."""
    root = tmp_path_factory.mktemp("shards")
    text = frame.assign(
        hist_item_id=frame["hist_item_id"].map(_join),
        vec=frame["vec"].map(_join),
    )
    csv_paths = []
    for i, part in enumerate(np.array_split(np.arange(N_ROWS), 3)):
        path = root / f"part-{i}.csv"
        text.iloc[part].to_csv(path, index=False)
        csv_paths.append(str(path))
    parquet_paths = []
    try:
        import pyarrow  # noqa: F401

        for i, part in enumerate(np.array_split(np.arange(N_ROWS), 2)):
            path = root / f"part-{i}.parquet"
            frame.iloc[part].to_parquet(path, index=False)
            parquet_paths.append(str(path))
    except ImportError:
        pass
    # TFRecord shards store feature values: the count column is bucketed first.
    bucketed = frame.assign(I1=log_square_bucket(frame["I1"]))
    tfrecord_paths = write_tfrecord_shards(
        (bucketed.iloc[i : i + 100] for i in range(0, N_ROWS, 100)),
        root / "tfrecord",
        _columns(_reference_vocabularies(frame)),
        label="label",
        rows_per_shard=150,
    )
    return {"csv": csv_paths, "parquet": parquet_paths, "tfrecord": tfrecord_paths}


def _paths(shards, file_format):
    if not shards[file_format]:
        pytest.skip("pyarrow is not installed")
    return shards[file_format]


def _transforms(file_format):
    return None if file_format == "tfrecord" else {"I1": "log_square_bucket"}


def _sorted_vocabulary(values):
    counts = pd.Series(values).dropna().value_counts()
    return sorted(counts.index.tolist(), key=lambda v: (-counts[v], v))


def _reference_vocabularies(frame):
    """The same vocabularies from pandas on the whole frame."""
    items = list(frame["item_id"]) + [v for h in frame["hist_item_id"] for v in h]
    return {
        "user_id": _sorted_vocabulary(frame["user_id"]),
        "item_id": _sorted_vocabulary([int(v) for v in items]),
        "I1": _sorted_vocabulary(log_square_bucket(frame["I1"]).tolist()),
    }


def _columns(vocabularies):
    columns = feature_columns_from_vocabularies(
        vocabularies,
        embedding_dim=4,
        sequences={"hist_item_id": MAXLEN},
        shared={"hist_item_id": "item_id"},
    )
    columns[-1] = dataclasses.replace(columns[-1], length_name="hist_len")
    return columns + [
        SparseFeat("cat", vocabulary_size=10, embedding_dim=4),
        DenseFeat("price"),
        DenseFeat("vec", dimension=2),
    ]


def _in_memory(frame, columns):
    """What the in-memory path feeds the model for the same rows."""
    prepared = frame.assign(
        price=frame["price"].fillna(DENSE_FILL),
        I1=log_square_bucket(frame["I1"]),
        vec=list(np.stack(frame["vec"])),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # histories longer than MAXLEN
        return to_model_inputs(prepared, columns)


def _collect(dataset):
    """Concatenates the batches of a `(features, label)` dataset."""
    parts = list(dataset.as_numpy_iterator())
    features = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    return features, np.concatenate([p[1] for p in parts])


def _as_str(array):
    return np.vectorize(
        lambda v: v.decode() if isinstance(v, bytes) else v, otypes=[object]
    )(array)


# ------------------------------------------------------------- vocabularies
@pytest.mark.parametrize("file_format", ["csv", "parquet", "tfrecord"])
def test_one_pass_vocabularies_equal_pandas_on_the_concatenated_data(
    frame, shards, file_format
):
    vocabularies = build_vocabularies(
        _paths(shards, file_format),
        VOCABULARY_SPEC,
        file_format=file_format,
        chunksize=10,  # many chunks: partial counts are merged along the way
        sequence_columns=["hist_item_id"],
        transforms=_transforms(file_format),
    )
    expected = _reference_vocabularies(frame)
    assert vocabularies == expected
    assert isinstance(vocabularies["user_id"][0], str)
    assert all(type(v) is int for v in vocabularies["item_id"] + vocabularies["I1"])
    # The bucket of missing counts and the count-0 bucket are real values.
    assert LOG_SQUARE_MISSING in vocabularies["I1"] and 0 in vocabularies["I1"]


def test_min_count_and_max_size_cut_the_sorted_vocabulary(frame, shards):
    full = _reference_vocabularies(frame)["user_id"]
    counts = frame["user_id"].value_counts()
    vocabularies = build_vocabularies(shards["csv"], ["user_id"], min_count=3)
    assert vocabularies["user_id"] == [v for v in full if counts[v] >= 3]
    vocabularies = build_vocabularies(shards["csv"], ["user_id"], max_size=5)
    assert vocabularies["user_id"] == full[:5]


# ---------------------------------------------- streaming == in-memory path
@pytest.mark.parametrize("file_format", ["csv", "parquet", "tfrecord"])
def test_streamed_batches_equal_to_model_inputs(frame, shards, file_format):
    columns = _columns(_reference_vocabularies(frame))
    dataset = make_dataset(
        _paths(shards, file_format),
        columns,
        label="label",
        file_format=file_format,
        batch_size=64,
        shuffle_buffer=0,
        dense_fill=DENSE_FILL,
        transforms=_transforms(file_format),
    )
    features, labels = _collect(dataset)
    expected = _in_memory(frame, columns)
    assert sorted(features) == sorted(expected)
    for name, values in expected.items():
        assert features[name].shape == values.shape, name
        if values.dtype == object:
            np.testing.assert_array_equal(_as_str(features[name]), values, name)
        else:
            assert features[name].dtype == values.dtype, name
            np.testing.assert_array_equal(features[name], values, name)
    np.testing.assert_array_equal(labels, frame["label"].to_numpy(np.float32))
    # Spot checks of the rules: last MAXLEN items kept, padded at the end.
    row = next(i for i, h in enumerate(frame["hist_item_id"]) if len(h) > MAXLEN)
    assert features["hist_item_id"][row].tolist() == [
        int(v) for v in frame["hist_item_id"][row][-MAXLEN:]
    ]
    row = next(i for i, h in enumerate(frame["hist_item_id"]) if len(h) == 0)
    assert features["hist_item_id"][row].tolist() == [0] * MAXLEN
    assert features["hist_len"][row] == 0
    assert np.all(features["price"][frame["price"].isna().to_numpy()] == DENSE_FILL)


@pytest.fixture(scope="module")
def untrained_deepfm(frame):
    columns = _columns(_reference_vocabularies(frame))
    return DeepFM(columns, columns, dnn_hidden_units=(8,), seed=3), columns


@pytest.mark.parametrize("file_format", ["csv", "parquet", "tfrecord"])
def test_deepfm_predicts_the_same_from_files_and_from_memory(
    frame, shards, untrained_deepfm, file_format
):
    model, columns = untrained_deepfm
    dataset = make_dataset(
        _paths(shards, file_format),
        columns,
        file_format=file_format,
        batch_size=64,
        shuffle_buffer=None,
        dense_fill=DENSE_FILL,
        transforms=_transforms(file_format),
    )
    streamed = model.predict(dataset, verbose=0)
    inputs = _in_memory(frame, columns)
    inputs["user_id"] = tf.constant(inputs["user_id"].astype(str))
    in_memory = model.predict(inputs, batch_size=64, verbose=0)
    assert streamed.shape == (N_ROWS, 1)
    np.testing.assert_array_equal(streamed, in_memory)
    assert np.std(streamed) > 0


def test_model_fit_on_a_streamed_dataset_lowers_the_loss(frame, shards):
    columns = _columns(_reference_vocabularies(frame))
    model = DeepFM(columns, columns, dnn_hidden_units=(8,), seed=3)
    model.compile(keras.optimizers.Adam(0.02), "binary_crossentropy")
    dataset = make_dataset(
        shards["csv"],
        columns,
        label="label",
        batch_size=32,
        shuffle_buffer=100,
        seed=0,
        transforms={"I1": "log_square_bucket"},
    )
    # `shuffle=False`: the dataset shuffles itself (Keras would only warn).
    history = model.fit(dataset, epochs=2, verbose=0, shuffle=False)
    first, second = history.history["loss"]
    assert second < first - 0.05, history.history["loss"]
    # The label is `cat <= 4`: the trained model separates the classes.
    ordered = make_dataset(
        shards["csv"],
        columns,
        shuffle_buffer=None,
        transforms={"I1": "log_square_bucket"},
    )
    scores = model.predict(ordered, verbose=0)[:, 0]
    positive = frame["label"].to_numpy() == 1
    assert scores[positive].mean() > scores[~positive].mean() + 0.2


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_string_sequences_weights_and_lengths_equal_to_model_inputs(
    tmp_path, file_format
):
    frame = pd.DataFrame(
        {
            "tags": [["a", "b"], [], ["c", "a", "b", "d"], ["zz"]],
            "tag_weight": [[0.5, 0.25], [], [1.0, 2.0, 3.0, 4.0], [8.0]],
            "code": ["12", "7", None, "12"],  # digits, but typed as strings
        }
    )
    path = tmp_path / f"part.{file_format}"
    if file_format == "csv":
        frame.assign(
            tags=frame["tags"].map(_join), tag_weight=frame["tag_weight"].map(_join)
        ).to_csv(path, index=False)
    else:
        pytest.importorskip("pyarrow")
        frame.to_parquet(path, index=False)
    vocabularies = build_vocabularies(
        [path], ["tags", "code"], file_format=file_format, sequence_columns=["tags"]
    )
    assert vocabularies["tags"] == ["a", "b", "c", "d", "zz"]
    # CSV cells are text: integer literals make an integer vocabulary. A
    # Parquet string column stays a string column.
    assert vocabularies["code"] == ([12, 7] if file_format == "csv" else ["12", "7"])
    tags, code = feature_columns_from_vocabularies(vocabularies, sequences={"tags": 3})
    columns = [
        dataclasses.replace(tags, length_name="n_tags", weight_name="tag_weight"),
        code,
    ]
    dataset = make_dataset([path], columns, file_format=file_format, shuffle_buffer=0)
    streamed = next(iter(dataset.as_numpy_iterator()))
    # In memory, the same column as the model sees it: integers read from
    # CSV (an empty cell is 0), strings from Parquet.
    codes = frame["code"]
    if file_format == "csv":
        codes = codes.map(lambda v: 0 if pd.isna(v) else int(v))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a sequence longer than maxlen
        expected = to_model_inputs(frame.assign(code=codes), columns)
    assert sorted(streamed) == sorted(expected)
    np.testing.assert_array_equal(_as_str(streamed["tags"]), expected["tags"])
    np.testing.assert_array_equal(streamed["n_tags"], [2, 0, 3, 1])
    np.testing.assert_array_equal(streamed["n_tags"], expected["n_tags"])
    np.testing.assert_array_equal(streamed["tag_weight"], expected["tag_weight"])
    np.testing.assert_array_equal(
        streamed["tag_weight"][2], np.float32([2.0, 3.0, 4.0])
    )
    if file_format == "csv":
        np.testing.assert_array_equal(streamed["code"], [12, 7, 0, 12])
    else:
        np.testing.assert_array_equal(_as_str(streamed["code"]), ["12", "7", "", "12"])
    np.testing.assert_array_equal(_as_str(streamed["code"]), expected["code"])


# ------------------------------------------------------------------ shuffle
@pytest.mark.parametrize("file_format", ["csv", "parquet", "tfrecord"])
def test_shuffle_order_follows_the_seed(frame, shards, file_format):
    columns = [SparseFeat("cat", vocabulary_size=10), DenseFeat("price")]

    def dataset(seed, num_epochs=1):
        return make_dataset(
            _paths(shards, file_format),
            columns,
            label="label",
            file_format=file_format,
            batch_size=50,
            shuffle_buffer=64,
            seed=seed,
            num_epochs=num_epochs,
        )

    def order(dataset):
        return _collect(dataset)[0]["price"][:, 0]

    seeded = dataset(1)
    first, next_epoch = order(seeded), order(seeded)
    again = dataset(1)
    np.testing.assert_array_equal(order(again), first)
    np.testing.assert_array_equal(order(again), next_epoch)
    assert not np.array_equal(first, next_epoch)  # reshuffled every epoch
    other = order(dataset(2))
    assert not np.array_equal(first, other)
    # Each order is a permutation of the rows, not the file order.
    expected = frame["price"].fillna(0.0).to_numpy(np.float32)
    assert not np.array_equal(first, expected)
    for values in (first, next_epoch, other):
        np.testing.assert_array_equal(np.sort(values), np.sort(expected))
    # Two epochs in one dataset: every row twice, in two different orders.
    twice = order(dataset(1, num_epochs=2))
    assert len(twice) == 2 * N_ROWS
    assert not np.array_equal(twice[:N_ROWS], twice[N_ROWS:])
    np.testing.assert_array_equal(np.sort(twice[N_ROWS:]), np.sort(expected))


# --------------------------------------------------------------- transforms
def test_tf_log_square_bucket_equals_the_numpy_version():
    k = np.arange(1.0, 1999.0)
    boundaries = np.exp(np.sqrt(k))  # where floor(log(x) ** 2) changes
    near = [boundaries]
    for direction in (np.inf, 0.0):
        x = boundaries
        for _ in range(4):
            x = np.nextafter(x, direction)
            near.append(x)
    rng = np.random.default_rng(0)
    x = np.concatenate(
        near
        + [
            np.arange(-3.0, 100_000.0),
            rng.lognormal(4.0, 3.0, 100_000),
            rng.uniform(-3, 3, 1000),
            [np.nan, 2.0, 2.0000001, 1e25],
        ]
    )
    expected = log_square_bucket(x)
    got = tf_log_square_bucket(x).numpy()
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------- tfrecords
def test_write_tfrecord_shards_is_sharded_and_leaves_no_temporary_files(
    frame, tmp_path
):
    columns = [SparseFeat("cat", vocabulary_size=10), DenseFeat("price")]
    paths = write_tfrecord_shards(
        frame, tmp_path / "out", columns, label="label", rows_per_shard=120
    )
    assert [os.path.basename(p) for p in paths] == [
        "part-00000.tfrecord",
        "part-00001.tfrecord",
        "part-00002.tfrecord",
    ]
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        os.path.basename(p) for p in paths
    )
    sizes = [sum(1 for _ in tf.data.TFRecordDataset(p)) for p in paths]
    assert sizes == [120, 120, 60]
    with pytest.raises(ValueError, match="'user_id' is missing from `data`"):
        write_tfrecord_shards(
            frame.drop(columns="user_id"),
            tmp_path / "bad",
            [SparseFeat("user_id", vocabulary=["u1"])],
        )


# ------------------------------------------------------------------- errors
def test_bad_inputs_raise_named_errors(frame, shards, tmp_path):
    columns = [SparseFeat("cat", vocabulary_size=10)]
    with pytest.raises(ValueError, match="`files` is empty"):
        make_dataset([], columns)
    with pytest.raises(ValueError, match="`files` is empty"):
        build_vocabularies([], ["cat"])
    with pytest.raises(ValueError, match="matches no file"):
        make_dataset(str(tmp_path / "nothing-*.csv"), columns)
    with pytest.raises(ValueError, match="file_format.*'orc'"):
        make_dataset(shards["csv"], columns, file_format="orc")
    with pytest.raises(ValueError, match="file_format.*'json'"):
        build_vocabularies(shards["csv"], ["cat"], file_format="json")
    with pytest.raises(ValueError, match="transforms.*TFRecord"):
        make_dataset(
            shards["tfrecord"],
            columns,
            file_format="tfrecord",
            transforms={"cat": "log_square_bucket"},
        )
    with pytest.raises(ValueError, match="Unknown transform.*'cat'"):
        make_dataset(shards["csv"], columns, transforms={"cat": "sqrt"})

    absent = [SparseFeat("cat", vocabulary_size=10), DenseFeat("no_such_col")]
    for file_format in ("csv", "parquet", "tfrecord"):
        if not shards[file_format]:
            continue
        first = shards[file_format][0]
        message = f"Column 'no_such_col' is missing from {first}"
        with pytest.raises(ValueError, match=message):
            make_dataset(shards[file_format], absent, file_format=file_format)
        with pytest.raises(ValueError, match=message):
            build_vocabularies(
                shards[file_format], ["no_such_col"], file_format=file_format
            )
    with pytest.raises(ValueError, match="Column 'clicked' is missing from"):
        make_dataset(shards["csv"], columns, label="clicked")
