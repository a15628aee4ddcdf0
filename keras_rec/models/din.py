"""DIN: attention of the candidate over the user's behaviour sequence."""

import keras

from keras_rec.features.columns import SparseFeat
from keras_rec.features.columns import VarLenSparseFeat
from keras_rec.features.columns import check_feature_columns
from keras_rec.features.encoder import FeatureEncoder
from keras_rec.layers.attention_pooling import AttentionPoolingLayer
from keras_rec.models.deepfm import check_ranking_arguments
from keras_rec.models.deepfm import dnn_logit
from keras_rec.models.deepfm import prediction
from keras_rec.models.ranking_model import RankingModel

HISTORY_PREFIX = "hist_"


# DeepCTR's default; `att_hidden_size` may replace it, not contradict it.
ATT_HIDDEN_UNITS = (80, 40)


def DIN(
    dnn_feature_columns,
    history_feature_list,
    dnn_use_bn=False,
    dnn_hidden_units=(256, 128, 64),
    dnn_activation="relu",
    att_hidden_units=ATT_HIDDEN_UNITS,
    att_activation="dice",
    att_weight_normalization=False,
    l2_reg_dnn=0,
    l2_reg_embedding=1e-6,
    dnn_dropout=0,
    seed=1024,
    task="binary",
    pool_history=False,
    att_hidden_size=None,
):
    """Deep Interest Network: the user's interest depends on the candidate.

    query = concat of the candidate's embeddings (e.g. item_id, category);
    keys = concat of the matching behaviour sequences (`hist_item_id`,
    `hist_category`), padded positions masked through Keras's mask;
    interest = AttentionPoolingLayer(query, keys) (batch, d), scores not
    softmax-normalised by default; DNN over [all scalar embeddings, interest,
    other pooled sequences (e.g. genres), dense features] -> logit. With
    `pool_history=True` the behaviour sequences are also pooled with their
    own combiner (candidate-independent, as the base model of the paper and
    its reference code feed the sum-pooled behaviours) and join the DNN input
    next to the interest.

    Args:
        dnn_feature_columns: list of feature columns. For each history
            feature `name` it holds the candidate `SparseFeat("name")` and a
            `VarLenSparseFeat("hist_name")` of the same `embedding_dim`
            (usually sharing its table through `embedding_name`).
        history_feature_list: list of str (candidate names; the sequence is
            `hist_<name>`) or dict `{candidate_name: history_name}`.
        dnn_use_bn: bool. Defaults to `False`.
        dnn_hidden_units: sequence of int, non-empty. Defaults to
            `(256, 128, 64)`.
        dnn_activation: str. Defaults to `"relu"`.
        att_hidden_units: sequence of int. Hidden layers of the activation
            unit. Defaults to `(80, 40)`.
        att_activation: str. `"dice"`, `"prelu"` or a Keras activation.
            Defaults to `"dice"`.
        att_weight_normalization: bool. Softmax over the valid positions
            instead of raw scores. Defaults to `False`.
        l2_reg_dnn: float. Defaults to 0.
        l2_reg_embedding: float. Defaults to 1e-6.
        dnn_dropout: float in [0, 1). Defaults to 0.
        seed: int. Defaults to 1024.
        task: str. `"binary"` or `"regression"`. Defaults to `"binary"`.
        pool_history: bool. Also feed each behaviour sequence, pooled with
            its `combiner`, to the DNN. Defaults to `False`.
        att_hidden_size: sequence of int or None. DeepCTR's name for
            `att_hidden_units` (give one of the two). Defaults to None.

    Returns:
        A functional `keras.Model` returning `(batch, 1)`; the pooled
        interest is the layer `attention_pooling`.

    Example:

    >>> item = SparseFeat("item_id", 1683, 8)
    >>> columns = [
    ...     SparseFeat("user_id", 944, 8),
    ...     item,
    ...     VarLenSparseFeat(
    ...         SparseFeat("hist_item_id", 1683, 8, embedding_name="item_id"),
    ...         maxlen=50,
    ...     ),
    ... ]
    >>> model = DIN(columns, ["item_id"])

    References:
        - Zhou et al., "Deep Interest Network for Click-Through Rate
          Prediction", KDD 2018.
    """
    dnn_hidden_units = check_ranking_arguments(
        dnn_hidden_units,
        dnn_dropout,
        task,
        seed,
        l2_reg_dnn=l2_reg_dnn,
        l2_reg_embedding=l2_reg_embedding,
    )
    if not dnn_hidden_units:
        raise ValueError(
            "`dnn_hidden_units` must not be empty for DIN. "
            f"Received: dnn_hidden_units={dnn_hidden_units!r}"
        )
    if att_hidden_size is not None:
        if tuple(att_hidden_units) != ATT_HIDDEN_UNITS:
            raise ValueError(
                "Give `att_hidden_units` or its DeepCTR name `att_hidden_size`, "
                f"not both. Received: att_hidden_units={att_hidden_units!r}, "
                f"att_hidden_size={att_hidden_size!r}"
            )
        att_hidden_units = att_hidden_size
    att_hidden_units = tuple(att_hidden_units)
    if not att_hidden_units:
        raise ValueError(
            "`att_hidden_units` must not be empty. "
            f"Received: att_hidden_units={att_hidden_units!r}"
        )
    columns = check_feature_columns(dnn_feature_columns, "dnn_feature_columns")
    pairs = history_pairs(columns, history_feature_list)
    encoder = FeatureEncoder(columns, l2_reg_embedding, seed)
    embedded = encoder.embeddings(FeatureEncoder.sparse_columns(columns))

    query = _concat([embedded[c] for c, _ in pairs], "query")  # (batch, k*d)
    keys = _concat([embedded[h] for _, h in pairs], "keys")  # (batch, T, k*d), masked
    interest = AttentionPoolingLayer(
        att_hidden_units,
        att_activation,
        weight_normalization=att_weight_normalization,
        name="attention_pooling",
    )(query, keys)  # (batch, k*d)

    history = {h for _, h in pairs}
    others = [
        c
        for c in encoder.varlen_columns(columns)
        if pool_history or c.name not in history
    ]
    parts = [embedded[c.name] for c in encoder.scalar_sparse_columns(columns)]
    parts.append(interest)
    parts += list(encoder.pooled_embeddings(others).values())
    dense = encoder.dense_values(columns)
    if dense is not None:
        parts.append(dense)
    x = keras.layers.Concatenate(name="din_input")(parts)
    logit = dnn_logit(
        x,
        dnn_hidden_units,
        dnn_activation,
        l2_reg_dnn,
        dnn_dropout,
        dnn_use_bn,
        seed,
    )
    return RankingModel(encoder.input_list, prediction([logit], task), name="din")


