"""Layers of keras_rec: the building blocks of every model."""

from keras_rec.layers.activations import Dice
from keras_rec.layers.activations import activation_layer
from keras_rec.layers.attention_pooling import AttentionPoolingLayer
from keras_rec.layers.cosine_similarity import CosineSimilarity
from keras_rec.layers.cosine_similarity import CosinSimilarity
from keras_rec.layers.cosine_similarity import L2Normalization
from keras_rec.layers.fm import FM
from keras_rec.layers.linear import Linear
from keras_rec.layers.masking import PaddingMask
from keras_rec.layers.mlp import DNN
from keras_rec.layers.prediction import PredictionLayer
from keras_rec.layers.sequence_pooling import SequencePoolingLayer

__all__ = [
    "DNN",
    "FM",
    "AttentionPoolingLayer",
    "CosinSimilarity",
    "CosineSimilarity",
    "Dice",
    "L2Normalization",
    "Linear",
    "PaddingMask",
    "PredictionLayer",
    "SequencePoolingLayer",
    "activation_layer",
]
