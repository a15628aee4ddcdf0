"""Shared data for the ranking-model tests (DeepFM, DIN, WDL, DCN).

Two kinds: tiny random inputs for numeric and round-trip tests, and the
built-in synthetic CTR data set (clicks driven by feature interactions and by
the relevance of the recent clicks to the candidate) for learning tests.
Trained results are cached so that several test files compare against one
baseline run.
"""

import functools

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from keras_rec.datasets import make_synthetic_ctr
from keras_rec.features import DenseFeat
from keras_rec.features import SparseFeat
from keras_rec.features import VarLenSparseFeat
from keras_rec.features import to_model_inputs
from keras_rec.models import WDL
from keras_rec.models import DeepFM

DIM = 4
N_USERS, N_ITEMS, N_GENRES, MAXLEN = 30, 40, 6, 5


def tiny_columns(with_history=False, length_name=None):
    """Sparse, dense and variable-length columns of one embedding width."""
    columns = [
        SparseFeat("user_id", N_USERS, DIM),
        SparseFeat("item_id", N_ITEMS, DIM),
        SparseFeat("genre", N_GENRES, DIM),
        VarLenSparseFeat(
            SparseFeat("genres", N_GENRES, DIM, embedding_name="genre"),
            maxlen=3,
            combiner="mean",
        ),
        DenseFeat("price"),
        DenseFeat("context", dimension=2),
    ]
    if with_history:
        columns += [
            VarLenSparseFeat(
                SparseFeat("hist_item_id", N_ITEMS, DIM, embedding_name="item_id"),
                maxlen=MAXLEN,
                length_name=length_name,
            ),
            VarLenSparseFeat(
                SparseFeat("hist_genre", N_GENRES, DIM, embedding_name="genre"),
                maxlen=MAXLEN,
                length_name=length_name,
            ),
        ]
    return columns


def tiny_inputs(n=16, seed=0, lengths=None):
    """Random inputs for `tiny_columns` (ids >= 1; padded with 0 after `lengths`).

    Returns:
        Dict name -> array, including `hist_len` (the valid history lengths).
    """
    rng = np.random.default_rng(seed)
    if lengths is None:
        lengths = rng.integers(0, MAXLEN + 1, n)
    lengths = np.asarray(lengths, dtype="int32")
    valid = np.arange(MAXLEN)[None, :] < lengths[:, None]
    genres = rng.integers(1, N_GENRES, (n, 3))
    genres[:, 1:] *= rng.random((n, 2)) < 0.5  # 1 to 3 genres
    return {
        "user_id": rng.integers(1, N_USERS, n).astype("int32"),
        "item_id": rng.integers(1, N_ITEMS, n).astype("int32"),
        "genre": rng.integers(1, N_GENRES, n).astype("int32"),
        "genres": genres.astype("int32"),
        "price": rng.random((n, 1)).astype("float32"),
        "context": rng.normal(size=(n, 2)).astype("float32"),
        "hist_item_id": np.where(
            valid, rng.integers(1, N_ITEMS, (n, MAXLEN)), 0
        ).astype("int32"),
        "hist_genre": np.where(valid, rng.integers(1, N_GENRES, (n, MAXLEN)), 0).astype(
            "int32"
        ),
        "hist_len": lengths,
    }


def run(model, inputs):
    """`model(inputs)` in inference mode, as NumPy (no `predict` tracing)."""
    outputs = model(for_model(model, inputs), training=False)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)


def for_model(model, inputs):
    """The entries of `inputs` that `model` takes."""
    names = {t.name for t in model.inputs}
    return {k: v for k, v in inputs.items() if k in names}


# ---------------------------------------------------------------- learning
CTR_EMBEDDING_DIM = 8
CTR_HISTORY = 10


@functools.lru_cache(maxsize=1)
def synthetic_ctr():
    """Synthetic CTR impressions, split globally by time 80% / 20%.

    Returns:
        `(base_columns, history_columns, (x_train, y_train), (x_test, y_test))`:
        base columns are the user / item ids and attributes; history columns
        the clicked items and their categories before each impression.
    """
    impressions, users, items = make_synthetic_ctr(
        n_users=800,
        n_items=400,
        n_impressions=30_000,
        history_length=CTR_HISTORY,
        seed=0,
    )
    frame = impressions.merge(users, on="user_id").merge(items, on="item_id")
    frame = frame.sort_values(["timestamp", "user_id"], kind="stable")
    d = CTR_EMBEDDING_DIM

    def sparse(name, **kwargs):
        return SparseFeat(name, int(frame[name].max()) + 1, d, **kwargs)

    base = [
        sparse("user_id"),
        sparse("item_id"),
        sparse("gender"),
        sparse("age_bucket"),
        sparse("occupation"),
        sparse("region"),
        sparse("category"),
        sparse("price_bucket"),
    ]
    history = [
        VarLenSparseFeat(
            SparseFeat(
                "hist_item_id", base[1].vocabulary_size, d, embedding_name="item_id"
            ),
            CTR_HISTORY,
        ),
        VarLenSparseFeat(
            SparseFeat(
                "hist_category", base[6].vocabulary_size, d, embedding_name="category"
            ),
            CTR_HISTORY,
        ),
    ]
    cut = int(0.8 * len(frame))
    splits = [
        (to_model_inputs(part, base + history), part["label"].to_numpy())
        for part in (frame.iloc[:cut], frame.iloc[cut:])
    ]
    return base, history, splits[0], splits[1]


def fit_test_auc(model, epochs=2, batch_size=256, learning_rate=3e-3, as_dataset=False):
    """Trains `model` on the synthetic CTR training split; returns its test AUC.

    With `as_dataset`, the training data goes in as a shuffled
    `tf.data.Dataset` of `(features, label)` instead of a dict of arrays.
    """
    _, _, (x_train, y_train), (x_test, y_test) = synthetic_ctr()
    model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy")
    x_train = for_model(model, x_train)
    if as_dataset:
        dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
        dataset = dataset.shuffle(len(y_train), seed=0).batch(batch_size)
        model.fit(dataset, epochs=epochs, verbose=0, shuffle=False)
    else:
        model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0)
    return roc_auc_score(y_test, run(model, x_test)[:, 0])


@functools.cache
def trained_auc(name):
    """Test AUC of a reference model, trained once per test session."""
    base, _, _, _ = synthetic_ctr()
    keras.utils.set_random_seed(0)
    if name == "linear":
        # DeepFM's first-order part alone: logistic regression.
        model = WDL(base, base, dnn_hidden_units=())
    elif name == "deepfm":
        model = DeepFM(base, base, dnn_hidden_units=(64, 32))
    else:
        raise ValueError(name)
    return fit_test_auc(model)
