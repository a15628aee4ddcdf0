"""Feature columns and the `FeatureEncoder` that turns them into model inputs."""

from keras_rec.features.columns import DenseFeat
from keras_rec.features.columns import SparseFeat
from keras_rec.features.columns import VarLenSparseFeat
from keras_rec.features.columns import check_feature_columns
from keras_rec.features.columns import get_feature_names
from keras_rec.features.encoder import FeatureEncoder
from keras_rec.features.inputs import to_model_inputs

__all__ = [
    "DenseFeat",
    "FeatureEncoder",
    "SparseFeat",
    "VarLenSparseFeat",
    "check_feature_columns",
    "get_feature_names",
    "to_model_inputs",
]
