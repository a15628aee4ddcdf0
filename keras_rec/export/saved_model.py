"""SavedModel export for TF Serving: one named input per feature, named outputs.

A model is exported to `base_dir/<version>/`, the layout TF Serving polls:

```
<base_dir>/
  1/
    saved_model.pb              graph + `serving_default` signature
    variables/                  weights (and lookup-table contents)
    assets.extra/keras_rec.json inputs, outputs and versions, for humans
  2/ ...
```

The `serving_default` signature takes one input per feature, named after the
feature (the model's `keras.Input` names), with a dynamic batch axis, and
returns named outputs: `score` for ranking models, `user_embedding` /
`item_embedding` for the towers of a two-tower model. Raw-id lookups
(`StringLookup`, `IntegerLookup`, `Hashing`) are traced into the graph as
standard TensorFlow ops, so the SavedModel loads in a process that has
TensorFlow but neither Keras nor keras_rec (a TF Serving model server).

Each version directory is assembled under a temporary name beside it and
renamed into place (`keras_rec.io_utils.atomic_directory`): a failed export
leaves no partial version behind, and TF Serving (which only loads numeric
directory names) never sees a half-written one.
"""

import json
import os
import shutil

import keras
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from keras_rec import io_utils
from keras_rec.version import __version__

SERVING_SIGNATURE = "serving_default"
SCORE = "score"
USER_EMBEDDING = "user_embedding"
ITEM_EMBEDDING = "item_embedding"
USER_TOWER = "user_tower"
ITEM_TOWER = "item_tower"
METADATA_PATH = os.path.join("assets.extra", "keras_rec.json")
_TOWER_OUTPUTS = (USER_EMBEDDING, ITEM_EMBEDDING)


def serving_input_signature(model):
    """The `serving_default` inputs of `model`: one `tf.TensorSpec` per feature.

    Each spec is named after the model input it feeds (the feature name, or
    the `length_name` / `weight_name` of a sequence feature) and has a
    dynamic batch axis: `(None,)` for scalar features and lengths,
    `(None, maxlen)` for sequences, `(None, dimension)` for dense features.

    Args:
        model: functional `keras.Model`, or a model with a functional `towers`
            attribute (`TwoTowerModel`).

    Returns:
        Dict name -> `tf.TensorSpec`, in the model's input order.
    """
    inputs = _model_inputs(model)
    specs = {}
    for tensor in inputs:
        name = tensor.name
        if name in specs:
            raise ValueError(
                f"Model '{model.name}' has two inputs named {name!r}; serving "
                "inputs are matched by name, so input names must be unique."
            )
        specs[name] = tf.TensorSpec(
            (None, *tensor.shape[1:]), tf.as_dtype(tensor.dtype), name=name
        )
    return specs


def list_versions(base_dir):
    """Versions exported under `base_dir`, ascending.

    A version is a sub-directory with an integer name (TF Serving's rule);
    temporary directories of exports in progress are hidden and ignored.

    Args:
        base_dir: str or path-like. A model's base directory.

    Returns:
        List of int; empty when `base_dir` does not exist.
    """
    base_dir = os.fspath(base_dir)
    if not os.path.isdir(base_dir):
        return []
    return sorted(
        int(name)
        for name in os.listdir(base_dir)
        if name.isdigit() and os.path.isdir(os.path.join(base_dir, name))
    )


def latest_version_path(base_dir):
    """The highest complete version directory under `base_dir`.

    Args:
        base_dir: str or path-like. A model's base directory.

    Returns:
        str path of `base_dir/<highest version>/`.

    Raises:
        FileNotFoundError: `base_dir` is missing or holds no version with a
            `saved_model.pb`.
    """
    base_dir = os.fspath(base_dir)
    if not os.path.isdir(base_dir):
        raise FileNotFoundError(
            f"No exported model at {base_dir!r}: not a directory. "
            f"Received: base_dir={base_dir!r}"
        )
    for version in reversed(list_versions(base_dir)):
        path = os.path.join(base_dir, str(version))
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return path
    raise FileNotFoundError(
        f"{base_dir!r} holds no exported version (an integer-named directory "
        "with a saved_model.pb)."
    )


