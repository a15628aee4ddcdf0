"""Request builders for TF Serving: REST JSON bodies and gRPC `PredictRequest`s.

Both take the features as a pandas DataFrame or a dict of arrays, one entry
per signature input (the feature names), already padded and typed as the
model expects (`keras_rec.to_model_inputs` produces exactly that).

REST (`POST /v1/models/<name>:predict`) accepts two layouts:

- row form, `{"signature_name": ..., "instances": [{"user_id": 3, ...}, ...]}`,
  one object per example;
- columnar form, `{"signature_name": ..., "inputs": {"user_id": [3, 7], ...}}`,
  one list per input.

The server converts JSON numbers to the signature's dtypes. gRPC requests
carry typed tensors instead, so their dtypes must match the signature
(`int32` ids, `float32` dense values, strings for raw ids).
"""

import base64

import numpy as np

SERVING_SIGNATURE = "serving_default"
_SERVING_EXTRA = "keras-rec[serving]"


def feature_arrays(features):
    """Converts a DataFrame or dict of array-likes to a dict of NumPy arrays.

    A column whose cells are lists or arrays (padded sequences, dense
    vectors) is stacked into a 2-D array; cells of different lengths are an
    error, since a serving signature takes padded, rectangular inputs.
    String cells stay strings (a `str` array).

    Args:
        features: `pandas.DataFrame` or dict name -> array-like, every entry
            with the same number of rows.

    Returns:
        Dict name -> `np.ndarray` with at least one axis.
    """
    if hasattr(features, "columns") and hasattr(features, "to_numpy"):
        features = {str(name): features[name] for name in features.columns}
    if not hasattr(features, "keys") or not hasattr(features, "__getitem__"):
        raise TypeError(
            "`features` must be a pandas DataFrame or a dict of arrays. "
            f"Received: features of type {type(features).__name__}"
        )
    if not features:
        raise ValueError("`features` must hold at least one feature. Received: {}")
    arrays, rows = {}, None
    for name in features:
        array = _as_array(name, features[name])
        if array.ndim == 0:
            raise ValueError(
                f"Feature '{name}' must have a batch axis (one value per example). "
                f"Received a scalar: {array.item()!r}"
            )
        if rows is None:
            rows = len(array)
        elif len(array) != rows:
            raise ValueError(
                f"Feature '{name}' has {len(array)} rows; the features before it "
                f"have {rows}. Every feature needs one entry per example."
            )
        arrays[name] = array
    if rows == 0:
        raise ValueError("`features` has no rows.")
    return arrays


def rest_request(features, signature_name=SERVING_SIGNATURE, columnar=False):
    """Builds the JSON body of a TF Serving REST `:predict` request.

    Args:
        features: `pandas.DataFrame` or dict name -> array-like (see
            `feature_arrays`).
        signature_name: str. Defaults to `"serving_default"`.
        columnar: bool. `False` for the row form (`"instances"`: one object
            per example), `True` for the columnar form (`"inputs"`: one list
            per feature). Defaults to False.

    Returns:
        A JSON-serialisable dict: NumPy values become Python lists and
        numbers, strings stay strings, bytes that are not UTF-8 become
        `{"b64": ...}` (TF Serving's binary encoding).

    Example:

    >>> rest_request({"user_id": np.array([3, 7]), "age": np.array([[0.2], [0.5]])})
    {'signature_name': 'serving_default',
     'instances': [{'user_id': 3, 'age': [0.2]}, {'user_id': 7, 'age': [0.5]}]}
    """
    if not isinstance(signature_name, str) or not signature_name:
        raise ValueError(
            "`signature_name` must be a non-empty string. "
            f"Received: signature_name={signature_name!r}"
        )
    columns = {
        name: _json_values(array) for name, array in feature_arrays(features).items()
    }
    if columnar:
        return {"signature_name": signature_name, "inputs": columns}
    rows = len(next(iter(columns.values())))
    instances = [
        {name: values[i] for name, values in columns.items()} for i in range(rows)
    ]
    return {"signature_name": signature_name, "instances": instances}


