"""`Linear` against `sum(sparse) + dense @ w + b`."""

import keras
import numpy as np
import pytest

from keras_rec.layers import Linear
from tests.layers.checks import assert_config_round_trip
from tests.layers.checks import assert_saved_model_round_trip

RNG = np.random.default_rng(0)
SPARSE = RNG.normal(size=(4, 3)).astype("float32")
DENSE = RNG.normal(size=(4, 2)).astype("float32")
KERNEL = np.array([[0.5], [-2.0]], "float32")


def test_both():
    layer = Linear("both")
    layer.build([(None, 3), (None, 2)])
    layer.kernel.assign(KERNEL)
    layer.bias.assign([0.25])
    out = keras.ops.convert_to_numpy(layer([SPARSE, DENSE]))
    expected = SPARSE.sum(1, keepdims=True) + DENSE @ KERNEL + 0.25
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_sparse_only_sums_and_has_only_a_bias():
    layer = Linear("sparse")
    out = keras.ops.convert_to_numpy(layer(SPARSE))
    assert [w.name for w in layer.weights] == ["bias"]
    np.testing.assert_allclose(out, SPARSE.sum(1, keepdims=True), rtol=1e-6)


def test_dense_only_without_bias():
    layer = Linear("dense", use_bias=False)
    layer.build((None, 2))
    layer.kernel.assign(KERNEL)
    out = keras.ops.convert_to_numpy(layer(DENSE))
    assert len(layer.weights) == 1
    np.testing.assert_allclose(out, DENSE @ KERNEL, rtol=1e-6)


def test_l2_reg_penalises_the_dense_kernel():
    layer = Linear("dense", l2_reg=0.5)
    layer.build((None, 2))
    layer.kernel.assign(KERNEL)
    loss = float(sum(keras.ops.convert_to_numpy(v) for v in layer.losses))
    assert loss == pytest.approx(0.5 * float(np.sum(KERNEL**2)), rel=1e-6)


def test_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode='wide'"):
        Linear("wide")


@pytest.mark.parametrize("mode", ["sparse", "dense", "both"])
def test_config_round_trip(mode):
    inputs = {"sparse": SPARSE, "dense": DENSE, "both": [SPARSE, DENSE]}[mode]
    layer = Linear(mode, l2_reg=0.1)
    layer(inputs)
    layer.bias.assign([0.5])
    assert_config_round_trip(layer, lambda lyr: lyr(inputs))


def test_saved_model_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    sparse, dense = keras.Input((3,)), keras.Input((2,))
    layer = Linear("both", name="linear")
    model = keras.Model([sparse, dense], layer([sparse, dense]))
    layer.bias.assign([0.5])
    assert_saved_model_round_trip(model, [SPARSE, DENSE], tmp_path)
