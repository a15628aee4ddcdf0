"""`SequencePoolingLayer`: masked mean / sum / max over a sequence."""

import keras
from keras import ops

from keras_rec.api_export import keras_rec_export

_MODES = ("mean", "sum", "max")


@keras_rec_export
class SequencePoolingLayer(keras.layers.Layer):
    """Pools a padded sequence of embeddings, ignoring padded positions.

    A sequence with no valid position pools to a zero vector (not NaN).

    Args:
        mode: str. `"mean"`, `"sum"` or `"max"`. Defaults to `"mean"`.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: float tensor `(batch, T, d)`.
        weights: optional float tensor `(batch, T)`: per-position weights
            applied before pooling (`VarLenSparseFeat.weight_name`).
        mask: bool tensor `(batch, T)`; filled by Keras from `PaddingMask`.
        inputs_mask: the same mask under the name Keras fills when
            `weights` is given too (two tensor arguments).

    Returns:
        Tensor `(batch, d)`. The mask stops here.
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}. Received: mode={mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, weights=None, mask=None, inputs_mask=None):
        # Keras fills `mask` when `inputs` is the only tensor argument, and
        # `inputs_mask` when `weights` is a tensor argument too.
        if mask is None:
            mask = inputs_mask
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        valid = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)  # (batch, T, 1)
        if weights is not None:
            inputs = inputs * ops.expand_dims(ops.cast(weights, inputs.dtype), -1)
        if self.mode == "max":
            # Padded positions must never win the max, and an empty row gives 0.
            lowest = ops.full_like(inputs, -3.0e38)
            pooled = ops.max(ops.where(valid > 0, inputs, lowest), axis=1)
            any_valid = ops.max(valid, axis=1) > 0
            return ops.where(any_valid, pooled, ops.zeros_like(pooled))
        total = ops.sum(inputs * valid, axis=1)  # (batch, d)
        if self.mode == "sum":
            return total
        count = ops.maximum(ops.sum(valid, axis=1), 1.0)  # (batch, 1)
        return total / count

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
