"""Data sets and data preparation: loaders, synthetic data, splits, negatives.

Pure NumPy / pandas: importing this package does not need TensorFlow.
`DATASETS` lists the data sets by name (the `keras-rec datasets` command
prints it).
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

from keras_rec.datasets.criteo import load_criteo
from keras_rec.datasets.movielens import load_movielens
from keras_rec.datasets.negative_sampling import add_negatives
from keras_rec.datasets.negative_sampling import hard_negatives
from keras_rec.datasets.negative_sampling import negatives_for_strategy
from keras_rec.datasets.negative_sampling import popularity_negatives
from keras_rec.datasets.negative_sampling import popularity_suppressed_negatives
from keras_rec.datasets.negative_sampling import uniform_negatives
from keras_rec.datasets.preprocessing import LOG_SQUARE_MISSING
from keras_rec.datasets.preprocessing import build_history_sequences
from keras_rec.datasets.preprocessing import encode_ids
from keras_rec.datasets.preprocessing import example_age
from keras_rec.datasets.preprocessing import leave_last_out_split
from keras_rec.datasets.preprocessing import log_square_bucket
from keras_rec.datasets.preprocessing import pad_sequences
from keras_rec.datasets.preprocessing import scale_dense
from keras_rec.datasets.preprocessing import train_val_test_split_by_time
from keras_rec.datasets.preprocessing import user_histories
from keras_rec.datasets.synthetic import make_synthetic
from keras_rec.datasets.synthetic import make_synthetic_criteo
from keras_rec.datasets.synthetic import make_synthetic_ctr


class DatasetInfo(NamedTuple):
    """A registry entry: what the data set is and the function that loads it.

    Fields are read as attributes (`info.description`), by key
    (`info["loader"]`) or by unpacking (`description, loader = info`).
    """

    description: str
    loader: Callable

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self._fields:
                raise KeyError(key)
            return getattr(self, key)
        return tuple.__getitem__(self, key)


DATASETS = {
    "synthetic": DatasetInfo(
        "Built-in implicit-feedback sequences with planted interests, Zipf "
        "popularity and sequential drift (no download).",
        make_synthetic,
    ),
    "synthetic-ctr": DatasetInfo(
        "Built-in click impressions with feature interactions and click "
        "histories (no download).",
        make_synthetic_ctr,
    ),
    "synthetic-criteo": DatasetInfo(
        "Built-in Criteo-format table: label, I1..I13, C1..C26 (no download).",
        make_synthetic_criteo,
    ),
    "movielens-100k": DatasetInfo(
        "MovieLens 100K: 100,000 ratings by 943 users of 1,682 movies "
        "(GroupLens, research use only).",
        functools.partial(load_movielens, variant="100k"),
    ),
    "movielens-1m": DatasetInfo(
        "MovieLens 1M: 1,000,209 ratings by 6,040 users of 3,706 movies "
        "(GroupLens, research use only).",
        functools.partial(load_movielens, variant="1m"),
    ),
    "criteo": DatasetInfo(
        "Criteo display-ads CTR (Kaggle train.txt or DeepCTR CSV): label, "
        "I1..I13, C1..C26; read from a local file.",
        load_criteo,
    ),
}

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "LOG_SQUARE_MISSING",
    "add_negatives",
    "build_history_sequences",
    "encode_ids",
    "example_age",
    "hard_negatives",
    "leave_last_out_split",
    "load_criteo",
    "load_movielens",
    "log_square_bucket",
    "make_synthetic",
    "make_synthetic_criteo",
    "make_synthetic_ctr",
    "negatives_for_strategy",
    "pad_sequences",
    "popularity_negatives",
    "popularity_suppressed_negatives",
    "scale_dense",
    "train_val_test_split_by_time",
    "uniform_negatives",
    "user_histories",
]

# Streaming `tf.data` pipelines need TensorFlow, which the rest of this package
# does not: they are imported on first use of one of their names.
_STREAMING_NAMES = (
    "build_vocabularies",
    "feature_columns_from_vocabularies",
    "make_dataset",
    "tf_log_square_bucket",
    "write_tfrecord_shards",
)


def __getattr__(name):
    if name in _STREAMING_NAMES:
        import importlib

        streaming = importlib.import_module("keras_rec.datasets.streaming")
        return getattr(streaming, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ += list(_STREAMING_NAMES)
