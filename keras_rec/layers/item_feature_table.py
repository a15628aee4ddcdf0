"""`ItemFeatureTable`: side features of every item, looked up by item id."""

import keras
import numpy as np
from keras import ops

from keras_rec.api_export import keras_rec_export


@keras_rec_export
class ItemFeatureTable(keras.layers.Layer):
    """Holds the side features of all items so sampled negatives can carry them.

    A sampled-softmax or mixed-negative objective draws item ids; the item
    tower also needs those items' category, price, ... This layer keeps one
    non-trainable array per side feature, indexed by item id, saved with the
    model's weights.

    Args:
        num_items: int. Number of item ids (rows), including id 0.
        features: dict name -> `{"shape": [...], "dtype": str}`: the per-item
            shape (`[]` for scalars) and dtype of each side feature.
        **kwargs: base `Layer` arguments.

    Call arguments:
        ids: int tensor `(n,)`.

    Returns:
        Dict name -> tensor `(n, *shape)`.
    """

    def __init__(self, num_items, features, **kwargs):
        super().__init__(**kwargs)
        self.num_items = int(num_items)
        self.features = {
            name: {"shape": list(spec["shape"]), "dtype": spec["dtype"]}
            for name, spec in features.items()
        }
        self.tables = {}
        for name, spec in self.features.items():
            self.tables[name] = self.add_weight(
                name=name,
                shape=(self.num_items, *spec["shape"]),
                dtype=spec["dtype"],
                initializer="zeros",
                trainable=False,
            )
        self.built = True

    @classmethod
    def from_arrays(cls, arrays, **kwargs):
        """Builds a table from a dict name -> array of shape `(num_items, ...)`."""
        arrays = {name: np.asarray(a) for name, a in arrays.items()}
        sizes = {len(a) for a in arrays.values()}
        if len(sizes) != 1:
            raise ValueError(
                "All item feature arrays must have one row per item id. "
                f"Received lengths: { {n: len(a) for n, a in arrays.items()} }"
            )
        features = {}
        for name, a in arrays.items():
            if a.dtype.kind not in "iuf":
                raise TypeError(
                    f"Item feature '{name}' must be numeric (encoded ids or values). "
                    f"Received dtype {a.dtype}"
                )
            dtype = "int32" if a.dtype.kind in "iu" else "float32"
            features[name] = {"shape": list(a.shape[1:]), "dtype": dtype}
        table = cls(sizes.pop(), features, **kwargs)
        for name, a in arrays.items():
            table.tables[name].assign(a.astype(features[name]["dtype"]))
        return table

    def call(self, ids):
        ids = ops.cast(ids, "int32")
        return {name: ops.take(t, ids, axis=0) for name, t in self.tables.items()}

    def get_config(self):
        return {
            **super().get_config(),
            "num_items": self.num_items,
            "features": self.features,
        }
