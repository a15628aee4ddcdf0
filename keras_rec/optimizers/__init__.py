"""Optimizers of keras_rec: sparse (row-wise) updates for embedding tables."""

from keras_rec.optimizers.lazy_adam import LazyAdam

__all__ = ["LazyAdam"]
