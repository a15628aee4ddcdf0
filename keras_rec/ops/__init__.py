"""Numeric helpers: the one place for constants and numerically careful math."""

from keras_rec.ops.numeric import EPSILON
from keras_rec.ops.numeric import PADDING_LOGIT
from keras_rec.ops.numeric import l2_normalize
from keras_rec.ops.numeric import length_to_mask
from keras_rec.ops.numeric import log_q_correction
from keras_rec.ops.numeric import masked_softmax
from keras_rec.ops.numeric import safe_log

__all__ = [
    "EPSILON",
    "PADDING_LOGIT",
    "l2_normalize",
    "length_to_mask",
    "log_q_correction",
    "masked_softmax",
    "safe_log",
]
