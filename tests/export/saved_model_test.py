"""SavedModel export: signatures, numbers, a keras_rec-free loader, atomicity."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rec import io_utils
from keras_rec.export import export_saved_model
from keras_rec.export import export_towers
from keras_rec.export import latest_version_path
from keras_rec.export import list_versions
from keras_rec.export import read_export_metadata
from keras_rec.export import saved_model as saved_model_module
from tests.export import models
from tests.export.conftest import CASE_NAMES
from tests.export.conftest import keras_outputs
from tests.export.conftest import spread_weights

# Runs in a fresh interpreter that can import TensorFlow but neither keras_rec
# nor Keras, like a TF Serving model server. keras_rec is installed editable in
# the venv: a `.pth` file puts setuptools' `__editable___keras_rec_*_finder`
# on `sys.meta_path`, which `-I` (isolated mode: no PYTHONPATH, no user site,
# no script directory) does not prevent. So the script removes that finder
# (and any editable path hook, and any sys.path entry holding a `keras_rec`
# directory) before anything is imported, asserts `find_spec("keras_rec") is
# None` and that `import keras_rec` fails, and blocks Keras with
# `sys.modules["keras"] = None` (TensorFlow imports fine without it).
ISOLATED_LOADER = textwrap.dedent(
    """
    import importlib.util, json, os, sys

    sys.meta_path[:] = [
        f for f in sys.meta_path
        if "editable" not in (getattr(f, "__module__", "") or "")
        and "editable" not in type(f).__module__
    ]
    sys.path_hooks[:] = [h for h in sys.path_hooks if "editable" not in repr(h)]
    sys.path_importer_cache.clear()
    sys.path[:] = [
        p for p in sys.path
        if not os.path.isdir(os.path.join(p or os.getcwd(), "keras_rec"))
    ]
    sys.modules["keras"] = None
    assert importlib.util.find_spec("keras_rec") is None, "keras_rec importable"
    assert importlib.util.find_spec("keras") is None, "keras importable"
    try:
        import keras_rec  # noqa: F401
    except ImportError:
        pass
    else:
        raise AssertionError("import keras_rec succeeded")

    import numpy as np
    import tensorflow as tf

    for case in json.load(open(sys.argv[1])):
        fn = tf.saved_model.load(case["path"]).signatures["serving_default"]
        specs = fn.structured_input_signature[1]
        data = np.load(case["inputs"], allow_pickle=False)
        feed = {k: tf.constant(data[k], dtype=spec.dtype) for k, spec in specs.items()}
        np.save(case["output"], fn(**feed)[case["output_name"]].numpy())
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "keras_rec"))
    assert loaded == ["keras"], loaded  # only the blocking None entry
    print("ISOLATED-OK")
    """
)


CLI_CASES = ("raw_id_ranker", "dssm_user_tower")


def _saved_model_cli():
    sibling = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return sibling if os.path.exists(sibling) else shutil.which("saved_model_cli")


@pytest.fixture(scope="module")
def subprocesses(exported, tmp_path_factory):
    """Starts the keras_rec-free loader and `saved_model_cli show` at once.

    Each one imports TensorFlow (many seconds); running them side by side,
    while the in-process tests go on, keeps the suite short.
    """
    work = tmp_path_factory.mktemp("isolated")
    manifest = []
    for name in CASE_NAMES:
        case = exported[name]
        np.savez(work / f"{name}_in.npz", **case.inputs)
        manifest.append(
            {
                "path": str(case.path),
                "inputs": str(work / f"{name}_in.npz"),
                "output": str(work / f"{name}_out.npy"),
                "output_name": case.output_name,
            }
        )
    (work / "manifest.json").write_text(json.dumps(manifest))
    (work / "loader.py").write_text(ISOLATED_LOADER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONNOUSERSITE="1", TF_CPP_MIN_LOG_LEVEL="2")
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    processes = {
        "loader": subprocess.Popen(
            [
                sys.executable,
                "-I",
                str(work / "loader.py"),
                str(work / "manifest.json"),
            ],
            cwd=work,
            **pipes,
        )
    }
    cli = _saved_model_cli()
    if cli is not None:
        for name in CLI_CASES:
            processes[name] = subprocess.Popen(
                [
                    cli,
                    "show",
                    "--dir",
                    str(exported[name].path),
                    "--tag_set",
                    "serve",
                    "--signature_def",
                    "serving_default",
                ],
                cwd=work,
                **pipes,
            )
    yield work, processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


def _finish(process):
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    return stdout


@pytest.fixture(scope="module")
def isolated_outputs(subprocesses):
    """Outputs of every exported model, computed in a keras_rec-free process."""
    work, processes = subprocesses
    assert "ISOLATED-OK" in _finish(processes["loader"])
    return {name: np.load(work / f"{name}_out.npy") for name in CASE_NAMES}


def _signature(path):
    return tf.saved_model.load(str(path)).signatures["serving_default"]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_signature_has_one_named_input_per_feature(exported, subprocesses, name):
    # `subprocesses` starts the out-of-process checks now; they are awaited by
    # the last tests of this file.
    case = exported[name]
    signature = _signature(case.path)
    args, kwargs = signature.structured_input_signature
    assert args == ()
    expected = {t.name: t for t in case.model.inputs}
    assert sorted(kwargs) == sorted(expected)
    for feature, spec in kwargs.items():
        model_input = expected[feature]
        assert spec.name == feature
        assert spec.dtype == tf.as_dtype(model_input.dtype)
        assert spec.shape.as_list() == [None, *model_input.shape[1:]]
    outputs = signature.structured_outputs
    assert list(outputs) == [case.output_name]
    assert outputs[case.output_name].shape.as_list() == [None, *case.expected.shape[1:]]
    # In-process as well, every input fed by name.
    feed = {k: tf.constant(v, dtype=kwargs[k].dtype) for k, v in case.inputs.items()}
    np.testing.assert_allclose(
        signature(**feed)[case.output_name].numpy(), case.expected, atol=1e-5
    )


def test_signature_shapes_and_dtypes_by_kind(exported):
    # Scalars (None,), sequences (None, maxlen), lengths (None,) int32,
    # dense (None, dim) float32, raw string ids tf.string.
    kwargs = _signature(exported["raw_id_ranker"].path).structured_input_signature[1]
    got = {k: (s.dtype, s.shape.as_list()) for k, s in kwargs.items()}
    assert got == {
        "user_id": (tf.string, [None]),
        "item_id": (tf.int64, [None]),
        "hist_item_id": (tf.int64, [None, models.MAXLEN]),
        "hist_len": (tf.int32, [None]),
        "city": (tf.string, [None]),
        "price": (tf.float32, [None, 2]),
    }
    deepfm = _signature(exported["deepfm"].path)
    assert deepfm.structured_outputs["score"].shape.as_list() == [None, 1]
    tower = _signature(exported["dssm_user_tower"].path)
    assert tower.structured_outputs["user_embedding"].shape.as_list() == [None, 8]


# ----------------------------------------------------------------------
# Raw ids.


def test_raw_ids_give_the_keras_scores_and_unseen_ids_are_oov(exported):
    case = exported["raw_id_ranker"]
    signature = _signature(case.path)
    specs = signature.structured_input_signature[1]

    def serve(inputs):
        feed = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()}
        return signature(**feed)["score"].numpy()

    inputs = models.model_columns_inputs(
        models.raw_id_columns(), case.model, n=64, seed=3, unseen=0.3
    )
    assert (inputs["user_id"] == "never_seen").any()
    assert (inputs["item_id"] == -77).any()
    scores = serve(inputs)
    assert np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores, keras_outputs(case.model, inputs), atol=1e-5)

    # Two different unknown users map to the same OOV row 0: same score;
    # a known user scores differently.
    row = {k: v[:1].copy() for k, v in inputs.items()}
    row["user_id"] = np.asarray(["nobody"])
    other = {**row, "user_id": np.asarray(["someone-else"])}
    known = {**row, "user_id": np.asarray([models.USER_VOCAB[3]])}
    np.testing.assert_array_equal(serve(row), serve(other))
    assert abs(serve(row)[0, 0] - serve(known)[0, 0]) > 1e-4
    # Unknown integer ids likewise, and never-seen hashed strings score finitely.
    unknown_items = {**row, "item_id": np.asarray([-5], dtype="int64")}
    more_unknown = {**row, "item_id": np.asarray([10**12], dtype="int64")}
    np.testing.assert_array_equal(serve(unknown_items), serve(more_unknown))
    cities = {**row, "city": np.asarray(["a-city-never-seen-in-training"])}
    assert np.isfinite(serve(cities)).all()


def test_hashed_strings_match_keras(exported):
    case = exported["raw_id_ranker"]
    signature = _signature(case.path)
    specs = signature.structured_input_signature[1]
    inputs = dict(case.inputs)
    inputs["city"] = np.asarray([f"new-{i}" for i in range(len(inputs["city"]))])
    feed = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()}
    np.testing.assert_allclose(
        signature(**feed)["score"].numpy(), keras_outputs(case.model, inputs), atol=1e-5
    )


# ----------------------------------------------------------------------
# Versions, overwrite, atomicity.


def _small_ranker(seed=0):
    columns = [models.ranking_columns()[1], models.ranking_columns()[4]]
    model = models.WDL(columns, columns, dnn_hidden_units=(4,), seed=seed)
    spread_weights(model, seed)
    return model, columns


def _score(path, inputs):
    signature = _signature(path)
    return signature(**{k: tf.constant(v) for k, v in inputs.items()})["score"].numpy()


def test_versions_next_free_explicit_and_overwrite(tmp_path):
    model, columns = _small_ranker()
    inputs = models.model_columns_inputs(columns, model, n=8)
    base = tmp_path / "wdl"
    assert export_saved_model(model, base) == str(base / "1")
    assert export_saved_model(model, base, version=7) == str(base / "7")
    assert export_saved_model(model, base) == str(base / "8")
    assert list_versions(base) == [1, 7, 8]
    assert latest_version_path(base) == str(base / "8")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_saved_model(model, base, version=7)

    other, _ = _small_ranker(seed=5)
    export_saved_model(other, base, version=7, overwrite=True)
    np.testing.assert_allclose(
        _score(base / "7", inputs), keras_outputs(other, inputs), atol=1e-5
    )
    np.testing.assert_allclose(
        _score(base / "1", inputs), keras_outputs(model, inputs), atol=1e-5
    )
    metadata = read_export_metadata(base / "7")
    assert metadata["outputs"] == ["score"] and metadata["version"] == 7
    assert set(metadata["inputs"]) == {"item_id", "price"}
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(ValueError, match="`version`"):
            export_saved_model(model, base, version=bad)


def _failing_save(real_save):
    def save(obj, export_dir, *args, **kwargs):
        real_save(obj, export_dir, *args, **kwargs)  # fully written, then...
        raise OSError("disk full (injected)")

    return save


@pytest.mark.parametrize("where", ["saved_model_save", "metadata"])
def test_failed_export_leaves_no_partial_version(tmp_path, monkeypatch, where):
    model, columns = _small_ranker()
    inputs = models.model_columns_inputs(columns, model, n=8)
    base = tmp_path / "wdl"
    export_saved_model(model, base)
    if where == "saved_model_save":
        monkeypatch.setattr(tf.saved_model, "save", _failing_save(tf.saved_model.save))
    else:

        def fail(path, obj):
            raise OSError("disk full (injected)")

        monkeypatch.setattr(io_utils, "write_json_atomic", fail)
    with pytest.raises(OSError, match="injected"):
        export_saved_model(model, base)
    monkeypatch.undo()
    assert sorted(os.listdir(base)) == ["1"]  # no "2", no temporary directory
    np.testing.assert_allclose(
        _score(base / "1", inputs), keras_outputs(model, inputs), atol=1e-5
    )
    if where == "metadata":
        assert export_saved_model(model, base) == str(base / "2")


def test_failed_overwrite_keeps_the_old_version(tmp_path, monkeypatch):
    model, columns = _small_ranker()
    inputs = models.model_columns_inputs(columns, model, n=8)
    base = tmp_path / "wdl"
    export_saved_model(model, base)
    monkeypatch.setattr(tf.saved_model, "save", _failing_save(tf.saved_model.save))
    other, _ = _small_ranker(seed=9)
    with pytest.raises(OSError, match="injected"):
        export_saved_model(other, base, version=1, overwrite=True)
    monkeypatch.undo()
    assert sorted(os.listdir(base)) == ["1"]
    np.testing.assert_allclose(
        _score(base / "1", inputs), keras_outputs(model, inputs), atol=1e-5
    )


def test_export_towers_same_version_and_rollback(tmp_path, monkeypatch, exported):
    two_tower = exported["dssm_model"]
    base = tmp_path / "run"
    first = export_towers(two_tower, base)
    assert first == {
        "user_tower": str(base / "user_tower" / "1"),
        "item_tower": str(base / "item_tower" / "1"),
    }
    # The item tower fails: the user tower's version 2 is removed again.
    real = saved_model_module.export_saved_model

    def fail_on_item(model, base_dir, *args, **kwargs):
        if "item_tower" in str(base_dir):
            raise OSError("item tower failed (injected)")
        return real(model, base_dir, *args, **kwargs)

    monkeypatch.setattr(saved_model_module, "export_saved_model", fail_on_item)
    with pytest.raises(OSError, match="injected"):
        export_towers(two_tower, base)
    monkeypatch.undo()
    assert list_versions(base / "user_tower") == [1]
    assert list_versions(base / "item_tower") == [1]
    # Next free version is shared: the user tower catches up with the item's.
    shutil.copytree(base / "item_tower" / "1", base / "item_tower" / "4")
    second = export_towers(two_tower, base)
    assert second["user_tower"].endswith(os.path.join("user_tower", "5"))
    assert second["item_tower"].endswith(os.path.join("item_tower", "5"))
    with pytest.raises(TypeError, match="user_model"):
        export_towers(keras.Sequential([keras.layers.Dense(1)]), base)


def test_output_name_override_and_two_tower_model_score(tmp_path, exported):
    two_tower = exported["dssm_model"]
    path = export_saved_model(two_tower.user_model, tmp_path / "u", output_name="query")
    assert list(_signature(path).structured_outputs) == ["query"]
    # A whole TwoTowerModel exports its pair score.
    path = export_saved_model(two_tower, tmp_path / "pair")
    signature = _signature(path)
    user, item = models.tower_columns()
    inputs = models.random_inputs(user + item, n=8, seed=2)
    specs = signature.structured_input_signature[1]
    assert set(specs) == {t.name for t in two_tower.towers.inputs}
    feed = {k: tf.constant(inputs[k], dtype=specs[k].dtype) for k in specs}
    np.testing.assert_allclose(
        signature(**feed)["score"].numpy(),
        np.asarray(two_tower({k: tf.constant(inputs[k]) for k in specs})),
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="output_name"):
        export_saved_model(two_tower.user_model, tmp_path / "x", output_name="a b")


def test_bad_models_are_rejected(tmp_path):
    with pytest.raises(TypeError, match="keras.Model"):
        export_saved_model(object(), tmp_path / "x")

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="functional"):
        export_saved_model(Subclassed(), tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    with pytest.raises(FileNotFoundError, match="no exported version"):
        os.makedirs(tmp_path / "empty" / "3")
        latest_version_path(tmp_path / "empty")


# ----------------------------------------------------------------------
# Out of process: last in the file, so the subprocesses (started by the first
# signature test) have run meanwhile.


@pytest.mark.multiprocess
@pytest.mark.parametrize("name", CASE_NAMES)
def test_loads_and_matches_keras_without_keras_rec(exported, isolated_outputs, name):
    expected = exported[name].expected
    actual = isolated_outputs[name]
    assert actual.shape == expected.shape
    assert np.ptp(expected) > 0.05  # outputs differ between rows: a real check
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


def _parse_cli(text):
    """`saved_model_cli show` output -> ({input: (dtype, shape)}, {output: ...})."""
    sections = {}
    for kind, body in re.findall(
        r"following (input|output)\(s\):\n(.*?)(?=\nThe given|\nMethod name)",
        text,
        re.S,
    ):
        sections[kind] = {
            name: (dtype, shape)
            for name, dtype, shape in re.findall(
                r"\w+\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([^)]*\))", body
            )
        }
    return sections.get("input", {}), sections.get("output", {})


@pytest.mark.multiprocess
def test_saved_model_cli_shows_feature_names(subprocesses):
    _, processes = subprocesses
    if CLI_CASES[0] not in processes:
        pytest.skip("saved_model_cli not found beside the interpreter or on PATH")
    inputs, outputs = _parse_cli(_finish(processes["raw_id_ranker"]))
    assert inputs == {
        "user_id": ("DT_STRING", "(-1)"),
        "item_id": ("DT_INT64", "(-1)"),
        "hist_item_id": ("DT_INT64", f"(-1, {models.MAXLEN})"),
        "hist_len": ("DT_INT32", "(-1)"),
        "city": ("DT_STRING", "(-1)"),
        "price": ("DT_FLOAT", "(-1, 2)"),
    }
    assert outputs == {"score": ("DT_FLOAT", "(-1, 1)")}
    inputs, outputs = _parse_cli(_finish(processes["dssm_user_tower"]))
    assert inputs == {
        "user_id": ("DT_INT32", "(-1)"),
        "hist_item_id": ("DT_INT32", f"(-1, {models.MAXLEN})"),
        "hist_len": ("DT_INT32", "(-1)"),
        "age": ("DT_FLOAT", "(-1, 1)"),
    }
    assert outputs == {"user_embedding": ("DT_FLOAT", "(-1, 8)")}
