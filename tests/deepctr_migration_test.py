"""DeepCTR's own example scripts, with only the imports changed.

Users come from DeepCTR: its README examples (`run_classification_criteo.py`,
`run_multivalue_movielens.py`, `run_multivalue_movielens_hash.py`,
`run_din.py`) must run on keras_rec as they are written, with `get_feature_names`, dicts of pandas Series,
`validation_split` and string optimizers. The first two read DeepCTR's own
sample files from `../shared/data/library-samples/deepctr` (skipped when
absent); the numbers checked are what 200 rows can show: the training loss
falls and the predictions do not depend on the input's container.
"""

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.preprocessing import MinMaxScaler

from keras_rec import DIN
from keras_rec import DeepFM
from keras_rec import DenseFeat
from keras_rec import SparseFeat
from keras_rec import VarLenSparseFeat
from keras_rec import get_feature_names


@pytest.fixture
def deepctr_samples(real_data_dir):
    path = real_data_dir / "library-samples" / "deepctr"
    if not (path / "criteo_sample.txt").is_file():
        pytest.skip(f"DeepCTR's sample files not found at {path}")
    return path


def _falls(history):
    loss = history.history["loss"]
    assert np.all(np.isfinite(loss))
    assert loss[-1] < loss[0] - 0.01, loss


def _train_multivalue(
    fixlen_feature_columns, varlen_feature_columns, data, genres_list, target
):
    """The common tail of DeepCTR's two multi-value MovieLens scripts."""
    linear_feature_columns = fixlen_feature_columns + varlen_feature_columns
    dnn_feature_columns = fixlen_feature_columns + varlen_feature_columns
    feature_names = get_feature_names(linear_feature_columns + dnn_feature_columns)
    model_input = {name: data[name] for name in feature_names}
    model_input["genres"] = genres_list

    model = DeepFM(linear_feature_columns, dnn_feature_columns, task="regression")
    model.compile("adam", "mse", metrics=["mse"])
    history = model.fit(
        model_input,
        data[target].values,
        batch_size=256,
        epochs=10,
        verbose=0,
        validation_split=0.2,
    )
    _falls(history)


def test_run_classification_criteo(deepctr_samples):
    keras.utils.set_random_seed(0)
    data = pd.read_csv(deepctr_samples / "criteo_sample.txt")
    sparse_features = ["C" + str(i) for i in range(1, 27)]
    dense_features = ["I" + str(i) for i in range(1, 14)]
    data[sparse_features] = data[sparse_features].fillna("-1")
    data[dense_features] = data[dense_features].fillna(0)
    target = ["label"]
    for feat in sparse_features:
        data[feat] = LabelEncoder().fit_transform(data[feat])
    mms = MinMaxScaler(feature_range=(0, 1))
    data[dense_features] = mms.fit_transform(data[dense_features])
    fixlen_feature_columns = [
        SparseFeat(feat, vocabulary_size=data[feat].max() + 1, embedding_dim=4)
        for feat in sparse_features
    ] + [DenseFeat(feat, 1) for feat in dense_features]
    dnn_feature_columns = fixlen_feature_columns
    linear_feature_columns = fixlen_feature_columns
    feature_names = get_feature_names(linear_feature_columns + dnn_feature_columns)
    train, test = train_test_split(data, test_size=0.2, random_state=2020)
    train_model_input = {name: train[name] for name in feature_names}
    test_model_input = {name: test[name] for name in feature_names}

    model = DeepFM(linear_feature_columns, dnn_feature_columns, task="binary")
    model.compile("adam", "binary_crossentropy", metrics=["binary_crossentropy"])
    history = model.fit(
        train_model_input,
        train[target].values,
        batch_size=256,
        epochs=10,
        verbose=0,
        validation_split=0.2,
    )
    pred_ans = model.predict(test_model_input, batch_size=256, verbose=0)

    _falls(history)
    assert pred_ans.shape == (len(test), 1)
    assert np.all((pred_ans > 0) & (pred_ans < 1))
    as_arrays = {name: test[name].to_numpy() for name in feature_names}
    np.testing.assert_allclose(
        model.predict(as_arrays, batch_size=256, verbose=0), pred_ans, atol=1e-6
    )


