"""DCN: a cross network and a DNN side by side on the same input."""

import numbers

import keras

from keras_rec.features.encoder import FeatureEncoder
from keras_rec.layers.cross_network import CrossNet
from keras_rec.layers.mlp import DNN
from keras_rec.models.deepfm import check_column_lists
from keras_rec.models.deepfm import check_ranking_arguments
from keras_rec.models.deepfm import prediction
from keras_rec.models.ranking_model import RankingModel

_PARAMETERIZATIONS = ("vector", "matrix")


def DCN(
    linear_feature_columns,
    dnn_feature_columns,
    cross_num=2,
    cross_parameterization="vector",
    dnn_hidden_units=(256, 128, 64),
    l2_reg_linear=1e-5,
    l2_reg_embedding=1e-5,
    l2_reg_cross=1e-5,
    l2_reg_dnn=0,
    dnn_dropout=0,
    dnn_activation="relu",
    dnn_use_bn=False,
    seed=1024,
    task="binary",
    fuse_tables=True,
):
    """Deep & Cross Network: explicit bounded-degree crosses next to a DNN.

    x_0 = embeddings + dense features; cross network (`cross_num` layers)
    and DNN both read x_0; their outputs are concatenated -> Dense(1) =
    cross/deep logit (layer `cross_dnn_logit`); output =
    PredictionLayer(linear + cross/deep).

    Args:
        linear_feature_columns: list of feature columns of the linear part.
        dnn_feature_columns: list of feature columns of x_0.
        cross_num: int >= 0. Number of cross layers. Defaults to 2.
        cross_parameterization: str. `"vector"` (DCN) or `"matrix"`
            (DCN-M). Defaults to `"vector"`.
        dnn_hidden_units: sequence of int; empty for the cross network
            only. Defaults to `(256, 128, 64)`.
        l2_reg_linear: float. Defaults to 1e-5.
        l2_reg_embedding: float. Defaults to 1e-5.
        l2_reg_cross: float. L2 penalty on the cross kernels. Defaults to
            1e-5.
        l2_reg_dnn: float. Defaults to 0.
        dnn_dropout: float in [0, 1). Defaults to 0.
        dnn_activation: str. Defaults to `"relu"`.
        dnn_use_bn: bool. Defaults to `False`.
        seed: int. Defaults to 1024.
        task: str. `"binary"` or `"regression"`. Defaults to `"binary"`.
        fuse_tables: bool. One table (and one linear table) for the scalar
            sparse features of one embedding_dim, looked up in one gather;
            see `FeatureEncoder`. Same values, other variable layout.
            Defaults to `True` (about 12% less CPU per training example,
            BENCHMARKS.md); `False` keeps one `emb_<name>` / `linear_<name>`
            layer per feature.

    Returns:
        A functional `keras.Model` returning `(batch, 1)`.

    Example:

    >>> columns = [SparseFeat("user_id", 944, 8), SparseFeat("item_id", 1683, 8)]
    >>> model = DCN(columns, columns, cross_num=3, dnn_hidden_units=(64, 32))

    References:
        - Wang et al., "Deep & Cross Network for Ad Click Predictions",
          ADKDD 2017.
        - Wang et al., "DCN V2: Improved Deep & Cross Network and Practical
          Lessons for Web-scale Learning to Rank Systems", WWW 2021.
    """
    dnn_hidden_units = check_ranking_arguments(
        dnn_hidden_units,
        dnn_dropout,
        task,
        seed,
        l2_reg_linear=l2_reg_linear,
        l2_reg_embedding=l2_reg_embedding,
        l2_reg_cross=l2_reg_cross,
        l2_reg_dnn=l2_reg_dnn,
    )
    if (
        isinstance(cross_num, bool)
        or not isinstance(cross_num, numbers.Integral)
        or (cross_num < 0)
    ):
        raise ValueError(
            f"`cross_num` must be an integer >= 0. Received: cross_num={cross_num!r}"
        )
    if cross_parameterization not in _PARAMETERIZATIONS:
        raise ValueError(
            f"`cross_parameterization` must be one of {_PARAMETERIZATIONS}. "
            f"Received: cross_parameterization={cross_parameterization!r}"
        )
    if cross_num == 0 and not dnn_hidden_units:
        raise ValueError(
            "DCN needs a cross network or a DNN: `cross_num` and `dnn_hidden_units` "
            "cannot both be empty. Received: cross_num=0, dnn_hidden_units=()"
        )
    linear_columns, dnn_columns = check_column_lists(
        linear_feature_columns, dnn_feature_columns, True
    )
    encoder = FeatureEncoder(
        linear_columns + dnn_columns, l2_reg_embedding, seed, fuse_tables
    )

    x0 = encoder.dnn_input(dnn_columns)  # (batch, d)
    branches = []
    if cross_num:
        branches.append(
            CrossNet(
                int(cross_num), cross_parameterization, l2_reg_cross, seed, name="cross"
            )(x0)
        )
    if dnn_hidden_units:
        branches.append(
            DNN(
                dnn_hidden_units,
                activation=dnn_activation,
                l2_reg=l2_reg_dnn,
                dropout_rate=dnn_dropout,
                use_bn=dnn_use_bn,
                seed=seed,
                name="dnn",
            )(x0)
        )
    stack = (
        branches[0]
        if len(branches) == 1
        else keras.layers.Concatenate(name="cross_dnn")(branches)
    )
    cross_dnn_logit = keras.layers.Dense(
        1,
        use_bias=False,
        kernel_initializer=keras.initializers.GlorotNormal(seed=seed),
        name="cross_dnn_logit",
    )(stack)
    linear = encoder.linear_logit(linear_columns, l2_reg=l2_reg_linear, seed=seed)
    return RankingModel(
        encoder.input_list, prediction([linear, cross_dnn_logit], task), name="dcn"
    )
