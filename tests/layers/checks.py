"""Serialization checks every keras_rec layer must pass (used by the layer tests)."""

import json

import keras
import numpy as np


def _to_numpy(outputs):
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in outputs]
    return keras.ops.convert_to_numpy(outputs)


def assert_config_round_trip(layer, call, atol=1e-6):
    """`from_config(get_config())` gives the same config and, with the weights
    copied over, the same outputs.

    Args:
        layer: built or unbuilt layer.
        call: function `layer -> outputs` calling the layer on fixed inputs.
    """
    expected = _to_numpy(call(layer))
    config = layer.get_config()
    json.dumps(config)  # The config must be plain JSON.
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    call(clone)  # Builds the clone.
    clone.set_weights(layer.get_weights())
    actual = _to_numpy(call(clone))
    for a, e in zip(np.atleast_1d(actual), np.atleast_1d(expected)):
        np.testing.assert_allclose(a, e, atol=atol)


def assert_saved_model_round_trip(model, inputs, tmp_path, atol=0.0):
    """`model.save(.keras)` + `load_model(safe_mode=True)` without
    `custom_objects` gives identical predictions.
    """
    expected = model.predict(inputs, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    actual = loaded.predict(inputs, verbose=0)
    if not isinstance(expected, list):
        expected, actual = [expected], [actual]
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, atol=atol)
    for layer in loaded.layers:
        if layer.__class__.__module__.startswith("keras_rec"):
            assert keras.saving.get_registered_name(type(layer)).startswith(
                "keras_rec>"
            )
    return loaded
