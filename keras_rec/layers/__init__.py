"""Layers of keras_rec: the building blocks of every model."""

from keras_rec.layers.activations import Dice
from keras_rec.layers.activations import activation_layer
from keras_rec.layers.attention_pooling import AttentionPoolingLayer
from keras_rec.layers.cosine_similarity import CosineSimilarity
from keras_rec.layers.cosine_similarity import CosinSimilarity
from keras_rec.layers.cosine_similarity import L2Normalization
from keras_rec.layers.cross_network import CrossNet
from keras_rec.layers.fm import FM
from keras_rec.layers.frequency_estimator import StreamingFrequencyEstimator
from keras_rec.layers.fused_embedding import FusedEmbedding
from keras_rec.layers.in_batch_softmax import InBatchSoftmax
from keras_rec.layers.item_feature_table import ItemFeatureTable
from keras_rec.layers.linear import Linear
from keras_rec.layers.masking import PaddingMask
from keras_rec.layers.mlp import DNN
from keras_rec.layers.prediction import PredictionLayer
from keras_rec.layers.sampled_softmax import CandidateSampler
from keras_rec.layers.sampled_softmax import SampledSoftmax
from keras_rec.layers.sequence_pooling import SequencePoolingLayer

__all__ = [
    "CandidateSampler",
    "InBatchSoftmax",
    "ItemFeatureTable",
    "SampledSoftmax",
    "StreamingFrequencyEstimator",
    "DNN",
    "FM",
    "FusedEmbedding",
    "AttentionPoolingLayer",
    "CosinSimilarity",
    "CosineSimilarity",
    "CrossNet",
    "Dice",
    "L2Normalization",
    "Linear",
    "PaddingMask",
    "PredictionLayer",
    "SequencePoolingLayer",
    "activation_layer",
]
