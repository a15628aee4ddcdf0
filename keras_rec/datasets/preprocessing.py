"""Turning interaction logs into model inputs: ids, splits, histories, scaling.

Library-wide conventions used here:

* Id 0 means padding and out-of-vocabulary; real ids start at 1.
* A user's events are ordered by `(timestamp, item id)`: ties in time are
  broken by the item id so every function orders them the same way.
* Histories hold the most recent item last.
"""

import numbers

import numpy as np
import pandas as pd

from keras_rec.datasets._validation import check_choice
from keras_rec.datasets._validation import check_columns
from keras_rec.datasets._validation import check_float
from keras_rec.datasets._validation import check_int

# `log_square_bucket` sends missing values (NaN) here; no finite input can
# produce it (inputs <= 2 keep their own, small, value).
LOG_SQUARE_MISSING = -(2**31)


def encode_ids(values, vocabulary=None):
    """Maps raw ids (any hashable values) to int64 codes starting at 1.

    Code 0 is reserved for padding and out-of-vocabulary values. Without a
    `vocabulary` the vocabulary is the sorted distinct non-missing values
    (first-appearance order if they cannot be sorted); with one, values not
    in it get 0. Missing values (None, NaN) always get 0.

    Args:
        values: 1-D array-like. The raw ids.
        vocabulary: 1-D array-like or None. Known values; `vocabulary[i]`
            gets code `i + 1`. Must not hold duplicates. Defaults to None.

    Returns:
        Tuple `(codes, vocabulary)`: an int64 array shaped like `values` and
        the vocabulary as a NumPy array.

    Example:

    >>> encode_ids(["b", "a", "b", None])
    (array([2, 1, 2, 0]), array(['a', 'b'], dtype=object))
    >>> encode_ids([5, 7], vocabulary=[7])[0]
    array([0, 1])
    """
    if isinstance(values, np.ndarray) and values.ndim != 1:
        raise ValueError(
            f"`values` must be 1-D. Received: values with shape {values.shape}"
        )
    if isinstance(values, pd.Series):
        series = values
    else:
        series = pd.Series(list(values), dtype=None if len(values) else np.int64)
    if series.dtype == object and any(
        isinstance(v, (list, tuple, np.ndarray)) for v in series
    ):
        raise ValueError("`values` must be 1-D. Received: a sequence of sequences")
    if vocabulary is None:
        uniques = np.asarray(series[series.notna()].unique())
        if uniques.dtype.kind in "US":
            uniques = uniques.astype(object)
        try:
            vocabulary = np.sort(uniques, kind="stable")
        except TypeError:
            vocabulary = uniques
    else:
        vocabulary = np.asarray(vocabulary)
        if vocabulary.dtype.kind in "US":
            vocabulary = vocabulary.astype(object)
        if vocabulary.ndim != 1:
            raise ValueError(
                "`vocabulary` must be 1-D. Received: vocabulary with shape "
                f"{vocabulary.shape}"
            )
        index = pd.Index(vocabulary)
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise ValueError(
                f"`vocabulary` must not hold duplicates. Received: {dup!r} twice"
            )
    index = pd.Index(vocabulary)
    codes = index.get_indexer(series.to_numpy()) + 1
    codes[series.isna().to_numpy()] = 0
    return codes.astype(np.int64), vocabulary


def _sorted_events(df, user_col, time_col, item_col):
    """`df` sorted by (user, time, item), index reset; plus per-row positions."""
    check_columns(df, [user_col, time_col, item_col])
    order = np.lexsort(
        (df[item_col].to_numpy(), df[time_col].to_numpy(), df[user_col].to_numpy())
    )
    events = df.iloc[order].reset_index(drop=True)
    users = events[user_col].to_numpy()
    n = len(events)
    new_user = np.ones(n, dtype=bool)
    if n > 1:
        new_user[1:] = users[1:] != users[:-1]
    first = np.maximum.accumulate(np.where(new_user, np.arange(n), 0))
    position = np.arange(n) - first  # 0-based position within the user
    sizes = np.bincount(np.cumsum(new_user) - 1) if n else np.zeros(0, np.int64)
    size = sizes[np.cumsum(new_user) - 1] if n else np.zeros(0, np.int64)
    return events, position, size


