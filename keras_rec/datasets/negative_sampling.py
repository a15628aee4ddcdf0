"""Negative sampling in the data pipeline, for point-wise recall training.

Each sampler takes parallel arrays of positive interactions
(`user_ids[i]` interacted with `positive_item_ids[i]`) and returns an int64
array of shape `(len(user_ids), num_negatives)` with item ids in
`1..n_items` (0 is padding). With `exclude_positives=True` no sampled item
is one of that user's positives (every item the user has in the given
arrays).

Strategies (`negatives_for_strategy`):

| name            | distribution of a negative                                 |
|-----------------|------------------------------------------------------------|
| `"uniform"`     | uniform over the catalogue                                 |
| `"popularity"`  | proportional to `count ** power` (word2vec: power 0.75)    |
| `"suppressed"`  | uniform, hot items rejected with prob. `1 - sqrt(t / f)`   |
| `"hard"`        | uniform over a band of ranks of a previous model's results |
| `"none"`, `"in_batch"` | none sampled: the other rows of a batch serve       |

`seed` is None, an int or a `np.random.Generator` (used as is, so one
Generator can be threaded through a pipeline).
"""

import collections.abc

import numpy as np
import pandas as pd

from keras_rec.datasets._validation import as_generator
from keras_rec.datasets._validation import check_choice
from keras_rec.datasets._validation import check_columns
from keras_rec.datasets._validation import check_float
from keras_rec.datasets._validation import check_int

STRATEGIES = ("uniform", "popularity", "suppressed", "hard", "none", "in_batch")
# Rounds of vectorised rejection before the few rows left are sampled
# exactly from their user's complement set.
_MAX_REJECTION_ROUNDS = 20


def _plain(value):
    """A NumPy scalar as the Python value, for readable error messages."""
    return value.item() if isinstance(value, np.generic) else value


def _check_pairs(user_ids, positive_item_ids, n_items):
    user_ids = np.asarray(user_ids).reshape(-1)
    items = np.asarray(positive_item_ids).reshape(-1)
    if len(user_ids) != len(items):
        raise ValueError(
            "`user_ids` and `positive_item_ids` must have the same length. "
            f"Received: {len(user_ids)} and {len(items)}"
        )
    n_items = check_int("n_items", n_items, minimum=1)
    if items.size:
        if items.dtype.kind not in "iu":
            raise TypeError(
                f"`positive_item_ids` must be integers. Received dtype: {items.dtype}"
            )
        if items.min() < 1 or items.max() > n_items:
            bad = items[(items < 1) | (items > n_items)][0]
            raise ValueError(
                f"`positive_item_ids` must be in [1, n_items={n_items}]. "
                f"Received: {bad}"
            )
    return user_ids, items.astype(np.int64), n_items


def _item_weights(item_counts, positive_item_ids, n_items):
    """Per-item counts as a float array indexed by item id (index 0 = 0)."""
    if item_counts is None:
        return np.bincount(positive_item_ids, minlength=n_items + 1).astype(float)
    counts = np.asarray(item_counts, dtype=np.float64).reshape(-1)
    if len(counts) == n_items:
        counts = np.concatenate([[0.0], counts])
    elif len(counts) != n_items + 1:
        raise ValueError(
            f"`item_counts` must have n_items={n_items} entries (item i at "
            f"position i - 1) or n_items + 1 (indexed by id, 0 = padding). "
            f"Received: {len(counts)} entries"
        )
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError("`item_counts` must be finite and >= 0.")
    counts[0] = 0.0
    return counts


class _Positives:
    """Membership test for (user, item) pairs, vectorised with sorted keys."""

    def __init__(self, user_ids, item_ids, n_items):
        self.users, inverse = np.unique(user_ids, return_inverse=True)
        self.stride = n_items + 1
        self.keys = np.unique(inverse.astype(np.int64) * self.stride + item_ids)

    def user_index(self, user_ids):
        """Row of each user in the key space; unknown users match no key."""
        user_ids = np.asarray(user_ids)
        if len(self.users) == 0:
            return np.zeros(len(user_ids), dtype=np.int64)
        idx = np.searchsorted(self.users, user_ids).clip(0, len(self.users) - 1)
        return np.where(self.users[idx] == user_ids, idx, len(self.users) + 1)

    def contains(self, user_index, items):
        keys = user_index * self.stride + items
        if len(self.keys) == 0:
            return np.zeros(keys.shape, dtype=bool)
        pos = np.searchsorted(self.keys, keys).clip(0, len(self.keys) - 1)
        return self.keys[pos] == keys

    def items_of(self, user_index):
        lo = np.searchsorted(self.keys, user_index * self.stride)
        hi = np.searchsorted(self.keys, (user_index + 1) * self.stride)
        return self.keys[lo:hi] - user_index * self.stride


