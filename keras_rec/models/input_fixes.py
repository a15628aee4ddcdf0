"""Inputs that Keras 3 trips over, accepted by the library's models.

DeepCTR users feed models dicts of pandas Series and NumPy arrays, mixed.
Three cases fail on a plain Keras 3 model; `RankingModel` and
`TwoTowerModel` accept them:

- **Ranks relaxed by retracing.** Keras traces `fit`, `evaluate` and
  `predict` steps with `reduce_retracing`. When one call feeds a feature as a
  column `(n, 1)` and a later call as a vector `(n,)` (a pandas Series
  becomes `(n, 1)`, its `.to_numpy()` is `(n,)`), the second trace sees the
  input with an unknown rank, and Keras's input check fails with "as_list()
  is not defined on an unknown TensorShape" (keras-team/keras#20573). The
  steps give such inputs back the rank of the model's `keras.Input`: a
  one-value feature is reshaped to `(batch, 1)` (what Keras does to a `(n,)`
  vector anyway); any other gets its static shape asserted, so a wrong shape
  still fails, naming the expected one (`restore_input_ranks`).
- **Vector labels and metric functions.** Labels `(n,)` are given the
  output's `(n, 1)`: Keras's losses align the two, its metric functions
  (`metrics=["binary_crossentropy"]`, as DeepCTR's examples compile) do not
  (`restore_step_ranks`).
- **String arrays.** Keras's array adapter rejects NumPy unicode or bytes
  arrays, pandas string Series ("Invalid dtype: str32") and 2-D object
  arrays of strings (a padded sequence); `InputFixes.fit / evaluate /
  predict` hand them over as `tf.string` tensors (`string_tensors`).
"""

import math

import keras
import numpy as np
import pandas as pd
import tensorflow as tf


def _restore(value, shape):
    if not tf.is_tensor(value) or isinstance(value, (tf.SparseTensor, tf.RaggedTensor)):
        return value
    if value.shape.rank is not None:
        return value
    tail = list(shape[1:])
    if None not in tail and math.prod(tail) == 1:
        return tf.reshape(value, [-1, *tail])
    return tf.ensure_shape(value, [None, *tail])


def restore_input_ranks(x, inputs):
    """`x` whose unknown-rank tensors take the rank of their `keras.Input`.

    Args:
        x: a batch of model inputs: dict by input name, list/tuple in the
            order of `inputs`, or one tensor.
        inputs: the model's `inputs` (a list of `KerasTensor`).
    """
    if isinstance(x, dict):
        shapes = {t.name: t.shape for t in inputs}
        return {k: _restore(v, shapes[k]) if k in shapes else v for k, v in x.items()}
    if isinstance(x, (list, tuple)) and len(x) == len(inputs):
        return type(x)(_restore(v, t.shape) for v, t in zip(x, inputs))
    if tf.is_tensor(x) and len(inputs) == 1:
        return _restore(x, inputs[0].shape)
    return x


def restore_step_ranks(data, inputs, output_shape=None):
    """`(x, y, sample_weight)` of a step with their ranks restored.

    `y` takes `output_shape`'s rank (one-output models only) when its rank is
    unknown, or when it is a vector `(n,)` and the output a column `(n, 1)`:
    Keras's losses align the two, but its metric functions (e.g.
    `metrics=["binary_crossentropy"]`, as DeepCTR's examples compile) fail
    with "Arguments `target` and `output` must have the same rank".
    `sample_weight` becomes a vector when its rank is unknown.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    x = restore_input_ranks(x, inputs)
    if output_shape is not None and tf.is_tensor(y):
        tail = list(output_shape[1:])
        if y.shape.rank is None or (tail == [1] and y.shape.rank == 1):
            y = tf.reshape(y, [-1, *tail])
    if tf.is_tensor(sample_weight) and sample_weight.shape.rank is None:
        sample_weight = tf.reshape(sample_weight, [-1])
    return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)


def _is_text(value):
    return isinstance(value, (str, bytes))


def _string_tensor(value):
    if isinstance(value, pd.Series):
        if pd.api.types.is_numeric_dtype(value) or pd.api.types.is_bool_dtype(value):
            return value
        value = value.to_numpy(dtype=object)
    if not isinstance(value, np.ndarray) or value.size == 0:
        return value
    if value.dtype.kind in "US" or (
        value.dtype == object and all(_is_text(e) for e in value.flat)
    ):
        return tf.constant(
            value.tolist() if value.dtype == object else value, tf.string
        )
    return value


def string_tensors(data):
    """`data` with its arrays and Series of strings as `tf.string` tensors.

    Walks dicts, lists and tuples (e.g. `x`, or `validation_data`); anything
    else (numbers, tensors, `tf.data.Dataset`) is returned as it is, and so
    is an object array holding anything but text (Keras then names it).
    """
    if isinstance(data, dict):
        return {k: string_tensors(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(string_tensors(v) for v in data)
    return _string_tensor(data)


class InputFixes:
    """Mixin for `keras.Model` subclasses: string arrays into `fit` & co.

    Put it before `keras.Model` in the bases.
    """

    def fit(self, x=None, *args, **kwargs):
        if "validation_data" in kwargs:
            kwargs["validation_data"] = string_tensors(kwargs["validation_data"])
        return super().fit(string_tensors(x), *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        return super().evaluate(string_tensors(x), *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        return super().predict(string_tensors(x), *args, **kwargs)
