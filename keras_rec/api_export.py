"""The one decorator that registers keras_rec classes for serialization."""

import keras

PACKAGE = "keras_rec"


def keras_rec_export(cls):
    """Registers `cls` with Keras under the `keras_rec` package.

    Every public layer, model and feature column goes through this decorator,
    so `keras.models.load_model` finds them without `custom_objects`.

    Args:
        cls: class. A Keras layer, model or any object with
            `get_config` / `from_config`.

    Returns:
        The same class, registered as `keras_rec>ClassName`.
    """
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
