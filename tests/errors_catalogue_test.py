"""Catalogue of bad inputs: each fails early, naming the culprit and the value.

Every case calls the public API with one bad input and asserts the exception
type and a message that names the feature / argument / file AND shows what
was received. The exception must be raised by keras_rec's own checks (the
innermost frame is in the `keras_rec` package), i.e. before any TensorFlow
stack trace.

| #  | case                                        | raised by                           | error        |
|----|---------------------------------------------|-------------------------------------|--------------|
| 1  | feature column missing from the data        | `to_model_inputs`                   | ValueError   |
| 2  | unknown (misspelled) column in the data     | `to_model_inputs` (close match)     | ValueError   |
| 3  | strings for an int feature, no vocabulary   | `to_model_inputs`                   | TypeError    |
| 4  | non-integral float ids                      | `to_model_inputs`                   | TypeError    |
| 5  | strings in a dense feature                  | `to_model_inputs`                   | TypeError    |
| 6  | negative id                                 | `to_model_inputs`                   | ValueError   |
| 7  | negative id inside a sequence               | `to_model_inputs`                   | ValueError   |
| 8  | id >= vocabulary_size (no hashing)          | `to_model_inputs`                   | ValueError   |
| 9  | id >= vocabulary_size inside a sequence     | `to_model_inputs`                   | ValueError   |
| 10 | NaN in a dense feature                      | `to_model_inputs`                   | ValueError   |
| 11 | inf in a dense feature                      | `to_model_inputs`                   | ValueError   |
| 12 | dense feature of the wrong dimension        | `to_model_inputs`                   | ValueError   |
| 13 | sequence longer than maxlen, on_long="error"| `to_model_inputs`                   | ValueError   |
| 14 | padded 2-D sequence wider than maxlen       | `to_model_inputs`                   | ValueError   |
| 15 | unknown `on_long_sequence` policy           | `to_model_inputs`                   | ValueError   |
| 16 | length feature outside [0, maxlen]          | `to_model_inputs`                   | ValueError   |
| 17 | empty data set (DataFrame without rows)     | `to_model_inputs`                   | ValueError   |
| 18 | empty interaction log                       | `prepare_recall_data`               | ValueError   |
| 19 | embedding_name shared, dimensions differ    | `check_feature_columns`, `DeepFM`   | ValueError   |
| 20 | DIN history feature without a hist_ seq    | `DIN`                               | ValueError   |
| 21 | DIN history feature without a candidate     | `DIN`                               | ValueError   |
| 22 | DSSM towers whose output widths differ      | `DSSM`                              | ValueError   |
| 23 | custom towers whose output dims differ      | `TwoTowerModel`                     | ValueError   |
| 24 | temperature <= 0 (0, -1, nan, inf)          | `DSSM` / `YoutubeDNN`               | ValueError   |
| 25 | K larger than the number of items           | `ItemIndex.query`                   | ValueError   |
| 26 | a K in `ks` larger than the number of items | `evaluate_retrieval`                | ValueError   |
| 27 | user vectors of another dimension           | `AnnoyItemIndex.query`              | ValueError   |
| 28 | Annoy index of another dimension than tower | `ItemIndex.load(expected_dimension)`| ValueError   |
| 29 | Annoy index of another metric than expected | `ItemIndex.load(expected_metric)`   | ValueError   |
| 30 | index dimension != user tower output        | `Recaller`                          | ValueError   |
| 31 | corrupted Annoy file (same size)            | `ItemIndex.load`                    | ValueError   |
| 32 | truncated Annoy file                        | `ItemIndex.load`                    | ValueError   |
| 33 | truncated saved model (saved_model.pb)      | `Recaller.load`                     | ValueError   |
| 34 | saved model directory missing               | `Recaller.load`                     | FileNotFound |
| 35 | version directory without saved_model.pb    | `Recaller.load`                     | FileNotFound |
| 36 | MovieLens directory with a missing file     | `load_movielens`                    | FileNotFound |
| 37 | MovieLens file in the wrong format (CSV)    | `load_movielens`                    | ValueError   |
| 38 | MovieLens ratings file without rows         | `load_movielens`                    | ValueError   |
| 39 | Criteo row with too many fields             | `load_criteo`                       | ValueError   |
| 40 | Criteo row with too few fields              | `load_criteo`                       | ValueError   |
| 41 | Criteo file without rows                    | `load_criteo`                       | ValueError   |
| 42 | batch size larger than the data set         | `epoch_batches` (recall training)   | ValueError   |
| 43 | best-model selection on a missing metric    | `AtomicBestWeights`                 | ValueError   |
| 44 | best-model selection on the test target     | `train_recall`                      | ValueError   |

Missing files and directories raise `FileNotFoundError` (the conventional
type, an `OSError`), not `ValueError`; their messages name the path.

Decided as allowed, tested below with their defined output:

- a sequence longer than `maxlen` (default policy): truncated to its last
  `maxlen` items, with a `UserWarning` naming the feature and the count;
- an empty history, or one made only of padding, in some rows: kept as a row
  of padding with valid length 0 (a first impression, a cold-start user); it
  pools to a zero vector, and DIN's interest vector is zero for it. No
  warning: such rows are normal;
- a sequence feature empty in *every* row: the same output plus a
  `UserWarning`, since the column is then almost surely wrong;
- extra data columns that no feature column uses (labels, ids kept for
  bookkeeping): ignored;
- a batch size larger than the data set in plain `model.fit`: Keras's own
  behaviour (one smaller batch); keras_rec's deterministic recall batches
  (`epoch_batches`, `keras-rec train`) refuse it (case 42), because they drop
  the last partial batch and would train on nothing.
"""

