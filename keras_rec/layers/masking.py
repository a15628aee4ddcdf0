"""`PaddingMask`: attaches the padding mask of a sequence to its embeddings."""

import keras
from keras import ops

from keras_rec.api_export import keras_rec_export
from keras_rec.ops import length_to_mask


@keras_rec_export
class PaddingMask(keras.layers.Layer):
    """Passes embeddings through and gives them the mask of their padding.

    Embedding tables in keras_rec are shared between scalar and sequence
    features, so they cannot use `mask_zero=True` (scalar lookups would carry
    a mask into the loss). This layer puts the mask on the sequence only, and
    Keras's mask machinery carries it to the pooling and attention layers.

    Args:
        mode: str. `"ids"`: position valid where id != 0; `"length"`: the
            first `length` positions are valid. Defaults to `"ids"`.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: list `[embeddings, ids_or_lengths]`: embeddings
            `(batch, T, d)` and ids `(batch, T)` or lengths `(batch,)` /
            `(batch, 1)`.

    Returns:
        The embeddings, with a bool mask `(batch, T)` attached.
    """

    def __init__(self, mode="ids", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("ids", "length"):
            raise ValueError(
                f"`mode` must be 'ids' or 'length'. Received: mode={mode!r}"
            )
        self.mode = mode

    def call(self, inputs):
        return inputs[0]

    def compute_mask(self, inputs, mask=None):
        embeddings, key = inputs
        if self.mode == "ids":
            return ops.not_equal(key, ops.zeros_like(key))
        return length_to_mask(key, ops.shape(embeddings)[1])

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
