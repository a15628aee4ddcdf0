"""YoutubeDNN: a deep user tower against the item embedding table, sampled softmax."""

import keras

from keras_rec.features.columns import check_feature_columns
from keras_rec.features.encoder import FeatureEncoder
from keras_rec.layers.cosine_similarity import L2Normalization
from keras_rec.layers.mlp import DNN
from keras_rec.models.dssm import default_frequency_estimator
from keras_rec.models.dssm import resolve_item_id
from keras_rec.models.two_tower import ITEM_EMBEDDING
from keras_rec.models.two_tower import USER_EMBEDDING
from keras_rec.models.two_tower import TwoTowerModel


def YoutubeDNN(
    user_feature_columns,
    item_feature_columns,
    user_dnn_hidden_units=(64, 32),
    dnn_activation="relu",
    dnn_use_bn=False,
    dnn_dropout=0.0,
    l2_reg_dnn=0.0,
    l2_reg_embedding=1e-6,
    temperature=0.05,
    loss_type="sampled_softmax",
    num_sampled=100,
    sampler=None,
    item_counts=None,
    item_id_feature=None,
    item_feature_table=None,
    logq_correction=True,
    remove_accidental_hits=True,
    seed=1024,
):
    """Deep candidate generation of YouTube: extreme multiclass over items.

    user features (mean-pooled watch / search histories, user attributes,
    example age) -> DNN -> L2 norm = u. The item side is the item embedding
    table itself (shared with the history through `embedding_name`), L2
    normalised; with item side features, they are concatenated to the item
    embedding and projected to the user tower's width. Trained with a
    sampled softmax over the whole vocabulary (or in-batch softmax with
    `loss_type="softmax"`).

    Args:
        user_feature_columns: list of feature columns of the user tower.
        item_feature_columns: list of feature columns of the item side: the
            item id, optionally side features.
        user_dnn_hidden_units: sequence of int. Its last entry is the
            embedding width; without item side features it must equal the
            item id's `embedding_dim`. Defaults to `(64, 32)`.
        dnn_activation, dnn_use_bn, dnn_dropout, l2_reg_dnn,
        l2_reg_embedding: see `DSSM`.
        temperature: float > 0. Defaults to 0.05.
        loss_type: str. `"sampled_softmax"` (default) or `"softmax"`.
        num_sampled: int. Sampled negatives per batch. Defaults to 100.
        sampler: str. `"uniform"` or `"unigram"`. Defaults to `"unigram"`
            when `item_counts` are given, else `"uniform"`.
        item_counts: list of float, one per item id.
        item_id_feature: str. Defaults to the first `SparseFeat` of
            `item_feature_columns`.
        item_feature_table: dict name -> array `(num_items, ...)`: side
            features of every item, needed so sampled items carry them.
        logq_correction, remove_accidental_hits: see `TwoTowerModel`.
        seed: int. Defaults to 1024.

    Returns:
        A `TwoTowerModel` with `user_model` and `item_model`.

    References:
        - Covington et al., "Deep Neural Networks for YouTube
          Recommendations", RecSys 2016.
    """
    user_columns = check_feature_columns(user_feature_columns, "user_feature_columns")
    item_columns = check_feature_columns(item_feature_columns, "item_feature_columns")
    item_id_feature, num_items = resolve_item_id(item_columns, item_id_feature)
    if sampler is None:
        sampler = "unigram" if item_counts is not None else "uniform"
    encoder = FeatureEncoder(user_columns + item_columns, l2_reg_embedding, seed)
    width = tuple(user_dnn_hidden_units)[-1]

    user_vector = DNN(
        user_dnn_hidden_units,
        activation=dnn_activation,
        l2_reg=l2_reg_dnn,
        dropout_rate=dnn_dropout,
        use_bn=dnn_use_bn,
        output_activation="linear",
        seed=seed,
        name="user_dnn",
    )(encoder.dnn_input(user_columns))

    item_id_column = [c for c in item_columns if c.name == item_id_feature]
    side_columns = [c for c in item_columns if c.name != item_id_feature]
    item_vector = encoder.embeddings(item_id_column)[item_id_feature]
    if side_columns:
        item_vector = keras.layers.Concatenate(name="item_features")(
            [item_vector, encoder.dnn_input(side_columns)]
        )
        item_vector = keras.layers.Dense(width, name="item_projection")(item_vector)
    elif item_vector.shape[-1] != width:
        raise ValueError(
            "Without item side features the item embedding is the item id's "
            f"embedding, so its embedding_dim ({item_vector.shape[-1]}) must equal "
            f"the last user_dnn_hidden_units ({width}). Received: "
            f"user_dnn_hidden_units={tuple(user_dnn_hidden_units)}"
        )
    towers = keras.Model(
        encoder.input_list,
        {
            USER_EMBEDDING: L2Normalization(name=USER_EMBEDDING)(user_vector),
            ITEM_EMBEDDING: L2Normalization(name=ITEM_EMBEDDING)(item_vector),
        },
        name="youtubednn_towers",
    )
    return TwoTowerModel(
        towers,
        user_feature_names=[t.name for t in encoder.inputs_for(user_columns)],
        item_feature_names=[t.name for t in encoder.inputs_for(item_columns)],
        item_id_feature=item_id_feature,
        temperature=temperature,
        loss_type=loss_type,
        num_items=num_items,
        num_sampled=num_sampled if loss_type == "sampled_softmax" else 0,
        sampler=sampler,
        item_counts=item_counts,
        logq_correction=logq_correction,
        remove_accidental_hits=remove_accidental_hits,
        frequency_estimator=default_frequency_estimator(num_items),
        item_feature_table=item_feature_table,
        seed=seed,
        name="youtubednn",
    )
