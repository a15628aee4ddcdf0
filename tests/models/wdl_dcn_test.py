"""CrossNet against its NumPy formula; WDL and DCN plumbing, errors, learning."""

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from keras_rec.features import SparseFeat
from keras_rec.layers import CrossNet
from keras_rec.models import DCN
from keras_rec.models import WDL
from tests.models.ranking_data import run
from tests.models.ranking_data import tiny_columns
from tests.models.ranking_data import tiny_inputs

# On a pure two-way interaction (label logit = 3 * T[a, b], T with zero row
# and column means) logistic regression sits at AUC 0.5 by construction;
# WDL and DCN reach about 0.75-0.80 (the Bayes AUC is about 0.83) after 4
# epochs on 6000 rows.
INTERACTION_OVER_LINEAR_AUC = 0.15


def numpy_cross(x0, kernels, biases, parameterization):
    x = x0
    for w, b in zip(kernels, biases):
        if parameterization == "vector":
            x = x0 * (x @ w) + b + x  # (batch, d) * (batch, 1)
        else:
            x = x0 * (x @ w + b) + x
    return x


@pytest.mark.parametrize("parameterization", ["vector", "matrix"])
def test_cross_net_matches_numpy(parameterization):
    rng = np.random.default_rng(0)
    layer = CrossNet(num_layers=3, parameterization=parameterization, seed=1)
    x0 = rng.normal(size=(5, 6)).astype("float32")
    layer.build(x0.shape)
    # Non-zero biases so their placement in the formula is tested.
    weights = [rng.normal(size=w.shape).astype("float32") for w in layer.weights]
    layer.set_weights(weights)
    kernels, biases = weights[0::2], weights[1::2]
    assert kernels[0].shape == ((6, 1) if parameterization == "vector" else (6, 6))
    expected = numpy_cross(x0.astype("float64"), kernels, biases, parameterization)
    got = keras.ops.convert_to_numpy(layer(x0))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_one_vector_cross_layer_is_a_degree_two_polynomial():
    # x1 = x0 (x0 . w) + b + x0: scaling x0 by s scales the cross term by s^2.
    layer = CrossNet(num_layers=1)
    x0 = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    layer.build(x0.shape)
    w = np.array([[0.5], [-1.0], [2.0]], "float32")
    layer.set_weights([w, np.zeros(3, "float32")])

    def cross_term(x):
        return keras.ops.convert_to_numpy(layer(x)) - x

    np.testing.assert_allclose(cross_term(2 * x0), 4 * cross_term(x0), rtol=1e-5)


def test_cross_net_config_round_trip_and_errors():
    layer = CrossNet(num_layers=4, parameterization="matrix", l2_reg=0.01, seed=7)
    clone = CrossNet.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert len(CrossNet(num_layers=2, l2_reg=0.1)(np.ones((2, 3))).shape) == 2
    with pytest.raises(ValueError, match="num_layers=0"):
        CrossNet(num_layers=0)
    with pytest.raises(ValueError, match="parameterization='diagonal'"):
        CrossNet(parameterization="diagonal")
    with pytest.raises(ValueError, match="l2_reg=-1"):
        CrossNet(l2_reg=-1)


def _outputs(model, names, x):
    parts = keras.Model(model.inputs, {n: model.get_layer(n).output for n in names})
    return run(parts, x)


def test_wdl_logit_is_wide_plus_deep():
    columns = tiny_columns()
    model = WDL(columns[:3], columns, dnn_hidden_units=(8,))
    out = _outputs(model, ("linear", "dnn_logit", "logit"), tiny_inputs(8))
    np.testing.assert_allclose(
        out["logit"], out["linear"] + out["dnn_logit"], atol=1e-6
    )


def test_wdl_without_dnn_is_logistic_regression():
    columns = tiny_columns()
    model = WDL(columns, columns, dnn_hidden_units=())
    assert not [layer for layer in model.layers if "dnn" in layer.name]
    x = tiny_inputs(8)
    linear = _outputs(model, ("linear",), x)["linear"]
    np.testing.assert_allclose(run(model, x), 1 / (1 + np.exp(-linear)), atol=1e-6)


