"""DSSM: a DNN tower for users, a DNN tower for items, cosine similarity."""

import keras

from keras_rec.features.columns import SparseFeat
from keras_rec.features.columns import check_feature_columns
from keras_rec.features.encoder import FeatureEncoder
from keras_rec.layers.cosine_similarity import L2Normalization
from keras_rec.layers.mlp import DNN
from keras_rec.models.two_tower import ITEM_EMBEDDING
from keras_rec.models.two_tower import USER_EMBEDDING
from keras_rec.models.two_tower import TwoTowerModel

_ITEM_SEED_OFFSET = 10_007


def DSSM(
    user_feature_columns,
    item_feature_columns,
    user_dnn_hidden_units=(64, 32),
    item_dnn_hidden_units=(64, 32),
    dnn_activation="relu",
    dnn_use_bn=False,
    dnn_dropout=0.0,
    l2_reg_dnn=0.0,
    l2_reg_embedding=1e-6,
    temperature=0.05,
    loss_type="softmax",
    item_id_feature=None,
    num_sampled=0,
    sampler="uniform",
    item_counts=None,
    logq_correction=True,
    remove_accidental_hits=True,
    item_feature_table=None,
    seed=1024,
):
    """Deep Structured Semantic Model: two DNN towers compared by cosine.

    user features -> DNN -> L2 norm = u;  item features -> DNN -> L2 norm = v;
    score = cos(u, v) / temperature. The last layer of each tower is linear,
    so embeddings can point anywhere on the sphere.

    Args:
        user_feature_columns: list of feature columns of the user tower.
        item_feature_columns: list of feature columns of the item tower (the
            item id plus any side features: category, price, ...).
        user_dnn_hidden_units: sequence of int. Defaults to `(64, 32)`.
        item_dnn_hidden_units: sequence of int. Its last entry must equal the
            user tower's. Defaults to `(64, 32)`.
        dnn_activation: str. Defaults to `"relu"`.
        dnn_use_bn: bool. Defaults to `False`.
        dnn_dropout: float. Defaults to 0.
        l2_reg_dnn: float. Defaults to 0.
        l2_reg_embedding: float. Defaults to 1e-6.
        temperature: float > 0. Defaults to 0.05.
        loss_type: str. `"softmax"` (in-batch, with log-Q correction),
            `"sampled_softmax"` or `"binary"` (labelled pairs). Defaults to
            `"softmax"`.
        item_id_feature: str. Name of the item-id feature. Defaults to the
            first `SparseFeat` of `item_feature_columns`.
        num_sampled, sampler, item_counts, logq_correction,
        remove_accidental_hits, item_feature_table: see `TwoTowerModel`.
        seed: int. Defaults to 1024.

    Returns:
        A `TwoTowerModel` with `user_model` and `item_model`.

    Example:

    >>> user = [SparseFeat("user_id", 944, 32)]
    >>> item = [SparseFeat("item_id", 1683, 32)]
    >>> model = DSSM(user, item)
    >>> model.compile("adam")

    References:
        - Huang et al., "Learning Deep Structured Semantic Models for Web
          Search using Clickthrough Data", CIKM 2013.
        - Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus
          Item Recommendations", RecSys 2019.
    """
    user_columns = check_feature_columns(user_feature_columns, "user_feature_columns")
    item_columns = check_feature_columns(item_feature_columns, "item_feature_columns")
    _check_last_units(user_dnn_hidden_units, item_dnn_hidden_units)
    item_id_feature, num_items = resolve_item_id(item_columns, item_id_feature)
    encoder = FeatureEncoder(user_columns + item_columns, l2_reg_embedding, seed)

    def tower(columns, units, side):
        x = encoder.dnn_input(columns)
        x = DNN(
            units,
            activation=dnn_activation,
            l2_reg=l2_reg_dnn,
            dropout_rate=dnn_dropout,
            use_bn=dnn_use_bn,
            output_activation="linear",
            # Layers of the same shape start from the same kernels in both
            # towers (better on the validation target than independent
            # ones), but each tower draws its own dropout masks: with one
            # dropout seed, a row's user and item got the same mask, a
            # pattern the in-batch softmax matched pairs by.
            seed=seed,
            dropout_seed=(
                seed if seed is None or side == "user" else seed + _ITEM_SEED_OFFSET
            ),
            name=f"{side}_dnn",
        )(x)
        return L2Normalization(name=f"{side}_embedding")(x)

    towers = keras.Model(
        encoder.input_list,
        {
            USER_EMBEDDING: tower(user_columns, user_dnn_hidden_units, "user"),
            ITEM_EMBEDDING: tower(item_columns, item_dnn_hidden_units, "item"),
        },
        name="dssm_towers",
    )
    return TwoTowerModel(
        towers,
        user_feature_names=[t.name for t in encoder.inputs_for(user_columns)],
        item_feature_names=[t.name for t in encoder.inputs_for(item_columns)],
        item_id_feature=item_id_feature,
        temperature=temperature,
        loss_type=loss_type,
        num_items=num_items,
        num_sampled=num_sampled,
        sampler=sampler,
        item_counts=item_counts,
        logq_correction=logq_correction,
        remove_accidental_hits=remove_accidental_hits,
        frequency_estimator=default_frequency_estimator(num_items),
        item_feature_table=item_feature_table,
        seed=seed,
        name="dssm",
    )


def _check_last_units(user_units, item_units):
    if tuple(user_units)[-1:] != tuple(item_units)[-1:]:
        raise ValueError(
            "The last hidden layer of both towers must have the same width. "
            f"Received: user_dnn_hidden_units={tuple(user_units)}, "
            f"item_dnn_hidden_units={tuple(item_units)}"
        )


def resolve_item_id(item_columns, item_id_feature):
    """The item-id column's name and vocabulary size."""
    sparse = [c for c in item_columns if isinstance(c, SparseFeat)]
    if item_id_feature is None:
        if not sparse:
            raise ValueError(
                "`item_feature_columns` needs a SparseFeat for the item id."
            )
        column = sparse[0]
    else:
        matches = [c for c in sparse if c.name == item_id_feature]
        if not matches:
            raise ValueError(
                "`item_id_feature` must name a SparseFeat of item_feature_columns "
                f"{[c.name for c in sparse]}. Received: item_id_feature={item_id_feature!r}"
            )
        column = matches[0]
    return column.name, column.vocabulary_size


def default_frequency_estimator(num_items):
    """Estimator arrays sized to the vocabulary (fewer collisions, small saves)."""
    size = 1024
    while size < 2 * (num_items or 0):
        size *= 2
    return {"hash_bucket_size": min(size, 2**22), "num_hashes": 2, "alpha": 0.01}
