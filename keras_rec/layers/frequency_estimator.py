"""Streaming, hashed estimate of how often each item appears in training batches."""

import keras
import tensorflow as tf
from keras import ops

from keras_rec.api_export import keras_rec_export

# Multipliers and offsets of the universal hash functions ((a * x + b) mod p) mod H.
_PRIME = 2_147_483_647  # 2^31 - 1
_HASH_A = (1_000_003, 998_244_353, 1_234_567_891, 2_038_074_743, 1_618_033_987)
_HASH_B = (12_345, 67_890, 424_242, 171_717, 999_331)


@keras_rec_export
class StreamingFrequencyEstimator(keras.layers.Layer):
    """Estimates each item's sampling probability from the stream of batches.

    For every item `y` seen at training step `t`, with hash `h(y)`:
    `B[h] <- (1 - alpha) * B[h] + alpha * (t - A[h])` and `A[h] <- t`, so
    `B[h]` tracks the average number of steps between two occurrences of the
    item and `p(y) = 1 / B[h(y)]` its probability of being in a batch. With
    several hash functions, collisions can only shorten the observed gaps, so
    the largest `B` over the hash functions is the estimate kept.

    Args:
        hash_bucket_size: int. H, the size of the arrays A and B. Defaults to
            2**17.
        num_hashes: int. Number of hash functions (at most 5). Defaults to 2.
        alpha: float in (0, 1). Learning rate of the moving average. Defaults
            to 0.01.
        **kwargs: base `Layer` arguments.

    Call arguments:
        ids: int tensor `(batch,)` of item ids.

    Returns:
        Float tensor `(batch,)`: the estimated probability that each item is
        in a batch (1 for items never seen, so they get no correction).

    References:
        - Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus
          Item Recommendations", RecSys 2019 (Algorithm 2).
    """

    def __init__(self, hash_bucket_size=2**17, num_hashes=2, alpha=0.01, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(hash_bucket_size, int) or hash_bucket_size < 1:
            raise ValueError(
                "`hash_bucket_size` must be a positive integer. "
                f"Received: hash_bucket_size={hash_bucket_size!r}"
            )
        if not isinstance(num_hashes, int) or not 1 <= num_hashes <= len(_HASH_A):
            raise ValueError(
                f"`num_hashes` must be an integer in [1, {len(_HASH_A)}]. "
                f"Received: num_hashes={num_hashes!r}"
            )
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"`alpha` must be in (0, 1). Received: alpha={alpha!r}")
        self.hash_bucket_size = hash_bucket_size
        self.num_hashes = num_hashes
        self.alpha = alpha
        self.built = True
        # One flat row per array: hash function j owns [j * H, (j + 1) * H).
        size = (num_hashes * hash_bucket_size,)
        self.last_step = self.add_weight(
            name="last_step",
            shape=size,
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )
        self.average_gap = self.add_weight(
            name="average_gap",
            shape=size,
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )
        self.step = self.add_weight(
            name="step",
            shape=(),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )

    def hash_ids(self, ids):
        """`(num_hashes, batch)` flat positions of each id under each hash."""
        ids = ops.cast(ops.reshape(ids, (-1,)), "int64")
        buckets = [
            ops.mod(ops.mod(a * ids + b, _PRIME), self.hash_bucket_size)
            + j * self.hash_bucket_size
            for j, (a, b) in enumerate(
                zip(_HASH_A[: self.num_hashes], _HASH_B[: self.num_hashes])
            )
        ]
        return ops.cast(ops.stack(buckets), "int32")

    def call(self, ids):
        gaps = ops.take(self.average_gap, self.hash_ids(ids), axis=0)
        gaps = ops.max(gaps, axis=0)  # (batch,)
        return ops.where(gaps > 0, 1.0 / ops.maximum(gaps, 1.0), ops.ones_like(gaps))

    def update(self, ids):
        """Folds one batch of ids into the estimate (call once per train step)."""
        step = self.step + 1.0
        positions = ops.reshape(self.hash_ids(ids), (-1, 1))  # (num_hashes*batch, 1)
        last = ops.take(self.last_step, positions[:, 0], axis=0)
        gap = ops.take(self.average_gap, positions[:, 0], axis=0)
        # An item seen for the first time has no previous step: its first gap
        # is the number of steps so far, as if it had been seen at step 0.
        updated = (1.0 - self.alpha) * gap + self.alpha * (step - last)
        stamps = ops.full_like(last, step)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # Mirrored variables take no scatter in a replica context. Every
            # replica sees the same (gathered) ids, so each writes the same
            # arrays and the first replica's value is kept.
            self.average_gap.assign(
                ops.scatter_update(self.average_gap, positions, updated)
            )
            self.last_step.assign(ops.scatter_update(self.last_step, positions, stamps))
        else:
            # Keras variables have no in-place scatter; a dense rewrite of the
            # arrays would cost O(H) per step, so use TensorFlow's.
            self.average_gap.value.scatter_nd_update(positions, updated)
            self.last_step.value.scatter_nd_update(positions, stamps)
        self.step.assign(step)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "hash_bucket_size": self.hash_bucket_size,
            "num_hashes": self.num_hashes,
            "alpha": self.alpha,
        }
