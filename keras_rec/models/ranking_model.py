"""`RankingModel`: the functional model the ranking builders return.

A plain functional `keras.Model` that takes the inputs Keras 3 trips over
(`input_fixes`: a feature as a column in one call and a vector in the next,
`(n,)` labels with metric functions, string arrays), plus what Keras 3 lacks
to train it under a multi-worker `MultiWorkerMirroredStrategy` (both are
no-ops otherwise):

- Keras's symbolic build first averages a batch across workers with
  `strategy.reduce`, which takes one tensor, not a dict of inputs; here the
  batch's local part is used instead (only shapes and dtypes matter);
- Keras averages the logs across workers along axis 0, which a scalar loss
  does not have; here scalars are logged with shape `(1,)`.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_rec.api_export import keras_rec_export
from keras_rec.distribute import is_multi_worker
from keras_rec.distribute import resolve_jit_compile
from keras_rec.distribute import restore_compile
from keras_rec.layers.attention_pooling import AttentionPoolingLayer
from keras_rec.models.input_fixes import InputFixes
from keras_rec.models.input_fixes import restore_step_ranks


@keras_rec_export
class RankingModel(InputFixes, keras.Model):
    """A functional model: `RankingModel(inputs, outputs, name=...)`.

    Built by `DeepFM`, `DIN`, `WDL` and `DCN`; saved and loaded like any
    functional model.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self.distribute_strategy
        if not is_multi_worker(strategy):
            return super()._maybe_symbolic_build(
                iterator=iterator, data_batch=data_batch
            )
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = next(batches)
                break

        def local(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.experimental_local_results(value)[0]
            return value

        with strategy.scope():
            self._symbolic_build(data_batch=keras.tree.map_structure(local, data_batch))

    def compile(self, *args, jit_compile="auto", **kwargs):
        """Like `keras.Model.compile`, with XLA on CPU for attention models.

        `jit_compile="auto"` (the default) compiles DIN's train step with XLA
        also on CPU-only machines, where Keras itself would not: its
        attention over the behaviour sequence fuses well (about 1.25x faster
        `fit`, BENCHMARKS.md). Models without attention (DeepFM, WDL, DCN)
        keep Keras's choice: their many small embedding gathers are slower
        under XLA on CPU. Off under a `tf.distribute` strategy and with
        `run_eagerly=True`, as in Keras.
        """
        if jit_compile == "auto" and any(
            isinstance(layer, AttentionPoolingLayer) for layer in self.layers
        ):
            jit_compile = resolve_jit_compile(
                self, jit_compile, kwargs.get("run_eagerly")
            )
        super().compile(*args, jit_compile=jit_compile, **kwargs)

    def compile_from_config(self, config):
        # Keras skips (with a warning) restoring the compile state of models
        # that override `compile`; ours only resolves `jit_compile`.
        restore_compile(self, config)

    def train_step(self, data):
        return self._batched_logs(super().train_step(self._restored(data)))

    def test_step(self, data):
        return self._batched_logs(super().test_step(self._restored(data)))

    def predict_step(self, data):
        return super().predict_step(self._restored(data))

    def _restored(self, data):
        output = self.outputs[0].shape if len(self.outputs) == 1 else None
        return restore_step_ranks(data, self.inputs, output)

    def _batched_logs(self, logs):
        if not is_multi_worker(self.distribute_strategy):
            return logs
        return {
            name: ops.reshape(value, (1,)) if len(ops.shape(value)) == 0 else value
            for name, value in logs.items()
        }
