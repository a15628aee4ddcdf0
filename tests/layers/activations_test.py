"""`Dice` against its formula, and the `activation_layer` factory."""

import keras
import numpy as np
import pytest

from keras_rec.layers import Dice
from keras_rec.layers import activation_layer
from tests.layers.checks import assert_config_round_trip
from tests.layers.checks import assert_saved_model_round_trip


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_dice(x, mean, var, alpha, eps, axis=-1):
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    mean, var, alpha = (np.reshape(v, shape) for v in (mean, var, alpha))
    p = sigmoid((x - mean) / np.sqrt(var + eps))
    return p * x + (1.0 - p) * alpha * x


def make_dice(d, shape=None, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    dice = Dice(**kwargs)
    dice.build(shape or (None, d))
    mean = rng.normal(size=d).astype("float32")
    var = rng.uniform(0.5, 2.0, size=d).astype("float32")
    alpha = rng.uniform(-0.5, 0.5, size=d).astype("float32")
    dice.batch_norm.moving_mean.assign(mean)
    dice.batch_norm.moving_variance.assign(var)
    dice.alpha.assign(alpha)
    return dice, mean, var, alpha


def test_dice_inference_uses_moving_statistics():
    dice, mean, var, alpha = make_dice(4)
    x = np.random.default_rng(1).normal(size=(6, 4)).astype("float32") * 2
    out = keras.ops.convert_to_numpy(dice(x, training=False))
    np.testing.assert_allclose(out, np_dice(x, mean, var, alpha, 1e-9), rtol=1e-5)


def test_dice_inference_on_sequences():
    dice, mean, var, alpha = make_dice(3, (None, 5, 3), epsilon=1e-3)
    x = np.random.default_rng(2).normal(size=(2, 5, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(dice(x, training=False))
    np.testing.assert_allclose(out, np_dice(x, mean, var, alpha, 1e-3), rtol=1e-5)


def test_dice_training_uses_batch_statistics():
    dice, _, _, alpha = make_dice(4)
    x = np.random.default_rng(3).normal(size=(8, 4)).astype("float32")
    out = keras.ops.convert_to_numpy(dice(x, training=True))
    expected = np_dice(x, x.mean(0), x.var(0), alpha, 1e-9)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)


def test_dice_training_statistics_ignore_masked_positions():
    dice, _, _, alpha = make_dice(2, (None, 4, 2))
    x = np.random.default_rng(4).normal(size=(3, 4, 2)).astype("float32")
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]], bool)
    out = keras.ops.convert_to_numpy(dice(x, training=True, mask=mask))
    valid = x[mask]  # (n_valid, 2)
    expected = np_dice(x, valid.mean(0), valid.var(0), alpha, 1e-9)
    np.testing.assert_allclose(out[mask], expected[mask], rtol=1e-4, atol=1e-6)


def test_dice_on_a_non_last_axis():
    dice, mean, var, alpha = make_dice(4, (None, 4, 3), axis=1)
    x = np.random.default_rng(5).normal(size=(2, 4, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(dice(x, training=False))
    expected = np_dice(x, mean, var, alpha, 1e-9, axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_dice_config_round_trip():
    dice, *_ = make_dice(4, epsilon=1e-4, axis=-1)
    x = np.random.default_rng(6).normal(size=(3, 4)).astype("float32")
    assert dice.get_config()["epsilon"] == 1e-4
    assert_config_round_trip(dice, lambda layer: layer(x, training=False))


def test_dice_saved_model_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    dice = Dice(name="dice")
    model = keras.Model(inputs, dice(keras.layers.Dense(4)(inputs)))
    dice.batch_norm.moving_variance.assign([0.5, 1.0, 2.0, 3.0])
    dice.alpha.assign([0.1, -0.2, 0.3, 0.4])
    x = np.random.default_rng(7).normal(size=(5, 4)).astype("float32")
    loaded = assert_saved_model_round_trip(model, x, tmp_path)
    assert isinstance(loaded.get_layer("dice"), Dice)


def test_activation_layer_factory():
    x = np.array([[-2.0, -0.5, 0.0, 1.5]], "float32")
    relu = activation_layer("relu")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(relu(x)), np.maximum(x, 0))
    sig = activation_layer("sigmoid", name="s")
    assert sig.name == "s"
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(sig(x)), sigmoid(x), rtol=1e-6
    )
    assert isinstance(activation_layer("Dice"), Dice)
    prelu = activation_layer("prelu")
    assert isinstance(prelu, keras.layers.PReLU)
    # PReLU starts with alpha = 0, i.e. as a ReLU.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(prelu(x)), np.maximum(x, 0))
    layer = keras.layers.ReLU()
    assert activation_layer(layer) is layer
    linear = activation_layer(None)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(linear(x)), x)


def test_activation_layer_rejects_unknown_names():
    with pytest.raises(ValueError, match="activation='swishy'"):
        activation_layer("swishy")