@pytest.mark.parametrize("parameterization", ["vector", "matrix"])
def test_dcn_logit_is_linear_plus_cross_and_deep(parameterization):
    columns = tiny_columns()
    model = DCN(
        columns,
        columns,
        cross_num=2,
        cross_parameterization=parameterization,
        dnn_hidden_units=(8,),
    )
    x = tiny_inputs(8)
    out = _outputs(model, ("linear", "cross_dnn_logit", "logit", "cross"), x)
    np.testing.assert_allclose(
        out["logit"], out["linear"] + out["cross_dnn_logit"], atol=1e-6
    )
    # The cross network reads x0 = [embeddings, dense] and applies the formula.
    x0 = run(keras.Model(model.inputs, model.get_layer("cross").input), x)
    assert x0.shape == (8, 4 * 4 + 3)
    weights = model.get_layer("cross").get_weights()
    expected = numpy_cross(
        x0.astype("float64"), weights[0::2], weights[1::2], parameterization
    )
    np.testing.assert_allclose(out["cross"], expected, rtol=1e-4, atol=1e-5)


def test_dcn_variants_and_errors():
    columns = tiny_columns()
    cross_only = DCN(columns, columns, dnn_hidden_units=())
    assert cross_only.get_layer("cross").num_layers == 2
    deep_only = DCN(columns, columns, cross_num=0, dnn_hidden_units=(4,))
    assert not [layer for layer in deep_only.layers if layer.name == "cross"]
    with pytest.raises(ValueError, match="cross_num=-1"):
        DCN(columns, columns, cross_num=-1)
    with pytest.raises(ValueError, match="cross_parameterization='low_rank'"):
        DCN(columns, columns, cross_parameterization="low_rank")
    with pytest.raises(ValueError, match="cross_num=0, dnn_hidden_units"):
        DCN(columns, columns, cross_num=0, dnn_hidden_units=())
    with pytest.raises(ValueError, match="l2_reg_cross=-0.1"):
        DCN(columns, columns, l2_reg_cross=-0.1)
    with pytest.raises(ValueError, match="dnn_feature_columns"):
        DCN(columns, [])
    with pytest.raises(ValueError, match="dnn_feature_columns"):
        WDL(columns, [], dnn_hidden_units=(4,))
    with pytest.raises(ValueError, match="seed"):
        WDL(columns, columns, seed="abc")


def _interaction_data(n, seed):
    rng = np.random.default_rng(seed)
    table = np.random.default_rng(99).normal(size=(10, 10))
    table -= table.mean(0) + table.mean(1)[:, None] - table.mean()
    a, b = rng.integers(1, 11, n), rng.integers(1, 11, n)
    p = 1 / (1 + np.exp(-3 * table[a - 1, b - 1]))
    x = {"a": a.astype("int32"), "b": b.astype("int32")}
    return x, (rng.random(n) < p).astype("float32")


def test_wdl_and_dcn_learn_a_pure_interaction_that_linear_cannot():
    columns = [SparseFeat("a", 11, 4), SparseFeat("b", 11, 4)]
    x_train, y_train = _interaction_data(6000, 0)
    x_test, y_test = _interaction_data(4000, 1)
    aucs = {}
    for name, build in {
        "linear": lambda: WDL(columns, columns, dnn_hidden_units=()),
        "wdl": lambda: WDL(columns, columns, dnn_hidden_units=(32, 16)),
        "dcn": lambda: DCN(columns, columns, cross_num=2, dnn_hidden_units=(32, 16)),
    }.items():
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
        model.fit(x_train, y_train, batch_size=256, epochs=4, verbose=0)
        aucs[name] = roc_auc_score(y_test, run(model, x_test)[:, 0])
    assert aucs["wdl"] >= aucs["linear"] + INTERACTION_OVER_LINEAR_AUC, aucs
    assert aucs["dcn"] >= aucs["linear"] + INTERACTION_OVER_LINEAR_AUC, aucs
