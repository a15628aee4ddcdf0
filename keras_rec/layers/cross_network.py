"""`CrossNet`: the explicit feature-crossing layers of DCN and DCN-M."""

import keras
from keras import ops

from keras_rec.api_export import keras_rec_export

_PARAMETERIZATIONS = ("vector", "matrix")


@keras_rec_export
class CrossNet(keras.layers.Layer):
    """A stack of cross layers: each adds one degree of explicit interaction.

    With `x_0` the input and `x_l` the output of layer `l`:

    - `"vector"` (DCN): `x_{l+1} = x_0 * (x_l . w_l) + b_l + x_l`, with
      `w_l, b_l` of shape `(d,)`: `2d` weights per layer.
    - `"matrix"` (DCN-M / DCN-V2): `x_{l+1} = x_0 * (x_l W_l + b_l) + x_l`,
      with `W_l` of shape `(d, d)`.

    The residual `+ x_l` keeps every lower-degree term, so after `L` layers
    the output holds all cross terms of `x_0` up to degree `L + 1`.

    Args:
        num_layers: int. Number of cross layers, >= 1. Defaults to 2.
        parameterization: str. `"vector"` or `"matrix"`. Defaults to
            `"vector"`.
        l2_reg: float. L2 penalty on the kernels. Defaults to 0.
        seed: int. Seed of the kernel initializer. Defaults to `None`.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: float tensor `(batch, d)`.

    Returns:
        Tensor `(batch, d)`.

    Example:

    >>> x = keras.ops.ones((4, 16))
    >>> CrossNet(num_layers=3)(x).shape
    (4, 16)

    References:
        - Wang et al., "Deep & Cross Network for Ad Click Predictions",
          ADKDD 2017.
        - Wang et al., "DCN V2: Improved Deep & Cross Network and Practical
          Lessons for Web-scale Learning to Rank Systems", WWW 2021.
    """

    def __init__(
        self, num_layers=2, parameterization="vector", l2_reg=0.0, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        if (
            isinstance(num_layers, bool)
            or not isinstance(num_layers, int)
            or num_layers < 1
        ):
            raise ValueError(
                f"`num_layers` must be an integer >= 1. Received: num_layers={num_layers!r}"
            )
        if parameterization not in _PARAMETERIZATIONS:
            raise ValueError(
                f"`parameterization` must be one of {_PARAMETERIZATIONS}. "
                f"Received: parameterization={parameterization!r}"
            )
        if l2_reg < 0:
            raise ValueError(f"`l2_reg` must be >= 0. Received: l2_reg={l2_reg}")
        self.num_layers = num_layers
        self.parameterization = parameterization
        self.l2_reg = l2_reg
        self.seed = seed

    def build(self, input_shape):
        d = input_shape[-1]
        kernel_shape = (d, 1) if self.parameterization == "vector" else (d, d)
        regularizer = keras.regularizers.L2(self.l2_reg) if self.l2_reg else None
        self.kernels, self.biases = [], []
        for i in range(self.num_layers):
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{i}",
                    shape=kernel_shape,
                    initializer=keras.initializers.GlorotNormal(
                        seed=None if self.seed is None else self.seed + i
                    ),
                    regularizer=regularizer,
                )
            )
            self.biases.append(
                self.add_weight(name=f"bias_{i}", shape=(d,), initializer="zeros")
            )

    def call(self, inputs):
        x0 = inputs  # (batch, d)
        x = x0
        for kernel, bias in zip(self.kernels, self.biases):
            if self.parameterization == "vector":
                # (batch, 1): one scalar per example, scaling x_0.
                x = x0 * ops.matmul(x, kernel) + bias + x
            else:
                x = x0 * (ops.matmul(x, kernel) + bias) + x  # (batch, d)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "parameterization": self.parameterization,
            "l2_reg": self.l2_reg,
            "seed": self.seed,
        }
