"""`AttentionPoolingLayer` against a NumPy recomputation from its weights."""

import keras
import numpy as np
import pytest

from keras_rec.layers import AttentionPoolingLayer
from keras_rec.layers import PaddingMask
from tests.layers.checks import assert_config_round_trip
from tests.layers.checks import assert_saved_model_round_trip

RNG = np.random.default_rng(0)
B, T, D = 3, 4, 2
QUERY = RNG.normal(size=(B, D)).astype("float32")
KEYS = RNG.normal(size=(B, T, D)).astype("float32")
MASK = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], bool)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_attention(layer, query, keys, mask):
    """Recomputes the layer's inference output (weights or pooled vector)."""
    q = np.broadcast_to(query.reshape(len(query), 1, -1), keys.shape)
    h = np.concatenate([q, keys, q - keys, q * keys], -1).astype("float64")
    unit = layer.activation_unit
    for dense, act in zip(unit.dense_layers, unit.activations):
        h = h @ keras.ops.convert_to_numpy(dense.kernel) + keras.ops.convert_to_numpy(
            dense.bias
        )
        if layer.att_activation == "sigmoid":
            h = sigmoid(h)
        else:  # dice, with its moving statistics
            bn = act.batch_norm
            mean, var, alpha = (
                keras.ops.convert_to_numpy(w)
                for w in (bn.moving_mean, bn.moving_variance, act.alpha)
            )
            p = sigmoid((h - mean) / np.sqrt(var + bn.epsilon))
            h = p * h + (1 - p) * alpha * h
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.score_dense.weights)
    scores = (h @ kernel + bias)[..., 0]  # (batch, T)
    if layer.weight_normalization:
        e = np.where(mask, np.exp(scores - scores.max(-1, keepdims=True)), 0.0)
        total = e.sum(-1, keepdims=True)
        weights = np.where(total > 0, e / np.where(total > 0, total, 1), 0.0)
    else:
        weights = np.where(mask, scores, 0.0)
    if layer.return_score:
        return weights
    return np.sum(weights[..., None] * keys, axis=1)


def make_layer(activation="dice", seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    layer = AttentionPoolingLayer((6, 3), att_activation=activation, **kwargs)
    layer(QUERY, KEYS, keys_mask=MASK)  # Builds.
    if activation == "dice":
        rng = np.random.default_rng(seed)
        for dice in layer.activation_unit.activations:
            d = dice.alpha.shape[0]
            dice.alpha.assign(rng.uniform(-0.5, 0.5, d))
            dice.batch_norm.moving_mean.assign(rng.normal(size=d))
            dice.batch_norm.moving_variance.assign(rng.uniform(0.5, 2.0, d))
    return layer


@pytest.mark.parametrize("activation", ["sigmoid", "dice"])
@pytest.mark.parametrize("weight_normalization", [False, True])
@pytest.mark.parametrize("return_score", [False, True])
def test_matches_numpy_recomputation(activation, weight_normalization, return_score):
    layer = make_layer(
        activation,
        weight_normalization=weight_normalization,
        return_score=return_score,
    )
    out = keras.ops.convert_to_numpy(layer(QUERY, KEYS, keys_mask=MASK))
    assert out.shape == ((B, T) if return_score else (B, D))
    expected = np_attention(layer, QUERY, KEYS, MASK)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("weight_normalization", [False, True])
def test_padded_positions_get_exactly_zero_weight(weight_normalization):
    layer = make_layer(weight_normalization=weight_normalization, return_score=True)
    scores = keras.ops.convert_to_numpy(layer(QUERY, KEYS, keys_mask=MASK))
    assert np.all(scores[~MASK] == 0.0)
    assert np.all(scores[MASK] != 0.0)
    assert not np.any(np.isnan(scores))


def test_weight_normalization_sums_to_one_over_valid_positions():
    layer = make_layer(weight_normalization=True, return_score=True)
    scores = keras.ops.convert_to_numpy(layer(QUERY, KEYS, keys_mask=MASK))
    np.testing.assert_allclose(scores[:2].sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(scores[2], 0.0)  # No valid position.
    pooled = make_layer(weight_normalization=True)(QUERY, KEYS, keys_mask=MASK)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(pooled)[2], 0.0)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("weight_normalization", [False, True])
def test_padded_keys_do_not_change_the_output(training, weight_normalization):
    layer = make_layer(weight_normalization=weight_normalization)
    other = KEYS.copy()
    other[~MASK] = RNG.normal(size=other[~MASK].shape) * 100.0
    a = layer(QUERY, KEYS, keys_mask=MASK, training=training)
    b = layer(QUERY, other, keys_mask=MASK, training=training)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), rtol=1e-5
    )


def test_without_mask_every_position_counts():
    layer = make_layer("sigmoid")
    out = keras.ops.convert_to_numpy(layer(QUERY, KEYS))
    full = np.ones((B, T), bool)
    np.testing.assert_allclose(out, np_attention(layer, QUERY, KEYS, full), rtol=1e-4)


def test_query_with_a_time_axis_gives_the_same_output():
    layer = make_layer("sigmoid")
    a = layer(QUERY, KEYS, keys_mask=MASK)
    b = layer(QUERY[:, None, :], KEYS, keys_mask=MASK)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), rtol=1e-6
    )


def din_model(**kwargs):
    keras.utils.set_random_seed(0)
    item = keras.Input((), dtype="int32", name="item")
    hist = keras.Input((T,), dtype="int32", name="hist")
    table = keras.layers.Embedding(10, D, name="emb")
    keys = PaddingMask(name="mask")([table(hist), hist])
    att = AttentionPoolingLayer((5,), name="att", **kwargs)
    return keras.Model([item, hist], att(table(item), keys))


def test_mask_arrives_automatically_through_padding_mask():
    model = din_model(return_score=True)
    hist = np.where(MASK, RNG.integers(1, 10, size=MASK.shape), 0).astype("int32")
    item = np.array([1, 2, 3], "int32")
    scores = model.predict([item, hist], verbose=0)
    assert np.all(scores[~MASK] == 0.0)
    assert np.all(scores[MASK] != 0.0)
    table = keras.ops.convert_to_numpy(model.get_layer("emb").embeddings)
    expected = np_attention(model.get_layer("att"), table[item], table[hist], MASK)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-6)


def test_compute_mask_stops_the_mask():
    model = din_model()
    assert getattr(model.outputs[0], "_keras_mask", None) is None


def test_config_round_trip():
    layer = make_layer("dice", weight_normalization=True)
    config = layer.get_config()
    assert config["att_hidden_units"] == [6, 3]
    assert_config_round_trip(
        layer, lambda lyr: lyr(QUERY, KEYS, keys_mask=MASK, training=False)
    )


@pytest.mark.parametrize("activation", ["dice", "prelu"])
def test_saved_model_round_trip(tmp_path, activation):
    model = din_model(att_activation=activation, weight_normalization=True)
    hist = np.where(MASK, 4, 0).astype("int32")
    item = np.array([1, 2, 3], "int32")
    assert_saved_model_round_trip(model, [item, hist], tmp_path)
