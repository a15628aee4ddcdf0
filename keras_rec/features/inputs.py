"""From a pandas DataFrame (or dict of arrays) to a model's input dict, checked."""

import difflib
import warnings

import numpy as np

from keras_rec.features.columns import DenseFeat
from keras_rec.features.columns import SparseFeat
from keras_rec.features.columns import VarLenSparseFeat
from keras_rec.features.columns import check_feature_columns


def to_model_inputs(data, feature_columns, on_long_sequence="truncate"):
    """Builds the input dict of a model from a DataFrame or dict of arrays.

    Every feature is checked before TensorFlow sees it, so bad data fails with
    an error that names the feature and shows the offending value.

    Sequences may be given as a column of lists / arrays (padded here with 0,
    or `""` for string features; the most recent items, at the end of each
    list, are kept when truncating) or as a 2-D array padded at the end (a
    wider one keeps the last `maxlen` valid items of each row). A missing
    `length_name` column is filled from the lengths of the lists. Empty (or
    all-padding) sequences are kept and pool to zeros (a first impression, a
    cold-start user); only a sequence feature empty in every row warns.

    String sequences come back as 2-D object arrays. Keras's `fit` / `predict`
    convert only 1-D object arrays of strings, so pass those as tensors:
    `keras.ops.convert_to_tensor(x, dtype="string")`.

    Args:
        data: `pandas.DataFrame` or dict of array-likes.
        feature_columns: list of feature columns.
        on_long_sequence: str. `"truncate"` (keep the last `maxlen` items and
            warn) or `"error"`. Defaults to `"truncate"`.

    Returns:
        Dict name -> NumPy array, with the dtypes the model's inputs expect.
    """
    columns = check_feature_columns(feature_columns)
    if on_long_sequence not in ("truncate", "error"):
        raise ValueError(
            "`on_long_sequence` must be 'truncate' or 'error'. "
            f"Received: on_long_sequence={on_long_sequence!r}"
        )
    if not hasattr(data, "keys") or not hasattr(data, "__getitem__"):
        raise TypeError(
            "`data` must be a pandas DataFrame or a dict of arrays. "
            f"Received: {type(data).__name__}"
        )
    available = list(data.keys())
    missing = [c.name for c in columns if c.name not in available]
    if missing:
        names = sorted(map(str, available))
        hints = [
            f"'{name}' (did you mean '{close[0]}'?)"
            for name in missing
            for close in [difflib.get_close_matches(name, names, n=1)]
            if close
        ]
        hint = f"; close matches: {', '.join(hints)}" if hints else ""
        raise ValueError(
            f"Feature(s) {missing} missing from the data{hint}. "
            f"Available columns: {names}"
        )
    for column in columns:
        if _num_rows(data[column.name]) == 0:
            raise ValueError(
                f"`data` has no rows. Received: feature '{column.name}' with 0 rows"
            )
    out = {}
    for column in columns:
        if isinstance(column, SparseFeat):
            out[column.name] = _sparse(column, data[column.name])
        elif isinstance(column, DenseFeat):
            out[column.name] = _dense(column, data[column.name])
        else:
            values, lengths, ends = _sequence(
                column, data[column.name], on_long_sequence
            )
            out[column.name] = values
            _warn_if_no_items(column, values)
            if column.length_name:
                if column.length_name in available:
                    given = _as_array(data[column.length_name]).reshape(-1)
                    given = _integers(column.length_name, given)
                    if given.min(initial=0) < 0 or given.max(initial=0) > column.maxlen:
                        bad = given[(given < 0) | (given > column.maxlen)][0]
                        raise ValueError(
                            f"Length feature '{column.length_name}' of '{column.name}' "
                            f"must be in [0, {column.maxlen}]. Received: {bad}"
                        )
                    out[column.length_name] = given.astype("int32")
                else:
                    out[column.length_name] = lengths
            if column.weight_name:
                if column.weight_name not in available:
                    raise ValueError(
                        f"Weight feature '{column.weight_name}' of '{column.name}' "
                        "missing from the data."
                    )
                # A padded array is cut at its ids' valid ends, so weights
                # stay aligned with the items they weight.
                weights, _, _ = _sequence(
                    VarLenSparseFeat(SparseFeat(column.weight_name, 2), column.maxlen),
                    data[column.weight_name],
                    on_long_sequence,
                    float_values=True,
                    ends=ends,
                )
                out[column.weight_name] = weights
    n_rows = None
    for name, values in out.items():
        if n_rows is None:
            n_rows = len(values)
        elif len(values) != n_rows:
            raise ValueError(
                f"Feature '{name}' has {len(values)} rows, others have {n_rows}."
            )
    if n_rows == 0:
        raise ValueError(f"`data` has no rows. Received: 0 rows of {sorted(out)}")
    return out


