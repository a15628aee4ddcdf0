"""From a pandas DataFrame (or dict of arrays) to a model's input dict, checked."""

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
    list, are kept when truncating) or as a 2-D array already padded. A
    missing `length_name` column is filled from the lengths of the lists.

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
        raise ValueError(
            f"Feature(s) {missing} missing from the data. "
            f"Available columns: {sorted(map(str, available))}"
        )
    out, n_rows = {}, None
    for column in columns:
        if isinstance(column, SparseFeat):
            values = _sparse(column, data[column.name])
        elif isinstance(column, DenseFeat):
            values = _dense(column, data[column.name])
        else:
            values, lengths = _sequence(column, data[column.name], on_long_sequence)
            if column.length_name:
                if column.length_name in available:
                    given = _as_array(data[column.length_name])
                    given = _integers(column.length_name, given).astype("int32")
                    if given.min(initial=0) < 0 or given.max(initial=0) > column.maxlen:
                        bad = given[(given < 0) | (given > column.maxlen)][0]
                        raise ValueError(
                            f"Length feature '{column.length_name}' of '{column.name}' "
                            f"must be in [0, {column.maxlen}]. Received: {bad}"
                        )
                    out[column.length_name] = given.reshape(-1)
                else:
                    out[column.length_name] = lengths
            if column.weight_name:
                if column.weight_name not in available:
                    raise ValueError(
                        f"Weight feature '{column.weight_name}' of '{column.name}' "
                        "missing from the data."
                    )
                weights, _ = _sequence(
                    VarLenSparseFeat(
                        SparseFeat(column.weight_name, 2), column.maxlen
                    ),
                    data[column.weight_name],
                    on_long_sequence,
                    float_values=True,
                )
                out[column.weight_name] = weights
        out[column.name] = values
        if n_rows is None:
            n_rows = len(values)
        elif len(values) != n_rows:
            raise ValueError(
                f"Feature '{column.name}' has {len(values)} rows, others have {n_rows}."
            )
    if n_rows == 0:
        raise ValueError("`data` has no rows.")
    return out


def _as_array(values):
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    try:
        return np.asarray(values)
    except ValueError:
        # Ragged lists (sequences of different lengths): one object per row.
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
        return array


def _integers(name, array):
    if array.dtype.kind in "iu":
        return array
    if array.dtype.kind == "f" and array.size and np.all(np.isfinite(array)) and (
        np.all(array == np.round(array))
    ):
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


def _raw_values(column, array):
    """Raw values for an in-model lookup: strings or integers, as the column says."""
    if column.dtype == "string":
        if array.dtype.kind in "iuf":
            raise TypeError(
                f"Feature '{column.name}' has a string vocabulary but received "
                f"numbers (dtype {array.dtype}), e.g. {array.reshape(-1)[:3].tolist()}"
            )
        return np.asarray(
            ["" if v is None or v != v else str(v) for v in array.reshape(-1)],
            dtype=object,
        ).reshape(array.shape)
    return _integers(column.name, array).astype(column.dtype)


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


def _sequence(column, values, on_long_sequence, float_values=False):
    array = _as_array(values)
    maxlen = column.maxlen
    if array.ndim == 2:
        rows = array
        lengths = None
        if rows.shape[1] > maxlen:
            if on_long_sequence == "error":
                raise ValueError(
                    f"Sequence feature '{column.name}' has length {rows.shape[1]} > "
                    f"maxlen={maxlen}."
                )
            warnings.warn(
                f"Sequence feature '{column.name}': truncating padded width "
                f"{rows.shape[1]} to maxlen={maxlen} (keeping the last positions).",
                stacklevel=3,
            )
            rows = rows[:, -maxlen:]
    elif array.ndim == 1:
        sequences = [
            np.asarray([] if s is None else s).reshape(-1) for s in array
        ]
        lengths = np.asarray([len(s) for s in sequences], dtype="int32")
        too_long = lengths > maxlen
        if too_long.any():
            if on_long_sequence == "error":
                row = int(np.argmax(too_long))
                raise ValueError(
                    f"Sequence feature '{column.name}' has length {lengths[row]} > "
                    f"maxlen={maxlen} at row {row}."
                )
            warnings.warn(
                f"Sequence feature '{column.name}': {int(too_long.sum())} sequences "
                f"longer than maxlen={maxlen} truncated to their last {maxlen} items.",
                stacklevel=3,
            )
        lengths = np.minimum(lengths, maxlen)
        string = not float_values and column.dtype == "string"
        fill = "" if string else 0
        dtype = object if string else ("float32" if float_values else "float64")
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
        rows = rows.astype("float32")
        if not np.all(np.isfinite(rows)):
            raise ValueError(f"Weight feature '{column.name}' has NaN or inf values.")
        return rows, lengths
    if column.needs_lookup:
        rows = _raw_values(column, rows)
    else:
        rows = _integers(column.name, rows)
        _check_id_range(column, rows)
        rows = rows.astype(column.dtype)
    if lengths is None:
        lengths = (rows != (rows.dtype.type(0) if rows.dtype != object else "")).sum(
            axis=1
        ).astype("int32")
    return rows, lengths
