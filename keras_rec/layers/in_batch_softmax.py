"""`InBatchSoftmax`: the two-tower objective over the items of the batch."""

import keras
from keras import ops

from keras_rec.api_export import keras_rec_export
from keras_rec.layers.cosine_similarity import check_temperature
from keras_rec.ops import PADDING_LOGIT
from keras_rec.ops import safe_log


def _accidental_hit_mask(positive_ids, candidate_ids, label_offset=None):
    """True where a candidate is the query's own positive item but not its label.

    Args:
        positive_ids: int `(batch,)`.
        candidate_ids: int `(num_candidates,)`.
        label_offset: None when no column is a label (sampled candidates), else
            the column of row 0's label: row i's label is column
            `label_offset + i` (0 for plain in-batch candidates; the replica's
            offset when candidates are gathered across replicas).
    """
    hits = ops.equal(
        ops.expand_dims(positive_ids, 1), ops.expand_dims(candidate_ids, 0)
    )  # (batch, num_candidates)
    if label_offset is not None:
        rows = ops.expand_dims(ops.arange(ops.shape(positive_ids)[0]), 1)
        columns = ops.expand_dims(ops.arange(ops.shape(candidate_ids)[0]), 0)
        hits = ops.logical_and(hits, ops.not_equal(columns, rows + label_offset))
    return hits


@keras_rec_export
class InBatchSoftmax(keras.layers.Layer):
    """Softmax cross-entropy where the other items of the batch are the negatives.

    Logits are built in this order: similarity / temperature, minus the log of
    each candidate's sampling probability (log-Q correction: popular items are
    over-represented as in-batch negatives), then accidental hits (the query's
    own positive item appearing elsewhere among the candidates) are removed.
    Optional extra candidates (e.g. uniformly sampled items shared across the
    batch: "mixed negatives") are appended as further columns.

    Args:
        temperature: float > 0. Defaults to 0.05.
        remove_accidental_hits: bool. Defaults to `True`.
        **kwargs: base `Layer` arguments.

    Call arguments:
        query: float `(batch, d)`: L2-normalised user embeddings.
        candidates: float `(batch, d)`: L2-normalised item embeddings; row i
            is the positive of query i.
        candidate_ids: int `(batch,)`. Needed for accidental-hit removal.
        candidate_sampling_probability: float `(batch,)`. Probability that
            each candidate is in a batch; `None` skips the log-Q correction.
        extra_candidates: float `(n, d)`, extra_ids: int `(n,)`,
            extra_sampling_probability: float `(n,)`. Extra negatives.
        label_offset: int. Column of row 0's positive; nonzero when the
            candidates are gathered from all replicas. Defaults to 0.
        positive_ids: int `(batch,)`. The rows' own items, when they differ
            from `candidate_ids` (gathered candidates).

    Returns:
        Float `(batch,)`: the per-example loss (its mean does not scale with
        the batch size).

    References:
        - Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus
          Item Recommendations", RecSys 2019.
        - Yang et al., "Mixed Negative Sampling for Learning Two-tower Neural
          Networks in Recommendations", WWW 2020.
    """

    def __init__(self, temperature=0.05, remove_accidental_hits=True, **kwargs):
        super().__init__(**kwargs)
        self.temperature = check_temperature(temperature)
        self.remove_accidental_hits = remove_accidental_hits

    def logits(
        self,
        query,
        candidates,
        candidate_ids=None,
        candidate_sampling_probability=None,
        extra_candidates=None,
        extra_ids=None,
        extra_sampling_probability=None,
        label_offset=0,
        positive_ids=None,
    ):
        """The corrected `(batch, num_candidates)` logits.

        The label of row i is column `label_offset + i`; `positive_ids` (the
        rows' own item ids) default to `candidate_ids`, as when every row's
        positive is among the candidates in row order.
        """
        if positive_ids is None:
            positive_ids = candidate_ids
        logits = ops.matmul(query, ops.transpose(candidates)) / self.temperature
        if candidate_sampling_probability is not None:
            logits = logits - ops.expand_dims(
                safe_log(candidate_sampling_probability), 0
            )
        if self.remove_accidental_hits and candidate_ids is not None:
            hits = _accidental_hit_mask(positive_ids, candidate_ids, label_offset)
            logits = ops.where(hits, PADDING_LOGIT, logits)
        if extra_candidates is not None:
            extra = (
                ops.matmul(query, ops.transpose(extra_candidates)) / self.temperature
            )
            if extra_sampling_probability is not None:
                extra = extra - ops.expand_dims(safe_log(extra_sampling_probability), 0)
            if self.remove_accidental_hits and candidate_ids is not None:
                hits = _accidental_hit_mask(positive_ids, extra_ids)
                extra = ops.where(hits, PADDING_LOGIT, extra)
            logits = ops.concatenate([logits, extra], axis=1)
        return logits

    def call(self, query, candidates, label_offset=0, **kwargs):
        logits = self.logits(query, candidates, label_offset=label_offset, **kwargs)
        labels = ops.arange(ops.shape(query)[0]) + label_offset
        return keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "remove_accidental_hits": self.remove_accidental_hits,
        }