def _sample(rng, probs, user_ids, positives, num_negatives, exclude):
    """Draws (n, num_negatives) items from `probs` (indexed by id), excluding."""
    n = len(user_ids)
    cum = np.cumsum(probs)
    total = cum[-1]

    def draw(size):
        # Inverse CDF; index 0 has probability 0, so ids are >= 1.
        ids = np.searchsorted(cum, rng.random(size) * total, side="right")
        return np.clip(ids, 1, len(probs) - 1)

    out = draw((n, num_negatives))
    if not exclude or out.size == 0:
        return out
    uidx = np.repeat(positives.user_index(user_ids), num_negatives).reshape(
        n, num_negatives
    )
    bad = positives.contains(uidx, out)
    for _ in range(_MAX_REJECTION_ROUNDS):
        if not bad.any():
            return out
        out[bad] = draw(int(bad.sum()))
        bad[bad] = positives.contains(uidx[bad], out[bad])
    # Users whose positives hold most of the mass: sample exactly from the
    # rest of the catalogue.
    for row in np.unique(np.nonzero(bad)[0]):
        allowed = probs.copy()
        allowed[positives.items_of(uidx[row, 0])] = 0.0
        if allowed.sum() <= 0:
            raise ValueError(
                f"No negative can be sampled for user {_plain(user_ids[row])!r}: its "
                f"positives hold every item with non-zero probability."
            )
        cols = np.flatnonzero(bad[row])
        out[row, cols] = rng.choice(
            len(probs), size=len(cols), p=allowed / allowed.sum()
        )
    return out


def _run(user_ids, positive_item_ids, n_items, num_negatives, seed, exclude, probs):
    num_negatives = check_int("num_negatives", num_negatives, minimum=0)
    rng = as_generator(seed)
    if probs.sum() <= 0:
        raise ValueError("The sampling distribution is zero for every item.")
    positives = _Positives(user_ids, positive_item_ids, n_items) if exclude else None
    return _sample(rng, probs, user_ids, positives, num_negatives, exclude)


def uniform_negatives(
    user_ids,
    positive_item_ids,
    n_items,
    num_negatives,
    seed=None,
    exclude_positives=True,
):
    """Samples negatives uniformly from items `1..n_items`.

    Args:
        user_ids: 1-D array-like. User of each positive interaction.
        positive_item_ids: 1-D int array-like. Item of each positive
            interaction, in `1..n_items`.
        n_items: int. Size of the catalogue (ids `1..n_items`), >= 1.
        num_negatives: int. Negatives per positive row, >= 0.
        seed: None, int or `np.random.Generator`. Defaults to None.
        exclude_positives: bool. Never return one of the user's positives.
            Defaults to True.

    Returns:
        int64 array of shape `(len(user_ids), num_negatives)`.
    """
    user_ids, items, n_items = _check_pairs(user_ids, positive_item_ids, n_items)
    probs = np.ones(n_items + 1)
    probs[0] = 0.0
    return _run(user_ids, items, n_items, num_negatives, seed, exclude_positives, probs)


def popularity_negatives(
    user_ids,
    positive_item_ids,
    n_items,
    num_negatives,
    seed=None,
    item_counts=None,
    power=0.75,
    exclude_positives=True,
):
    """Samples negatives with probability proportional to `count ** power`.

    word2vec's unigram^0.75 distribution: popular items are sampled more
    often than uniform, but less than in proportion to their counts. Items
    with count 0 are never sampled (unless `power` is 0).

    Args:
        user_ids: 1-D array-like. User of each positive interaction.
        positive_item_ids: 1-D int array-like, in `1..n_items`.
        n_items: int. Size of the catalogue, >= 1.
        num_negatives: int. Negatives per positive row, >= 0.
        seed: None, int or `np.random.Generator`. Defaults to None.
        item_counts: array-like or None. Interaction counts, either
            `n_items` long (item i at position i - 1) or `n_items + 1` long
            (indexed by id). Defaults to None (counted from
            `positive_item_ids`).
        power: float. Exponent, >= 0. Defaults to 0.75.
        exclude_positives: bool. Defaults to True.

    Returns:
        int64 array of shape `(len(user_ids), num_negatives)`.

    References:
        - Tomas Mikolov et al. Distributed Representations of Words and
          Phrases and their Compositionality. NeurIPS 2013.
    """
    user_ids, items, n_items = _check_pairs(user_ids, positive_item_ids, n_items)
    power = check_float("power", power, low=0)
    counts = _item_weights(item_counts, items, n_items)
    probs = counts**power if power > 0 else np.ones_like(counts)
    probs[0] = 0.0
    return _run(user_ids, items, n_items, num_negatives, seed, exclude_positives, probs)


