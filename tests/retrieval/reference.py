"""NumPy references and data generators for the retrieval tests."""

import numpy as np


def clustered_unit_vectors(num, dim, num_clusters, seed, noise=0.5):
    """L2-normalised points around `num_clusters` Gaussian centres.

    Clustered data is harder for approximate search than isotropic noise:
    many items sit close to each other, as real item embeddings do.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_clusters, dim))
    points = centres[rng.integers(num_clusters, size=num)]
    points = points + noise * rng.normal(size=(num, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def naive_scores(items, users, metric):
    """Full float64 score matrix `(users, items)`."""
    items = np.asarray(items, dtype=np.float64)
    users = np.asarray(users, dtype=np.float64)
    if metric == "angular":
        items = items / np.linalg.norm(items, axis=1, keepdims=True)
        users = users / np.linalg.norm(users, axis=1, keepdims=True)
    return users @ items.T


def naive_top_k(item_ids, items, users, k, metric, exclude=None):
    """Reference top-k: full float64 scores, a full stable sort, first k."""
    scores = naive_scores(items, users, metric)
    if exclude is not None:
        for row, excluded in enumerate(exclude):
            scores[row, np.isin(item_ids, list(excluded))] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return item_ids[order], np.take_along_axis(scores, order, axis=1)


def overlap_at_k(ids, reference_ids, k):
    """Mean |ids[:k] ∩ reference_ids[:k]| / k over rows."""
    return float(
        np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(ids, reference_ids)])
    )


def stable_top_k(scores, k):
    """Naive exact top-k of a score matrix: a full stable sort of every row.

    Ties go to the lower column, as `BruteForceItemIndex` promises.
    """
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)