import functools
import math
import os
import shutil
import traceback
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from keras_rec.datasets import load_criteo
from keras_rec.datasets import load_movielens
from keras_rec.export import export_towers
from keras_rec.features import DenseFeat
from keras_rec.features import SparseFeat
from keras_rec.features import VarLenSparseFeat
from keras_rec.features import to_model_inputs
from keras_rec.features.columns import check_feature_columns
from keras_rec.models import DIN
from keras_rec.models import DSSM
from keras_rec.models import DeepFM
from keras_rec.models import YoutubeDNN
from keras_rec.models.two_tower import TwoTowerModel
from keras_rec.retrieval import AnnoyItemIndex
from keras_rec.retrieval import BruteForceItemIndex
from keras_rec.retrieval import ItemIndex
from keras_rec.retrieval import evaluate_retrieval
from keras_rec.serving import Recaller
from keras_rec.workflows.checkpointing import AtomicBestWeights
from keras_rec.workflows.pipeline import epoch_batches
from keras_rec.workflows.recall import train_recall
from keras_rec.workflows.recall_data import prepare_recall_data

VOCAB, DIM, MAXLEN = 10, 4, 3

ITEM = SparseFeat("item_id", VOCAB, DIM)
CATEGORY = SparseFeat("category", 5, DIM)
HIST = VarLenSparseFeat(
    SparseFeat("hist_item_id", VOCAB, DIM, embedding_name="item_id"), maxlen=MAXLEN
)
HIST_LEN = VarLenSparseFeat(
    SparseFeat("hist_item_id", VOCAB, DIM, embedding_name="item_id"),
    maxlen=MAXLEN,
    length_name="hist_len",
)
PRICE = DenseFeat("price")
COLUMNS = [ITEM, HIST, PRICE]


def _data(**changes):
    """Two valid rows for `COLUMNS`, with some columns replaced."""
    data = {"item_id": [1, 2], "hist_item_id": [[1, 2], [3]], "price": [0.5, 1.0]}
    data.update(changes)
    return data


def _inputs(columns=COLUMNS, **kwargs):
    def call(tmp_path):
        data = kwargs.pop("data")
        return to_model_inputs(data, columns, **kwargs)

    return call


def _without(name):
    return {k: v for k, v in _data().items() if k != name}


# ----------------------------------------------------------------- fixtures
# Artifacts shared by several cases, built once per session and copied to a
# case's own tmp_path before it is damaged.


@functools.cache
def _vectors(n=20, dim=DIM):
    return np.random.default_rng(0).normal(size=(n, dim)).astype("float32")


@functools.cache
def _annoy_dir(root):
    directory = os.path.join(root, "annoy")
    AnnoyItemIndex(n_trees=5, seed=0).build(np.arange(1, 21), _vectors()).save(
        directory
    )
    return directory


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    """A saved Annoy index and a run directory (exported towers + index)."""
    root = tmp_path_factory.mktemp("artifacts")
    keras.utils.set_random_seed(0)
    model = DSSM(
        [HIST], [ITEM], user_dnn_hidden_units=(DIM,), item_dnn_hidden_units=(DIM,)
    )
    run = root / "run"
    export_towers(model, run)
    items = np.arange(1, VOCAB)
    vectors = np.asarray(model.item_model({"item_id": tf.constant(items, "int32")}))
    AnnoyItemIndex(n_trees=5, seed=0).build(items, vectors).save(run / "index")
    return {"annoy": _annoy_dir(str(root)), "run": str(run)}


