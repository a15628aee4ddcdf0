"""Sampled softmax over the full item vocabulary: `CandidateSampler`, `SampledSoftmax`."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_rec.api_export import keras_rec_export
from keras_rec.layers.cosine_similarity import check_temperature
from keras_rec.layers.in_batch_softmax import _accidental_hit_mask
from keras_rec.ops import PADDING_LOGIT
from keras_rec.ops import safe_log

_DISTRIBUTIONS = ("uniform", "unigram")


@keras_rec_export
class CandidateSampler(keras.layers.Layer):
    """Draws negative item ids shared by the whole batch.

    `"uniform"` draws ids uniformly from `1..num_items-1` (0 is padding);
    `"unigram"` draws them with probability proportional to
    `item_counts ** power` (word2vec's 0.75 by default). Sampling is without
    replacement within one batch. The expected counts returned are what the
    sampled softmax subtracts (as logs) from the logits.

    Args:
        num_items: int. Size of the item vocabulary including id 0.
        num_sampled: int. Negatives per batch.
        distribution: str. `"uniform"` or `"unigram"`. Defaults to
            `"uniform"`.
        item_counts: list of float, length `num_items`. Needed for
            `"unigram"`; `item_counts[0]` is ignored.
        power: float. Exponent applied to the counts. Defaults to 0.75.
        seed: int. Defaults to `None`.
        **kwargs: base `Layer` arguments.

    Call arguments:
        positive_ids: int `(batch,)`.

    Returns:
        Tuple `(sampled_ids (num_sampled,), true_expected_count (batch,),
        sampled_expected_count (num_sampled,))`.
    """

    def __init__(
        self,
        num_items,
        num_sampled,
        distribution="uniform",
        item_counts=None,
        power=0.75,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(num_items, int) or num_items < 3:
            raise ValueError(
                f"`num_items` must be an integer >= 3. Received: num_items={num_items!r}"
            )
        if not isinstance(num_sampled, int) or not 1 <= num_sampled < num_items - 1:
            raise ValueError(
                "`num_sampled` must be an integer in [1, num_items - 1). Received: "
                f"num_sampled={num_sampled!r} with num_items={num_items}"
            )
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"`distribution` must be one of {_DISTRIBUTIONS}. "
                f"Received: distribution={distribution!r}"
            )
        if distribution == "unigram":
            if item_counts is None or len(item_counts) != num_items:
                raise ValueError(
                    "`item_counts` (one count per item id, length num_items="
                    f"{num_items}) is required for distribution='unigram'. Received "
                    f"length {None if item_counts is None else len(item_counts)}"
                )
            item_counts = [float(c) for c in item_counts]
            if min(item_counts) < 0:
                raise ValueError("`item_counts` must be >= 0.")
            # Draws are distinct and never an item of count 0: asking for as
            # many as there are drawable items makes TensorFlow's sampler retry
            # until it aborts the process.
            drawable = sum(c > 0 for c in item_counts[1:])
            if num_sampled >= drawable:
                raise ValueError(
                    "`num_sampled` must be < the number of items with a count > 0 "
                    f"({drawable}) for distribution='unigram'. Received: "
                    f"num_sampled={num_sampled}"
                )
        self.num_items = num_items
        self.num_sampled = num_sampled
        self.distribution = distribution
        self.item_counts = item_counts
        self.power = power
        self.seed = seed

    def probabilities(self):
        """NumPy array `(num_items,)`: the distribution ids are drawn from."""
        if self.distribution == "uniform":
            p = np.ones(self.num_items)
        else:
            p = np.asarray(self.item_counts, dtype="float64") ** self.power
        p[0] = 0.0
        return p / p.sum()

    def call(self, positive_ids):
        # The samplers draw from [0, range_max); shift by one to skip padding id 0.
        true = ops.reshape(ops.cast(positive_ids, "int64") - 1, (-1, 1))
        true = ops.maximum(true, 0)
        if self.distribution == "uniform":
            sampled, true_count, sampled_count = tf.random.uniform_candidate_sampler(
                true_classes=true,
                num_true=1,
                num_sampled=self.num_sampled,
                unique=True,
                range_max=self.num_items - 1,
                seed=self.seed,
            )
        else:
            sampled, true_count, sampled_count = (
                tf.random.fixed_unigram_candidate_sampler(
                    true_classes=true,
                    num_true=1,
                    num_sampled=self.num_sampled,
                    unique=True,
                    range_max=self.num_items - 1,
                    unigrams=self.item_counts[1:],
                    distortion=self.power,
                    seed=self.seed,
                )
            )
        return sampled + 1, ops.reshape(true_count, (-1,)), sampled_count

    def get_config(self):
        return {
            **super().get_config(),
            "num_items": self.num_items,
            "num_sampled": self.num_sampled,
            "distribution": self.distribution,
            "item_counts": self.item_counts,
            "power": self.power,
            "seed": self.seed,
        }


@keras_rec_export
class SampledSoftmax(keras.layers.Layer):
    """Softmax over the positive item and sampled negatives, with log-Q correction.

    Logits: `cos / temperature - log(expected count)` for the positive and each
    sampled item (the sampled-softmax correction that makes it an unbiased
    estimate of the full softmax); a sampled item equal to the query's
    positive is removed (accidental hit).

    Args:
        temperature: float > 0. Defaults to 0.05.
        remove_accidental_hits: bool. Defaults to `True`.
        **kwargs: base `Layer` arguments.

    Call arguments:
        query: float `(batch, d)`.
        positives: float `(batch, d)`.
        sampled: float `(num_sampled, d)`.
        positive_ids: int `(batch,)`, sampled_ids: int `(num_sampled,)`.
        true_expected_count: float `(batch,)`,
        sampled_expected_count: float `(num_sampled,)`.

    Returns:
        Float `(batch,)`: per-example loss.

    References:
        - Jean et al., "On Using Very Large Target Vocabulary for Neural
          Machine Translation", ACL 2015.
        - Covington et al., "Deep Neural Networks for YouTube
          Recommendations", RecSys 2016.
    """

    def __init__(self, temperature=0.05, remove_accidental_hits=True, **kwargs):
        super().__init__(**kwargs)
        self.temperature = check_temperature(temperature)
        self.remove_accidental_hits = remove_accidental_hits

    def logits(
        self,
        query,
        positives,
        sampled,
        positive_ids,
        sampled_ids,
        true_expected_count,
        sampled_expected_count,
    ):
        """`(batch, 1 + num_sampled)` logits; the label is column 0."""
        true_logit = (
            ops.sum(query * positives, axis=-1, keepdims=True) / self.temperature
        )
        true_logit = true_logit - ops.expand_dims(safe_log(true_expected_count), 1)
        sampled_logits = ops.matmul(query, ops.transpose(sampled)) / self.temperature
        sampled_logits = sampled_logits - ops.expand_dims(
            safe_log(sampled_expected_count), 0
        )
        if self.remove_accidental_hits:
            hits = _accidental_hit_mask(
                ops.cast(positive_ids, "int64"), ops.cast(sampled_ids, "int64")
            )
            sampled_logits = ops.where(hits, PADDING_LOGIT, sampled_logits)
        return ops.concatenate([true_logit, sampled_logits], axis=1)

    def call(self, query, positives, sampled, **kwargs):
        logits = self.logits(query, positives, sampled, **kwargs)
        labels = ops.zeros((ops.shape(query)[0],), dtype="int32")
        return keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "remove_accidental_hits": self.remove_accidental_hits,
        }