def history_pairs(columns, history_feature_list):
    """Resolves `history_feature_list` to `[(candidate_name, history_name)]`.

    Raises:
        ValueError: a name without its candidate `SparseFeat` or its history
            `VarLenSparseFeat`, mismatched embedding dims or sequence lengths.
    """
    if isinstance(history_feature_list, str):
        history_feature_list = [history_feature_list]
    if isinstance(history_feature_list, dict):
        pairs = list(history_feature_list.items())
    elif isinstance(history_feature_list, (list, tuple)):
        pairs = [(name, f"{HISTORY_PREFIX}{name}") for name in history_feature_list]
    else:
        pairs = None
    if not pairs:
        raise ValueError(
            "`history_feature_list` must be a non-empty list of feature names or a "
            "dict {candidate_name: history_name}. "
            f"Received: history_feature_list={history_feature_list!r}"
        )
    by_name = {c.name: c for c in columns}
    maxlens = set()
    for candidate, history in pairs:
        if not isinstance(by_name.get(candidate), SparseFeat):
            raise ValueError(
                f"DIN history feature '{candidate}' has no candidate SparseFeat named "
                f"'{candidate}' in `dnn_feature_columns`. Received: "
                f"history_feature_list={history_feature_list!r}"
            )
        if not isinstance(by_name.get(history), VarLenSparseFeat):
            raise ValueError(
                f"DIN history feature '{candidate}' has no matching behaviour "
                f"sequence: `dnn_feature_columns` holds no VarLenSparseFeat named "
                f"'{history}'. Received: history_feature_list={history_feature_list!r}"
            )
        if by_name[candidate].embedding_dim != by_name[history].embedding_dim:
            raise ValueError(
                f"DIN history feature '{candidate}' and its sequence '{history}' must "
                "have the same embedding_dim. Received: "
                f"{by_name[candidate].embedding_dim} and "
                f"{by_name[history].embedding_dim}"
            )
        maxlens.add(by_name[history].maxlen)
    if len(maxlens) > 1:
        raise ValueError(
            "All DIN behaviour sequences must have the same maxlen. Received: "
            f"{ {h: by_name[h].maxlen for _, h in pairs} }"
        )
    return pairs


def _concat(tensors, name):
    # Concatenate keeps the sequences' padding masks (a position is valid if
    # it is valid in any of them; aligned sequences share their padding).
    if len(tensors) == 1:
        return tensors[0]
    return keras.layers.Concatenate(axis=-1, name=name)(tensors)
