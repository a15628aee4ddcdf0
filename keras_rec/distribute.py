"""Small helpers around TensorFlow's distribution strategies."""

import json
import os

import keras
import numpy as np
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi-worker")


def make_strategy(name="default"):
    """A `tf.distribute` strategy by name.

    Args:
        name: str. `"default"` (one device), `"mirrored"` (all local devices)
            or `"multi-worker"` (`MultiWorkerMirroredStrategy`: every machine
            runs the same command with its own `TF_CONFIG`).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: {name!r}")


def is_multi_worker(strategy):
    """True for a `MultiWorkerMirroredStrategy` whose cluster has several workers."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return len(cluster.get("worker", [])) + len(cluster.get("chief", [])) > 1


def is_chief():
    """Whether this process writes shared outputs (exports, reports).

    From `TF_CONFIG`: the `chief` task, or worker 0 of a cluster without one;
    always True without `TF_CONFIG`.
    """
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    has_chief = bool(config.get("cluster", {}).get("chief"))
    return task.get("type") == "worker" and task.get("index", 0) == 0 and not has_chief


def predict_every_row(model, inputs, batch_size=4096):
    """`model.predict` of every row of `inputs`, on every worker.

    Under a multi-worker strategy `predict` splits the rows across workers;
    evaluation and checkpoint selection need all of them on each worker, so
    the model is then called directly, batch by batch.
    """
    if not is_multi_worker(model.distribute_strategy):
        return model.predict(inputs, batch_size=batch_size, verbose=0)
    rows = len(next(iter(inputs.values())))
    parts = [
        keras.ops.convert_to_numpy(
            model({k: v[i : i + batch_size] for k, v in inputs.items()})
        )
        for i in range(0, rows, batch_size)
    ]
    return np.concatenate(parts)


def resolve_jit_compile(model, jit_compile, run_eagerly=None):
    """`jit_compile="auto"` -> True, except under a strategy or run eagerly.

    Keras resolves `"auto"` to False on CPU-only machines; a model whose
    step is dense math (DIN's attention) is faster under XLA there too, so
    it resolves `"auto"` here. Keras also turns XLA off under
    `tf.distribute` (the model built in a strategy's scope, or compiled in
    one), and so does this.
    """
    if jit_compile != "auto":
        return jit_compile
    distributed = (
        tf.distribute.has_strategy()
        or model.distribute_strategy is not tf.distribute.get_strategy()
    )
    return not (run_eagerly or distributed)


def restore_compile(model, config, drop=()):
    """`compile_from_config` for models that override `compile`.

    Keras skips restoring the compile state of such models (with a warning);
    this compiles `model` from the saved config (minus the `drop` keys) and
    builds the optimizer so its saved variables can load.
    """
    config = keras.saving.deserialize_keras_object(config)
    model.compile(**{k: v for k, v in config.items() if k not in drop})
    if getattr(model, "optimizer", None) is not None and model.built:
        model.optimizer.build(model.trainable_variables)
