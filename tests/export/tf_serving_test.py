"""models.config and sample REST requests, parsed back and fed to the signatures."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from keras_rec.export import write_sample_requests
from keras_rec.export import write_serving_config
from tests.export import models
from tests.export.conftest import keras_outputs


def parse_model_config(text):
    """A minimal reader of TF Serving's text-format `model_config_list`."""
    assert text.strip().startswith("model_config_list {")
    assert text.count("{") == text.count("}")
    configs = []
    for body in re.findall(r"config \{(.*?)\}", text, re.S):
        fields = dict(re.findall(r'(\w+): "((?:[^"\\]|\\.)*)"', body))
        configs.append(fields)
    return configs


def _parse_with_protobuf(text):
    config_pb2 = pytest.importorskip(
        "tensorflow_serving.config.model_server_config_pb2"
    )
    from google.protobuf import text_format

    return text_format.Parse(text, config_pb2.ModelServerConfig())


def test_serving_config_lists_every_model(exported, tmp_path):
    base = os.path.dirname(os.path.dirname(exported["deepfm"].path))
    towers = {
        "user_tower": exported["dssm_user_tower"].path,  # version dirs -> base paths
        "item_tower": exported["dssm_item_tower"].path,
    }
    path = write_serving_config(base, {**towers, "deepfm": "deepfm", "din": "din"})
    assert path == os.path.join(base, "models.config")
    with open(path) as f:
        text = f.read()
    configs = parse_model_config(text)
    assert [c["name"] for c in configs] == ["user_tower", "item_tower", "deepfm", "din"]
    expected = {
        "user_tower": os.path.dirname(towers["user_tower"]),
        "item_tower": os.path.dirname(towers["item_tower"]),
        "deepfm": os.path.join(base, "deepfm"),
        "din": os.path.join(base, "din"),
    }
    for config in configs:
        assert config["model_platform"] == "tensorflow"
        assert config["base_path"] == expected[config["name"]]
        assert os.path.isfile(os.path.join(config["base_path"], "1", "saved_model.pb"))


def test_serving_config_from_names_with_container_prefix(exported):
    base = os.path.dirname(os.path.dirname(exported["wdl"].path))
    path = write_serving_config(base, ["wdl", "dcn"], base_path_prefix="/models/")
    with open(path) as f:
        configs = parse_model_config(f.read())
    assert configs == [
        {"name": "wdl", "base_path": "/models/wdl", "model_platform": "tensorflow"},
        {"name": "dcn", "base_path": "/models/dcn", "model_platform": "tensorflow"},
    ]


def test_serving_config_parses_with_tf_serving_protos(exported):
    base = os.path.dirname(os.path.dirname(exported["wdl"].path))
    with open(write_serving_config(base, ["wdl"])) as f:
        text = f.read()
    proto = _parse_with_protobuf(text)
    assert proto.model_config_list.config[0].name == "wdl"


def test_serving_config_errors(exported, tmp_path):
    base = os.path.dirname(os.path.dirname(exported["wdl"].path))
    with pytest.raises(FileNotFoundError, match="no exported version"):
        write_serving_config(tmp_path, ["missing"])
    with pytest.raises(ValueError, match="name"):
        write_serving_config(base, {'bad "name"': "wdl"})
    with pytest.raises(ValueError, match="twice"):
        write_serving_config(base, ["wdl", "wdl"])
    with pytest.raises(TypeError, match="list of names"):
        write_serving_config(base, "wdl")
    assert not (tmp_path / "models.config").exists()


def _feed(signature, columns):
    specs = signature.structured_input_signature[1]
    return {
        name: tf.constant(np.asarray(columns[name]), dtype=spec.dtype)
        for name, spec in specs.items()
    }


@pytest.mark.parametrize("name", ["raw_id_ranker", "din", "youtubednn_user_tower"])
def test_sample_requests_feed_the_signature(exported, tmp_path, name):
    case = exported[name]
    # Extra columns are ignored; the requests hold exactly the model inputs.
    examples = {**case.inputs, "unused_column": np.arange(16)}
    paths = write_sample_requests(tmp_path, case.model, examples)
    assert paths == {
        "instances": str(tmp_path / "request_instances.json"),
        "inputs": str(tmp_path / "request_inputs.json"),
    }
    with open(paths["instances"]) as f:
        rows = json.load(f)
    with open(paths["inputs"]) as f:
        columnar = json.load(f)
    assert rows["signature_name"] == columnar["signature_name"] == "serving_default"
    assert len(rows["instances"]) == 16
    assert set(rows["instances"][0]) == set(case.inputs)
    assert set(columnar["inputs"]) == set(case.inputs)

    signature = tf.saved_model.load(str(case.path)).signatures["serving_default"]
    by_column = {
        k: [instance[k] for instance in rows["instances"]] for k in case.inputs
    }
    for columns in (by_column, columnar["inputs"]):
        outputs = signature(**_feed(signature, columns))[case.output_name].numpy()
        np.testing.assert_allclose(outputs, case.expected, atol=1e-5)


def test_sample_requests_keep_strings_and_json_path(exported, tmp_path):
    case = exported["raw_id_ranker"]
    paths = write_sample_requests(tmp_path / "ranker.json", case.model, case.inputs)
    assert paths["instances"] == str(tmp_path / "ranker_instances.json")
    assert paths["inputs"] == str(tmp_path / "ranker_inputs.json")
    with open(paths["instances"]) as f:
        first = json.load(f)["instances"][0]
    assert isinstance(first["user_id"], str) and first["user_id"].startswith("u")
    assert isinstance(first["hist_item_id"], list) and len(first["hist_item_id"]) == 5
    assert isinstance(first["price"], list) and len(first["price"]) == 2
    with pytest.raises(ValueError, match="hist_len"):
        inputs = {k: v for k, v in case.inputs.items() if k != "hist_len"}
        write_sample_requests(tmp_path, case.model, inputs)
    with pytest.raises(TypeError, match="user_id"):
        write_sample_requests(
            tmp_path, case.model, {**case.inputs, "user_id": np.arange(16)}
        )
    with pytest.raises(ValueError, match="hist_item_id"):
        write_sample_requests(
            tmp_path,
            case.model,
            {**case.inputs, "hist_item_id": case.inputs["hist_item_id"][:, :3]},
        )
    assert sorted(os.listdir(tmp_path)) == [
        "ranker_inputs.json",
        "ranker_instances.json",
    ]


def test_raw_id_model_scores_unseen_ids_from_a_request(exported, tmp_path):
    case = exported["raw_id_ranker"]
    inputs = models.model_columns_inputs(
        models.raw_id_columns(), case.model, n=8, seed=4, unseen=0.5
    )
    paths = write_sample_requests(tmp_path, case.model, inputs)
    with open(paths["inputs"]) as f:
        columns = json.load(f)["inputs"]
    signature = tf.saved_model.load(str(case.path)).signatures["serving_default"]
    scores = signature(**_feed(signature, columns))["score"].numpy()
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores, keras_outputs(case.model, inputs), atol=1e-5)
