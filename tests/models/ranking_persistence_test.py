"""Ranking models survive .keras, .weights.h5 and SavedModel round trips."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rec.models import DCN
from keras_rec.models import DIN
from keras_rec.models import WDL
from keras_rec.models import DeepFM
from keras_rec.models import RankingModel
from tests.models.ranking_data import for_model
from tests.models.ranking_data import run
from tests.models.ranking_data import tiny_columns
from tests.models.ranking_data import tiny_inputs

SMALL = {"dnn_hidden_units": (8, 4)}
BUILDERS = {
    "deepfm": lambda: DeepFM(tiny_columns(), tiny_columns(), **SMALL),
    "wdl": lambda: WDL(tiny_columns()[:3], tiny_columns(), **SMALL),
    "dcn": lambda: DCN(
        tiny_columns(), tiny_columns(), cross_parameterization="matrix", **SMALL
    ),
    "din": lambda: DIN(
        tiny_columns(with_history=True, length_name="hist_len"),
        ["item_id", "genre"],
        att_hidden_units=(8,),
        **SMALL,
    ),
    "din_pooled": lambda: DIN(
        tiny_columns(with_history=True),
        ["item_id", "genre"],
        att_hidden_units=(8,),
        pool_history=True,
        **SMALL,
    ),
}


def _trained(name):
    keras.utils.set_random_seed(0)
    model = BUILDERS[name]()
    x = for_model(model, tiny_inputs(n=64, seed=1))
    y = np.random.default_rng(0).integers(0, 2, 64).astype("float32")
    model.compile(
        "adam", "binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")]
    )
    # Trains on a dict of arrays and on a tf.data.Dataset of (dict, label).
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    assert 0.0 <= history.history["auc"][0] <= 1.0
    return model, x


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_save_load_weights_and_export_round_trips(name, tmp_path):
    model, x = _trained(name)
    expected = run(model, x)

    # .keras: no custom_objects, safe mode (so no Lambda layers).
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(run(loaded, x), expected, atol=1e-6)
    assert [t.name for t in loaded.inputs] == [t.name for t in model.inputs]
    assert type(loaded) is RankingModel  # keeps its multi-worker fixes

    # .weights.h5 into a freshly built model with other initial weights.
    weights = tmp_path / f"{name}.weights.h5"
    model.save_weights(weights)
    keras.utils.set_random_seed(123)
    fresh = BUILDERS[name]()
    assert np.abs(run(fresh, x) - expected).max() > 1e-6
    fresh.load_weights(weights)
    np.testing.assert_allclose(run(fresh, x), expected, atol=1e-6)

    # SavedModel for TF Serving: named feature inputs.
    export_dir = tmp_path / f"{name}_saved_model"
    model.export(str(export_dir), verbose=False)
    served = tf.saved_model.load(str(export_dir))
    signature = served.signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == set(x)
    outputs = signature(**{k: tf.constant(v) for k, v in x.items()})
    (scores,) = outputs.values()
    np.testing.assert_allclose(scores.numpy(), expected, atol=1e-6)
    # `serve` takes the inputs in the model's input order.
    ordered = [tf.constant(x[t.name]) for t in model.inputs]
    np.testing.assert_allclose(served.serve(ordered).numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_regression_task_has_an_identity_output(name):
    keras.utils.set_random_seed(0)
    builder = {
        "deepfm": DeepFM,
        "wdl": WDL,
        "dcn": DCN,
    }.get(name)
    if builder is None:
        model = DIN(
            tiny_columns(with_history=True),
            ["item_id"],
            att_hidden_units=(4,),
            task="regression",
            **SMALL,
        )
    else:
        model = builder(tiny_columns(), tiny_columns(), task="regression", **SMALL)
    assert model.get_layer("prediction").task == "regression"
    x = for_model(model, tiny_inputs(n=8))
    model.get_layer("prediction").set_weights([np.array([10.0], "float32")])
    # Far outside [0, 1]: no sigmoid.
    assert run(model, x).min() > 5.0