def export_saved_model(
    model, base_dir, version=None, output_name=None, overwrite=False
):
    """Exports `model` as a TF Serving SavedModel under `base_dir/<version>/`.

    The `serving_default` signature takes one named input per feature (see
    `serving_input_signature`) and returns a dict of named outputs. Written
    with `keras.export.ExportArchive`, atomically: on any error nothing is
    left at `base_dir/<version>/`, and earlier versions are untouched.

    Args:
        model: functional `keras.Model` (a ranker ending in a `(batch, 1)`
            sigmoid, a tower such as `TwoTowerModel.user_model`), or a
            `TwoTowerModel` (exported whole, returning the pair score).
        base_dir: str or path-like. The model's base directory (TF Serving's
            `base_path`).
        version: int >= 0 or None. Version number; None takes the next free
            number (1 for an empty `base_dir`). Defaults to None.
        output_name: str or None. Name of the (single) output. Defaults to
            the output layer's name when it is `"user_embedding"` or
            `"item_embedding"`, else `"score"`. Models with a dict output
            keep their keys.
        overwrite: bool. Replace an existing `base_dir/<version>/`. Defaults
            to False, in which case an existing version raises
            FileExistsError.

    Returns:
        str path of the version directory, `base_dir/<version>/`.

    Example:

    ```python
    model = keras_rec.DeepFM(columns, columns)
    path = keras_rec.export.export_saved_model(model, "saved_models/deepfm")
    # saved_models/deepfm/1/ ; signature serving_default:
    #   inputs user_id (None,), item_id (None,), ... -> outputs score (None, 1)
    ```
    """
    base_dir = os.path.abspath(os.fspath(base_dir))
    if version is None:
        version = _next_version(base_dir)
    version = _check_version(version)
    path = os.path.join(base_dir, str(version))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"Version {version} already exists at {path!r}. Pass overwrite=True "
            "to replace it, or version=None for the next free version. "
            f"Received: version={version}"
        )
    specs = serving_input_signature(model)
    output_names = _output_names(model, output_name)
    with io_utils.atomic_directory(path, overwrite=overwrite) as tmp:
        _write_archive(model, tmp, specs, output_names)
        _check_written_signature(tmp, specs, output_names)
        io_utils.write_json_atomic(
            os.path.join(tmp, METADATA_PATH),
            _export_metadata(model, version, specs, output_names),
        )
    return path


def export_towers(model, base_dir, version=None):
    """Exports the user and item towers of a two-tower model, same version.

    Writes `base_dir/user_tower/<v>/` (output `user_embedding`) from
    `model.user_model` and `base_dir/item_tower/<v>/` (output
    `item_embedding`) from `model.item_model`. If the item tower fails, the
    user tower version just written is removed again, so the two stay in
    step.

    Args:
        model: a model with `user_model` and `item_model` (`DSSM`,
            `YoutubeDNN`, any `TwoTowerModel`).
        base_dir: str or path-like. Directory holding the two towers.
        version: int >= 0 or None. None takes the next version free in both
            towers. Defaults to None.

    Returns:
        `{"user_tower": path, "item_tower": path}`, the version directories.
    """
    for attribute in ("user_model", "item_model"):
        if not isinstance(getattr(model, attribute, None), keras.Model):
            raise TypeError(
                f"`model` must have a `{attribute}` (a two-tower model such as "
                f"DSSM or YoutubeDNN). Received: model={model!r}"
            )
    base_dir = os.path.abspath(os.fspath(base_dir))
    user_dir = os.path.join(base_dir, USER_TOWER)
    item_dir = os.path.join(base_dir, ITEM_TOWER)
    if version is None:
        version = max(_next_version(user_dir), _next_version(item_dir))
    version = _check_version(version)
    item_path = os.path.join(item_dir, str(version))
    if os.path.exists(item_path):
        raise FileExistsError(
            f"Version {version} of the item tower already exists at "
            f"{item_path!r}. Received: version={version}"
        )
    user_path = export_saved_model(
        model.user_model, user_dir, version, output_name=USER_EMBEDDING
    )
    try:
        item_path = export_saved_model(
            model.item_model, item_dir, version, output_name=ITEM_EMBEDDING
        )
    except BaseException:
        shutil.rmtree(user_path, ignore_errors=True)
        raise
    return {USER_TOWER: user_path, ITEM_TOWER: item_path}


# ----------------------------------------------------------------------
# Helpers.


