"""Tiny models and matching random inputs for the export and serving tests."""

import keras
import numpy as np

from keras_rec.features import DenseFeat
from keras_rec.features import FeatureEncoder
from keras_rec.features import SparseFeat
from keras_rec.features import VarLenSparseFeat
from keras_rec.features import check_feature_columns
from keras_rec.models import DCN
from keras_rec.models import DIN
from keras_rec.models import DSSM
from keras_rec.models import WDL
from keras_rec.models import DeepFM
from keras_rec.models import YoutubeDNN

NUM_USERS = 30
NUM_ITEMS = 40
MAXLEN = 5
USER_VOCAB = tuple(f"u{i}" for i in range(NUM_USERS))
ITEM_VOCAB = tuple(range(1000, 1000 + NUM_ITEMS))  # raw integer ids


def raw_id_columns():
    """Raw-id columns: a string vocabulary, an integer vocabulary shared with a
    sequence (with a length input), a hashed string, and a dense vector."""
    return [
        SparseFeat("user_id", vocabulary=USER_VOCAB, embedding_dim=4),
        SparseFeat("item_id", vocabulary=ITEM_VOCAB, embedding_dim=4, dtype="int64"),
        VarLenSparseFeat(
            SparseFeat(
                "hist_item_id",
                vocabulary=ITEM_VOCAB,
                embedding_dim=4,
                dtype="int64",
                embedding_name="item_id",
            ),
            maxlen=MAXLEN,
            combiner="mean",
            length_name="hist_len",
        ),
        SparseFeat("city", 16, 4, dtype="string", use_hash=True),
        DenseFeat("price", 2),
    ]


def raw_id_ranker(seed=0):
    """A small functional ranker over `raw_id_columns`, ending in a (batch, 1) sigmoid."""
    encoder = FeatureEncoder(raw_id_columns(), seed=seed)
    x = keras.layers.Dense(8, activation="relu", name="hidden")(encoder.dnn_input())
    output = keras.layers.Dense(1, activation="sigmoid", name="prediction")(x)
    return keras.Model(encoder.input_list, output, name="raw_id_ranker")


def ranking_columns():
    return [
        SparseFeat("user_id", NUM_USERS + 1, 4),
        SparseFeat("item_id", NUM_ITEMS + 1, 4),
        SparseFeat("category", 6, 4),
        VarLenSparseFeat(
            SparseFeat("hist_item_id", NUM_ITEMS + 1, 4, embedding_name="item_id"),
            maxlen=MAXLEN,
            length_name="hist_len",
        ),
        DenseFeat("price", 1),
    ]


def rankers():
    """DeepFM, DIN, WDL and DCN on the same small columns."""
    columns = ranking_columns()
    return {
        "deepfm": DeepFM(columns, columns, dnn_hidden_units=(8,)),
        "din": DIN(columns, ["item_id"], dnn_hidden_units=(8,), att_hidden_units=(4,)),
        "wdl": WDL(columns, columns, dnn_hidden_units=(8,)),
        "dcn": DCN(columns, columns, cross_num=1, dnn_hidden_units=(8,)),
    }


def tower_columns(dim=8):
    user = [
        SparseFeat("user_id", NUM_USERS + 1, dim),
        VarLenSparseFeat(
            SparseFeat("hist_item_id", NUM_ITEMS + 1, dim, embedding_name="item_id"),
            maxlen=MAXLEN,
            length_name="hist_len",
        ),
        DenseFeat("age", 1),
    ]
    item = [SparseFeat("item_id", NUM_ITEMS + 1, dim), SparseFeat("category", 6, 4)]
    return user, item


def dssm(dim=8):
    user, item = tower_columns(dim)
    return DSSM(user, item, user_dnn_hidden_units=(dim,), item_dnn_hidden_units=(dim,))


def youtube_dnn(dim=8):
    user, item = tower_columns(dim)
    return YoutubeDNN(user, item[:1], user_dnn_hidden_units=(dim,), num_sampled=5)


def random_inputs(columns, n, seed=0, unseen=0.0):
    """Random inputs for `columns` (the model's input dict), numpy-typed.

    Args:
        unseen: float. Share of raw-id values (vocabulary / hashed columns)
            replaced by values that are not in the vocabulary.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for column in check_feature_columns(columns):
        if isinstance(column, DenseFeat):
            out[column.name] = rng.normal(size=(n, column.dimension)).astype("float32")
            continue
        shape = (n,) if isinstance(column, SparseFeat) else (n, column.maxlen)
        values = _values(column, shape, rng, unseen)
        if isinstance(column, VarLenSparseFeat):
            lengths = rng.integers(0, column.maxlen + 1, size=n).astype("int32")
            pad = "" if column.dtype == "string" else 0
            values[np.arange(column.maxlen)[None, :] >= lengths[:, None]] = pad
            if column.length_name:
                out[column.length_name] = lengths
        out[column.name] = values
    return out


def _values(column, shape, rng, unseen):
    sparse = column.sparsefeat if isinstance(column, VarLenSparseFeat) else column
    if sparse.vocabulary is not None:
        vocabulary = np.asarray(sparse.vocabulary)
        values = vocabulary[rng.integers(0, len(vocabulary), size=shape)]
        if unseen:
            mask = rng.random(shape) < unseen
            other = np.asarray(["never_seen"]) if values.dtype.kind == "U" else [-77]
            values = np.where(mask, other[0], values)
        return values.astype(sparse.dtype if sparse.dtype != "string" else str)
    if sparse.use_hash:
        return np.asarray(
            [f"c{v}" for v in rng.integers(0, 1000, size=int(np.prod(shape)))]
        ).reshape(shape)
    return rng.integers(1, sparse.vocabulary_size, size=shape).astype(sparse.dtype)


def model_columns_inputs(columns, model, n, seed=0, unseen=0.0):
    """`random_inputs` restricted to the model's inputs."""
    inputs = random_inputs(columns, n, seed=seed, unseen=unseen)
    return {t.name: inputs[t.name] for t in model.inputs}
