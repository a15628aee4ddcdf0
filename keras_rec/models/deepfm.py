"""DeepFM: linear logit + FM logit + DNN logit over shared embeddings."""

import numbers

import keras

from keras_rec.features.columns import check_feature_columns
from keras_rec.features.encoder import FeatureEncoder
from keras_rec.layers.fm import FM
from keras_rec.layers.mlp import DNN
from keras_rec.layers.prediction import PredictionLayer
from keras_rec.models.ranking_model import RankingModel

_TASKS = ("binary", "regression")


def DeepFM(
    linear_feature_columns,
    dnn_feature_columns,
    dnn_hidden_units=(256, 128, 64),
    l2_reg_linear=1e-5,
    l2_reg_embedding=1e-5,
    l2_reg_dnn=0,
    dnn_dropout=0,
    dnn_activation="relu",
    dnn_use_bn=False,
    seed=1024,
    task="binary",
    fuse_tables=True,
):
    """Deep Factorization Machine: FM and a DNN side by side on one embedding.

    sparse + dense features -> linear logit (first order);
    sparse embeddings (batch, fields, d) -> FM logit (second order);
    the same embeddings, flattened, + dense features -> DNN -> DNN logit;
    output = PredictionLayer(linear + fm + dnn).

    The FM and the DNN read the same embedding tables, so low- and high-order
    interactions are learned jointly with no feature engineering. The three
    logits are the layers named `linear`, `fm` and `dnn_logit`.

    Args:
        linear_feature_columns: list of feature columns of the linear part.
        dnn_feature_columns: list of feature columns of the FM (its sparse
            columns, all of one `embedding_dim`) and the DNN (all of them).
        dnn_hidden_units: sequence of int. Hidden layers of the DNN; empty
            for FM + linear only. Defaults to `(256, 128, 64)`.
        l2_reg_linear: float. L2 penalty on the linear weights. Defaults to
            1e-5.
        l2_reg_embedding: float. L2 penalty on the embedding tables.
            Defaults to 1e-5.
        l2_reg_dnn: float. L2 penalty on the DNN kernels. Defaults to 0.
        dnn_dropout: float in [0, 1). Dropout of the DNN. Defaults to 0.
        dnn_activation: str. Activation of the DNN. Defaults to `"relu"`.
        dnn_use_bn: bool. Batch norm in the DNN. Defaults to `False`.
        seed: int. Seed of the initializers and dropout. Defaults to 1024.
        task: str. `"binary"` (click probability) or `"regression"`.
            Defaults to `"binary"`.
        fuse_tables: bool. One table (and one linear table) for the scalar
            sparse features of one embedding_dim, looked up in one gather;
            see `FeatureEncoder`. Same values, other variable layout.
            Defaults to `True` (about 12% less CPU per training example,
            BENCHMARKS.md); `False` keeps one `emb_<name>` / `linear_<name>`
            layer per feature.

    Returns:
        A functional `keras.Model` taking the feature inputs (a dict by
        name, or `encoder.input_list` order) and returning `(batch, 1)`.

    Example:

    >>> columns = [SparseFeat("user_id", 944, 8), SparseFeat("item_id", 1683, 8)]
    >>> model = DeepFM(columns, columns, dnn_hidden_units=(64, 32))
    >>> model.compile("adam", "binary_crossentropy")

    References:
        - Guo et al., "DeepFM: A Factorization-Machine based Neural Network
          for CTR Prediction", IJCAI 2017.
    """
    dnn_hidden_units = check_ranking_arguments(
        dnn_hidden_units,
        dnn_dropout,
        task,
        seed,
        l2_reg_linear=l2_reg_linear,
        l2_reg_embedding=l2_reg_embedding,
        l2_reg_dnn=l2_reg_dnn,
    )
    linear_columns, dnn_columns = check_column_lists(
        linear_feature_columns, dnn_feature_columns, dnn_hidden_units
    )
    fm_columns = FeatureEncoder.sparse_columns(dnn_columns)
    if not fm_columns:
        raise ValueError(
            "DeepFM's FM part needs at least one SparseFeat or VarLenSparseFeat in "
            f"`dnn_feature_columns`. Received: dnn_feature_columns={dnn_columns!r}"
        )
    encoder = FeatureEncoder(
        linear_columns + dnn_columns, l2_reg_embedding, seed, fuse_tables
    )

    logits = [
        encoder.linear_logit(linear_columns, l2_reg=l2_reg_linear, seed=seed),
        FM(name="fm")(encoder.stacked_embeddings(fm_columns)),
    ]
    if dnn_hidden_units:
        logits.append(
            dnn_logit(
                encoder.dnn_input(dnn_columns),
                dnn_hidden_units,
                dnn_activation,
                l2_reg_dnn,
                dnn_dropout,
                dnn_use_bn,
                seed,
            )
        )
    return RankingModel(encoder.input_list, prediction(logits, task), name="deepfm")