def test_run_multivalue_movielens(deepctr_samples):
    keras.utils.set_random_seed(0)
    data = pd.read_csv(deepctr_samples / "movielens_sample.txt")
    sparse_features = ["movie_id", "user_id", "gender", "age", "occupation", "zip"]
    target = ["rating"]
    for feat in sparse_features:
        data[feat] = LabelEncoder().fit_transform(data[feat])
    key2index = {}

    def split(x):
        key_ans = x.split("|")
        for key in key_ans:
            if key not in key2index:
                key2index[key] = len(key2index) + 1  # 0 is the padding
        return list(map(lambda k: key2index[k], key_ans))

    genres_list = list(map(split, data["genres"].values))
    max_len = max(map(len, genres_list))
    genres_list = keras.utils.pad_sequences(genres_list, maxlen=max_len, padding="post")
    fixlen_feature_columns = [
        SparseFeat(feat, data[feat].max() + 1, embedding_dim=4)
        for feat in sparse_features
    ]
    varlen_feature_columns = [
        VarLenSparseFeat(
            SparseFeat("genres", vocabulary_size=len(key2index) + 1, embedding_dim=4),
            maxlen=max_len,
            combiner="mean",
            weight_name=None,
        )
    ]
    _train_multivalue(
        fixlen_feature_columns, varlen_feature_columns, data, genres_list, target
    )


def test_run_multivalue_movielens_hash(deepctr_samples):
    # Strings hashed inside the model; Keras 3 alone rejects the string
    # Series and the 2-D string array.
    keras.utils.set_random_seed(0)
    data = pd.read_csv(deepctr_samples / "movielens_sample.txt")
    sparse_features = ["movie_id", "user_id", "gender", "age", "occupation", "zip"]
    data[sparse_features] = data[sparse_features].astype(str)
    target = ["rating"]
    genres_list = list(map(lambda x: x.split("|"), data["genres"].values))
    genres_length = np.array(list(map(len, genres_list)))
    max_len = max(genres_length)
    genres_list = keras.utils.pad_sequences(
        genres_list, maxlen=max_len, padding="post", dtype=object, value=0
    ).astype(str)
    fixlen_feature_columns = [
        SparseFeat(
            feat,
            data[feat].nunique() * 5,
            embedding_dim=4,
            use_hash=True,
            dtype="string",
        )
        for feat in sparse_features
    ]
    varlen_feature_columns = [
        VarLenSparseFeat(
            SparseFeat(
                "genres",
                vocabulary_size=100,
                embedding_dim=4,
                use_hash=True,
                dtype="string",
            ),
            maxlen=max_len,
            combiner="mean",
        )
    ]
    _train_multivalue(
        fixlen_feature_columns, varlen_feature_columns, data, genres_list, target
    )


def test_run_din():
    keras.utils.set_random_seed(0)
    feature_columns = [
        SparseFeat("user", 3, embedding_dim=10),
        SparseFeat("gender", 2, embedding_dim=4),
        SparseFeat("item_id", 3 + 1, embedding_dim=8),
        SparseFeat("cate_id", 2 + 1, embedding_dim=4),
        DenseFeat("pay_score", 1),
    ]
    feature_columns += [
        VarLenSparseFeat(
            SparseFeat(
                "hist_item_id",
                vocabulary_size=3 + 1,
                embedding_dim=8,
                embedding_name="item_id",
            ),
            maxlen=4,
            length_name="seq_length",
        ),
        VarLenSparseFeat(
            SparseFeat(
                "hist_cate_id", 2 + 1, embedding_dim=4, embedding_name="cate_id"
            ),
            maxlen=4,
            length_name="seq_length",
        ),
    ]
    behavior_feature_list = ["item_id", "cate_id"]
    feature_dict = {
        "user": np.array([0, 1, 2]),
        "gender": np.array([0, 1, 0]),
        "item_id": np.array([1, 2, 3]),
        "cate_id": np.array([1, 2, 2]),
        "hist_item_id": np.array([[1, 2, 3, 0], [3, 2, 1, 0], [1, 2, 0, 0]]),
        "hist_cate_id": np.array([[1, 2, 2, 0], [2, 2, 1, 0], [1, 2, 0, 0]]),
        "pay_score": np.array([0.1, 0.2, 0.3]),
        "seq_length": np.array([3, 3, 2]),
    }
    x = {name: feature_dict[name] for name in get_feature_names(feature_columns)}
    y = np.array([1, 0, 1])

    model = DIN(feature_columns, behavior_feature_list)
    model.compile("adam", "binary_crossentropy", metrics=["binary_crossentropy"])
    history = model.fit(x, y, verbose=0, epochs=10, validation_split=0.5)

    _falls(history)
    # The three rows are learnable: after 100 more epochs they are separated.
    model.fit(x, y, verbose=0, epochs=100)
    p = model.predict(x, verbose=0)[:, 0]
    assert p[0] > p[1] and p[2] > p[1], p
