"""A feature fed as a column `(n, 1)` in one call and as a vector `(n,)` in the next.

A pandas Series reaches Keras as a column, its `.to_numpy()` as a vector. On
plain Keras 3 functional models the second call's trace sees the feature
with an unknown rank and fails (keras-team/keras#20573); the library's
models restore the rank in their steps (`keras_rec.models.input_fixes`).
"""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

import keras_rec as kr
from keras_rec.models.input_fixes import restore_input_ranks
from tests.models.ranking_data import MAXLEN
from tests.models.ranking_data import for_model
from tests.models.ranking_data import tiny_columns
from tests.models.ranking_data import tiny_inputs

SCALARS = ("user_id", "item_id", "genre")


def _as_vectors(x):
    return dict(x)


def _as_series(x):
    """The scalar features as pandas Series, the way DeepCTR users pass them."""
    return {k: pd.Series(v) if k in SCALARS else v for k, v in x.items()}


def _as_columns(x):
    return {k: v[:, None] if k in SCALARS else v for k, v in x.items()}


FORMS = {"vectors": _as_vectors, "series": _as_series, "columns": _as_columns}


def _ranker(name):
    keras.utils.set_random_seed(0)
    columns = tiny_columns(with_history=name == "din")
    if name == "din":
        model = kr.DIN(columns, ["item_id", "genre"], dnn_hidden_units=(8,))
    else:
        model = kr.DeepFM(columns, columns, dnn_hidden_units=(8,))
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    return model


def _labels(n, seed=1):
    return np.random.default_rng(seed).integers(0, 2, n).astype("float32")


@pytest.mark.parametrize("name", ["deepfm", "din"])
@pytest.mark.parametrize(
    "first,second", [("series", "vectors"), ("vectors", "columns")]
)
def test_predict_accepts_a_feature_as_column_then_as_vector(name, first, second):
    model = _ranker(name)
    x = for_model(model, tiny_inputs(64))
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    a = model.predict(FORMS[first](x), batch_size=16, verbose=0)
    b = model.predict(FORMS[second](x), batch_size=16, verbose=0)
    np.testing.assert_allclose(a, expected, atol=1e-6)
    np.testing.assert_allclose(b, expected, atol=1e-6)


@pytest.mark.parametrize("name", ["deepfm", "din"])
def test_fit_and_evaluate_with_mixed_forms_train_like_one_form(name):
    x = for_model(_ranker(name), tiny_inputs(64))
    y = _labels(64)

    def train(forms):
        model = _ranker(name)
        for form in forms:
            model.fit(
                FORMS[form](x),
                pd.Series(y) if form == "series" else y,
                batch_size=16,
                shuffle=False,
                verbose=0,
            )
        losses = [
            model.evaluate(FORMS[form](x), y, batch_size=16, verbose=0)
            for form in forms
        ]
        return model.get_weights(), losses

    mixed_weights, mixed_losses = train(["series", "vectors", "columns"])
    plain_weights, plain_losses = train(["vectors", "vectors", "vectors"])
    for a, b in zip(mixed_weights, plain_weights):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(mixed_losses, plain_losses, atol=1e-5)
    # Three epochs at lr 1e-2 moved the model: the comparison is not vacuous.
    assert not np.allclose(mixed_weights[-1], _ranker(name).get_weights()[-1])


