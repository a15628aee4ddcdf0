"""Activations with weights: `Dice` (DIN) and the `activation_layer` factory."""

import keras
from keras import ops

from keras_rec.api_export import keras_rec_export


@keras_rec_export
class Dice(keras.layers.Layer):
    """Data-adaptive activation of DIN: `p(x) * x + (1 - p(x)) * alpha * x`.

    `p(x) = sigmoid(BN(x))`, with a batch normalisation that has no scale or
    offset, so the rectification point follows the data distribution.

    Args:
        axis: int. Feature axis normalised by the batch norm. Defaults to -1.
        epsilon: float. Batch-norm epsilon. Defaults to 1e-9.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: float tensor of any rank >= 2.
        training: bool. Batch statistics (True) or moving averages (False).
        mask: optional bool tensor of `inputs`' rank minus one (e.g.
            `(batch, T)`): padded positions are left out of the batch
            statistics.

    Returns:
        Tensor of the same shape as `inputs`.

    References:
        - Zhou et al., "Deep Interest Network for Click-Through Rate
          Prediction", KDD 2018.
    """

    def __init__(self, axis=-1, epsilon=1e-9, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon
        self.batch_norm = keras.layers.BatchNormalization(
            axis=axis, epsilon=epsilon, center=False, scale=False, name="bn"
        )
        self.supports_masking = True

    def build(self, input_shape):
        self.batch_norm.build(input_shape)
        self.alpha = self.add_weight(
            name="alpha", shape=(input_shape[self.axis],), initializer="zeros"
        )

    def call(self, inputs, training=None, mask=None):
        p = ops.sigmoid(self.batch_norm(inputs, training=training, mask=mask))
        # alpha has shape (features,); put it on `axis` so it broadcasts.
        shape = [1] * len(inputs.shape)
        shape[self.axis] = -1
        alpha = ops.reshape(self.alpha, shape)
        return p * inputs + (1.0 - p) * alpha * inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


def activation_layer(activation, name=None):
    """Returns a layer for `activation`: `"dice"`, `"prelu"` or any Keras name.

    Args:
        activation: str, callable or layer. `"dice"` and `"prelu"` give layers
            with weights; anything else goes through `keras.activations.get`.
        name: str. Name of the created layer.

    Returns:
        A `keras.layers.Layer`.
    """
    if isinstance(activation, keras.layers.Layer):
        return activation
    if isinstance(activation, str) and activation.lower() == "dice":
        return Dice(name=name)
    if isinstance(activation, str) and activation.lower() == "prelu":
        return keras.layers.PReLU(name=name)
    try:
        function = keras.activations.get(activation)
    except ValueError as error:
        raise ValueError(
            "`activation` must be 'dice', 'prelu' or a Keras activation. "
            f"Received: activation={activation!r}"
        ) from error
    return keras.layers.Activation(function, name=name)
