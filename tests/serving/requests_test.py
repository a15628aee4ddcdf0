"""REST and gRPC request builders."""

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from keras_rec.serving import grpc_predict_request
from keras_rec.serving import rest_request


def _features():
    return {
        "user_id": np.array([3, 7], dtype="int32"),
        "city": np.array(["paris", "oslo"]),
        "hist_item_id": np.array([[1, 2, 0], [4, 0, 0]], dtype="int32"),
        "price": np.array([[0.5], [1.25]], dtype="float32"),
    }


def test_row_form():
    body = rest_request(_features())
    assert body == {
        "signature_name": "serving_default",
        "instances": [
            {"user_id": 3, "city": "paris", "hist_item_id": [1, 2, 0], "price": [0.5]},
            {"user_id": 7, "city": "oslo", "hist_item_id": [4, 0, 0], "price": [1.25]},
        ],
    }
    assert json.loads(json.dumps(body)) == body  # plain JSON types only
    assert type(body["instances"][0]["user_id"]) is int


def test_columnar_form_and_signature_name():
    body = rest_request(_features(), signature_name="rank", columnar=True)
    assert body == {
        "signature_name": "rank",
        "inputs": {
            "user_id": [3, 7],
            "city": ["paris", "oslo"],
            "hist_item_id": [[1, 2, 0], [4, 0, 0]],
            "price": [[0.5], [1.25]],
        },
    }


def test_dataframe_with_list_cells_and_bytes():
    frame = pd.DataFrame(
        {
            "user_id": [3, 7],
            "hist_item_id": [[1, 2, 0], np.array([4, 0, 0])],
            "token": [b"abc", b"\xff\x00"],
        }
    )
    body = rest_request(frame, columnar=True)
    assert body["inputs"] == {
        "user_id": [3, 7],
        "hist_item_id": [[1, 2, 0], [4, 0, 0]],
        "token": ["abc", {"b64": "/wA="}],
    }
    json.dumps(body)


def test_bad_features_are_named():
    with pytest.raises(ValueError, match="'hist_item_id'.*different lengths"):
        rest_request(pd.DataFrame({"hist_item_id": [[1, 2], [3]]}))
    with pytest.raises(ValueError, match="'b' has 1 rows"):
        rest_request({"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match="'a' must have a batch axis"):
        rest_request({"a": 5})
    with pytest.raises(ValueError, match="'city' has a missing value"):
        rest_request({"city": np.array(["x", None], dtype=object)})
    with pytest.raises(TypeError, match="DataFrame or a dict"):
        rest_request([1, 2])
    with pytest.raises(ValueError, match="no rows"):
        rest_request({"a": np.zeros(0)})
    with pytest.raises(ValueError, match="signature_name"):
        rest_request({"a": [1]}, signature_name="")


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow_serving") is not None,
    reason="tensorflow-serving-api is installed",
)
def test_grpc_without_the_extra_names_it():
    with pytest.raises(ImportError, match=r"keras-rec\[serving\]"):
        grpc_predict_request(_features(), "ranker")


def test_grpc_predict_request():
    pytest.importorskip("tensorflow_serving.apis.predict_pb2")
    import tensorflow as tf

    request = grpc_predict_request(_features(), "ranker", signature_name="rank")
    assert request.model_spec.name == "ranker"
    assert request.model_spec.signature_name == "rank"
    assert set(request.inputs) == set(_features())
    for name, expected in _features().items():
        actual = tf.make_ndarray(request.inputs[name])
        if expected.dtype.kind == "U":
            actual = actual.astype(str)
        else:
            assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)
