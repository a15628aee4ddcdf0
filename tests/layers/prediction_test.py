"""`PredictionLayer` against sigmoid / identity of logit + bias."""

import keras
import numpy as np
import pytest

from keras_rec.layers import PredictionLayer
from tests.layers.checks import assert_config_round_trip
from tests.layers.checks import assert_saved_model_round_trip

LOGITS = np.array([[-3.0], [-0.5], [0.0], [2.0]], "float32")


def test_binary_is_sigmoid_of_logit_plus_bias():
    layer = PredictionLayer("binary")
    layer.build((None, 1))
    layer.global_bias.assign([0.7])
    out = keras.ops.convert_to_numpy(layer(LOGITS))
    np.testing.assert_allclose(out, 1.0 / (1.0 + np.exp(-(LOGITS + 0.7))), rtol=1e-6)


def test_regression_is_identity_plus_bias():
    layer = PredictionLayer("regression")
    layer.build((None, 1))
    layer.global_bias.assign([-1.5])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(LOGITS)), LOGITS - 1.5)


def test_without_bias_has_no_weights():
    layer = PredictionLayer("binary", use_bias=False)
    out = keras.ops.convert_to_numpy(layer(LOGITS))
    assert layer.weights == []
    np.testing.assert_allclose(out, 1.0 / (1.0 + np.exp(-LOGITS)), rtol=1e-6)


def test_rejects_unknown_task():
    with pytest.raises(ValueError, match="task='multiclass'"):
        PredictionLayer("multiclass")


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_config_round_trip(task):
    layer = PredictionLayer(task)
    layer.build((None, 1))
    layer.global_bias.assign([0.3])
    assert_config_round_trip(layer, lambda lyr: lyr(LOGITS))


def test_saved_model_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    layer = PredictionLayer("binary", name="prediction")
    model = keras.Model(inputs, layer(keras.layers.Dense(1)(inputs)))
    layer.global_bias.assign([0.25])
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    assert_saved_model_round_trip(model, x, tmp_path)
