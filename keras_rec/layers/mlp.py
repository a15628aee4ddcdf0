"""`DNN`: the multi-layer perceptron every model in keras_rec is built from."""

import keras

from keras_rec.api_export import keras_rec_export
from keras_rec.layers.activations import Dice
from keras_rec.layers.activations import activation_layer


@keras_rec_export
class DNN(keras.layers.Layer):
    """A stack of `Dense -> [BatchNorm] -> activation -> [Dropout]` blocks.

    Args:
        hidden_units: sequence of int. Width of each hidden layer.
        activation: str. `"relu"`, `"dice"`, `"prelu"` or any Keras activation.
            Defaults to `"relu"`.
        l2_reg: float. L2 penalty on the kernels. Defaults to 0.
        dropout_rate: float. Dropout after each block. Defaults to 0.
        use_bn: bool. Batch normalisation before the activation. Defaults to
            `False`.
        output_activation: str. Activation of the last block instead of
            `activation` (e.g. `"linear"` for a tower output). Defaults to
            `None` (same as the others).
        kernel_initializer: str or dict. Defaults to `"glorot_normal"`.
        seed: int. Seed of the initializers (and of the dropout unless
            `dropout_seed` is given). Defaults to `None`.
        dropout_seed: int. Seed of the dropout masks. Defaults to `seed`.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: float tensor `(batch, ..., features)`.
        training: bool.
        mask: optional bool tensor `(batch, ...)`: positions left out of the
            batch statistics of the batch norms and `Dice` activations.

    Returns:
        Tensor `(batch, ..., hidden_units[-1])`.
    """

    def __init__(
        self,
        hidden_units,
        activation="relu",
        l2_reg=0.0,
        dropout_rate=0.0,
        use_bn=False,
        output_activation=None,
        kernel_initializer="glorot_normal",
        seed=None,
        dropout_seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        hidden_units = tuple(int(u) for u in hidden_units)
        if not hidden_units or min(hidden_units) < 1:
            raise ValueError(
                "`hidden_units` must be a non-empty list of positive integers. "
                f"Received: hidden_units={hidden_units!r}"
            )
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(
                f"`dropout_rate` must be in [0, 1). Received: dropout_rate={dropout_rate}"
            )
        if l2_reg < 0:
            raise ValueError(f"`l2_reg` must be >= 0. Received: l2_reg={l2_reg}")
        self.hidden_units = hidden_units
        self.activation = activation
        self.l2_reg = l2_reg
        self.dropout_rate = dropout_rate
        self.use_bn = use_bn
        self.output_activation = output_activation
        self.kernel_initializer = kernel_initializer
        self.seed = seed
        self.dropout_seed = dropout_seed
        if dropout_seed is None:
            dropout_seed = seed
        # Like `Dense`: position-wise, so a (batch, T) mask stays valid.
        self.supports_masking = True
        regularizer = keras.regularizers.L2(l2_reg) if l2_reg else None
        self.dense_layers, self.bn_layers, self.activations, self.dropouts = (
            [],
            [],
            [],
            [],
        )
        for i, units in enumerate(hidden_units):
            last = i == len(hidden_units) - 1
            initializer = keras.initializers.get(kernel_initializer)
            if seed is not None and hasattr(initializer, "seed"):
                initializer = initializer.__class__.from_config(
                    {**initializer.get_config(), "seed": seed + i}
                )
            self.dense_layers.append(
                keras.layers.Dense(
                    units,
                    kernel_initializer=initializer,
                    kernel_regularizer=regularizer,
                    name=f"dense_{i}",
                )
            )
            if use_bn:
                self.bn_layers.append(keras.layers.BatchNormalization(name=f"bn_{i}"))
            act = output_activation if (last and output_activation) else activation
            self.activations.append(activation_layer(act, name=f"activation_{i}"))
            if dropout_rate:
                self.dropouts.append(
                    keras.layers.Dropout(
                        dropout_rate,
                        seed=None if dropout_seed is None else dropout_seed + i,
                        name=f"dropout_{i}",
                    )
                )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for i, dense in enumerate(self.dense_layers):
            dense.build(shape)
            shape = shape[:-1] + (dense.units,)
            if self.use_bn:
                self.bn_layers[i].build(shape)
            if not self.activations[i].built:
                self.activations[i].build(shape)

    def call(self, inputs, training=None, mask=None):
        x = inputs
        for i, dense in enumerate(self.dense_layers):
            x = dense(x)
            if self.use_bn:
                x = self.bn_layers[i](x, training=training, mask=mask)
            if isinstance(self.activations[i], Dice):
                # Padded positions must not move Dice's batch statistics.
                x = self.activations[i](x, training=training, mask=mask)
            else:
                x = self.activations[i](x, training=training)
            if self.dropout_rate:
                x = self.dropouts[i](x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.hidden_units[-1],)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "l2_reg": self.l2_reg,
            "dropout_rate": self.dropout_rate,
            "use_bn": self.use_bn,
            "output_activation": self.output_activation,
            "kernel_initializer": self.kernel_initializer,
            "seed": self.seed,
            "dropout_seed": self.dropout_seed,
        }
