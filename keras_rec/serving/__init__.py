"""Serving-time helpers: TF Serving request builders and the `Recaller`."""

from keras_rec.serving.recaller import Recaller
from keras_rec.serving.recaller import SeenItems
from keras_rec.serving.recaller import UserFeatureStore
from keras_rec.serving.recaller import save_seen_items
from keras_rec.serving.recaller import save_user_features
from keras_rec.serving.requests import grpc_predict_request
from keras_rec.serving.requests import rest_request

__all__ = [
    "Recaller",
    "SeenItems",
    "UserFeatureStore",
    "grpc_predict_request",
    "rest_request",
    "save_seen_items",
    "save_user_features",
]