def suppressed_acceptance(item_counts, threshold):
    """Acceptance probability `min(1, sqrt(threshold / f))` per item id.

    `f` is the item's share of all counts; items never seen are always
    accepted. Index 0 (padding) gets 0.
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    freq = counts / max(counts.sum(), 1e-300)
    with np.errstate(divide="ignore"):
        accept = np.where(freq > 0, np.sqrt(threshold / freq), 1.0)
    accept = np.minimum(accept, 1.0)
    accept[0] = 0.0
    return accept


def popularity_suppressed_negatives(
    user_ids,
    positive_item_ids,
    n_items,
    num_negatives,
    seed=None,
    item_counts=None,
    threshold=1e-3,
    exclude_positives=True,
):
    """Samples uniform negatives with hot items down-sampled (word2vec subsampling).

    A uniform candidate `i` with frequency `f_i` (its share of all counts)
    is rejected with probability `1 - sqrt(threshold / f_i)` (never when
    `f_i <= threshold`). The result is drawn directly from the equivalent
    distribution `p_i ∝ min(1, sqrt(threshold / f_i))`, which is exact and
    needs no rejection loop. Popular items, which in-batch or popularity
    sampling already over-represent, are suppressed.

    Args:
        user_ids: 1-D array-like. User of each positive interaction.
        positive_item_ids: 1-D int array-like, in `1..n_items`.
        n_items: int. Size of the catalogue, >= 1.
        num_negatives: int. Negatives per positive row, >= 0.
        seed: None, int or `np.random.Generator`. Defaults to None.
        item_counts: array-like or None. As in `popularity_negatives`.
            Defaults to None (counted from `positive_item_ids`).
        threshold: float. Frequency above which items are suppressed, > 0.
            Defaults to 1e-3.
        exclude_positives: bool. Defaults to True.

    Returns:
        int64 array of shape `(len(user_ids), num_negatives)`.
    """
    user_ids, items, n_items = _check_pairs(user_ids, positive_item_ids, n_items)
    threshold = check_float("threshold", threshold, low=0, low_inclusive=False)
    counts = _item_weights(item_counts, items, n_items)
    probs = suppressed_acceptance(counts, threshold)
    return _run(user_ids, items, n_items, num_negatives, seed, exclude_positives, probs)


def _rankings_array(user_ids, candidate_rankings):
    if isinstance(candidate_rankings, collections.abc.Mapping):
        rows = []
        for user in user_ids.tolist():
            if user not in candidate_rankings:
                raise ValueError(
                    f"`candidate_rankings` has no ranking for user {user!r}."
                )
            rows.append(np.asarray(candidate_rankings[user]).reshape(-1))
        width = max((len(r) for r in rows), default=0)
        out = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out
    rankings = np.asarray(candidate_rankings)
    if rankings.ndim != 2 or len(rankings) != len(user_ids):
        raise ValueError(
            "`candidate_rankings` must be a mapping user -> ranked item ids, or "
            "a 2-D array with one row per user id. Received: shape "
            f"{rankings.shape} for {len(user_ids)} user ids"
        )
    return rankings.astype(np.int64)


def hard_negatives(
    user_ids,
    candidate_rankings,
    positives_by_user,
    band=(100, 500),
    num_negatives=1,
    seed=None,
):
    """Samples negatives ranked in a middle band by a previous model.

    Items ranked at the very top by the previous model are often unlabelled
    positives; items far down are easy. The band in between gives hard
    negatives. Each row draws uniformly without replacement from the items
    at 0-based ranks `band[0] .. band[1] - 1` of its user's ranking, minus
    the user's positives and padding (0); with replacement when fewer than
    `num_negatives` remain.

    Args:
        user_ids: 1-D array-like. One entry per output row.
        candidate_rankings: mapping user -> 1-D ranked item ids (best first),
            or a 2-D int array with one ranking per entry of `user_ids`
            (e.g. the ids returned by an index query).
        positives_by_user: mapping user -> iterable of item ids, or None.
            These are never returned.
        band: tuple `(start, stop)` of 0-based ranks, `0 <= start < stop`.
            Defaults to `(100, 500)`.
        num_negatives: int. Negatives per row, >= 0. Defaults to 1.
        seed: None, int or `np.random.Generator`. Defaults to None.

    Returns:
        int64 array of shape `(len(user_ids), num_negatives)`.

    Raises:
        ValueError: a row's band holds no admissible item.
    """
    user_ids = np.asarray(user_ids).reshape(-1)
    num_negatives = check_int("num_negatives", num_negatives, minimum=0)
    band = tuple(band)
    if (
        len(band) != 2
        or any(
            isinstance(b, bool) or not isinstance(b, (int, np.integer)) for b in band
        )
        or not 0 <= band[0] < band[1]
    ):
        raise ValueError(
            f"`band` must be (start, stop) with 0 <= start < stop. Received: band={band}"
        )
    rng = as_generator(seed)
    rankings = _rankings_array(user_ids, candidate_rankings)
    window = rankings[:, band[0] : band[1]]
    n = len(user_ids)
    out = np.zeros((n, num_negatives), dtype=np.int64)
    if num_negatives == 0 or n == 0:
        return out
    valid = window > 0
    if positives_by_user is not None:
        pos_users, pos_items = [], []
        for user in np.unique(user_ids).tolist():
            items = np.asarray(list(positives_by_user.get(user, ())), dtype=np.int64)
            pos_users.append(np.full(len(items), user, dtype=user_ids.dtype))
            pos_items.append(items)
        pos_items = np.concatenate(pos_items)
        largest = max(int(window.max(initial=0)), int(pos_items.max(initial=0)))
        positives = _Positives(np.concatenate(pos_users), pos_items, largest)
        uidx = np.broadcast_to(positives.user_index(user_ids)[:, None], window.shape)
        valid &= ~positives.contains(uidx, window)
    n_valid = valid.sum(axis=1)
    if np.any(n_valid == 0):
        row = int(np.flatnonzero(n_valid == 0)[0])
        raise ValueError(
            f"No hard negative for user {_plain(user_ids[row])!r}: ranks {band[0]}.."
            f"{band[1] - 1} of its ranking (length {rankings.shape[1]}) hold no "
            f"item that is not padding or a positive."
        )
    # Uniform without replacement: the valid items with the smallest keys.
    keys = np.where(valid, rng.random(window.shape), 2.0)
    k = min(num_negatives, window.shape[1])
    picks = np.argsort(keys, axis=1, kind="stable")[:, :k]
    out[:, :k] = np.take_along_axis(window, picks, axis=1)
    short = np.flatnonzero(n_valid < num_negatives)
    for row in short:
        out[row] = rng.choice(window[row][valid[row]], size=num_negatives)
    return out


def negatives_for_strategy(
    strategy,
    user_ids,
    positive_item_ids,
    n_items,
    num_negatives,
    seed=None,
    **kwargs,
):
    """Dispatches to the sampler of `strategy` (see the module's table).

    Args:
        strategy: str. One of `"uniform"`, `"popularity"`, `"suppressed"`,
            `"hard"`, `"none"` or `"in_batch"` (the last two sample nothing:
            in-batch training uses the other rows of the batch).
        user_ids: 1-D array-like. User of each positive interaction.
        positive_item_ids: 1-D int array-like, in `1..n_items`.
        n_items: int. Size of the catalogue, >= 1.
        num_negatives: int. Negatives per positive row, >= 0.
        seed: None, int or `np.random.Generator`. Defaults to None.
        **kwargs: passed to the sampler: `item_counts`, `power`,
            `threshold`, `exclude_positives`; for `"hard"`,
            `candidate_rankings` (required), `band` and `positives_by_user`
            (defaults to the pairs given).

    Returns:
        int64 array of shape `(len(user_ids), num_negatives)`, or
        `(len(user_ids), 0)` for `"none"` / `"in_batch"`.
    """
    check_choice("strategy", strategy, set(STRATEGIES))
    if strategy in ("none", "in_batch"):
        user_ids, _, _ = _check_pairs(user_ids, positive_item_ids, n_items)
        return np.zeros((len(user_ids), 0), dtype=np.int64)
    if strategy == "hard":
        if "candidate_rankings" not in kwargs:
            raise ValueError(
                "strategy='hard' needs `candidate_rankings` (user -> ranked ids)."
            )
        user_ids, items, n_items = _check_pairs(user_ids, positive_item_ids, n_items)
        positives_by_user = kwargs.pop("positives_by_user", None)
        if positives_by_user is None:
            positives_by_user = (
                pd.Series(items).groupby(user_ids).apply(lambda s: set(s)).to_dict()
            )
        return hard_negatives(
            user_ids,
            kwargs.pop("candidate_rankings"),
            positives_by_user,
            num_negatives=num_negatives,
            seed=seed,
            **kwargs,
        )
    sampler = {
        "uniform": uniform_negatives,
        "popularity": popularity_negatives,
        "suppressed": popularity_suppressed_negatives,
    }[strategy]
    return sampler(
        user_ids, positive_item_ids, n_items, num_negatives, seed=seed, **kwargs
    )


def add_negatives(
    df,
    strategy,
    num_negatives,
    n_items=None,
    seed=None,
    user_col="user_id",
    item_col="item_id",
    label_col="label",
    items=None,
    **kwargs,
):
    """Adds sampled negatives to a table of positives, for point-wise training.

    Every row of `df` is a positive (label 1) and is followed by its
    `num_negatives` negatives (label 0). A negative row copies every column
    of its positive row (the user's features, time, history, ...) except
    `item_col`. Columns describing the item are re-attached from `items`
    when given (otherwise a negative would carry its positive's item
    features).

    Args:
        df: DataFrame of positive interactions.
        strategy: str. As in `negatives_for_strategy`; `"none"` /
            `"in_batch"` only add the label column.
        num_negatives: int. Negatives per positive, >= 0.
        n_items: int or None. Catalogue size. Defaults to None:
            `len(items)` if given, else the largest id in `df[item_col]`.
        seed: None, int or `np.random.Generator`. Defaults to None.
        user_col: str. Defaults to `"user_id"`.
        item_col: str. Defaults to `"item_id"`.
        label_col: str. Name of the added label column; must not exist in
            `df`. Defaults to `"label"`.
        items: DataFrame or None. Item features with an `item_col` column;
            its other columns replace any same-named columns of `df`.
            Defaults to None.
        **kwargs: passed to the sampler (see `negatives_for_strategy`).

    Returns:
        A DataFrame with `df`'s columns (plus the item features) and
        `label_col` (int64), `len(df) * (1 + num_negatives)` rows (only
        `len(df)` for `"none"` / `"in_batch"`), index reset.
    """
    check_columns(df, [user_col, item_col])
    if label_col in df.columns:
        raise ValueError(
            f"`df` already has a `{label_col}` column; add_negatives expects "
            f"positives only. Received columns: {list(df.columns)}"
        )
    if items is not None:
        check_columns(items, [item_col], argument="items")
    if n_items is None:
        n_items = len(items) if items is not None else int(df[item_col].max())
    negatives = negatives_for_strategy(
        strategy,
        df[user_col].to_numpy(),
        df[item_col].to_numpy(),
        n_items,
        num_negatives,
        seed=seed,
        **kwargs,
    )
    k = negatives.shape[1]
    n = len(df)
    source = np.repeat(np.arange(n), 1 + k)
    out = df.iloc[source].reset_index(drop=True)
    labels = np.zeros((n, 1 + k), dtype=np.int64)
    labels[:, 0] = 1
    item_ids = np.concatenate([df[item_col].to_numpy()[:, None], negatives], axis=1)
    out[item_col] = item_ids.reshape(-1).astype(df[item_col].dtype)
    out[label_col] = labels.reshape(-1)
    if items is not None:
        features = [c for c in items.columns if c != item_col]
        out = out.drop(columns=[c for c in features if c in out.columns])
        out = out.merge(items, on=item_col, how="left", sort=False)
    return out


__all__ = [
    "STRATEGIES",
    "add_negatives",
    "hard_negatives",
    "negatives_for_strategy",
    "popularity_negatives",
    "popularity_suppressed_negatives",
    "uniform_negatives",
]