def test_two_tower_fit_and_predict_with_mixed_forms():
    hist = kr.VarLenSparseFeat(
        kr.SparseFeat("hist_item_id", 30, 4, embedding_name="item_id"), 5
    )
    user = [hist, kr.SparseFeat("gender", 3, 4)]
    item = [kr.SparseFeat("item_id", 30, 4)]
    rng = np.random.default_rng(0)
    x = {
        "hist_item_id": rng.integers(0, 30, (64, 5)).astype("int32"),
        "gender": rng.integers(1, 3, 64).astype("int32"),
        "item_id": rng.integers(1, 30, 64).astype("int32"),
    }
    series = {k: pd.Series(v) if v.ndim == 1 else v for k, v in x.items()}
    keras.utils.set_random_seed(0)
    model = kr.DSSM(user, item, (8, 4), (8, 4))
    model.compile(keras.optimizers.Adam(1e-2))
    model.fit(series, batch_size=16, verbose=0)
    history = model.fit(x, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    # Scores are cosines / temperature, about 10 in size.
    for form in (series, x):
        np.testing.assert_allclose(model.predict(form, verbose=0), expected, rtol=1e-5)


def test_unknown_rank_inputs_get_the_input_shape_or_fail_naming_it():
    user_id = keras.Input((1,), name="user_id", dtype="int32")
    hist = keras.Input((MAXLEN,), name="hist", dtype="int32")

    @tf.function(input_signature=[tf.TensorSpec(None, tf.int32)] * 2)
    def restored(a, b):
        x = restore_input_ranks({"user_id": a, "hist": b}, [user_id, hist])
        assert x["user_id"].shape.as_list() == [None, 1]
        assert x["hist"].shape.as_list() == [None, MAXLEN]
        return x["user_id"], x["hist"]

    ids, histories = restored(tf.constant([3, 4]), tf.zeros((2, MAXLEN), tf.int32))
    np.testing.assert_array_equal(ids.numpy(), [[3], [4]])
    assert histories.shape == (2, MAXLEN)
    # A vector where a sequence is expected is not silently reshaped.
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"\[\?,{MAXLEN}\]"):
        restored(tf.constant([3, 4]), tf.zeros((2 * MAXLEN,), tf.int32))


def test_vector_labels_reach_string_metrics_as_a_column():
    # DeepCTR's examples compile with metrics=["binary_crossentropy"] and fit
    # on labels of shape (n,); on a plain Keras 3 model that metric fails
    # ("`target` and `output` must have the same rank").
    model = _ranker("deepfm")
    model.compile("adam", "binary_crossentropy", metrics=["binary_crossentropy"])
    x = for_model(model, tiny_inputs(64))
    y = _labels(64)
    model.fit(x, y, batch_size=16, verbose=0)
    _, metric = model.evaluate(x, y, batch_size=64, verbose=0)
    p = np.clip(model.predict(x, verbose=0)[:, 0].astype("float64"), 1e-7, 1 - 1e-7)
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(metric, expected, rtol=1e-4)


def test_string_arrays_series_and_sequences_feed_fit_evaluate_predict():
    # Keras 3 itself rejects NumPy unicode/bytes arrays, pandas string Series
    # and 2-D object arrays of strings.
    columns = [
        kr.SparseFeat("city", 50, 4, use_hash=True, dtype="string"),
        kr.VarLenSparseFeat(
            kr.SparseFeat("tags", 50, 4, use_hash=True, dtype="string"), maxlen=3
        ),
    ]
    rng = np.random.default_rng(0)
    words = np.array(["paris", "rome", "oslo", "lima"])
    city = words[rng.integers(0, 4, 64)]
    tags = np.where(rng.random((64, 3)) < 0.6, words[rng.integers(0, 4, (64, 3))], "")
    y = (city == "rome").astype("float32")
    forms = {
        "unicode": {"city": city, "tags": tags},
        "bytes": {"city": city.astype("S"), "tags": tags.astype("S")},
        "series": {"city": pd.Series(city), "tags": tags.astype(object)},
    }
    tensors = {"city": tf.constant(city), "tags": tf.constant(tags)}
    keras.utils.set_random_seed(0)
    model = kr.DeepFM(columns, columns, dnn_hidden_units=(8,))
    model.compile(keras.optimizers.Adam(5e-2), "binary_crossentropy")
    for x in forms.values():
        model.fit(x, y, batch_size=16, validation_split=0.25, verbose=0)
    # Keras's positional arguments pass through; string validation data too.
    history = model.fit(
        forms["series"], y, 16, 1, 0, validation_data=(forms["unicode"], y)
    )
    assert np.isfinite(history.history["val_loss"][0])
    expected = keras.ops.convert_to_numpy(model(tensors, training=False))
    for name, x in forms.items():
        np.testing.assert_allclose(
            model.predict(x, verbose=0), expected, atol=1e-6, err_msg=name
        )
        assert np.isfinite(model.evaluate(x, y, verbose=0))
    # The strings reached the model intact: three short epochs learned the
    # planted rule (label = city is "rome"); garbled or constant strings
    # would leave the AUC near 0.5.
    assert roc_auc_score(y, expected[:, 0]) > 0.8
