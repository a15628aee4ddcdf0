"""`FM` against a brute-force sum over pairs i < j."""

import itertools

import keras
import numpy as np

from keras_rec.layers import FM
from tests.layers.checks import assert_config_round_trip
from tests.layers.checks import assert_saved_model_round_trip


def np_fm(x):
    out = np.zeros((x.shape[0], 1))
    for i, j in itertools.combinations(range(x.shape[1]), 2):
        out[:, 0] += np.sum(x[:, i] * x[:, j], axis=-1)
    return out


def test_fm_matches_pairwise_sum():
    x = np.random.default_rng(0).normal(size=(5, 4, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(FM()(x))
    assert out.shape == (5, 1)
    np.testing.assert_allclose(out, np_fm(x.astype("float64")), rtol=1e-5, atol=1e-5)


def test_fm_hand_computed_and_single_field_is_zero():
    x = np.array([[[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]]], "float32")
    # <v1,v2> + <v1,v3> + <v2,v3> = 11 + (-1.5) + (-2.5) = 7
    np.testing.assert_allclose(keras.ops.convert_to_numpy(FM()(x)), [[7.0]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(FM()(x[:, :1])), [[0.0]])


def test_fm_config_round_trip():
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype("float32")
    assert_config_round_trip(FM(name="fm"), lambda layer: layer(x))


def test_fm_saved_model_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    ids = keras.Input((3,), dtype="int32")
    model = keras.Model(ids, FM()(keras.layers.Embedding(10, 4)(ids)))
    x = np.array([[1, 2, 3], [4, 5, 9]], "int32")
    assert_saved_model_round_trip(model, x, tmp_path)
