"""`PredictionLayer`: from a logit to the task's output."""

import keras
from keras import ops

from keras_rec.api_export import keras_rec_export

_TASKS = ("binary", "regression")


@keras_rec_export
class PredictionLayer(keras.layers.Layer):
    """Adds an optional global bias and applies the task's output function.

    Args:
        task: str. `"binary"` (sigmoid, a click probability) or
            `"regression"` (identity). Defaults to `"binary"`.
        use_bias: bool. Learn a global bias. Defaults to `True`.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: float tensor `(batch, 1)`: the logit.

    Returns:
        Tensor `(batch, 1)`.
    """

    def __init__(self, task="binary", use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if task not in _TASKS:
            raise ValueError(f"`task` must be one of {_TASKS}. Received: task={task!r}")
        self.task = task
        self.use_bias = use_bias

    def build(self, input_shape):
        if self.use_bias:
            self.global_bias = self.add_weight(
                name="global_bias", shape=(1,), initializer="zeros"
            )

    def call(self, inputs):
        x = inputs + self.global_bias if self.use_bias else inputs
        return ops.sigmoid(x) if self.task == "binary" else x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "task": self.task, "use_bias": self.use_bias}
