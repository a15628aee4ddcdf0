"""Numeric tests of the recall objectives and the frequency estimator against NumPy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rec.layers.frequency_estimator import StreamingFrequencyEstimator
from keras_rec.layers.in_batch_softmax import InBatchSoftmax
from keras_rec.layers.sampled_softmax import CandidateSampler
from keras_rec.layers.sampled_softmax import SampledSoftmax


def _normalize(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _log_softmax_ce(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


def _reference_in_batch(q, c, ids, prob, temperature, extra=None):
    logits = q @ c.T / temperature
    if prob is not None:
        logits = logits - np.log(prob)[None, :]
    hits = (ids[:, None] == ids[None, :]) & ~np.eye(len(ids), dtype=bool)
    logits = np.where(hits, -1e9, logits)
    if extra is not None:
        extra_c, extra_ids, extra_prob = extra
        more = q @ extra_c.T / temperature - np.log(extra_prob)[None, :]
        more = np.where(ids[:, None] == extra_ids[None, :], -1e9, more)
        logits = np.concatenate([logits, more], axis=1)
    return _log_softmax_ce(logits, np.arange(len(ids)))


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    q = _normalize(rng.normal(size=(6, 4))).astype("float32")
    c = _normalize(rng.normal(size=(6, 4))).astype("float32")
    # Items 3 and 5 appear twice: accidental hits for each other's rows.
    ids = np.array([3, 5, 7, 3, 5, 9])
    prob = np.array([0.5, 0.2, 0.01, 0.5, 0.2, 0.05], dtype="float32")
    return q, c, ids, prob


def test_in_batch_softmax_matches_numpy_with_logq_and_accidental_hits(batch):
    q, c, ids, prob = batch
    layer = InBatchSoftmax(temperature=0.1)
    loss = keras.ops.convert_to_numpy(
        layer(q, c, candidate_ids=ids, candidate_sampling_probability=prob)
    )
    np.testing.assert_allclose(
        loss, _reference_in_batch(q, c, ids, prob, 0.1), rtol=1e-5, atol=1e-5
    )


def test_in_batch_softmax_corrections_change_the_loss(batch):
    q, c, ids, prob = batch
    plain = keras.ops.convert_to_numpy(InBatchSoftmax(0.1, False)(q, c))
    corrected = keras.ops.convert_to_numpy(
        InBatchSoftmax(0.1)(
            q, c, candidate_ids=ids, candidate_sampling_probability=prob
        )
    )
    # Without corrections it is the plain softmax cross-entropy.
    np.testing.assert_allclose(
        plain, _log_softmax_ce(q @ c.T / 0.1, np.arange(6)), rtol=1e-5, atol=1e-5
    )
    assert np.abs(plain - corrected).max() > 0.05


def test_in_batch_softmax_with_mixed_negatives(batch):
    q, c, ids, prob = batch
    rng = np.random.default_rng(1)
    extra_c = _normalize(rng.normal(size=(3, 4))).astype("float32")
    extra_ids = np.array([7, 11, 12])  # 7 is row 2's own positive: an accidental hit
    extra_prob = np.full(3, 0.3, dtype="float32")
    loss = InBatchSoftmax(0.1)(
        q,
        c,
        candidate_ids=ids,
        candidate_sampling_probability=prob,
        extra_candidates=extra_c,
        extra_ids=extra_ids,
        extra_sampling_probability=extra_prob,
    )
    expected = _reference_in_batch(
        q, c, ids, prob, 0.1, extra=(extra_c, extra_ids, extra_prob)
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss), expected, atol=1e-5)


def test_in_batch_loss_does_not_scale_with_batch_size():
    rng = np.random.default_rng(2)
    means = []
    for batch_size in (64, 256):
        q = _normalize(rng.normal(size=(batch_size, 8))).astype("float32")
        loss = InBatchSoftmax(1.0, False)(q, q)
        means.append(float(keras.ops.mean(loss)))
    # Per-example mean; it grows like log(batch) (more negatives), not linearly.
    assert means[1] / means[0] < 1.5


def test_sampled_softmax_matches_numpy():
    rng = np.random.default_rng(3)
    q = _normalize(rng.normal(size=(4, 5))).astype("float32")
    pos = _normalize(rng.normal(size=(4, 5))).astype("float32")
    sampled = _normalize(rng.normal(size=(6, 5))).astype("float32")
    pos_ids = np.array([1, 2, 3, 4])
    sampled_ids = np.array([2, 9, 10, 11, 12, 13])  # 2 is row 1's positive
    true_count = np.array([0.1, 0.2, 0.3, 0.4], dtype="float32")
    sampled_count = np.linspace(0.1, 0.6, 6).astype("float32")
    loss = SampledSoftmax(temperature=0.2)(
        q,
        pos,
        sampled,
        positive_ids=pos_ids,
        sampled_ids=sampled_ids,
        true_expected_count=true_count,
        sampled_expected_count=sampled_count,
    )
    true_logit = (q * pos).sum(1, keepdims=True) / 0.2 - np.log(true_count)[:, None]
    sampled_logits = q @ sampled.T / 0.2 - np.log(sampled_count)[None, :]
    sampled_logits = np.where(
        pos_ids[:, None] == sampled_ids[None, :], -1e9, sampled_logits
    )
    expected = _log_softmax_ce(
        np.concatenate([true_logit, sampled_logits], 1), np.zeros(4, dtype=int)
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss), expected, atol=1e-5)


@pytest.mark.parametrize("distribution", ["uniform", "unigram"])
def test_candidate_sampler_distribution(distribution):
    num_items = 21
    counts = np.arange(num_items, dtype="float64") ** 2
    sampler = CandidateSampler(
        num_items, 1, distribution=distribution, item_counts=list(counts), seed=7
    )
    draw = tf.function(lambda: sampler(tf.constant([1]))[0])
    draws = np.concatenate([draw().numpy() for _ in range(3000)])
    assert draws.min() >= 1 and draws.max() < num_items  # never padding id 0
    frequency = np.bincount(draws, minlength=num_items)[1:] / len(draws)
    expected = sampler.probabilities()[1:]
    np.testing.assert_allclose(frequency, expected, atol=0.02)
    if distribution == "unigram":
        # count ** 0.75: item 20 is drawn far more often than item 2.
        assert frequency[19] > 5 * frequency[1]


def test_unigram_sampler_rejects_more_draws_than_drawable_items():
    counts = [0.0, 5.0, 0.0, 3.0, 1.0, 2.0]  # 4 items with a count > 0
    CandidateSampler(6, 3, distribution="unigram", item_counts=counts)
    with pytest.raises(ValueError, match=r"num_sampled.*\(4\).*num_sampled=4"):
        CandidateSampler(6, 4, distribution="unigram", item_counts=counts)


def test_frequency_estimator_converges_to_stream_frequencies():
    rng = np.random.default_rng(4)
    num_items, batch_size = 50, 32
    probs = 1.0 / np.arange(1, num_items + 1)
    probs /= probs.sum()
    estimator = StreamingFrequencyEstimator(
        hash_bucket_size=4096, num_hashes=2, alpha=0.05
    )
    update = tf.function(estimator.update)
    for _ in range(1500):
        update(tf.constant(rng.choice(num_items, size=batch_size, p=probs) + 1))
    estimate = keras.ops.convert_to_numpy(estimator(np.arange(1, 11)))
    # Probability that an item appears at least once in a batch.
    truth = 1.0 - (1.0 - probs[:10]) ** batch_size
    np.testing.assert_allclose(estimate, truth, rtol=0.25)
    # Unseen ids get probability 1: no correction.
    assert float(estimator(np.array([10_000]))[0]) == 1.0


def test_frequency_estimator_validates_arguments():
    with pytest.raises(ValueError, match="alpha"):
        StreamingFrequencyEstimator(alpha=1.5)
    with pytest.raises(ValueError, match="num_hashes"):
        StreamingFrequencyEstimator(num_hashes=0)


def test_objectives_validate_temperature():
    with pytest.raises(ValueError, match="temperature"):
        InBatchSoftmax(temperature=0)
    with pytest.raises(ValueError, match="temperature"):
        SampledSoftmax(temperature=-1.0)
