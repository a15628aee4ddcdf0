"""`FM`: the second-order factorization-machine term."""

import keras
from keras import ops

from keras_rec.api_export import keras_rec_export


@keras_rec_export
class FM(keras.layers.Layer):
    """Pairwise interactions `sum_{i<j} <v_i, v_j>` in O(fields * dim).

    Uses `0.5 * sum_d((sum_i v_id)^2 - sum_i v_id^2)`: the square of the sum
    minus the sum of the squares.

    Call arguments:
        inputs: float tensor `(batch, fields, dim)`: one embedding per field.

    Returns:
        Tensor `(batch, 1)`.

    References:
        - Rendle, "Factorization Machines", ICDM 2010.
    """

    def call(self, inputs):
        square_of_sum = ops.square(ops.sum(inputs, axis=1))  # (batch, dim)
        sum_of_square = ops.sum(ops.square(inputs), axis=1)  # (batch, dim)
        return 0.5 * ops.sum(square_of_sum - sum_of_square, axis=1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)
