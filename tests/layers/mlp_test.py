"""`DNN` against a manual matmul chain over its own weights."""

import keras
import numpy as np
import pytest

from keras_rec.layers import DNN
from keras_rec.layers import Dice
from tests.layers.checks import assert_config_round_trip
from tests.layers.checks import assert_saved_model_round_trip

ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "linear": lambda x: x,
}


def np_dnn(dnn, x, activation, output_activation=None):
    """Recomputes `dnn(x, training=False)` from the layer's weights."""
    h = x.astype("float64")
    n = len(dnn.dense_layers)
    for i, dense in enumerate(dnn.dense_layers):
        kernel, bias = (keras.ops.convert_to_numpy(w) for w in dense.weights)
        h = h @ kernel + bias
        if dnn.use_bn:
            bn = dnn.bn_layers[i]
            gamma, beta, mean, var = (
                keras.ops.convert_to_numpy(w)
                for w in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)
            )
            h = (h - mean) / np.sqrt(var + bn.epsilon) * gamma + beta
        name = output_activation if (i == n - 1 and output_activation) else activation
        h = ACTIVATIONS[name](h)
    return h


def randomize_bn(dnn, seed=0):
    rng = np.random.default_rng(seed)
    for bn in dnn.bn_layers:
        d = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 1.5, d))
        bn.beta.assign(rng.normal(size=d))
        bn.moving_mean.assign(rng.normal(size=d))
        bn.moving_variance.assign(rng.uniform(0.5, 2.0, d))


@pytest.mark.parametrize(
    "activation,output_activation,use_bn",
    [("relu", None, False), ("tanh", "linear", True), ("sigmoid", "relu", False)],
)
def test_dnn_matches_manual_matmul_chain(activation, output_activation, use_bn):
    dnn = DNN(
        (5, 4, 2),
        activation=activation,
        output_activation=output_activation,
        use_bn=use_bn,
        dropout_rate=0.3,
        seed=3,
    )
    x = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    dnn.build((None, 3))
    randomize_bn(dnn)
    out = keras.ops.convert_to_numpy(dnn(x, training=False))
    assert out.shape == (6, 2)
    np.testing.assert_allclose(
        out, np_dnn(dnn, x, activation, output_activation), rtol=1e-4, atol=1e-6
    )


def test_dnn_on_sequences_applies_per_position():
    dnn = DNN((4, 3), seed=1)
    x = np.random.default_rng(1).normal(size=(2, 5, 6)).astype("float32")
    out = keras.ops.convert_to_numpy(dnn(x))
    assert out.shape == (2, 5, 3)
    np.testing.assert_allclose(out, np_dnn(dnn, x, "relu"), rtol=1e-4, atol=1e-6)


def test_dnn_dropout_only_in_training():
    dnn = DNN((64,), activation="linear", dropout_rate=0.5, seed=0)
    x = np.ones((4, 8), "float32")
    inference = keras.ops.convert_to_numpy(dnn(x, training=False))
    np.testing.assert_allclose(inference, np_dnn(dnn, x, "linear"), rtol=1e-5)
    train = keras.ops.convert_to_numpy(dnn(x, training=True))
    dropped = train == 0.0
    assert 0 < dropped.mean() < 1
    np.testing.assert_allclose(train[~dropped], 2.0 * inference[~dropped], rtol=1e-5)


def test_dnn_seed_makes_weights_reproducible_and_l2_adds_losses():
    a, b = DNN((3, 2), seed=7, l2_reg=0.1), DNN((3, 2), seed=7, l2_reg=0.1)
    x = np.ones((1, 4), "float32")
    a(x), b(x)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    kernels = [keras.ops.convert_to_numpy(d.kernel) for d in a.dense_layers]
    expected = sum(0.1 * np.sum(k.astype("float64") ** 2) for k in kernels)
    losses = sum(float(keras.ops.convert_to_numpy(loss)) for loss in a.losses)
    assert losses == pytest.approx(expected, rel=1e-5)


def test_dnn_dice_activation_uses_dice_layers():
    dnn = DNN((3, 2), activation="dice")
    dnn.build((None, 4))
    assert all(isinstance(a, Dice) for a in dnn.activations)
    # With fresh statistics (mean 0, var 1) and alpha 0, Dice is x * sigmoid(x).
    x = np.random.default_rng(2).normal(size=(3, 4)).astype("float32")
    h = x.astype("float64")
    for dense in dnn.dense_layers:
        kernel, bias = (keras.ops.convert_to_numpy(w) for w in dense.weights)
        h = h @ kernel + bias
        h = h / (1.0 + np.exp(-h / np.sqrt(1.0 + 1e-9)))
    out = keras.ops.convert_to_numpy(dnn(x, training=False))
    np.testing.assert_allclose(out, h, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"hidden_units": []}, "hidden_units=()"),
        ({"hidden_units": [4, 0]}, r"hidden_units=\(4, 0\)"),
        ({"hidden_units": [4], "dropout_rate": 1.0}, "dropout_rate=1.0"),
        ({"hidden_units": [4], "dropout_rate": -0.1}, "dropout_rate=-0.1"),
        ({"hidden_units": [4], "l2_reg": -1.0}, "l2_reg=-1.0"),
    ],
)
def test_dnn_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DNN(**kwargs)


def test_dnn_config_round_trip():
    dnn = DNN(
        [4, 2],
        activation="prelu",
        l2_reg=0.01,
        dropout_rate=0.2,
        use_bn=True,
        output_activation="linear",
        seed=5,
    )
    x = np.random.default_rng(3).normal(size=(3, 5)).astype("float32")
    assert_config_round_trip(dnn, lambda layer: layer(x, training=False))


def test_dnn_saved_model_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    dnn = DNN((4, 3), activation="dice", use_bn=True, dropout_rate=0.1, seed=1)
    model = keras.Model(inputs, dnn(inputs))
    randomize_bn(dnn)
    x = np.random.default_rng(4).normal(size=(6, 5)).astype("float32")
    assert_saved_model_round_trip(model, x, tmp_path)


def test_dnn_batch_statistics_ignore_masked_positions():
    dnn = DNN((3,), activation="linear", use_bn=True, seed=2)
    x = np.random.default_rng(5).normal(size=(2, 4, 5)).astype("float32")
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], bool)
    out = keras.ops.convert_to_numpy(dnn(x, training=True, mask=mask))
    dense = dnn.dense_layers[0]
    h = x @ keras.ops.convert_to_numpy(dense.kernel) + keras.ops.convert_to_numpy(
        dense.bias
    )
    valid = h[mask]
    expected = (h - valid.mean(0)) / np.sqrt(valid.var(0) + 1e-3)
    np.testing.assert_allclose(out[mask], expected[mask], rtol=1e-4, atol=1e-5)
