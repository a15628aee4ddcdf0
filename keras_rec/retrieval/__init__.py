"""Item indexes (exact, Annoy, HNSW) and offline retrieval evaluation.

The code here uses only NumPy, `annoy`, and `hnswlib` when `HnswItemIndex`
is used; no TensorFlow op runs when building, querying or loading an index.
"""

from keras_rec.retrieval.annoy_index import AnnoyItemIndex
from keras_rec.retrieval.base import ItemIndex
from keras_rec.retrieval.brute_force import BruteForceItemIndex
from keras_rec.retrieval.evaluation import evaluate_retrieval
from keras_rec.retrieval.evaluation import format_table
from keras_rec.retrieval.evaluation import popularity_baseline
from keras_rec.retrieval.evaluation import retrieval_metrics
from keras_rec.retrieval.hnsw_index import HnswItemIndex

__all__ = [
    "AnnoyItemIndex",
    "BruteForceItemIndex",
    "HnswItemIndex",
    "ItemIndex",
    "evaluate_retrieval",
    "format_table",
    "popularity_baseline",
    "retrieval_metrics",
]