def _copy(source, tmp_path, name):
    target = os.path.join(tmp_path, name)
    shutil.copytree(source, target)
    return target


def _two_tower_with_dims(user_dim, item_dim):
    user = keras.Input((1,), name="user_id", dtype="int32")
    item = keras.Input((1,), name="item_id", dtype="int32")
    towers = keras.Model(
        {"user_id": user, "item_id": item},
        {
            "user_embedding": keras.layers.Flatten()(
                keras.layers.Embedding(VOCAB, user_dim)(user)
            ),
            "item_embedding": keras.layers.Flatten()(
                keras.layers.Embedding(VOCAB, item_dim)(item)
            ),
        },
    )
    return TwoTowerModel(towers, ["user_id"], ["item_id"], "item_id")


def _write_100k(folder, ratings="1\t1\t5\t100\n", skip=()):
    os.makedirs(folder, exist_ok=True)
    files = {
        "u.data": ratings,
        "u.user": "1|24|M|technician|85711\n",
        "u.item": "1|A (1995)|01-Jan-1995||http://x|" + "|".join(["0"] * 18 + ["1"]),
    }
    for name, text in files.items():
        if name not in skip:
            with open(os.path.join(folder, name), "w") as f:
                f.write(text + ("" if text.endswith("\n") or not text else "\n"))
    return folder


def _criteo_row(n_fields):
    return "\t".join((["1"] + ["5"] * 13 + ["ab"] * 26 + ["extra"])[:n_fields])


def _criteo(tmp_path, lines):
    path = os.path.join(tmp_path, "train.txt")
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    return load_criteo(path)


def _corrupt(path, truncate=False):
    with open(path, "r+b") as f:
        if truncate:
            f.truncate(os.path.getsize(path) // 2)
        else:
            f.seek(64)
            f.write(b"\xff" * 64)


def _corrupted_annoy(tmp_path, artifacts, truncate):
    directory = _copy(artifacts["annoy"], tmp_path, "index")
    _corrupt(os.path.join(directory, "index.ann"), truncate=truncate)
    return ItemIndex.load(directory)


def _truncated_saved_model(tmp_path, artifacts):
    run = _copy(artifacts["run"], tmp_path, "run")
    _corrupt(os.path.join(run, "user_tower", "1", "saved_model.pb"), truncate=True)
    return Recaller.load(run)


def _version_without_graph(tmp_path, artifacts):
    run = _copy(artifacts["run"], tmp_path, "run")
    os.remove(os.path.join(run, "user_tower", "1", "saved_model.pb"))
    return Recaller.load(run)


def _recaller_with_small_index(tmp_path, artifacts):
    recaller = Recaller.load(artifacts["run"])
    small = BruteForceItemIndex().build(np.arange(5), _vectors(5, 8))
    return Recaller(recaller._tower, small)


class _Score(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = 1.0


def _best_on_missing_metric(tmp_path):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    best = AtomicBestWeights(os.path.join(tmp_path, "best"), monitor="val_loss")
    x = np.ones((4, 1), "float32")
    model.fit(x, x, epochs=1, verbose=0, callbacks=[_Score(), best])


def _recall_data():
    interactions = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(6), 4),
            "item_id": np.tile(np.arange(4), 6) + np.repeat(np.arange(6), 4) % 3,
            "timestamp": np.tile(np.arange(4), 6),
        }
    )
    return prepare_recall_data(interactions, embedding_dim=4, recent=0)


def _best_on_test_target(tmp_path):
    train_recall(
        "dssm",
        _recall_data(),
        epochs=1,
        batch_size=2,
        verbose=0,
        best_metric="hit_rate@10",
        best_dir=os.path.join(tmp_path, "best"),
    )