def grpc_predict_request(features, model_name, signature_name=SERVING_SIGNATURE):
    """Builds a TF Serving gRPC `PredictRequest`.

    Needs the optional package `tensorflow-serving-api`
    (`pip install keras-rec[serving]`), imported only when called. Each
    feature becomes a `TensorProto` (`tf.make_tensor_proto`) with the array's
    own dtype, so pass arrays typed as the signature expects (e.g. the output
    of `keras_rec.to_model_inputs`): the server rejects an int64 tensor for
    an int32 input.

    Args:
        features: `pandas.DataFrame` or dict name -> array-like.
        model_name: str. The model's name in the server's model config.
        signature_name: str. Defaults to `"serving_default"`.

    Returns:
        `tensorflow_serving.apis.predict_pb2.PredictRequest`.
    """
    try:
        from tensorflow_serving.apis import predict_pb2
    except ImportError as error:
        raise ImportError(
            "grpc_predict_request needs the optional package "
            "`tensorflow-serving-api`. Install it with "
            f"`pip install {_SERVING_EXTRA}` (or `pip install "
            "tensorflow-serving-api`)."
        ) from error
    import tensorflow as tf

    if not isinstance(model_name, str) or not model_name:
        raise ValueError(
            f"`model_name` must be a non-empty string. Received: model_name={model_name!r}"
        )
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, array in feature_arrays(features).items():
        if array.dtype == object:
            array = array.astype(str)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
    return request


def cast_feature(name, array, dtype, trailing_shape):
    """Checks one batched input against a signature input and casts it.

    Args:
        name: str. The input's name, for error messages.
        array: `np.ndarray` `(batch, ...)`.
        dtype: NumPy dtype, or `"string"` for raw-id inputs.
        trailing_shape: list of int or None: the input's shape after the
            batch axis (None for an unknown size).

    A `(batch,)` array is accepted for a `(batch, 1)` input.

    Returns:
        `array` with `dtype` (strings: a `str` or bytes array).
    """
    if array.ndim == 1 and list(trailing_shape) == [1]:
        array = array[:, None]  # (batch,) for a one-wide dense input
    shape = list(array.shape[1:])
    if len(shape) != len(trailing_shape) or any(
        want is not None and got != want for got, want in zip(shape, trailing_shape)
    ):
        raise ValueError(
            f"Input '{name}' must have shape {tuple([None, *trailing_shape])}. "
            f"Received shape {array.shape}"
        )
    sample = array.reshape(-1)[:3].tolist()
    if isinstance(dtype, str) and dtype == "string":
        if array.dtype.kind in "iufb":
            raise TypeError(
                f"Input '{name}' takes raw string ids. Received numbers of dtype "
                f"{array.dtype}, e.g. {sample}"
            )
        return array
    dtype = np.dtype(dtype)
    if array.dtype.kind not in "iufb":
        raise TypeError(
            f"Input '{name}' takes {dtype.name} values. Received dtype "
            f"{array.dtype}, e.g. {sample}"
        )
    if dtype.kind in "iu":
        if array.dtype.kind == "f" and not np.all(array == np.round(array)):
            raise TypeError(
                f"Input '{name}' takes integer ids. Received non-integral values, "
                f"e.g. {sample}"
            )
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise ValueError(
                f"Input '{name}' takes {dtype.name} values. Received values in "
                f"[{array.min()}, {array.max()}], outside its range."
            )
    return array.astype(dtype)


# ----------------------------------------------------------------------
# Helpers.


def _as_array(name, values):
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    try:
        array = np.asarray(values)
    except ValueError:
        # Ragged nested lists: keep one object per row, reported below.
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
    if array.dtype != object or array.ndim != 1 or not len(array):
        return array
    cells = array.tolist()
    if all(isinstance(c, (str, bytes)) or c is None for c in cells):
        return _strings(name, cells)
    if all(np.ndim(c) == 0 for c in cells):
        try:
            return np.asarray(cells)
        except ValueError:
            return array
    # A column of sequences / vectors: must be rectangular.
    lengths = {len(np.asarray(c).reshape(-1)) if c is not None else 0 for c in cells}
    if len(lengths) != 1:
        raise ValueError(
            f"Feature '{name}' holds sequences of different lengths "
            f"{sorted(lengths)[:5]}; serving inputs must be padded to one length. "
            "Pad them first, e.g. with keras_rec.to_model_inputs."
        )
    return np.stack([np.asarray(c) for c in cells])


def _strings(name, cells):
    if any(c is None for c in cells):
        raise ValueError(
            f"Feature '{name}' has a missing value (None); fill it (e.g. with '') "
            "before building a request."
        )
    if any(isinstance(c, bytes) for c in cells):
        return np.asarray(cells, dtype=object)
    return np.asarray(cells, dtype=str)


def _json_values(array):
    if array.dtype.kind == "S" or (
        array.dtype == object and any(isinstance(v, bytes) for v in array.reshape(-1))
    ):
        flat = [_json_bytes(v) for v in array.reshape(-1).tolist()]
        return np.asarray(flat, dtype=object).reshape(array.shape).tolist()
    return array.tolist()


def _json_bytes(value):
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(value).decode("ascii")}
