"""`fuse_tables`: one gather per group of tables, the values of separate tables."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rec.features import DenseFeat
from keras_rec.features import FeatureEncoder
from keras_rec.features import SparseFeat
from keras_rec.features import VarLenSparseFeat
from keras_rec.layers import FusedEmbedding
from keras_rec.models import DCN
from keras_rec.models import WDL
from keras_rec.models import DeepFM
from keras_rec.optimizers import LazyAdam

DIM = 4
BUILDERS = {
    "deepfm": lambda c, **kw: DeepFM(c, c, (8, 4), **kw),
    "wdl": lambda c, **kw: WDL(c, c, (8, 4), **kw),
    "dcn": lambda c, **kw: DCN(c, c, dnn_hidden_units=(8, 4), **kw),
}


def columns():
    """Fused: a, b, c (2 tables: c shares a's table), d. Separate: the
    sequence's table `g`, the lookup column `city`, the lone 8-wide `w`."""
    return [
        SparseFeat("a", 7, DIM, embeddings_initializer="glorot_uniform"),
        SparseFeat("g", 5, DIM),
        SparseFeat("b", 11, DIM),
        SparseFeat("c", 7, DIM, embedding_name="a"),
        VarLenSparseFeat(SparseFeat("gs", 5, DIM, embedding_name="g"), 3),
        DenseFeat("price"),
        SparseFeat("city", 4, DIM, vocabulary=["x", "y", "z"], dtype="string"),
        SparseFeat("d", 3, DIM, embeddings_initializer={"class_name": "Ones"}),
    ]


FUSED = ("a", "b", "d")  # The fused tables, in row order.


def inputs(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "a": rng.integers(0, 7, n),
        "g": rng.integers(0, 5, n),
        "b": rng.integers(0, 11, n),
        "c": rng.integers(0, 7, n),
        "gs": rng.integers(0, 5, (n, 3)),
        "price": rng.random((n, 1)).astype("float32"),
        "city": rng.choice(["x", "y", "z", "?"], n).astype(object),
        "d": rng.integers(0, 3, n),
    }


def build(name, fuse_tables, **kwargs):
    keras.utils.set_random_seed(0)  # The `Linear` kernel is not seeded.
    return BUILDERS[name](columns(), fuse_tables=fuse_tables, **kwargs)


def fused_rows(model, prefix):
    """The fused model's layout of a separate model's `<prefix>_<name>` tables."""
    return np.concatenate(
        [model.get_layer(f"{prefix}_{n}").get_weights()[0] for n in FUSED]
    )


def copy_weights(separate, fused):
    """Gives `fused` the weights of `separate`, table rows included."""
    for layer in fused.layers:
        if isinstance(layer, FusedEmbedding):
            prefix = layer.name.split("_fused")[0]
            layer.set_weights([fused_rows(separate, prefix)])
        elif layer.weights:
            layer.set_weights(separate.get_layer(layer.name).get_weights())


def step(model, x, y):
    """Loss, dense gradients by variable path, and the weights after one step."""
    optimizer = LazyAdam(0.1)
    x = {k: tf.constant(v) for k, v in x.items()}
    with tf.GradientTape() as tape:
        loss = keras.losses.binary_crossentropy(y, model(x, training=True))
        loss = tf.reduce_mean(loss) + tf.add_n(model.losses or [0.0])
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    optimizer.apply(grads, variables)
    dense = {v.path: tf.convert_to_tensor(g).numpy() for v, g in zip(variables, grads)}
    return float(loss), dense, {v.path: v.numpy() for v in model.weights}


def separate_layout(values, model):
    """Per-variable dict of a separate model, with its fused tables concatenated."""
    out = dict(values)
    for prefix in ("emb", "linear"):
        paths = [f"{prefix}_{n}/embeddings" for n in FUSED]
        out[f"{prefix}_fused_d{DIM if prefix == 'emb' else 1}/embeddings"] = (
            np.concatenate([out.pop(p) for p in paths])
        )
    return out


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_initial_rows_are_those_of_the_separate_tables(name):
    separate, fused = build(name, False), build(name, True)
    for prefix in ("emb", "linear"):
        layer = fused.get_layer(f"{prefix}_fused_d{DIM if prefix == 'emb' else 1}")
        np.testing.assert_array_equal(
            layer.get_weights()[0], fused_rows(separate, prefix)
        )
    names = {layer.name for layer in fused.layers}
    assert {"emb_g", "emb_city", "linear_g", "linear_city"} <= names
    assert not any(f"emb_{n}" in names for n in FUSED)


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("l2", [0.0, 1e-2])
def test_predictions_gradients_and_updates_equal_separate_tables(name, l2):
    x = inputs()
    y = (np.arange(32) % 3 == 0).astype("float32")[:, None]
    separate = build(name, False, l2_reg_embedding=l2, l2_reg_linear=l2)
    fused = build(name, True, l2_reg_embedding=l2, l2_reg_linear=l2)
    copy_weights(separate, fused)
    np.testing.assert_array_equal(
        fused.predict(x, verbose=0), separate.predict(x, verbose=0)
    )
    loss_s, grads_s, after_s = step(separate, x, y)
    loss_f, grads_f, after_f = step(fused, x, y)
    # Penalties of one variable vs a sum over tables: same value, other order.
    np.testing.assert_allclose(loss_f, loss_s, rtol=1e-6)
    for expected, actual in (
        (separate_layout(grads_s, separate), grads_f),
        (separate_layout(after_s, separate), after_f),
    ):
        assert sorted(expected) == sorted(actual)
        for path in expected:
            np.testing.assert_array_equal(actual[path], expected[path], err_msg=path)


def test_fused_model_saves_and_loads_without_custom_objects(tmp_path):
    model = build("deepfm", True)
    x = inputs()
    path = tmp_path / "fused.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    assert isinstance(loaded.get_layer("emb_fused_d4"), FusedEmbedding)


def test_encoder_groups_by_width_and_trainable_and_keeps_per_column_lookups():
    cols = [
        SparseFeat("a", 5, 4),
        SparseFeat("b", 6, 4),
        SparseFeat("w", 9, 8),
        SparseFeat("f1", 3, 4, trainable=False),
        SparseFeat("f2", 2, 4, trainable=False),
    ]
    encoder = FeatureEncoder(cols, fuse_tables=True)
    assert sorted(encoder.fused_tables) == ["emb_fused_d4", "emb_fused_d4_frozen"]
    assert sorted(encoder.tables) == ["w"]
    assert not encoder.fused_tables["emb_fused_d4_frozen"].trainable
    outputs = encoder.embeddings()
    outputs["linear"] = encoder.linear_logit()
    assert sorted(encoder.fused_linear_tables) == ["linear_fused_d1"]
    model = keras.Model(encoder.input_list, outputs)
    x = {"a": np.array([1, 4]), "b": np.array([5, 0]), "w": np.array([8, 2])}
    x.update(f1=np.array([2, 0]), f2=np.array([1, 1]))
    out = model(x)
    table = encoder.fused_tables["emb_fused_d4"].get_weights()[0]
    np.testing.assert_array_equal(out["b"], table[5 + x["b"]])
    assert encoder.fused_tables["emb_fused_d4"].offsets == [0, 5]
    # emb_fused_d4, emb_w, linear_fused_d1 (all five columns), `Linear` bias.
    assert len(model.trainable_weights) == 4


def test_fused_embedding_layer_checks_ids_and_round_trips_its_config():
    init = [keras.initializers.RandomNormal(seed=1), "ones"]
    layer = FusedEmbedding([3, 2], 2, init, name="fe")
    out = layer([np.array([0, 2]), np.array([1, 1])], tables=(0, 1))
    separate = keras.layers.Embedding(3, 2, embeddings_initializer=init[0])
    separate.build()
    np.testing.assert_array_equal(out[:, 0], separate.get_weights()[0][[0, 2]])
    np.testing.assert_array_equal(out[:, 1], np.ones((2, 2)))
    np.testing.assert_array_equal(layer.table(1), np.ones((2, 2)))
    # An id past its own table does not read the next one.
    with pytest.raises(tf.errors.InvalidArgumentError):
        layer([np.array([3, 0])], tables=(0,))
    with pytest.raises(tf.errors.InvalidArgumentError):
        layer([np.array([-1, 0])], tables=(1,))
    clone = FusedEmbedding.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="one initializer per table"):
        FusedEmbedding([3, 2], 2, ["ones"] * 3)