# ----------------------------------------------------------------- catalogue
# (id, exception, pattern: names the culprit and shows the value, call)
CATALOGUE = [
    (
        "missing_feature",
        ValueError,
        r"Feature\(s\) \['price'\] missing from the data.*"
        r"Available columns: \['hist_item_id', 'item_id'\]",
        _inputs(data=_without("price")),
    ),
    (
        "unknown_misspelled_column",
        ValueError,
        r"\['price'\] missing.*'price' \(did you mean 'prices'\?\).*"
        r"Available columns: \['hist_item_id', 'item_id', 'prices'\]",
        _inputs(data={**_without("price"), "prices": [1.0, 2.0]}),
    ),
    (
        "strings_for_int_feature",
        TypeError,
        r"Feature 'item_id' must hold integer ids.*vocabulary.*"
        r"values like \['a', 'b'\]",
        _inputs(data=_data(item_id=["a", "b"])),
    ),
    (
        "float_ids",
        TypeError,
        r"Feature 'item_id' must hold integer ids.*values like \[1.5, 2.0\]",
        _inputs(data=_data(item_id=[1.5, 2.0])),
    ),
    (
        "strings_for_dense_feature",
        TypeError,
        r"Dense feature 'price' must hold numbers.*\['cheap', 'dear'\]",
        _inputs(data=_data(price=["cheap", "dear"])),
    ),
    (
        "negative_id",
        ValueError,
        r"Feature 'item_id' has a negative id: -1\. Ids must be in \[0, 10\)",
        _inputs(data=_data(item_id=[-1, 2])),
    ),
    (
        "negative_id_in_sequence",
        ValueError,
        r"Feature 'hist_item_id' has a negative id: -3",
        _inputs(data=_data(hist_item_id=[[1, -3], [2]])),
    ),
    (
        "id_beyond_vocabulary",
        ValueError,
        r"Feature 'item_id' has id 10 >= vocabulary_size=10.*use_hash=True",
        _inputs(data=_data(item_id=[10, 2])),
    ),
    (
        "id_beyond_vocabulary_in_sequence",
        ValueError,
        r"Feature 'hist_item_id' has id 42 >= vocabulary_size=10",
        _inputs(data=_data(hist_item_id=[[1, 42], [2]])),
    ),
    (
        "nan_dense",
        ValueError,
        r"Dense feature 'price' has a non-finite value \[nan\] at row 1",
        _inputs(data=_data(price=[0.5, math.nan])),
    ),
    (
        "inf_dense",
        ValueError,
        r"Dense feature 'price' has a non-finite value \[-inf\] at row 0",
        _inputs(data=_data(price=[-math.inf, 1.0])),
    ),
    (
        "dense_wrong_dimension",
        ValueError,
        r"Dense feature 'price' must have dimension 1\. Received shape \(2, 3\)",
        _inputs(data=_data(price=np.ones((2, 3)))),
    ),
    (
        "sequence_longer_than_maxlen_error",
        ValueError,
        r"Sequence feature 'hist_item_id' has length 5 > maxlen=3 at row 1",
        _inputs(
            data=_data(hist_item_id=[[1], [1, 2, 3, 4, 5]]), on_long_sequence="error"
        ),
    ),
    (
        "padded_sequence_wider_than_maxlen_error",
        ValueError,
        r"Sequence feature 'hist_item_id' has length 4 > maxlen=3 at row 0",
        _inputs(
            data=_data(hist_item_id=np.array([[1, 2, 3, 4], [5, 0, 0, 0]])),
            on_long_sequence="error",
        ),
    ),
    (
        "unknown_long_sequence_policy",
        ValueError,
        r"`on_long_sequence` must be 'truncate' or 'error'\. "
        r"Received: on_long_sequence='drop'",
        _inputs(data=_data(), on_long_sequence="drop"),
    ),
    (
        "length_feature_out_of_range",
        ValueError,
        r"Length feature 'hist_len' of 'hist_item_id' must be in \[0, 3\]\. "
        r"Received: 7",
        _inputs(columns=[ITEM, HIST_LEN], data={**_data(), "hist_len": [1, 7]}),
    ),
    (
        "empty_data_set",
        ValueError,
        r"`data` has no rows\. Received: feature 'item_id' with 0 rows",
        _inputs(data=pd.DataFrame({"item_id": [], "hist_item_id": [], "price": []})),
    ),
    (
        "empty_interaction_log",
        ValueError,
        r"`interactions` is empty\. Received: 0 rows with columns "
        r"\['user_id', 'item_id', 'timestamp'\]",
        lambda tmp_path: prepare_recall_data(
            pd.DataFrame({"user_id": [], "item_id": [], "timestamp": []})
        ),
    ),
    (
        "shared_embedding_dim_mismatch",
        ValueError,
        r"Features 'item_id' and 'hist_item_id' share the embedding table "
        r"'item_id' but differ in `embedding_dim`: 4 vs 8",
        lambda tmp_path: check_feature_columns(
            [
                ITEM,
                VarLenSparseFeat(
                    SparseFeat("hist_item_id", VOCAB, 8, embedding_name="item_id"), 3
                ),
            ]
        ),
    ),
    (
        "shared_embedding_dim_mismatch_in_model",
        ValueError,
        r"share the embedding table 'category' but differ in `embedding_dim`: 4 vs 2",
        lambda tmp_path: DeepFM(
            [CATEGORY],
            [CATEGORY, SparseFeat("sub_category", 5, 2, embedding_name="category")],
        ),
    ),
    (
        "din_history_without_sequence",
        ValueError,
        r"DIN history feature 'category' has no matching behaviour sequence.*"
        r"no VarLenSparseFeat named 'hist_category'.*"
        r"Received: history_feature_list=\['item_id', 'category'\]",
        lambda tmp_path: DIN([ITEM, CATEGORY, HIST], ["item_id", "category"]),
    ),
    (
        "din_history_without_candidate",
        ValueError,
        r"DIN history feature 'genre' has no candidate SparseFeat named 'genre'.*"
        r"Received: history_feature_list=\['genre'\]",
        lambda tmp_path: DIN([ITEM, HIST], ["genre"]),
    ),
    (
        "dssm_tower_widths_differ",
        ValueError,
        r"last hidden layer of both towers must have the same width\. "
        r"Received: user_dnn_hidden_units=\(8,\), item_dnn_hidden_units=\(4,\)",
        lambda tmp_path: DSSM(
            [HIST], [ITEM], user_dnn_hidden_units=(8,), item_dnn_hidden_units=(4,)
        ),
    ),
    (
        "custom_tower_dims_differ",
        ValueError,
        r"user and item towers must output embeddings of the same dimension\. "
        r"Received: user tower 4, item tower 8",
        lambda tmp_path: _two_tower_with_dims(4, 8),
    ),
    *[
        (
            f"temperature_{label}",
            ValueError,
            rf"`temperature` must be a finite number > 0\. "
            rf"Received: temperature={text}",
            lambda tmp_path, value=value, builder=builder, extra=extra: builder(
                [HIST], [ITEM], user_dnn_hidden_units=(DIM,), temperature=value, **extra
            ),
        )
        for label, value, text, builder, extra in [
            ("zero", 0, "0", DSSM, {"item_dnn_hidden_units": (DIM,)}),
            ("negative", -0.5, "-0.5", DSSM, {"item_dnn_hidden_units": (DIM,)}),
            ("nan", math.nan, "nan", YoutubeDNN, {}),
            ("inf", math.inf, "inf", YoutubeDNN, {}),
        ]
    ],
    (
        "k_larger_than_items",
        ValueError,
        r"`k` must be between 1 and the number of items \(20\)\. Received: k=21",
        lambda tmp_path: (
            BruteForceItemIndex()
            .build(np.arange(1, 21), _vectors())
            .query(_vectors()[:2], 21)
        ),
    ),
    (
        "ks_larger_than_items",
        ValueError,
        r"Every K in `ks` must be <= the number of items \(20\)\. "
        r"Received: ks=\(10, 50\)",
        lambda tmp_path: evaluate_retrieval(
            BruteForceItemIndex().build(np.arange(1, 21), _vectors()),
            _vectors()[:2],
            [1, 2],
            ks=(10, 50),
        ),
    ),
    (
        "query_dimension_mismatch",
        ValueError,
        r"`user_embeddings` must have the index dimension \(4\).*"
        r"Received: user_embeddings with shape \(2, 8\)",
        lambda tmp_path: (
            AnnoyItemIndex(n_trees=2)
            .build(np.arange(1, 21), _vectors())
            .query(_vectors(2, 8), 5)
        ),
    ),
    (
        "annoy_dimension_not_the_towers",
        ValueError,
        r"index at '.*annoy' has dimension 4, which does not match the expected "
        r"dimension\. Received: expected_dimension=8",
        lambda tmp_path, artifacts: ItemIndex.load(
            artifacts["annoy"], expected_dimension=8
        ),
    ),
    (
        "annoy_metric_not_the_towers",
        ValueError,
        r"index at '.*annoy' uses metric 'angular', which does not match the "
        r"expected metric\. Received: expected_metric='dot'",
        lambda tmp_path, artifacts: ItemIndex.load(
            artifacts["annoy"], expected_metric="dot"
        ),
    ),
    (
        "index_dimension_not_the_user_towers",
        ValueError,
        r"item index has dimension 8 but the user tower outputs "
        r"'user_embedding' of dimension 4",
        _recaller_with_small_index,
    ),
    (
        "corrupted_annoy_file",
        ValueError,
        r"index\.ann is corrupted: its sha256 does not match metadata\.json",
        lambda tmp_path, artifacts: _corrupted_annoy(tmp_path, artifacts, False),
    ),
    (
        "truncated_annoy_file",
        ValueError,
        r"index\.ann is truncated or corrupted: metadata\.json records \d+ bytes, "
        r"the file has \d+",
        lambda tmp_path, artifacts: _corrupted_annoy(tmp_path, artifacts, True),
    ),
    (
        "truncated_saved_model",
        ValueError,
        r"The user tower at '.*user_tower/1' could not be loaded",
        _truncated_saved_model,
    ),
    (
        "missing_saved_model_directory",
        FileNotFoundError,
        r"No run directory at '.*nowhere'\. Received: directory='.*nowhere'",
        lambda tmp_path: Recaller.load(os.path.join(tmp_path, "nowhere")),
    ),
    (
        "saved_model_version_without_graph",
        FileNotFoundError,
        r"'.*user_tower' holds no exported version.*saved_model\.pb",
        _version_without_graph,
    ),
    (
        "movielens_missing_file",
        FileNotFoundError,
        r"'u\.user' not found",
        lambda tmp_path: load_movielens(
            data_dir=_write_100k(os.path.join(tmp_path, "ml"), skip=("u.user",)),
            cache_dir=os.path.join(tmp_path, "cache"),
        ),
    ),
    (
        "movielens_wrong_format",
        ValueError,
        r"Line 1 of .*u\.data has 1 fields; expected 4 "
        r"\(user_id, item_id, rating, timestamp\) separated by tabs",
        lambda tmp_path: load_movielens(
            data_dir=_write_100k(os.path.join(tmp_path, "ml"), ratings="1,1,5,100"),
            cache_dir=os.path.join(tmp_path, "cache"),
        ),
    ),
    (
        "movielens_empty_ratings",
        ValueError,
        r".*u\.data holds no rows; expected 4 fields a line.*"
        r"Received: a file of 0 bytes",
        lambda tmp_path: load_movielens(
            data_dir=_write_100k(os.path.join(tmp_path, "ml"), ratings=""),
            cache_dir=os.path.join(tmp_path, "cache"),
        ),
    ),
    (
        "criteo_too_many_fields",
        ValueError,
        r"Line 2 of .*train\.txt has 41 fields; expected 2 to 40",
        lambda tmp_path: _criteo(tmp_path, [_criteo_row(40), _criteo_row(41)]),
    ),
    (
        "criteo_too_few_fields",
        ValueError,
        r"Line 1 of .*train\.txt has 1 fields; expected 2 to 40",
        lambda tmp_path: _criteo(tmp_path, [_criteo_row(1), _criteo_row(40)]),
    ),
    (
        "criteo_empty_file",
        ValueError,
        r"train\.txt holds no Criteo rows.*Received: path='.*train\.txt' with 0 "
        r"bytes",
        lambda tmp_path: _criteo(tmp_path, []),
    ),
    (
        "batch_size_larger_than_data",
        ValueError,
        r"`batch_size` must be in \[1, 5\] \(the number of rows\)\. "
        r"Received: batch_size=8",
        lambda tmp_path: epoch_batches({"item_id": np.arange(5)}, 8, seed=0, epochs=1),
    ),
    (
        "best_model_metric_missing",
        ValueError,
        r"`monitor` 'val_loss' is not among the metrics logged at the end of "
        r"epoch 1.*\['loss', 'score'\]",
        _best_on_missing_metric,
    ),
    (
        "best_model_on_test_target",
        ValueError,
        r"`best_metric` 'hit_rate@10' is measured on the test target.*"
        r"holdout='validation'.*Received: best_metric='hit_rate@10'",
        _best_on_test_target,
    ),
]