def leave_last_out_split(
    df, user_col="user_id", time_col="timestamp", item_col="item_id", n_last=1
):
    """Splits each user's last `n_last` events off into a test set.

    Events are ordered by `(time, item id)` within a user. Users with fewer
    than `n_last + 1` events keep all of them in train (a test event needs
    at least one training event before it).

    Args:
        df: DataFrame. One row per event.
        user_col: str. User column. Defaults to `"user_id"`.
        time_col: str. Time column. Defaults to `"timestamp"`.
        item_col: str. Item column (tie-breaker). Defaults to `"item_id"`.
        n_last: int. Events per user moved to test, >= 1. Defaults to 1.

    Returns:
        Tuple `(train, test)` of DataFrames with `df`'s columns, sorted by
        `(user, time, item)`, index reset.
    """
    n_last = check_int("n_last", n_last, minimum=1)
    events, position, size = _sorted_events(df, user_col, time_col, item_col)
    test = (position >= size - n_last) & (size >= n_last + 1)
    train_df = events[~test].reset_index(drop=True)
    test_df = events[test].reset_index(drop=True)
    return train_df, test_df


def _windows(values, ends, lengths):
    """Per row, the read-only view `values[end - length : end]`."""
    values = np.array(values)  # a private copy the views can point into
    values.flags.writeable = False
    out = np.empty(len(ends), dtype=object)
    for row, (end, length) in enumerate(zip(ends.tolist(), lengths.tolist())):
        out[row] = values[end - length : end]
    return out


def _check_history_args(df, maxlen, extra_cols, user_col, item_col, time_col):
    maxlen = check_int("maxlen", maxlen, minimum=1)
    if isinstance(extra_cols, str):
        extra_cols = (extra_cols,)
    extra_cols = tuple(extra_cols)
    check_columns(df, [user_col, item_col, time_col, *extra_cols])
    return maxlen, extra_cols


def build_history_sequences(
    df,
    maxlen=50,
    user_col="user_id",
    item_col="item_id",
    time_col="timestamp",
    extra_cols=(),
    min_history=1,
):
    """One training row per event, with the user's strictly earlier events.

    Each user's events are ordered by `(time, item id)`; the event at
    position `t` (0-based) becomes a row when `t >= min_history`, and its
    history is the events at positions `max(0, t - maxlen) .. t - 1`. Only
    strictly earlier positions are used, so the target never leaks into its
    own history. Events with equal timestamps are ordered by item id: the
    one with the smaller id counts as earlier and appears in the other's
    history.

    Args:
        df: DataFrame. One row per event.
        maxlen: int. Longest history kept (most recent events), >= 1.
            Defaults to 50.
        user_col: str. Defaults to `"user_id"`.
        item_col: str. Defaults to `"item_id"`.
        time_col: str. Defaults to `"timestamp"`.
        extra_cols: iterable of str. Columns whose past values are also
            collected (e.g. `("category",)`). Defaults to `()`.
        min_history: int. Fewest earlier events a row needs, >= 0 (0 also
            emits each user's first event, with an empty history).
            Defaults to 1.

    Returns:
        A DataFrame with `df`'s columns for the target event, plus
        `hist_<item_col>` and `hist_<col>` for each extra column (per row a
        read-only 1-D array, oldest first, most recent last, length
        `hist_len` <= maxlen) and `hist_len` (int64). Sorted by
        `(user, time, item)`. Feed the arrays to `pad_sequences`.

    Example:

    >>> df = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [7, 8, 9],
    ...                    "timestamp": [10, 20, 30]})
    >>> build_history_sequences(df)["hist_item_id"].tolist()
    [array([7]), array([7, 8])]
    """
    maxlen, extra_cols = _check_history_args(
        df, maxlen, extra_cols, user_col, item_col, time_col
    )
    min_history = check_int("min_history", min_history, minimum=0)
    hist_names = [f"hist_{c}" for c in (item_col, *extra_cols)] + ["hist_len"]
    clash = [c for c in hist_names if c in df.columns]
    if clash:
        raise ValueError(
            f"`df` already has the output column(s) {clash}. Rename them first."
        )
    events, position, _ = _sorted_events(df, user_col, time_col, item_col)
    rows = np.flatnonzero(position >= min_history)
    lengths = np.minimum(position[rows], maxlen)
    out = events.iloc[rows].reset_index(drop=True)
    for column in (item_col, *extra_cols):
        out[f"hist_{column}"] = _windows(events[column].to_numpy(), rows, lengths)
    out["hist_len"] = lengths.astype(np.int64)
    return out