def _model_inputs(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
    inputs = getattr(model, "inputs", None)
    if not inputs and isinstance(getattr(model, "towers", None), keras.Model):
        inputs = model.towers.inputs  # TwoTowerModel: a subclass over `towers`
    if not inputs:
        raise ValueError(
            f"Model '{model.name}' has no symbolic inputs: export needs a "
            "functional model (built from keras.Input layers), or a "
            "TwoTowerModel. Received a subclassed or unbuilt model."
        )
    return list(inputs)


def _output_names(model, output_name):
    """The signature's output names: a str, or a tuple of dict keys."""
    # Functional models expose their output structure; a TwoTowerModel (a
    # subclass) returns one score.
    output = model.output if getattr(model, "inputs", None) else None
    if isinstance(output, dict):
        if output_name is not None:
            raise ValueError(
                f"Model '{model.name}' returns a dict {sorted(output)}; its keys "
                f"name the outputs. Received: output_name={output_name!r}"
            )
        return tuple(output)
    if isinstance(output, (list, tuple)) and len(output) != 1:
        raise ValueError(
            f"Model '{model.name}' has {len(output)} outputs; export models "
            "with one output (or a dict of named outputs)."
        )
    if output_name is not None:
        if not isinstance(output_name, str) or not output_name.isidentifier():
            raise ValueError(
                "`output_name` must be an identifier-like string. "
                f"Received: output_name={output_name!r}"
            )
        return output_name
    names = getattr(model, "output_names", None) or []
    if len(names) == 1 and names[0] in _TOWER_OUTPUTS:
        return names[0]
    return SCORE


def _next_version(base_dir):
    return max(list_versions(base_dir), default=0) + 1


def _check_version(version):
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(
            f"`version` must be an integer >= 0 or None. Received: version={version!r}"
        )
    return version


def _write_archive(model, directory, specs, output_names):
    def serve(inputs):
        outputs = model(inputs, training=False)
        if isinstance(output_names, tuple):
            return {name: outputs[name] for name in output_names}
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[0]
        return {output_names: outputs}

    archive = keras.export.ExportArchive()
    tracked = model
    if not model.built and isinstance(getattr(model, "towers", None), keras.Model):
        # A TwoTowerModel builds on its first call; its weights live in `towers`
        # (variables the endpoint uses are tracked by the archive anyway).
        tracked = model.towers
    archive.track(tracked)
    # A dict of specs *named after the features*: TF builds the signature's
    # input keys from the spec names; unnamed specs would become `inputs`,
    # `inputs_1`, ... in sorted key order.
    archive.add_endpoint(SERVING_SIGNATURE, serve, input_signature=[specs])
    archive.write_out(directory, verbose=False)


def _check_written_signature(directory, specs, output_names):
    """Reads the signature back from saved_model.pb; raises if it is not as meant."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(directory, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    signature = proto.meta_graphs[0].signature_def[SERVING_SIGNATURE]
    got = {
        name: (tf.as_dtype(info.dtype), [d.size for d in info.tensor_shape.dim])
        for name, info in signature.inputs.items()
    }
    want = {
        name: (spec.dtype, [-1 if d is None else d for d in spec.shape.as_list()])
        for name, spec in specs.items()
    }
    if got != want:
        raise RuntimeError(
            "The exported serving_default signature does not take one input per "
            f"feature. Expected {want}, written {got}."
        )
    wanted_outputs = (
        set(output_names) if isinstance(output_names, tuple) else {output_names}
    )
    if set(signature.outputs) != wanted_outputs:
        raise RuntimeError(
            "The exported serving_default signature has outputs "
            f"{sorted(signature.outputs)}; expected {sorted(wanted_outputs)}."
        )


def _export_metadata(model, version, specs, output_names):
    outputs = output_names if isinstance(output_names, tuple) else (output_names,)
    return {
        "model_name": model.name,
        "version": version,
        "signature_name": SERVING_SIGNATURE,
        "inputs": {
            name: {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}
            for name, spec in specs.items()
        },
        "outputs": list(outputs),
        "keras_rec_version": __version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
    }


def read_export_metadata(path):
    """The `assets.extra/keras_rec.json` of an exported version, as a dict."""
    with open(os.path.join(os.fspath(path), METADATA_PATH), encoding="utf-8") as f:
        return json.load(f)
