"""Wide & Deep: a linear model and a DNN trained jointly."""

from keras_rec.features.encoder import FeatureEncoder
from keras_rec.models.deepfm import check_column_lists
from keras_rec.models.deepfm import check_ranking_arguments
from keras_rec.models.deepfm import dnn_logit
from keras_rec.models.deepfm import prediction
from keras_rec.models.ranking_model import RankingModel


def WDL(
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
    """Wide & Deep: memorisation by a linear model, generalisation by a DNN.

    wide: linear logit over `linear_feature_columns` (put crossed features
    there as sparse columns); deep: embeddings + dense features -> DNN ->
    DNN logit; output = PredictionLayer(wide + deep). With empty
    `dnn_hidden_units` it is logistic regression.

    Args:
        linear_feature_columns: list of feature columns of the wide part.
        dnn_feature_columns: list of feature columns of the deep part.
        dnn_hidden_units: sequence of int. Defaults to `(256, 128, 64)`.
        l2_reg_linear: float. Defaults to 1e-5.
        l2_reg_embedding: float. Defaults to 1e-5.
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
        A functional `keras.Model` returning `(batch, 1)`; its logits are the
        layers `linear` and `dnn_logit`.

    Example:

    >>> columns = [SparseFeat("user_id", 944, 8), SparseFeat("item_id", 1683, 8)]
    >>> model = WDL(columns, columns, dnn_hidden_units=(64, 32))

    References:
        - Cheng et al., "Wide & Deep Learning for Recommender Systems",
          DLRS 2016.
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
    encoder = FeatureEncoder(
        linear_columns + dnn_columns, l2_reg_embedding, seed, fuse_tables
    )

    logits = [encoder.linear_logit(linear_columns, l2_reg=l2_reg_linear, seed=seed)]
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
    inputs = (
        encoder.input_list if dnn_hidden_units else encoder.inputs_for(linear_columns)
    )
    return RankingModel(inputs, prediction(logits, task), name="wdl")