def user_histories(
    df,
    maxlen=50,
    user_col="user_id",
    item_col="item_id",
    time_col="timestamp",
    extra_cols=(),
):
    """Each user's last `maxlen` events, e.g. to embed users for evaluation.

    Args:
        df: DataFrame. One row per event (usually the training split).
        maxlen: int. Longest history kept, >= 1. Defaults to 50.
        user_col: str. Defaults to `"user_id"`.
        item_col: str. Defaults to `"item_id"`.
        time_col: str. Defaults to `"timestamp"`.
        extra_cols: iterable of str. Further columns to collect. Defaults
            to `()`.

    Returns:
        A DataFrame with one row per user, sorted by user: `user_col`,
        `hist_<item_col>` and `hist_<col>` per extra column (read-only 1-D
        arrays ordered by `(time, item id)`, most recent last) and
        `hist_len` (int64).
    """
    maxlen, extra_cols = _check_history_args(
        df, maxlen, extra_cols, user_col, item_col, time_col
    )
    events, position, size = _sorted_events(df, user_col, time_col, item_col)
    last = np.flatnonzero(position == size - 1)
    lengths = np.minimum(size[last], maxlen)
    out = pd.DataFrame({user_col: events[user_col].to_numpy()[last]})
    for column in (item_col, *extra_cols):
        out[f"hist_{column}"] = _windows(events[column].to_numpy(), last + 1, lengths)
    out["hist_len"] = lengths.astype(np.int64)
    return out


def pad_sequences(
    sequences, maxlen=None, padding="post", truncating="pre", value=0, dtype="int32"
):
    """Stacks variable-length sequences into a 2-D array.

    With the defaults (`truncating="pre"`, `padding="post"`) a history keeps
    its most recent `maxlen` items, left-aligned: the oldest kept item is in
    column 0, the most recent one in column `len - 1`, and the rest holds
    `value` (0 = padding, so the mask is `ids != 0`). With `padding="pre"`
    the most recent item is always in the last column.

    Args:
        sequences: iterable of 1-D array-likes (lists, arrays, a pandas
            Series of arrays) or a 2-D array.
        maxlen: int or None. Number of columns, >= 0. Defaults to None (the
            longest sequence).
        padding: str. `"post"` pads after the items, `"pre"` before.
            Defaults to `"post"`.
        truncating: str. `"pre"` drops the oldest items of a too-long
            sequence, `"post"` the most recent ones. Defaults to `"pre"`.
        value: number. Padding value. Defaults to 0.
        dtype: str or dtype. Output dtype. Defaults to `"int32"`.

    Returns:
        Array of shape `(len(sequences), maxlen)`.

    Example:

    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2)
    array([[2, 3],
           [4, 0]], dtype=int32)
    """
    check_choice("padding", padding, {"pre", "post"})
    check_choice("truncating", truncating, {"pre", "post"})
    seqs = [np.asarray(s).reshape(-1) for s in sequences]
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    if maxlen is None:
        maxlen = int(lengths.max()) if len(seqs) else 0
    maxlen = check_int("maxlen", maxlen, minimum=0)
    dtype = np.dtype(dtype)
    out = np.full((len(seqs), maxlen), value, dtype=dtype)
    kept = np.minimum(lengths, maxlen)
    if kept.sum() == 0:
        return out
    flat = np.concatenate(seqs)
    if dtype.kind in "iu" and flat.size:
        if flat.dtype.kind == "f" and not np.all(np.isfinite(flat)):
            raise ValueError(
                f"`sequences` hold non-finite values, which {dtype} cannot store."
            )
        info = np.iinfo(dtype)
        if flat.min() < info.min or flat.max() > info.max:
            raise ValueError(
                f"`sequences` hold values outside the range of dtype={dtype}. "
                f"Received: min={flat.min()}, max={flat.max()}"
            )
    starts = np.cumsum(lengths) - lengths
    if truncating == "pre":
        starts = starts + lengths - kept
    row = np.repeat(np.arange(len(seqs)), kept)
    within = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept)
    col = within if padding == "post" else within + np.repeat(maxlen - kept, kept)
    out[row, col] = flat[np.repeat(starts, kept) + within]
    return out


