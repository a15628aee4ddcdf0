"""`AttentionPoolingLayer`: DIN's local activation unit over a behaviour sequence."""

import keras
from keras import ops

from keras_rec.api_export import keras_rec_export
from keras_rec.layers.mlp import DNN
from keras_rec.ops import masked_softmax


@keras_rec_export
class AttentionPoolingLayer(keras.layers.Layer):
    """Weights each behaviour by its relevance to the candidate, then sums.

    For each position t, an MLP over `[q, k_t, q - k_t, q * k_t]` gives a
    score `a_t`; the output is `sum_t a_t * k_t`. As in the paper, the scores
    are not softmax-normalised by default, so the output's norm reflects how
    much of the history is relevant. Padded positions get weight exactly 0.

    Args:
        att_hidden_units: sequence of int. Hidden layers of the activation
            unit. Defaults to `(80, 40)`.
        att_activation: str. Activation of the unit (`"dice"`, `"prelu"`,
            `"sigmoid"`, ...). Defaults to `"dice"`.
        weight_normalization: bool. Softmax over valid positions instead of
            raw scores. Defaults to `False`.
        return_score: bool. Return the weights `(batch, T)` instead of the
            pooled vector. Defaults to `False`.
        **kwargs: base `Layer` arguments.

    Call arguments:
        query: float tensor `(batch, d)` or `(batch, 1, d)`: the candidate.
        keys: float tensor `(batch, T, d)`: the behaviour sequence.
        keys_mask: bool tensor `(batch, T)`; filled by Keras from the keys'
            mask (`PaddingMask`).

    Returns:
        Tensor `(batch, d)` (or `(batch, T)` with `return_score=True`).

    References:
        - Zhou et al., "Deep Interest Network for Click-Through Rate
          Prediction", KDD 2018.
    """

    def __init__(
        self,
        att_hidden_units=(80, 40),
        att_activation="dice",
        weight_normalization=False,
        return_score=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.att_hidden_units = tuple(att_hidden_units)
        self.att_activation = att_activation
        self.weight_normalization = weight_normalization
        self.return_score = return_score
        self.activation_unit = DNN(
            self.att_hidden_units, activation=att_activation, name="activation_unit"
        )
        self.score_dense = keras.layers.Dense(1, name="score")
        self.supports_masking = True

    def build(self, query_shape, keys_shape):
        d = keys_shape[-1]
        self.activation_unit.build((None, keys_shape[1], 4 * d))
        self.score_dense.build((None, keys_shape[1], self.att_hidden_units[-1]))

    def call(self, query, keys, keys_mask=None, training=None):
        if len(query.shape) == 2:
            query = ops.expand_dims(query, 1)  # (batch, 1, d)
        queries = ops.broadcast_to(query, ops.shape(keys))  # (batch, T, d)
        unit_input = ops.concatenate(
            [queries, keys, queries - keys, queries * keys], axis=-1
        )  # (batch, T, 4d)
        # The mask also keeps padded keys out of Dice's batch statistics.
        hidden = self.activation_unit(unit_input, training=training, mask=keys_mask)
        scores = ops.squeeze(self.score_dense(hidden), -1)  # (batch, T)
        if keys_mask is None:
            keys_mask = ops.ones_like(scores, dtype="bool")
        if self.weight_normalization:
            weights = masked_softmax(scores, keys_mask)
        else:
            weights = ops.where(keys_mask, scores, ops.zeros_like(scores))
        if self.return_score:
            return weights
        return ops.sum(ops.expand_dims(weights, -1) * keys, axis=1)  # (batch, d)

    def compute_mask(self, query, keys=None, keys_mask=None):
        return None

    def compute_output_shape(self, query_shape, keys_shape):
        if self.return_score:
            return (keys_shape[0], keys_shape[1])
        return (keys_shape[0], keys_shape[2])

    def get_config(self):
        return {
            **super().get_config(),
            "att_hidden_units": list(self.att_hidden_units),
            "att_activation": self.att_activation,
            "weight_normalization": self.weight_normalization,
            "return_score": self.return_score,
        }
