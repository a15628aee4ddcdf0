"""Numeric helpers shared by layers, objectives and models.

Constants and numerically careful operations live here and nowhere else, so a
reader can check each one against its NumPy reference in
`tests/ops/numeric_test.py`.
"""

from keras import ops

# Smallest value added under a square root or a log.
EPSILON = 1e-12

# Logit given to padded / excluded positions before a softmax. Large enough
# that exp(PADDING_LOGIT - max) underflows to exactly 0 in float32, finite so
# that an all-padding row gives a uniform (not NaN) distribution.
PADDING_LOGIT = -1e9


def l2_normalize(x, axis=-1):
    """Divides `x` by its L2 norm along `axis`; zero vectors stay zero.

    Args:
        x: tensor.
        axis: int. Defaults to -1.

    Returns:
        Tensor of the same shape as `x`.
    """
    square_sum = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(square_sum, EPSILON))


def safe_log(x):
    """`log(max(x, EPSILON))`: the log of probabilities that may be 0."""
    return ops.log(ops.maximum(x, EPSILON))


def masked_softmax(logits, mask, axis=-1):
    """Softmax over `axis` where positions with `mask == False` get exactly 0.

    Rows with no valid position get all-zero weights rather than NaN.

    Args:
        logits: float tensor.
        mask: bool tensor broadcastable to `logits`.
        axis: int. Defaults to -1.

    Returns:
        Float tensor with the shape of `logits`.
    """
    mask = ops.cast(mask, "bool")
    logits = ops.where(mask, logits, ops.full_like(logits, PADDING_LOGIT))
    weights = ops.softmax(logits, axis=axis)
    return ops.where(mask, weights, ops.zeros_like(weights))


def length_to_mask(lengths, maxlen):
    """Boolean mask `(batch, maxlen)` with the first `lengths[i]` positions True.

    Args:
        lengths: int tensor of shape `(batch,)` or `(batch, 1)`.
        maxlen: int. Length of the padded sequences.

    Returns:
        Bool tensor of shape `(batch, maxlen)`.
    """
    lengths = ops.reshape(ops.cast(lengths, "int32"), (-1, 1))
    positions = ops.expand_dims(ops.arange(maxlen, dtype="int32"), 0)
    # `ops.less`, not `<`: `positions` is a concrete tensor, and its `__lt__`
    # cannot take the symbolic lengths of a functional model.
    return ops.less(positions, lengths)


def log_q_correction(logits, sampling_probability):
    """Subtracts `log(q)` of each candidate from its logit (Yi et al., 2019).

    Args:
        logits: float tensor `(batch, num_candidates)`.
        sampling_probability: float tensor `(num_candidates,)`: the
            probability that each candidate appears as a sampled item.

    Returns:
        The corrected logits, same shape.
    """
    return logits - ops.expand_dims(safe_log(sampling_probability), 0)
