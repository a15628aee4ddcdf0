"""Deterministic, resumable tf.data batches from in-memory arrays.

Each epoch's order is a stateless shuffle seeded by `(seed, epoch)` (or, with
`shuffle=False`, the rows' own order, e.g. time), so a run resumed at epoch
`e` (after `BackupAndRestore`) sees exactly the batches an uninterrupted run
would have seen. Indices are batched first and rows gathered
per batch, so there is no per-example work in the pipeline.
"""

import json
import os

import numpy as np
import tensorflow as tf

from keras_rec.distribute import is_multi_worker


def epoch_batches(
    inputs, batch_size, seed, epochs, start_epoch=0, labels=None, shuffle=True
):
    """A dataset of `epochs - start_epoch` epochs of full batches.

    Args:
        inputs: dict name -> array, all with the same number of rows.
        batch_size: int. Rows per batch; the rows that do not fill a batch
            are dropped each epoch (in-batch negatives want full batches):
            the last partial batch of a shuffled epoch, the first rows of an
            ordered one (the oldest, when rows are in time order).
        seed: int. Seed of the per-epoch shuffles.
        epochs: int. Last epoch (exclusive), as in `model.fit`.
        start_epoch: int. First epoch to produce. Defaults to 0.
        labels: optional array of labels, one per row.
        shuffle: bool. Shuffle each epoch (seeded by `(seed, epoch)`); with
            False every epoch goes through the rows in their order, which for
            time-sorted rows trains in time order and ends each epoch on the
            most recent ones. Defaults to True.

    Returns:
        `(dataset, steps_per_epoch)`.
    """
    sizes = {name: len(values) for name, values in inputs.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"All inputs must have the same number of rows: {sizes}")
    rows = next(iter(sizes.values()))
    if not 1 <= batch_size <= rows:
        raise ValueError(
            f"`batch_size` must be in [1, {rows}] (the number of rows). "
            f"Received: batch_size={batch_size}"
        )
    steps = rows // batch_size
    tensors = {name: tf.constant(np.asarray(v)) for name, v in inputs.items()}
    label_tensor = None if labels is None else tf.constant(np.asarray(labels))

    def one_epoch(epoch):
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(
                tf.range(rows, dtype=tf.int64),
                seed=tf.stack([tf.cast(seed, tf.int64), epoch]),
            )[: steps * batch_size]
        else:
            order = tf.range(rows - steps * batch_size, rows, dtype=tf.int64)
        # One (steps, batch_size) tensor sliced by rows: the indices arrive
        # already batched, with no per-index work in `Dataset.batch`.
        return tf.data.Dataset.from_tensor_slices(
            tf.reshape(order, (steps, batch_size))
        )

    def gather(index):
        features = {name: tf.gather(t, index) for name, t in tensors.items()}
        if label_tensor is None:
            return features
        return features, tf.gather(label_tensor, index)

    dataset = (
        tf.data.Dataset.range(start_epoch, epochs)
        .flat_map(one_epoch)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    return dataset, steps


def distributed_epoch_batches(
    strategy,
    inputs,
    batch_size,
    seed,
    epochs,
    start_epoch=0,
    labels=None,
    shuffle=True,
):
    """`epoch_batches` for a `tf.distribute` strategy; `batch_size` is global.

    One machine (default or mirrored strategy): the plain dataset, which the
    strategy splits across its replicas. Several workers: every worker builds
    the same global batches and keeps its own slice, so together they train
    on exactly the batches of a one-worker run.

    Returns:
        `(dataset, steps_per_epoch)`.
    """
    dataset, steps = epoch_batches(
        inputs, batch_size, seed, epochs, start_epoch, labels, shuffle
    )
    if strategy is None or not is_multi_worker(strategy):
        return dataset, steps

    def dataset_fn(context):
        local, _ = epoch_batches(
            inputs, batch_size, seed, epochs, start_epoch, labels, shuffle
        )
        size = context.get_per_replica_batch_size(batch_size)
        start = context.input_pipeline_id * size

        def my_slice(x):
            return {k: v[start : start + size] for k, v in x.items()}

        if labels is None:
            return local.map(my_slice)
        return local.map(lambda x, y: (my_slice(x), y[start : start + size]))

    return strategy.distribute_datasets_from_function(dataset_fn), steps


def restored_epoch(backup_dir):
    """The epoch a `BackupAndRestore` in `backup_dir` will resume at (0 if none)."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.isfile(path):
        return 0
    with open(path, encoding="utf-8") as f:
        return int(json.load(f)["epoch"])
