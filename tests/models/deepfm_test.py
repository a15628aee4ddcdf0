"""DeepFM: the logit is exactly linear + FM + DNN, and it learns interactions."""

import itertools

import keras
import numpy as np
import pytest

from keras_rec.features import SparseFeat
from keras_rec.models import DeepFM
from tests.models import ranking_data
from tests.models.ranking_data import for_model
from tests.models.ranking_data import run
from tests.models.ranking_data import tiny_columns
from tests.models.ranking_data import tiny_inputs

# Measured (seed 0, 24k training impressions, 2 epochs, emb dim 8, DNN
# (64, 32)): logistic regression 0.59 test AUC, DeepFM 0.70. The click
# logit's gender x category, age x price and user x item terms are pure
# interactions that a model linear in one-hot features cannot represent.
DEEPFM_OVER_LINEAR_AUC = 0.05


def _model_and_inputs():
    keras.utils.set_random_seed(1)
    columns = tiny_columns()
    # One table per feature, so the tests can read each feature's rows; the
    # fused default computes the same (tests/features/fused_tables_test.py).
    model = DeepFM(columns, columns, dnn_hidden_units=(8, 4), seed=3, fuse_tables=False)
    prediction = model.get_layer("prediction")
    prediction.set_weights([np.array([0.3], "float32")])  # a non-zero global bias
    return model, for_model(model, tiny_inputs(n=12, seed=2))


def test_logit_is_the_sum_of_linear_fm_and_dnn_logits():
    model, x = _model_and_inputs()
    parts = keras.Model(
        model.inputs,
        {
            name: model.get_layer(name).output
            for name in ("linear", "fm", "dnn_logit", "logit", "prediction")
        },
    )
    out = {k: np.asarray(v, "float64") for k, v in run(parts, x).items()}
    np.testing.assert_allclose(
        out["logit"], out["linear"] + out["fm"] + out["dnn_logit"], atol=1e-5
    )
    expected = 1.0 / (1.0 + np.exp(-(out["logit"] + 0.3)))
    np.testing.assert_allclose(out["prediction"], expected, atol=1e-6)
    np.testing.assert_allclose(run(model, x), expected, atol=1e-6)
    # All three parts contribute (none is silently zero).
    for name in ("linear", "fm", "dnn_logit"):
        assert np.abs(out[name]).max() > 1e-4, name


def test_fm_logit_is_the_brute_force_pairwise_sum_of_the_shared_embeddings():
    model, x = _model_and_inputs()
    fm = model.get_layer("fm")
    stacked, fm_logit = run(keras.Model(model.inputs, [fm.input, fm.output]), x)
    stacked = stacked.astype("float64")  # (batch, fields, d)
    assert stacked.shape == (12, 4, 4)  # user, item, genre, pooled genres
    brute = np.zeros(len(stacked))
    for i, j in itertools.combinations(range(stacked.shape[1]), 2):
        brute += np.sum(stacked[:, i] * stacked[:, j], axis=-1)
    np.testing.assert_allclose(fm_logit[:, 0], brute, rtol=1e-5, atol=1e-6)

    # The FM reads the very tables the DNN reads: rows of the embeddings.
    table = {
        name: model.get_layer(f"emb_{name}").get_weights()[0]
        for name in ("user_id", "item_id", "genre")
    }
    np.testing.assert_allclose(stacked[:, 0], table["user_id"][x["user_id"]], atol=1e-7)
    np.testing.assert_allclose(stacked[:, 1], table["item_id"][x["item_id"]], atol=1e-7)
    np.testing.assert_allclose(stacked[:, 2], table["genre"][x["genre"]], atol=1e-7)
    valid = (x["genres"] > 0)[..., None]
    mean = (table["genre"][x["genres"]] * valid).sum(1) / valid.sum(1)
    np.testing.assert_allclose(stacked[:, 3], mean, atol=1e-6)


def test_linear_and_dnn_logits_match_numpy_from_the_weights():
    model, x = _model_and_inputs()
    parts = keras.Model(
        model.inputs,
        [model.get_layer("linear").output, model.get_layer("dnn_logit").output],
    )
    linear, deep = (np.asarray(p, "float64") for p in run(parts, x))

    weights = {
        name: model.get_layer(f"linear_{name}").get_weights()[0][:, 0]
        for name in ("user_id", "item_id", "genre")
    }
    kernel, bias = model.get_layer("linear").get_weights()
    valid = x["genres"] > 0
    dense = np.concatenate([x["price"], x["context"]], axis=1)
    expected = (
        weights["user_id"][x["user_id"]]
        + weights["item_id"][x["item_id"]]
        + weights["genre"][x["genre"]]
        + (weights["genre"][x["genres"]] * valid).sum(1) / valid.sum(1)
        + dense @ kernel[:, 0]
        + bias[0]
    )
    np.testing.assert_allclose(linear[:, 0], expected, rtol=1e-5, atol=1e-6)

    # DNN input: the embeddings of the sparse columns in order, then dense.
    stacked = run(keras.Model(model.inputs, model.get_layer("fm").input), x)
    h = np.concatenate([stacked.reshape(len(stacked), -1), dense], axis=1)
    dnn_weights = model.get_layer("dnn").get_weights()
    for w, b in zip(dnn_weights[0::2], dnn_weights[1::2]):
        h = np.maximum(h @ w + b, 0.0)
    (w_out,) = model.get_layer("dnn_logit").get_weights()
    np.testing.assert_allclose(deep, h @ w_out, rtol=1e-4, atol=1e-5)


def test_inputs_are_the_union_of_both_column_lists():
    columns = tiny_columns()
    model = DeepFM(columns[:2], columns[1:4], dnn_hidden_units=(4,))
    assert [t.name for t in model.inputs] == ["user_id", "item_id", "genre", "genres"]
    # Without a DNN: linear + FM only.
    model = DeepFM(columns, columns, dnn_hidden_units=())
    with pytest.raises(ValueError):
        model.get_layer("dnn_logit")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dnn_hidden_units": (8, 0)}, "dnn_hidden_units=(8, 0)"),
        ({"dnn_hidden_units": 8}, "dnn_hidden_units=8"),
        ({"dnn_dropout": 1.0}, "dnn_dropout=1.0"),
        ({"l2_reg_linear": -1}, "l2_reg_linear=-1"),
        ({"l2_reg_embedding": -0.1}, "l2_reg_embedding=-0.1"),
        ({"task": "multiclass"}, "task='multiclass'"),
        ({"dnn_activation": "nope"}, "activation='nope'"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(kwargs, message):
    columns = tiny_columns()
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        DeepFM(columns, columns, **kwargs)


def test_bad_column_lists_raise_value_errors():
    columns = tiny_columns()
    with pytest.raises(ValueError, match="linear_feature_columns"):
        DeepFM([], columns)
    with pytest.raises(ValueError, match="FM part needs at least one"):
        DeepFM(columns, columns[4:])  # dense columns only
    with pytest.raises(ValueError, match="embedding_dim"):
        DeepFM(columns, columns + [SparseFeat("city", 10, 7)])


def test_deepfm_learns_interactions_a_linear_model_cannot():
    linear = ranking_data.trained_auc("linear")
    deepfm = ranking_data.trained_auc("deepfm")
    assert deepfm >= linear + DEEPFM_OVER_LINEAR_AUC, (deepfm, linear)
