"""keras_rec: two-stage recommenders (recall and ranking) on Keras 3."""

# Importing the models and layers registers every keras_rec class with Keras,
# so `keras.models.load_model` needs no `custom_objects` after `import keras_rec`.
from keras_rec import layers
from keras_rec import optimizers
from keras_rec.features import DenseFeat
from keras_rec.features import FeatureEncoder
from keras_rec.features import SparseFeat
from keras_rec.features import VarLenSparseFeat
from keras_rec.features import get_feature_names
from keras_rec.features import to_model_inputs
from keras_rec.models import DCN
from keras_rec.models import DIN
from keras_rec.models import DSSM
from keras_rec.models import WDL
from keras_rec.models import DeepFM
from keras_rec.models import TwoTowerModel
from keras_rec.models import YoutubeDNN
from keras_rec.version import __version__

__all__ = [
    "DCN",
    "DIN",
    "DSSM",
    "WDL",
    "DeepFM",
    "DenseFeat",
    "FeatureEncoder",
    "SparseFeat",
    "TwoTowerModel",
    "VarLenSparseFeat",
    "YoutubeDNN",
    "__version__",
    "get_feature_names",
    "layers",
    "optimizers",
    "to_model_inputs",
]