def test_catalogue_is_large_and_unique():
    ids = [case[0] for case in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert sum(case[1] in (ValueError, TypeError) for case in CATALOGUE) >= 25


@pytest.mark.parametrize(
    "exception, pattern, call",
    [case[1:] for case in CATALOGUE],
    ids=[case[0] for case in CATALOGUE],
)
def test_bad_input_is_named(exception, pattern, call, tmp_path, request):
    kwargs = {"tmp_path": tmp_path}
    if "artifacts" in call.__code__.co_varnames[: call.__code__.co_argcount]:
        kwargs["artifacts"] = request.getfixturevalue("artifacts")
    with pytest.raises(exception, match=pattern) as info:
        call(**kwargs)
    # Raised by keras_rec's own check, not from inside TensorFlow or Keras,
    # and printed without a chained TensorFlow / Keras traceback.
    raiser = str(info.traceback[-1].path)
    assert f"{os.sep}keras_rec{os.sep}" in raiser, raiser
    for error in _printed_chain(info.value):
        frames = traceback.extract_tb(error.__traceback__)
        paths = [frame.filename for frame in frames]
        assert not any(
            f"{os.sep}{package}{os.sep}" in path
            for path in paths
            for package in ("tensorflow", "keras")
        ), (type(error), paths)


def _printed_chain(error):
    """The exceptions Python prints above `error` (its causes and contexts)."""
    chain = []
    while True:
        if error.__cause__ is not None:
            error = error.__cause__
        elif error.__context__ is not None and not error.__suppress_context__:
            error = error.__context__
        else:
            return chain
        chain.append(error)


# ------------------------------------------------- allowed, with defined output


def test_long_sequence_is_truncated_to_the_latest_items_with_a_warning():
    data = _data(hist_item_id=[[1, 2, 3, 4, 5], [6], [7, 8, 9, 1]])
    data["item_id"], data["price"] = [1, 2, 3], [0.0, 0.0, 0.0]
    with pytest.warns(
        UserWarning,
        match=r"Sequence feature 'hist_item_id': 2 sequences longer than "
        r"maxlen=3 truncated to their last 3 items",
    ):
        out = to_model_inputs(data, COLUMNS)
    np.testing.assert_array_equal(
        out["hist_item_id"], [[3, 4, 5], [6, 0, 0], [8, 9, 1]]
    )


@pytest.mark.parametrize("history", [[], [0, 0]], ids=["empty", "all_padding"])
def test_empty_or_all_padding_history_in_some_rows_is_kept_silently(history):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = to_model_inputs(
            {"item_id": [1, 2], "hist_item_id": [history, [4, 5]]}, [ITEM, HIST_LEN]
        )
    np.testing.assert_array_equal(out["hist_item_id"], [[0, 0, 0], [4, 5, 0]])
    assert out["hist_len"][1] == 2
    if not history:
        assert out["hist_len"][0] == 0


def test_history_empty_in_every_row_warns_and_pools_to_zero():
    with pytest.warns(
        UserWarning,
        match=r"Sequence feature 'hist_item_id' has no items in any of its 2 rows"
        r".*Received: first row \[0, 0, 0\]",
    ):
        out = to_model_inputs(
            {"item_id": [1, 2], "hist_item_id": [[], [0]], "price": [1.0, 2.0]},
            COLUMNS,
        )
    np.testing.assert_array_equal(out["hist_item_id"], np.zeros((2, MAXLEN)))
    # DIN over these rows: the attention has no valid key, the interest
    # vector is zero, and the prediction does not depend on the (masked) ids.
    keras.utils.set_random_seed(0)
    model = DIN([ITEM, HIST], ["item_id"], dnn_hidden_units=(4,), att_hidden_units=(4,))
    x = {"item_id": out["item_id"], "hist_item_id": out["hist_item_id"]}
    first = keras.ops.convert_to_numpy(model(x, training=False))
    assert np.isfinite(first).all()
    interest = keras.Model(model.inputs, model.get_layer("attention_pooling").output)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(interest(x, training=False)), 0.0
    )


def test_extra_columns_are_ignored():
    out = to_model_inputs(
        {**_data(), "label": [0, 1], "user_name": ["a", "b"]}, COLUMNS
    )
    assert sorted(out) == ["hist_item_id", "item_id", "price"]