def log_square_bucket(x):
    """Buckets Criteo integer features: `floor(log(x) ** 2)` for x > 2.

    Values `<= 2` keep their own value (floored: -3..2 in Criteo), as in the
    Criteo challenge's winning solution; NaN (a missing cell) goes to the
    dedicated bucket `LOG_SQUARE_MISSING` (-2**31), which no value reaches.
    Map the buckets to embedding ids with `encode_ids`.

    Args:
        x: array-like of numbers (NaN for missing).

    Returns:
        An int64 array shaped like `x`.

    Example:

    >>> log_square_bucket([0, 2, 3, 100, float("nan")])
    array([          0,           2,           1,          21, -2147483648])

    References:
        - Yu-Chin Juan et al. 3 Idiots' approach for the Criteo Display
          Advertising Challenge, 2014.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, LOG_SQUARE_MISSING, dtype=np.int64)
    big = x > 2
    out[big] = np.floor(np.log(x[big]) ** 2).astype(np.int64)
    small = ~big & ~np.isnan(x)
    out[small] = np.floor(x[small]).astype(np.int64)
    return out


def scale_dense(df, columns, method="minmax", stats=None, fill_value=None):
    """Scales dense columns with statistics fitted on train and reused on test.

    `"minmax"` maps `(x - min) / (max - min)` (a test value may fall outside
    [0, 1]); `"standard"` maps `(x - mean) / std`. Statistics ignore NaN; a
    constant column divides by 1, an all-missing column uses min 0 / mean 0
    and scale 1. NaN stays NaN unless `fill_value` is given.

    Args:
        df: DataFrame.
        columns: list of str. Columns to scale.
        method: str. `"minmax"` or `"standard"`. Defaults to `"minmax"`.
        stats: dict or None. Statistics returned by an earlier call (fit on
            train); None computes them from `df`. Defaults to None.
        fill_value: float or None. Replaces NaN after scaling. Defaults to
            None.

    Returns:
        Tuple `(scaled, stats)`: a copy of `df` with `columns` as float64
        and `stats` as `{column: {"min": .., "max": ..}}` or
        `{column: {"mean": .., "std": ..}}`.
    """
    check_choice("method", method, {"minmax", "standard"})
    columns = [columns] if isinstance(columns, str) else list(columns)
    check_columns(df, columns)
    keys = ("min", "max") if method == "minmax" else ("mean", "std")
    if stats is None:
        stats = {}
        for column in columns:
            values = df[column].to_numpy(dtype=np.float64)
            finite = values[~np.isnan(values)]
            if method == "minmax":
                low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
                stats[column] = {"min": float(low), "max": float(high)}
            else:
                mean, std = (finite.mean(), finite.std()) if finite.size else (0, 1)
                stats[column] = {"mean": float(mean), "std": float(std)}
    else:
        for column in columns:
            if column not in stats or any(k not in stats[column] for k in keys):
                raise ValueError(
                    f"`stats` has no {method} statistics {keys} for column "
                    f"{column!r}. Received: stats={stats!r}"
                )
    out = df.copy()
    for column in columns:
        values = df[column].to_numpy(dtype=np.float64)
        if method == "minmax":
            offset = stats[column]["min"]
            scale = stats[column]["max"] - stats[column]["min"]
        else:
            offset, scale = stats[column]["mean"], stats[column]["std"]
        scaled = (values - offset) / (scale if scale > 0 else 1.0)
        if fill_value is not None:
            scaled = np.where(np.isnan(scaled), fill_value, scaled)
        out[column] = scaled
    return out, stats


def example_age(timestamps, reference_time=None, unit_seconds=86_400, log=True):
    """The "example age" feature of YouTube DNN: how old each training event is.

    `age = max(reference_time - timestamp, 0) / unit_seconds`, then
    `log1p(age)` when `log` is True. Training on it lets the model learn the
    time dependence of popularity; at serving time set the feature to 0 (the
    model then predicts for "now", the end of the training window).

    Args:
        timestamps: array-like of numbers. Event times, in seconds.
        reference_time: number or None. The end of the training window, in
            seconds. Defaults to None (the largest timestamp).
        unit_seconds: number. Seconds per unit of age, > 0. Defaults to
            86400 (days).
        log: bool. Apply `log1p`. Defaults to True.

    Returns:
        A float32 array shaped like `timestamps`.

    References:
        - Paul Covington, Jay Adams, Emre Sargin. Deep Neural Networks for
          YouTube Recommendations. RecSys 2016.
    """
    t = np.asarray(timestamps, dtype=np.float64)
    unit_seconds = check_float("unit_seconds", unit_seconds, low=0, low_inclusive=False)
    if reference_time is None:
        if t.size == 0:
            return np.zeros(t.shape, dtype=np.float32)
        reference_time = float(np.nanmax(t))
    reference_time = check_float("reference_time", reference_time)
    age = np.maximum(reference_time - t, 0.0) / unit_seconds
    if log:
        age = np.log1p(age)
    return age.astype(np.float32)


def train_val_test_split_by_time(df, time_col="timestamp", fractions=(0.8, 0.2)):
    """Splits rows globally by time: the first fraction trains, the last tests.

    The CTR protocol: all events are sorted by time (ties keep their order in
    `df`) and cut by row counts, so the parts are consecutive in time; rows
    with equal timestamps may straddle a cut.

    Args:
        df: DataFrame.
        time_col: str. Time column. Defaults to `"timestamp"`.
        fractions: sequence of floats > 0 summing to 1, one per part, e.g.
            `(0.8, 0.2)` for train/test or `(0.8, 0.1, 0.1)` for
            train/validation/test. Defaults to `(0.8, 0.2)`.

    Returns:
        Tuple of DataFrames, one per fraction, each sorted by time with the
        index reset.
    """
    check_columns(df, [time_col])
    fractions = tuple(fractions)
    if len(fractions) < 1 or any(
        not isinstance(f, numbers.Real) or not f > 0 for f in fractions
    ):
        raise ValueError(
            f"`fractions` must be positive numbers. Received: fractions={fractions}"
        )
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(
            f"`fractions` must sum to 1. Received: fractions={fractions} "
            f"(sum {sum(fractions)})"
        )
    order = np.argsort(df[time_col].to_numpy(), kind="stable")
    events = df.iloc[order].reset_index(drop=True)
    bounds = np.round(np.cumsum((0.0,) + fractions) * len(events)).astype(int)
    bounds[-1] = len(events)
    return tuple(
        events.iloc[lo:hi].reset_index(drop=True)
        for lo, hi in zip(bounds[:-1], bounds[1:])
    )


__all__ = [
    "LOG_SQUARE_MISSING",
    "build_history_sequences",
    "encode_ids",
    "example_age",
    "leave_last_out_split",
    "log_square_bucket",
    "pad_sequences",
    "scale_dense",
    "train_val_test_split_by_time",
    "user_histories",
]
