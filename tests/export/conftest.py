"""Exports every model under test once per session (exports take seconds each)."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from keras_rec.export import export_saved_model
from keras_rec.export import export_towers
from tests.export import models


@dataclasses.dataclass
class Case:
    """One exported model: the Keras model, its version path, inputs, outputs."""

    name: str
    model: object
    path: str
    inputs: dict  # name -> numpy array, the model's inputs
    expected: np.ndarray  # the Keras model's output on `inputs`
    output_name: str


def spread_weights(model, seed=0):
    """Random weights of a useful scale: with the tiny initial weights every
    score is ~0.5 and a swapped input would change outputs by less than the
    tolerance; here it changes them by ~0.1."""
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(0.0, 0.5, size=variable.shape).astype("float32"))


def keras_outputs(model, inputs):
    tensors = {name: tf.constant(value) for name, value in inputs.items()}
    return np.asarray(model(tensors, training=False))


def _case(name, model, path, columns, output_name, seed):
    inputs = models.model_columns_inputs(columns, model, n=16, seed=seed)
    return Case(name, model, path, inputs, keras_outputs(model, inputs), output_name)


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """Name -> `Case` for every exported model (rankers and towers)."""
    root = tmp_path_factory.mktemp("exports")
    cases = {}

    raw = models.raw_id_ranker()
    spread_weights(raw)
    path = export_saved_model(raw, root / "raw_id_ranker")
    cases["raw_id_ranker"] = _case(
        "raw_id_ranker", raw, path, models.raw_id_columns(), "score", 1
    )

    for i, (name, ranker) in enumerate(models.rankers().items()):
        spread_weights(ranker, seed=i)
        path = export_saved_model(ranker, root / name)
        cases[name] = _case(name, ranker, path, models.ranking_columns(), "score", i)

    for name, builder in (("dssm", models.dssm), ("youtubednn", models.youtube_dnn)):
        two_tower = builder()
        spread_weights(two_tower.towers)
        paths = export_towers(two_tower, root / name)
        user, item = models.tower_columns()
        for side, tower, columns in (
            ("user", two_tower.user_model, user),
            ("item", two_tower.item_model, item),
        ):
            cases[f"{name}_{side}_tower"] = _case(
                f"{name}_{side}_tower",
                tower,
                paths[f"{side}_tower"],
                columns,
                f"{side}_embedding",
                7,
            )
        cases[f"{name}_model"] = two_tower
    return cases


CASE_NAMES = [
    "raw_id_ranker",
    "deepfm",
    "din",
    "wdl",
    "dcn",
    "dssm_user_tower",
    "dssm_item_tower",
    "youtubednn_user_tower",
    "youtubednn_item_tower",
]
