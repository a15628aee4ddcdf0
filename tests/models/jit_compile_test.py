"""`jit_compile="auto"`: XLA on CPU for DIN, Keras's choice elsewhere.

Keras resolves `"auto"` to False on CPU-only machines; DIN resolves it to
True (its `fit` is about 1.3x faster under XLA, see BENCHMARKS.md), except
under a strategy or run eagerly. The two-tower models keep Keras's choice
(XLA cost DSSM recall quality on MovieLens) and never use XLA with sampled
negatives (no XLA kernel for TensorFlow's candidate samplers). The choice
must survive `save` / `load_model`, and an XLA step must compute the same
update as the plain one.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rec.models import DIN
from keras_rec.models import DSSM
from keras_rec.models import DeepFM
from keras_rec.models import YoutubeDNN
from tests.models import two_tower_test
from tests.models.ranking_data import for_model
from tests.models.ranking_data import tiny_columns
from tests.models.ranking_data import tiny_inputs

_CPU_ONLY = not tf.config.list_physical_devices("GPU")


def _dssm():
    user, item = two_tower_test._columns()
    return DSSM(user, item, (16, 8), (16, 8))


def _din():
    return DIN(
        tiny_columns(with_history=True),
        ["item_id", "genre"],
        dnn_hidden_units=(8, 4),
        att_hidden_units=(8, 4),
    )


def _deepfm():
    columns = tiny_columns()
    return DeepFM(columns, columns, dnn_hidden_units=(8, 4))


def _compile(model, **kwargs):
    if hasattr(model, "towers"):  # a two-tower model trains on its own loss
        model.compile(keras.optimizers.SGD(0.1), **kwargs)
    else:
        model.compile(keras.optimizers.SGD(0.1), "binary_crossentropy", **kwargs)
    return model


def test_auto_resolves_per_model():
    assert _compile(_din()).jit_compile is True
    # DeepFM and DSSM keep Keras's own choice: off on a CPU-only machine.
    assert _compile(_deepfm()).jit_compile is (not _CPU_ONLY)
    assert _compile(_dssm()).jit_compile is (not _CPU_ONLY)
    assert _compile(_dssm(), jit_compile=True).jit_compile is True
    user, item = two_tower_test._columns()
    sampled = YoutubeDNN(user, item, (16, 8), num_sampled=10)
    assert _compile(sampled).jit_compile is False


def test_explicit_choice_and_eager_win():
    assert _compile(_din(), jit_compile=False).jit_compile is False
    assert _compile(_din(), run_eagerly=True).jit_compile is False


def test_off_under_a_strategy():
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        model = _din()
        _compile(model)
    assert model.jit_compile is False
    # Built in a strategy's scope, compiled outside it: still off.
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        model = _din()
    assert _compile(model).jit_compile is False


@pytest.mark.parametrize("build", [_dssm, _din], ids=["dssm", "din"])
def test_xla_step_matches_the_plain_step(build):
    results = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = build()
        if hasattr(model, "towers"):
            x, y = two_tower_test._inputs(n=32), None
        else:
            x = for_model(model, tiny_inputs(n=32, seed=1))
            y = np.random.default_rng(0).integers(0, 2, size=32).astype("float32")
        _compile(model, jit_compile=jit)
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        results.append([w.copy() for w in model.get_weights()])
    for plain, xla in zip(*results):
        np.testing.assert_allclose(xla, plain, rtol=1e-4, atol=1e-6)


def test_choice_survives_save_and_load(tmp_path):
    model = _compile(_din())
    x = for_model(model, tiny_inputs(n=32, seed=1))
    y = np.ones(32, dtype="float32")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "din.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert restored.compiled and restored.jit_compile is True
    # The restored optimizer carries on from the saved state.
    assert int(restored.optimizer.iterations) == int(model.optimizer.iterations)
    restored.fit(x, y, batch_size=16, epochs=1, verbose=0)
