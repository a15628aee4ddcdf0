"""`CosinSimilarity` (and its alias `CosineSimilarity`), and `L2Normalization`."""

import math
import numbers

import keras
from keras import ops

from keras_rec.api_export import keras_rec_export
from keras_rec.ops import l2_normalize


def check_temperature(temperature):
    # numbers.Real also admits NumPy scalars (e.g. a temperature read from a
    # config file or swept with np.linspace).
    if isinstance(temperature, bool) or not (
        isinstance(temperature, numbers.Real)
        and math.isfinite(temperature)
        and temperature > 0
    ):
        raise ValueError(
            f"`temperature` must be a finite number > 0. Received: temperature={temperature!r}"
        )
    return float(temperature)


@keras_rec_export
class L2Normalization(keras.layers.Layer):
    """Scales each vector to unit L2 norm (zero vectors stay zero).

    Args:
        axis: int. Defaults to -1.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        return l2_normalize(inputs, axis=self.axis)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@keras_rec_export
class CosinSimilarity(keras.layers.Layer):
    """Cosine similarity of two batches of vectors, divided by a temperature.

    The name follows DeepMatch; `CosineSimilarity` is the same layer.

    Args:
        temperature: float > 0. The similarity in [-1, 1] is divided by it, so
            small temperatures sharpen a softmax over candidates. Defaults to
            0.05.
        normalize: bool. L2-normalise both inputs first; set `False` when they
            are normalised already. Defaults to `True`.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: list `[u, v]` of float tensors `(batch, d)`.

    Returns:
        Tensor `(batch, 1)`: `cos(u, v) / temperature`.
    """

    def __init__(self, temperature=0.05, normalize=True, **kwargs):
        super().__init__(**kwargs)
        self.temperature = check_temperature(temperature)
        self.normalize = normalize

    def call(self, inputs):
        u, v = inputs
        if (
            u.shape[-1] is not None
            and v.shape[-1] is not None
            and (u.shape[-1] != v.shape[-1])
        ):
            raise ValueError(
                "The two towers must output vectors of the same dimension. "
                f"Received: {u.shape[-1]} and {v.shape[-1]}"
            )
        if self.normalize:
            u, v = l2_normalize(u), l2_normalize(v)
        return ops.sum(u * v, axis=-1, keepdims=True) / self.temperature

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "normalize": self.normalize,
        }


@keras_rec_export
class CosineSimilarity(CosinSimilarity):
    """Correctly spelled alias of `CosinSimilarity`."""
