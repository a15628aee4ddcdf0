"""`CosinSimilarity` = cos / temperature; `L2Normalization` vs NumPy."""

import keras
import numpy as np
import pytest

from keras_rec.layers import CosineSimilarity
from keras_rec.layers import CosinSimilarity
from keras_rec.layers import L2Normalization
from tests.layers.checks import assert_config_round_trip
from tests.layers.checks import assert_saved_model_round_trip

RNG = np.random.default_rng(0)
U = RNG.normal(size=(5, 4)).astype("float32")
V = RNG.normal(size=(5, 4)).astype("float32")


def np_cos(u, v):
    u, v = u.astype("float64"), v.astype("float64")
    return np.sum(u * v, -1, keepdims=True) / (
        np.linalg.norm(u, axis=-1, keepdims=True)
        * np.linalg.norm(v, axis=-1, keepdims=True)
    )


@pytest.mark.parametrize("cls", [CosinSimilarity, CosineSimilarity])
@pytest.mark.parametrize("temperature", [1.0, 0.05, 2])
def test_cosine_over_temperature(cls, temperature):
    out = keras.ops.convert_to_numpy(cls(temperature=temperature)([U, V]))
    assert out.shape == (5, 1)
    np.testing.assert_allclose(out, np_cos(U, V) / temperature, rtol=1e-5)


def test_identical_and_opposite_vectors():
    out = keras.ops.convert_to_numpy(CosinSimilarity(0.5)([U, np.stack([U[0]] * 5)]))
    assert out[0, 0] == pytest.approx(2.0, rel=1e-6)
    out = keras.ops.convert_to_numpy(CosinSimilarity(1.0)([U, -3.0 * U]))
    np.testing.assert_allclose(out, -1.0, rtol=1e-6)


def test_zero_vector_gives_zero_similarity_not_nan():
    u = np.zeros((1, 4), "float32")
    out = keras.ops.convert_to_numpy(CosinSimilarity()([u, V[:1]]))
    np.testing.assert_array_equal(out, [[0.0]])


def test_without_normalization_is_dot_over_temperature():
    out = keras.ops.convert_to_numpy(CosinSimilarity(0.1, normalize=False)([U, V]))
    np.testing.assert_allclose(out, np.sum(U * V, -1, keepdims=True) / 0.1, rtol=1e-5)


@pytest.mark.parametrize(
    "temperature,shown",
    [
        (0, "temperature=0"),
        (-1.0, "temperature=-1.0"),
        ("0.1", "temperature='0.1'"),
        (True, "temperature=True"),
        (None, "temperature=None"),
        (float("nan"), "temperature=nan"),
        (float("inf"), "temperature=inf"),
    ],
)
def test_bad_temperature_names_it(temperature, shown):
    with pytest.raises(ValueError, match=shown):
        CosinSimilarity(temperature=temperature)


def test_numpy_scalar_temperature_is_accepted():
    layer = CosinSimilarity(temperature=np.float32(0.5))
    assert layer.get_config()["temperature"] == 0.5


def test_mismatched_dimensions_raise():
    with pytest.raises(ValueError, match="same dimension"):
        CosinSimilarity()([U, V[:, :3]])


def test_l2_normalization_matches_numpy():
    x = np.concatenate([U, np.zeros((1, 4), "float32")])
    out = keras.ops.convert_to_numpy(L2Normalization()(x))
    np.testing.assert_allclose(
        out[:5], U / np.linalg.norm(U, axis=1, keepdims=True), rtol=1e-5
    )
    np.testing.assert_array_equal(out[5], 0.0)
    out = keras.ops.convert_to_numpy(L2Normalization(axis=0)(U))
    np.testing.assert_allclose(
        out, U / np.linalg.norm(U, axis=0, keepdims=True), rtol=1e-5
    )


@pytest.mark.parametrize(
    "layer,call",
    [
        (CosinSimilarity(0.2, normalize=False), lambda lyr: lyr([U, V])),
        (CosineSimilarity(0.3), lambda lyr: lyr([U, V])),
        (L2Normalization(axis=1), lambda lyr: lyr(U)),
    ],
)
def test_config_round_trip(layer, call):
    assert_config_round_trip(layer, call)


def test_saved_model_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    u, v = keras.Input((4,)), keras.Input((4,))
    user = L2Normalization(name="user_norm")(keras.layers.Dense(3)(u))
    item = keras.layers.Dense(3)(v)
    cos = CosinSimilarity(0.07, name="cos")([user, item])
    alias = CosineSimilarity(0.5, name="alias")([user, item])
    model = keras.Model([u, v], [cos, alias])
    loaded = assert_saved_model_round_trip(model, [U, V], tmp_path, atol=1e-6)
    assert type(loaded.get_layer("alias")) is CosineSimilarity
    assert loaded.get_layer("cos").temperature == pytest.approx(0.07)
