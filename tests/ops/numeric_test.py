"""Each numeric helper of `keras_rec.ops` against its NumPy reference."""

import numpy as np
import pytest
from keras import ops

from keras_rec.ops import EPSILON
from keras_rec.ops import PADDING_LOGIT
from keras_rec.ops import l2_normalize
from keras_rec.ops import length_to_mask
from keras_rec.ops import log_q_correction
from keras_rec.ops import masked_softmax
from keras_rec.ops import safe_log


def np_masked_softmax(logits, mask, axis=-1):
    mask = np.broadcast_to(mask, logits.shape)
    shifted = np.where(mask, logits, -np.inf)
    row_max = np.max(shifted, axis=axis, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    e = np.where(mask, np.exp(logits - row_max), 0.0)
    total = e.sum(axis=axis, keepdims=True)
    return np.where(total > 0, e / np.where(total > 0, total, 1.0), 0.0)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_l2_normalize_matches_numpy(axis):
    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype("float32")
    expected = x / np.linalg.norm(x, axis=axis, keepdims=True)
    np.testing.assert_allclose(
        ops.convert_to_numpy(l2_normalize(x, axis=axis)), expected, rtol=1e-5
    )


def test_l2_normalize_zero_vector_stays_zero_and_others_are_unit():
    x = np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [1e-3, 0.0, 0.0]], "float32")
    out = ops.convert_to_numpy(l2_normalize(x))
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(out[1], [0.6, 0.8, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out[2], [1.0, 0.0, 0.0], rtol=1e-6)


def test_l2_normalize_gradient_at_zero_vector_is_finite():
    import tensorflow as tf

    x = tf.Variable(np.zeros((2, 3), "float32"))
    with tf.GradientTape() as tape:
        y = ops.sum(l2_normalize(x))
    grad = tape.gradient(y, x).numpy()
    assert np.all(np.isfinite(grad))


def test_safe_log_matches_numpy_and_is_finite_at_zero():
    x = np.array([0.0, 1e-20, 1e-3, 0.5, 1.0], "float32")
    out = ops.convert_to_numpy(safe_log(x))
    expected = np.log(np.maximum(x.astype("float64"), EPSILON))
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out[0] == pytest.approx(np.log(EPSILON), rel=1e-6)
    assert np.all(np.isfinite(out))


def test_masked_softmax_matches_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 7)).astype("float32") * 3
    mask = rng.random((5, 7)) > 0.4
    mask[0] = True
    out = ops.convert_to_numpy(masked_softmax(logits, mask))
    np.testing.assert_allclose(out, np_masked_softmax(logits, mask), atol=1e-6)
    # Masked positions carry exactly zero weight, valid rows sum to one.
    assert np.all(out[~mask] == 0.0)
    valid_rows = mask.any(axis=1)
    np.testing.assert_allclose(out[valid_rows].sum(axis=1), 1.0, rtol=1e-6)


def test_masked_softmax_all_masked_row_is_zeros_not_nan():
    logits = np.array([[1.0, 2.0, 3.0], [5.0, -1.0, 0.0]], "float32")
    mask = np.array([[False, False, False], [True, False, True]])
    out = ops.convert_to_numpy(masked_softmax(logits, mask))
    assert not np.any(np.isnan(out))
    np.testing.assert_array_equal(out[0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(out[1], np_masked_softmax(logits, mask)[1], atol=1e-7)


def test_masked_softmax_is_stable_for_large_logits_and_broadcasts_mask():
    logits = np.array([[[1000.0, 999.0, -1000.0]], [[0.0, 0.0, 0.0]]], "float32")
    mask = np.array([[[True, True, False]], [[True, True, True]]])
    out = ops.convert_to_numpy(masked_softmax(logits, mask))
    np.testing.assert_allclose(out, np_masked_softmax(logits, mask), atol=1e-6)
    # A (batch, 1, T) mask broadcasts over (batch, Q, T) logits.
    logits = np.random.default_rng(2).normal(size=(2, 4, 3)).astype("float32")
    mask = np.array([[[True, False, True]], [[False, False, False]]])
    out = ops.convert_to_numpy(masked_softmax(logits, mask))
    np.testing.assert_allclose(out, np_masked_softmax(logits, mask), atol=1e-6)
    np.testing.assert_array_equal(out[1], 0.0)


def test_masked_softmax_along_axis_zero():
    logits = np.random.default_rng(3).normal(size=(4, 3)).astype("float32")
    mask = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 1], [1, 0, 1]], bool)
    out = ops.convert_to_numpy(masked_softmax(logits, mask, axis=0))
    np.testing.assert_allclose(out, np_masked_softmax(logits, mask, axis=0), atol=1e-6)
    np.testing.assert_array_equal(out[:, 1], 0.0)


def test_padding_logit_underflows_to_exactly_zero_in_float32():
    logits = np.array([[0.0, PADDING_LOGIT]], "float32")
    out = ops.convert_to_numpy(ops.softmax(logits))
    assert out[0, 1] == 0.0
    assert np.isfinite(PADDING_LOGIT)


@pytest.mark.parametrize("shape", [(4,), (4, 1)])
def test_length_to_mask_matches_numpy(shape):
    lengths = np.array([0, 1, 3, 7]).reshape(shape)
    out = ops.convert_to_numpy(length_to_mask(lengths, 5))
    expected = np.arange(5)[None, :] < lengths.reshape(-1, 1)
    assert out.dtype == bool
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out[0], False)
    np.testing.assert_array_equal(out[3], True)


def test_log_q_correction_matches_numpy():
    logits = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], "float32")
    q = np.array([0.5, 0.25, 0.0], "float32")
    out = ops.convert_to_numpy(log_q_correction(logits, q))
    expected = logits - np.log(np.maximum(q.astype("float64"), EPSILON))[None, :]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert np.all(np.isfinite(out))
    # Rare candidates (small q) are boosted relative to frequent ones.
    np.testing.assert_allclose(
        out[:, 1] - out[:, 0], logits[:, 1] - logits[:, 0] + np.log(2.0), rtol=1e-6
    )
