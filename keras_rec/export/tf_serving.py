"""TF Serving side files: the `models.config` model list and sample REST requests.

`write_serving_config` writes the file given to the model server as
`--model_config_file=<base_dir>/models.config`:

```
model_config_list {
  config {
    name: "user_tower"
    base_path: "/models/user_tower"
    model_platform: "tensorflow"
  }
}
```

`write_sample_requests` writes request bodies that can be posted as they are
(`curl -d @request_instances.json http://host:8501/v1/models/<name>:predict`),
in both of TF Serving's REST layouts.
"""

import json
import os
import re

import tensorflow as tf

from keras_rec import io_utils
from keras_rec.export.saved_model import SERVING_SIGNATURE
from keras_rec.export.saved_model import list_versions
from keras_rec.export.saved_model import serving_input_signature
from keras_rec.serving.requests import cast_feature
from keras_rec.serving.requests import feature_arrays
from keras_rec.serving.requests import rest_request

CONFIG_FILE = "models.config"
INSTANCES_FILE = "request_instances.json"
INPUTS_FILE = "request_inputs.json"
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def write_serving_config(base_dir, models, base_path_prefix=None):
    """Writes `base_dir/models.config`, TF Serving's `model_config_list`.

    Args:
        base_dir: str or path-like. Directory holding the exported models; the
            config file is written there.
        models: the models to serve, as one of:
            - a list of names: each model's base path is `base_dir/<name>`;
            - a dict name -> path: the model's base directory, or one of its
              version directories (e.g. the dict returned by
              `export_towers`), absolute or relative to `base_dir`.
        base_path_prefix: str or None. The directory `base_dir` is seen as by
            the model server (e.g. `"/models"` when `base_dir` is mounted
            there in a container); `base_path`s are rewritten to it. Defaults
            to None: absolute local paths.

    Returns:
        str path of the written `models.config`.

    Raises:
        FileNotFoundError: a model's base directory holds no exported version.
    """
    base_dir = os.path.abspath(os.fspath(base_dir))
    if isinstance(models, dict):
        entries = list(models.items())
    elif isinstance(models, (list, tuple)):
        entries = [(name, name) for name in models]
    else:
        raise TypeError(
            "`models` must be a list of names or a dict name -> path. "
            f"Received: models={models!r}"
        )
    if not entries:
        raise ValueError("`models` must name at least one model. Received: empty")
    blocks, seen = [], set()
    for name, path in entries:
        if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
            raise ValueError(
                "Model names must be non-empty and use letters, digits, '_', '.' "
                f"or '-'. Received: name={name!r}"
            )
        if name in seen:
            raise ValueError(f"Model name {name!r} appears twice in `models`.")
        seen.add(name)
        local = _model_base_path(base_dir, path)
        if not list_versions(local):
            raise FileNotFoundError(
                f"Model {name!r}: {local!r} holds no exported version (an "
                "integer-named directory). Export it first."
            )
        served = local
        if base_path_prefix is not None:
            relative = os.path.relpath(local, base_dir).replace(os.sep, "/")
            served = f"{str(base_path_prefix).rstrip('/')}/{relative}"
        blocks.append(
            "  config {\n"
            f"    name: {_quote(name)}\n"
            f"    base_path: {_quote(served)}\n"
            '    model_platform: "tensorflow"\n'
            "  }\n"
        )
    path = os.path.join(base_dir, CONFIG_FILE)
    with io_utils.atomic_write(path) as f:
        f.write("model_config_list {\n" + "".join(blocks) + "}\n")
    return path


def write_sample_requests(
    path_or_dir, model, example_inputs, signature_name=SERVING_SIGNATURE
):
    """Writes sample REST request bodies for `model`, in both layouts.

    The examples are restricted to the model's inputs and cast to their
    dtypes, so the files match the exported `serving_default` signature.

    Args:
        path_or_dir: str or path-like. A directory (the files are
            `request_instances.json` and `request_inputs.json` in it), or a
            path ending in `.json` (the files are `<stem>_instances.json` and
            `<stem>_inputs.json` beside it).
        model: the exported `keras.Model` (see `serving_input_signature`).
        example_inputs: `pandas.DataFrame` or dict name -> array-like holding
            every model input (extra columns are ignored).
        signature_name: str. Defaults to `"serving_default"`.

    Returns:
        `{"instances": path, "inputs": path}`: the row-form and the columnar
        request files.
    """
    specs = serving_input_signature(model)
    arrays = feature_arrays(example_inputs)
    missing = [name for name in specs if name not in arrays]
    if missing:
        raise ValueError(
            f"`example_inputs` lacks the model inputs {missing}. Model inputs: "
            f"{list(specs)}; received: {sorted(arrays)}"
        )
    typed = {name: _cast(name, arrays[name], spec) for name, spec in specs.items()}
    path_or_dir = os.fspath(path_or_dir)
    if path_or_dir.endswith(".json"):
        stem = path_or_dir[: -len(".json")]
        paths = {"instances": f"{stem}_instances.json", "inputs": f"{stem}_inputs.json"}
    else:
        paths = {
            "instances": os.path.join(path_or_dir, INSTANCES_FILE),
            "inputs": os.path.join(path_or_dir, INPUTS_FILE),
        }
    for layout, path in paths.items():
        body = rest_request(typed, signature_name, columnar=layout == "inputs")
        with io_utils.atomic_write(path) as f:
            json.dump(body, f, indent=1)
            f.write("\n")
    return paths


# ----------------------------------------------------------------------
# Helpers.


def _model_base_path(base_dir, path):
    path = os.fspath(path)
    if not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    path = os.path.normpath(path)
    # A version directory (`.../user_tower/3`) stands for its model.
    if os.path.basename(path).isdigit() and os.path.isfile(
        os.path.join(path, "saved_model.pb")
    ):
        path = os.path.dirname(path)
    return path


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cast(name, array, spec):
    dtype = "string" if spec.dtype == tf.string else spec.dtype.as_numpy_dtype
    return cast_feature(name, array, dtype, spec.shape.as_list()[1:])
