"""`PaddingMask`: the mask it attaches, and that Keras carries it downstream."""

import keras
import numpy as np
import pytest

from keras_rec.layers import PaddingMask
from keras_rec.layers import SequencePoolingLayer
from tests.layers.checks import assert_config_round_trip
from tests.layers.checks import assert_saved_model_round_trip

EMB = np.random.default_rng(0).normal(size=(3, 4, 2)).astype("float32")
IDS = np.array([[5, 2, 0, 0], [0, 0, 0, 0], [1, 0, 3, 7]], "int32")


def test_ids_mode_masks_id_zero_and_passes_embeddings_through():
    layer = PaddingMask()
    out = layer([EMB, IDS])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), EMB)
    mask = keras.ops.convert_to_numpy(layer.compute_mask([EMB, IDS]))
    np.testing.assert_array_equal(mask, IDS != 0)


@pytest.mark.parametrize("shape", [(3,), (3, 1)])
def test_length_mode_masks_positions_from_length_on(shape):
    lengths = np.array([2, 0, 4], "int32").reshape(shape)
    layer = PaddingMask("length")
    mask = keras.ops.convert_to_numpy(layer.compute_mask([EMB, lengths]))
    np.testing.assert_array_equal(mask, np.arange(4)[None] < lengths.reshape(-1, 1))


def test_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode='zeros'"):
        PaddingMask("zeros")


def test_mask_reaches_the_next_layer_in_a_functional_model():
    emb, ids = keras.Input((4, 2)), keras.Input((4,), dtype="int32")
    masked = PaddingMask()([emb, ids])
    assert masked._keras_mask is not None
    model = keras.Model([emb, ids], SequencePoolingLayer("sum")(masked))
    out = model.predict([EMB, IDS], verbose=0)
    np.testing.assert_allclose(out, (EMB * (IDS != 0)[..., None]).sum(1), rtol=1e-6)


def test_config_round_trip():
    assert_config_round_trip(PaddingMask("length"), lambda lyr: lyr([EMB, IDS[:, 0]]))


def test_saved_model_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    ids, length = keras.Input((4,), dtype="int32"), keras.Input((), dtype="int32")
    emb = keras.layers.Embedding(10, 2)(ids)
    by_ids = SequencePoolingLayer("mean")(PaddingMask(name="m_ids")([emb, ids]))
    by_len = SequencePoolingLayer("mean")(
        PaddingMask("length", name="m_len")([emb, length])
    )
    model = keras.Model([ids, length], [by_ids, by_len])
    lengths = np.array([1, 0, 3], "int32")
    loaded = assert_saved_model_round_trip(model, [IDS, lengths], tmp_path)
    assert loaded.get_layer("m_len").mode == "length"
