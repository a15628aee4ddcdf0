"""`SequencePoolingLayer`: masked mean / sum / max against NumPy."""

import keras
import numpy as np
import pytest

from keras_rec.layers import PaddingMask
from keras_rec.layers import SequencePoolingLayer
from tests.layers.checks import assert_config_round_trip
from tests.layers.checks import assert_saved_model_round_trip

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 5, 3)).astype("float32")
MASK = np.array(
    [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool
)
W = RNG.uniform(0.0, 2.0, size=(4, 5)).astype("float32")


def np_pool(x, mask, mode, weights=None):
    x = x.astype("float64")
    if weights is not None:
        x = x * weights[..., None]
    out = np.zeros((x.shape[0], x.shape[2]))
    for i in range(x.shape[0]):
        valid = x[i][mask[i]]
        if len(valid):
            out[i] = {"sum": np.sum, "mean": np.mean, "max": np.max}[mode](valid, 0)
    return out


@pytest.mark.parametrize("mode", ["mean", "sum", "max"])
def test_masked_pooling_matches_numpy(mode):
    out = keras.ops.convert_to_numpy(SequencePoolingLayer(mode)(X, mask=MASK))
    assert out.shape == (4, 3)
    np.testing.assert_allclose(out, np_pool(X, MASK, mode), rtol=1e-5, atol=1e-6)
    # The all-padding row pools to exactly zero, never NaN.
    np.testing.assert_array_equal(out[2], 0.0)


@pytest.mark.parametrize("mode", ["mean", "sum", "max"])
def test_weighted_pooling_matches_numpy(mode):
    layer = SequencePoolingLayer(mode)
    out = keras.ops.convert_to_numpy(layer(X, weights=W, mask=MASK))
    np.testing.assert_allclose(out, np_pool(X, MASK, mode, W), rtol=1e-5, atol=1e-6)


def test_max_ignores_padding_even_when_all_values_are_negative():
    x = -np.abs(X) - 1.0
    x[:, 3:] = 100.0  # Padded positions hold large values that must not win.
    out = keras.ops.convert_to_numpy(SequencePoolingLayer("max")(x, mask=MASK))
    np.testing.assert_allclose(out[:2], np_pool(x, MASK, "max")[:2], rtol=1e-6)
    assert np.all(out[:2] < 0)


@pytest.mark.parametrize("mode", ["mean", "sum", "max"])
def test_without_mask_pools_every_position(mode):
    out = keras.ops.convert_to_numpy(SequencePoolingLayer(mode)(X))
    full = np.ones(MASK.shape, bool)
    np.testing.assert_allclose(out, np_pool(X, full, mode), rtol=1e-5, atol=1e-6)


def test_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode='avg'"):
        SequencePoolingLayer("avg")


def functional_model(mode, weighted):
    ids = keras.Input((5,), dtype="int32", name="ids")
    emb = keras.layers.Embedding(10, 3, name="emb")(ids)
    seq = PaddingMask()([emb, ids])
    inputs = [ids]
    pool = SequencePoolingLayer(mode, name="pool")
    if weighted:
        w = keras.Input((5,), name="w")
        inputs.append(w)
        return keras.Model(inputs, pool(seq, weights=w))
    return keras.Model(inputs, pool(seq))


@pytest.mark.parametrize("mode", ["mean", "max"])
@pytest.mark.parametrize("weighted", [False, True])
def test_mask_arrives_through_padding_mask(mode, weighted):
    keras.utils.set_random_seed(0)
    model = functional_model(mode, weighted)
    ids = np.where(MASK, RNG.integers(1, 10, size=MASK.shape), 0).astype("int32")
    table = keras.ops.convert_to_numpy(model.get_layer("emb").embeddings)
    inputs = [ids, W] if weighted else [ids]
    out = model.predict(inputs, verbose=0)
    expected = np_pool(table[ids], MASK, mode, W if weighted else None)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_mask_stops_here():
    layer = SequencePoolingLayer()
    assert layer.compute_mask(X, MASK) is None


@pytest.mark.parametrize("mode", ["mean", "sum", "max"])
def test_config_round_trip(mode):
    layer = SequencePoolingLayer(mode)
    assert_config_round_trip(layer, lambda lyr: lyr(X, mask=MASK))


def test_saved_model_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = functional_model("mean", weighted=True)
    ids = np.where(MASK, 3, 0).astype("int32")
    assert_saved_model_round_trip(model, [ids, W], tmp_path)