def _warn_if_no_items(column, rows):
    """Warns when no row of a sequence has a single item.

    Some empty (or all-padding) histories are normal: a user's first
    impression, a cold-start user. They are kept and pool to a zero vector.
    When every row is empty, the column is almost surely wrong (ids that all
    mapped to padding, the wrong column), so that case warns.
    """
    padding = "" if rows.dtype == object else 0
    if len(rows) and not np.any(rows != padding):
        warnings.warn(
            f"Sequence feature '{column.name}' has no items in any of its "
            f"{len(rows)} rows (every row is empty or padding {padding!r}); it "
            "pools to zeros everywhere. Received: first row "
            f"{rows[0].tolist()!r}",
            stacklevel=3,
        )


def _num_rows(values):
    try:
        return len(values)
    except TypeError:  # A scalar or 0-d array: rejected later with its name.
        return None


def _as_array(values):
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    try:
        array = np.asarray(values)
    except ValueError:
        # Ragged lists (sequences of different lengths): one object per row.
        array = np.empty(len(values), dtype=object)
        for i, value in enumerate(values):
            array[i] = value
        return array
    if array.dtype.kind in "US" and not isinstance(values, np.ndarray):
        # NumPy turns ["a", nan, 3] into the strings "a", "nan", "3"; keep the
        # Python objects so that missing values stay missing.
        objects = np.asarray(values, dtype=object)
        if objects.shape == array.shape and not all(
            isinstance(v, (str, bytes)) for v in objects.reshape(-1)
        ):
            return objects
    return array


def _integers(name, array):
    if array.dtype.kind in "iu":
        return array
    if (
        array.dtype.kind == "f"
        and array.size
        and np.all(np.isfinite(array))
        and (np.all(array == np.round(array)))
    ):
        too_large = np.abs(array) >= 2.0**63
        if too_large.any():
            raise ValueError(
                f"Feature '{name}' has id {array[too_large][0]} beyond the int64 range."
            )
        return array.astype("int64")
    if array.dtype.kind == "b":
        return array.astype("int64")
    sample = array.reshape(-1)[:3].tolist()
    raise TypeError(
        f"Feature '{name}' must hold integer ids (or give the column a `vocabulary` "
        f"or `use_hash=True` for raw values). Received dtype {array.dtype} "
        f"with values like {sample}"
    )


def _check_id_range(column, ids):
    if ids.size == 0:
        return
    low, high = ids.min(), ids.max()
    if low < 0:
        raise ValueError(
            f"Feature '{column.name}' has a negative id: {low}. Ids must be in "
            f"[0, {column.vocabulary_size}); 0 is padding / out-of-vocabulary."
        )
    if high >= column.vocabulary_size:
        raise ValueError(
            f"Feature '{column.name}' has id {high} >= vocabulary_size="
            f"{column.vocabulary_size}. Encode ids to [1, vocabulary_size) or use "
            "`use_hash=True`."
        )


def _cast_ids(name, ids, dtype):
    """Casts integer ids to the input's dtype, refusing values it cannot hold."""
    info = np.iinfo(dtype)
    outside = (ids < info.min) | (ids > info.max)
    if outside.any():
        raise ValueError(
            f"Feature '{name}' has value {ids[outside][0]} outside the range of its "
            f"input dtype {dtype}. Received dtype={dtype!r}; use 'int64' for such ids."
        )
    return ids.astype(dtype)


def _is_missing(value):
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN
    except (TypeError, ValueError):  # pandas.NA has no truth value.
        return True


def _as_text(name, value):
    if _is_missing(value):
        return ""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"Feature '{name}' has bytes that are not UTF-8: {value[:20]!r}"
            ) from error
    return str(value)


def _raw_values(column, array):
    """Raw values for an in-model lookup: strings or integers, as the column says."""
    if column.dtype == "string":
        if array.dtype.kind in "iuf":
            raise TypeError(
                f"Feature '{column.name}' has a string vocabulary but received "
                f"numbers (dtype {array.dtype}), e.g. {array.reshape(-1)[:3].tolist()}"
            )
        return np.asarray(
            [_as_text(column.name, v) for v in array.reshape(-1)],
            dtype=object,
        ).reshape(array.shape)
    return _cast_ids(column.name, _integers(column.name, array), column.dtype)


def _sparse(column, values):
    array = _as_array(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"Feature '{column.name}' is a SparseFeat and needs one value per row. "
            f"Received an array of shape {array.shape}"
        )
    if column.needs_lookup:
        return _raw_values(column, array)
    ids = _integers(column.name, array)
    _check_id_range(column, ids)
    return ids.astype(column.dtype)


