"""`Linear`: the first-order logit over sparse and dense features."""

import keras
from keras import ops

from keras_rec.api_export import keras_rec_export


@keras_rec_export
class Linear(keras.layers.Layer):
    """First-order logit: `sum(sparse weights) + dense . w + b`.

    The sparse part arrives as the per-feature scalar weights looked up in
    1-dimensional embedding tables (one row per id), so this layer only sums
    them; the dense part gets a kernel here.

    Args:
        mode: str. `"sparse"`, `"dense"` or `"both"`: which inputs are given.
        l2_reg: float. L2 penalty on the dense kernel. Defaults to 0.
        use_bias: bool. Defaults to `True`.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: for `"sparse"`, a tensor `(batch, n_sparse)`; for `"dense"`, a
            tensor `(batch, n_dense)`; for `"both"`, a list of the two.

    Returns:
        Tensor `(batch, 1)`.
    """

    def __init__(self, mode="both", l2_reg=0.0, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("sparse", "dense", "both"):
            raise ValueError(
                f"`mode` must be 'sparse', 'dense' or 'both'. Received: mode={mode!r}"
            )
        self.mode = mode
        self.l2_reg = l2_reg
        self.use_bias = use_bias

    def build(self, input_shape):
        if self.mode != "sparse":
            dense_shape = input_shape[1] if self.mode == "both" else input_shape
            self.kernel = self.add_weight(
                name="kernel",
                shape=(dense_shape[-1], 1),
                initializer="glorot_normal",
                regularizer=keras.regularizers.L2(self.l2_reg) if self.l2_reg else None,
            )
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(1,), initializer="zeros")

    def call(self, inputs):
        if self.mode == "both":
            sparse, dense = inputs
        elif self.mode == "sparse":
            sparse, dense = inputs, None
        else:
            sparse, dense = None, inputs
        logit = 0.0
        if sparse is not None:
            logit = ops.sum(sparse, axis=-1, keepdims=True)
        if dense is not None:
            logit = logit + ops.matmul(dense, self.kernel)
        if self.use_bias:
            logit = logit + self.bias
        return logit

    def compute_output_shape(self, input_shape):
        first = input_shape[0] if self.mode == "both" else input_shape
        return (first[0], 1)

    def get_config(self):
        return {
            **super().get_config(),
            "mode": self.mode,
            "l2_reg": self.l2_reg,
            "use_bias": self.use_bias,
        }
