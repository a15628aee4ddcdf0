"""`FusedEmbedding`: several embedding tables of one width in one variable."""

import keras
from keras import ops

from keras_rec.api_export import keras_rec_export


@keras_rec_export
class FusedEmbedding(keras.layers.Layer):
    """Tables of one width stacked in one variable, looked up in one gather.

    Table `k` holds rows `offsets[k] .. offsets[k] + vocabulary_sizes[k] - 1`
    of the variable (`offsets` are the running sums of `vocabulary_sizes`),
    and each slice is initialised by its own initializer, as a separate
    `Embedding(vocabulary_sizes[k], output_dim)` would be. A lookup of `n`
    id vectors is one gather of a `(batch, n)` index matrix, so its gradient
    is one `tf.IndexedSlices` and the optimizer makes one sparse update,
    where `n` separate tables would take `n` of each.

    An id outside `[0, vocabulary_sizes[k])` is sent past the end of the
    variable rather than into a neighbouring table, so it fails (CPU) or
    reads zeros (GPU) as it does in a separate `Embedding`.

    The regulariser applies to the whole variable; for the L2 penalty this
    is the sum of the separate tables' penalties.

    Args:
        vocabulary_sizes: list of int. Rows of each table.
        output_dim: int. Width of every table.
        embeddings_initializers: list of initializers (identifiers or
            objects), one per table, or one for all. Defaults to
            `"random_normal"`.
        embeddings_regularizer: regulariser of the whole variable, or None.
        **kwargs: base `Layer` arguments.

    Call arguments:
        ids: list of `n` integer tensors `(batch,)`.
        tables: tuple of `n` int, the table each of `ids` reads. Defaults to
            `0 .. n - 1`.

    Returns:
        Tensor `(batch, n, output_dim)`.
    """

    def __init__(
        self,
        vocabulary_sizes,
        output_dim,
        embeddings_initializers="random_normal",
        embeddings_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_sizes = [int(v) for v in vocabulary_sizes]
        if not self.vocabulary_sizes or min(self.vocabulary_sizes) < 1:
            raise ValueError(
                "`vocabulary_sizes` must be a non-empty list of positive integers. "
                f"Received: vocabulary_sizes={vocabulary_sizes!r}"
            )
        self.output_dim = int(output_dim)
        if not isinstance(embeddings_initializers, (list, tuple)):
            embeddings_initializers = [embeddings_initializers] * len(
                self.vocabulary_sizes
            )
        if len(embeddings_initializers) != len(self.vocabulary_sizes):
            raise ValueError(
                "`embeddings_initializers` needs one initializer per table: "
                f"{len(self.vocabulary_sizes)}. Received "
                f"{len(embeddings_initializers)}."
            )
        self.embeddings_initializers = [
            keras.initializers.get(i) for i in embeddings_initializers
        ]
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
        self.offsets = [0]
        for size in self.vocabulary_sizes[:-1]:
            self.offsets.append(self.offsets[-1] + size)
        self.input_dim = self.offsets[-1] + self.vocabulary_sizes[-1]

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=self._initialize,
            name="embeddings",
            regularizer=self.embeddings_regularizer,
        )

    def _initialize(self, shape, dtype=None):
        return ops.concatenate(
            [
                initializer((size, self.output_dim), dtype=dtype)
                for initializer, size in zip(
                    self.embeddings_initializers, self.vocabulary_sizes
                )
            ],
            axis=0,
        )

    def table(self, k):
        """The rows of table `k`, `(vocabulary_sizes[k], output_dim)`."""
        start = self.offsets[k]
        return self.embeddings[start : start + self.vocabulary_sizes[k]]

    def call(self, ids, tables=None):
        tables = tuple(range(len(ids))) if tables is None else tuple(tables)
        dtype = "int64" if self.input_dim > 2**31 - 1 else "int32"
        ids = ops.stack([ops.cast(i, dtype) for i in ids], axis=1)  # (batch, n)
        sizes = ops.array([self.vocabulary_sizes[k] for k in tables], dtype=dtype)
        offsets = ops.array([self.offsets[k] for k in tables], dtype=dtype)
        valid = ops.logical_and(ops.greater_equal(ids, 0), ops.less(ids, sizes))
        index = ops.where(valid, ids + offsets, self.input_dim)
        outputs = ops.take(self.embeddings, index, axis=0)
        return ops.cast(outputs, dtype=self.compute_dtype)

    def compute_output_shape(self, ids_shape):
        return (ids_shape[0][0], len(ids_shape), self.output_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_sizes": self.vocabulary_sizes,
            "output_dim": self.output_dim,
            "embeddings_initializers": [
                keras.initializers.serialize(i) for i in self.embeddings_initializers
            ],
            "embeddings_regularizer": keras.regularizers.serialize(
                self.embeddings_regularizer
            ),
        }