def check_ranking_arguments(dnn_hidden_units, dnn_dropout, task, seed, **l2_regs):
    """Validates the arguments every ranking builder shares.

    Returns:
        `dnn_hidden_units` as a tuple of int (possibly empty).
    """
    try:
        units = tuple(dnn_hidden_units)
    except TypeError:
        units = None
    if units is None or not all(
        isinstance(u, numbers.Integral) and not isinstance(u, bool) and u > 0
        for u in units
    ):
        raise ValueError(
            "`dnn_hidden_units` must be a sequence of positive integers. "
            f"Received: dnn_hidden_units={dnn_hidden_units!r}"
        )
    if not isinstance(dnn_dropout, numbers.Real) or not 0 <= dnn_dropout < 1:
        raise ValueError(
            f"`dnn_dropout` must be in [0, 1). Received: dnn_dropout={dnn_dropout!r}"
        )
    if task not in _TASKS:
        raise ValueError(f"`task` must be one of {_TASKS}. Received: task={task!r}")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0
    ):
        raise ValueError(
            f"`seed` must be an integer >= 0 or None. Received: seed={seed!r}"
        )
    for name, value in l2_regs.items():
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or value < 0:
            raise ValueError(
                f"`{name}` must be a number >= 0. Received: {name}={value!r}"
            )
    return tuple(int(u) for u in units)


def check_column_lists(linear_feature_columns, dnn_feature_columns, dnn_hidden_units):
    """Validates the two column lists of a wide-and-deep style builder."""
    linear_columns = check_feature_columns(
        linear_feature_columns, "linear_feature_columns"
    )
    dnn_columns = check_feature_columns(dnn_feature_columns, "dnn_feature_columns")
    if not linear_columns:
        raise ValueError(
            "`linear_feature_columns` must hold at least one feature column. "
            f"Received: linear_feature_columns={linear_feature_columns!r}"
        )
    if dnn_hidden_units and not dnn_columns:
        raise ValueError(
            "`dnn_feature_columns` must hold at least one feature column when "
            f"`dnn_hidden_units` is not empty. Received: "
            f"dnn_feature_columns={dnn_feature_columns!r}"
        )
    return linear_columns, dnn_columns


def dnn_logit(
    x, hidden_units, activation, l2_reg, dropout, use_bn, seed, name="dnn_logit"
):
    """DNN tower followed by a bias-free `Dense(1)`: the deep logit `(batch, 1)`."""
    x = DNN(
        hidden_units,
        activation=activation,
        l2_reg=l2_reg,
        dropout_rate=dropout,
        use_bn=use_bn,
        seed=seed,
        name="dnn",
    )(x)
    return keras.layers.Dense(
        1,
        use_bias=False,
        kernel_initializer=keras.initializers.GlorotNormal(seed=seed),
        name=name,
    )(x)


def prediction(logits, task):
    """Sums the logits (layer `logit`) and applies the task's output function."""
    logit = logits[0] if len(logits) == 1 else keras.layers.Add(name="logit")(logits)
    return PredictionLayer(task, name="prediction")(logit)
