"""keras_rec: two-stage recommenders (recall and ranking) on Keras 3."""

from keras_rec.features import DenseFeat
from keras_rec.features import FeatureEncoder
from keras_rec.features import SparseFeat
from keras_rec.features import VarLenSparseFeat
from keras_rec.features import to_model_inputs
from keras_rec.version import __version__

__all__ = [
    "DenseFeat",
    "FeatureEncoder",
    "SparseFeat",
    "VarLenSparseFeat",
    "__version__",
    "to_model_inputs",
]