def _dense(column, values):
    array = _as_array(values)
    if array.dtype == object:
        try:
            array = np.stack([np.asarray(v, dtype="float64") for v in array])
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Dense feature '{column.name}' must hold numbers. "
                f"Received values like {array[:3].tolist()}"
            ) from error
    if array.dtype.kind not in "iufb":
        raise TypeError(
            f"Dense feature '{column.name}' must hold numbers. "
            f"Received dtype {array.dtype}, e.g. {array.reshape(-1)[:3].tolist()}"
        )
    array = array.astype(column.dtype)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != column.dimension:
        raise ValueError(
            f"Dense feature '{column.name}' must have dimension {column.dimension}. "
            f"Received shape {array.shape}"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(
            f"Dense feature '{column.name}' has a non-finite value "
            f"{array[row].tolist()} at row {row}. Fill or drop NaN / inf first."
        )
    return array


def _sequence(column, values, on_long_sequence, float_values=False, ends=None):
    """Pads / truncates a sequence feature.

    Returns:
        `(rows, lengths, ends)`: rows `(n, maxlen)`, the valid length of each
        row after truncation, and before it (so that weights given as a padded
        array are cut at their ids' ends).
    """
    array = _as_array(values)
    maxlen = column.maxlen
    string = not float_values and column.dtype == "string"
    if string and array.ndim == 2 and array.dtype.kind in "iufb":
        raise TypeError(
            f"Feature '{column.name}' has a string vocabulary but received "
            f"numbers (dtype {array.dtype}), e.g. {array.reshape(-1)[:3].tolist()}"
        )
    if array.ndim == 2 and array.shape[1] > maxlen:
        # Rows are padded at the end: cut each at its last non-padding value
        # and truncate it like a list, so the most recent items are kept
        # rather than the trailing padding.
        if ends is None or len(ends) != len(array):
            ends = _valid_ends(array, "" if string else 0)
        rows = np.empty(len(array), dtype=object)
        for i, (row, end) in enumerate(zip(array, ends)):
            rows[i] = row[:end]
        array = rows
    if array.ndim == 2:
        # Equal-length lists arrive here too: pad them to maxlen.
        fill = "" if string else 0
        rows = np.pad(
            array, ((0, 0), (0, maxlen - array.shape[1])), constant_values=fill
        )
        lengths = None
    elif array.ndim == 1:
        sequences = [_as_array([] if s is None else s).reshape(-1) for s in array]
        ends = np.asarray([len(s) for s in sequences], dtype="int64")
        too_long = ends > maxlen
        if too_long.any():
            if on_long_sequence == "error":
                row = int(np.argmax(too_long))
                raise ValueError(
                    f"Sequence feature '{column.name}' has length {ends[row]} > "
                    f"maxlen={maxlen} at row {row}."
                )
            warnings.warn(
                f"Sequence feature '{column.name}': {int(too_long.sum())} sequences "
                f"longer than maxlen={maxlen} truncated to their last {maxlen} items.",
                stacklevel=3,
            )
        lengths = np.minimum(ends, maxlen)
        fill = "" if string else 0
        if string:
            dtype = object
        elif float_values:
            dtype = "float32"
        elif all(s.dtype.kind in "iub" for s in sequences if len(s)):
            dtype = "int64"  # Exact for 64-bit raw ids, unlike float64.
        else:
            dtype = "float64"  # Checked for integral values below.
        rows = np.full((len(sequences), maxlen), fill, dtype=dtype)
        for i, s in enumerate(sequences):
            if len(s):
                s = s[-maxlen:]
                if not string and s.dtype.kind not in "iufb":
                    raise TypeError(
                        f"Sequence feature '{column.name}' must hold integer ids. "
                        f"Received {s[:3].tolist()} at row {i}"
                    )
                rows[i, : len(s)] = s
    else:
        raise ValueError(
            f"Sequence feature '{column.name}' must be a column of lists or a 2-D "
            f"array. Received an array of shape {array.shape}"
        )
    if float_values:
        if rows.dtype.kind not in "iufb":
            raise TypeError(
                f"Weight feature '{column.name}' must hold numbers. "
                f"Received dtype {rows.dtype}"
            )
        rows = rows.astype("float32")
        if not np.all(np.isfinite(rows)):
            raise ValueError(f"Weight feature '{column.name}' has NaN or inf values.")
        return rows, lengths, ends
    if column.needs_lookup:
        rows = _raw_values(column, rows)
    else:
        rows = _integers(column.name, rows)
        _check_id_range(column, rows)
        rows = rows.astype(column.dtype)
    if lengths is None:
        # Padded at the end: a row is valid up to its last non-padding value.
        lengths = ends = _valid_ends(rows, "" if rows.dtype == object else 0)
    return rows, lengths.astype("int32"), ends


def _valid_ends(rows, padding):
    """Index after the last non-padding value of each row, `(n,)`."""
    valid = np.asarray(rows != padding, dtype=bool).reshape(len(rows), -1)
    last = valid.shape[1] - np.argmax(valid[:, ::-1], axis=1)
    return np.where(valid.any(axis=1), last, 0).astype("int64")
