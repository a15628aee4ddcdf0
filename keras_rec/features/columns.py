"""Feature columns: the DeepCTR / DeepMatch feature specification, as frozen dataclasses.

Convention for ids, used everywhere in keras_rec: index 0 of every embedding
table is reserved for padding and out-of-vocabulary values. Integer ids fed
directly must lie in `[0, vocabulary_size)`, real ids starting at 1. When a
column carries a `vocabulary` (raw ids or strings) or `use_hash=True`, the
lookup happens inside the model and raw values map to `1..vocabulary_size-1`,
with anything unknown (and the padding value) mapping to 0.
"""

import dataclasses
import numbers

import keras
import numpy as np

from keras_rec.api_export import keras_rec_export

_COMBINERS = ("mean", "sum", "max")
_INT_DTYPES = ("int32", "int64")
_SPARSE_DTYPES = (*_INT_DTYPES, "string")
_DENSE_DTYPES = ("float32", "float64", "float16", "bfloat16")


def _check_name(name, argument="name"):
    if not isinstance(name, str) or not name or not name.isidentifier():
        raise ValueError(
            f"`{argument}` must be a non-empty identifier-like string (it names a "
            f"keras.Input and a serving signature input). Received: {argument}={name!r}"
        )


def _check_positive_int(column, argument):
    """Checks `column.<argument>` and stores it as a Python int.

    NumPy integers are accepted (DeepCTR scripts pass `data[feat].max() + 1`),
    so that configs stay JSON-serializable.
    """
    value = getattr(column, argument)
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Integral)
        or value < 1
    ):
        raise ValueError(
            f"`{argument}` of feature '{column.name}' must be a positive integer. "
            f"Received: {argument}={value!r}"
        )
    object.__setattr__(column, argument, int(value))


class _Column:
    """Shared serialization for the feature column dataclasses."""

    def get_config(self):
        config = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, _Column):
                value = keras.saving.serialize_keras_object(value)
            elif isinstance(value, tuple):
                value = list(value)
            config[field.name] = value
        return config

    @classmethod
    def from_config(cls, config):
        # Only a nested column (`VarLenSparseFeat.sparsefeat`) is a serialized
        # object, and `__post_init__` deserializes it; any other dict (e.g. an
        # `embeddings_initializer` config) is a plain value and stays one.
        return cls(**config)


@keras_rec_export
@dataclasses.dataclass(frozen=True)
class SparseFeat(_Column):
    """A categorical feature looked up in an embedding table.

    Args:
        name: str. Feature name; also the name of its `keras.Input`.
        vocabulary_size: int. Rows of the embedding table, including row 0
            (padding / out-of-vocabulary). With `vocabulary=`, may be `None`
            and is then `len(vocabulary) + 1`.
        embedding_dim: int. Embedding width. Defaults to 8.
        embedding_name: str. Name of the table; features with the same
            `embedding_name` share one table (e.g. `item_id` and
            `hist_item_id`). Defaults to `name`.
        dtype: str. `"int32"`, `"int64"` or `"string"` (raw values). Defaults to
            `"int32"`; set to `"string"` automatically for a vocabulary of
            strings.
        vocabulary: list. Raw ids or strings, mapped inside the model to
            `1..len(vocabulary)`; unknown values map to 0. Defaults to `None`.
        use_hash: bool. Hash raw values into `vocabulary_size - 1` bins inside
            the model (bin 0 stays for padding). Defaults to `False`.
        trainable: bool. Whether the table is trained. Defaults to `True`.
        embeddings_initializer: str or dict. Keras initializer identifier.
            Defaults to `"random_normal"` (stddev 0.05).
        group_name: str. Group for models that treat feature groups
            separately. Defaults to `"default_group"`.

    Example:

    >>> SparseFeat("item_id", vocabulary_size=1683, embedding_dim=16)
    """

    name: str
    vocabulary_size: int | None = None
    embedding_dim: int = 8
    embedding_name: str | None = None
    dtype: str = "int32"
    vocabulary: tuple | None = None
    use_hash: bool = False
    trainable: bool = True
    embeddings_initializer: str | dict = "random_normal"
    group_name: str = "default_group"

    def __post_init__(self):
        _check_name(self.name)
        if self.vocabulary is not None:
            vocabulary = tuple(self.vocabulary)
            if not vocabulary:
                raise ValueError(
                    f"`vocabulary` of feature '{self.name}' must not be empty. "
                    f"Received: vocabulary={self.vocabulary!r}"
                )
            kinds = {isinstance(v, str) for v in vocabulary}
            if len(kinds) != 1 or not all(
                isinstance(v, (str, int)) and not isinstance(v, bool)
                for v in vocabulary
            ):
                raise TypeError(
                    f"`vocabulary` of feature '{self.name}' must hold only strings "
                    f"or only integers. Received: {vocabulary[:5]!r}..."
                )
            seen, duplicates = set(), []
            for value in vocabulary:
                if value in seen:
                    duplicates.append(value)
                seen.add(value)
            if duplicates:
                raise ValueError(
                    f"`vocabulary` of feature '{self.name}' has duplicate values. "
                    f"Received duplicates: {duplicates[:5]!r}"
                )
            object.__setattr__(self, "vocabulary", vocabulary)
            if kinds == {True} and self.dtype == "int32":
                object.__setattr__(self, "dtype", "string")
            if (kinds == {True}) != (self.dtype == "string"):
                raise ValueError(
                    f"`dtype` of feature '{self.name}' does not match its "
                    f"vocabulary of {'strings' if kinds == {True} else 'integers'}. "
                    f"Received: dtype={self.dtype!r}"
                )
            if self.dtype == "int32" and not all(
                -(2**31) <= v < 2**31 for v in vocabulary
            ):
                raise ValueError(
                    f"`vocabulary` of feature '{self.name}' holds ids beyond the "
                    "int32 range; pass dtype='int64'. Received: dtype='int32'"
                )
            if self.vocabulary_size is None:
                object.__setattr__(self, "vocabulary_size", len(vocabulary) + 1)
            elif self.vocabulary_size != len(vocabulary) + 1:
                raise ValueError(
                    f"`vocabulary_size` of feature '{self.name}' must be "
                    f"len(vocabulary) + 1 = {len(vocabulary) + 1} (row 0 is padding "
                    f"and out-of-vocabulary). Received: "
                    f"vocabulary_size={self.vocabulary_size}"
                )
            if self.use_hash:
                raise ValueError(
                    f"Feature '{self.name}': pass either `vocabulary` or "
                    "`use_hash=True`, not both."
                )
        if self.vocabulary_size is None:
            raise ValueError(
                f"`vocabulary_size` of feature '{self.name}' is required unless "
                "`vocabulary` is given. Received: vocabulary_size=None"
            )
        _check_positive_int(self, "vocabulary_size")
        if self.use_hash and self.vocabulary_size < 2:
            raise ValueError(
                f"`vocabulary_size` of hashed feature '{self.name}' must be >= 2 "
                f"(bin 0 is padding). Received: vocabulary_size={self.vocabulary_size}"
            )
        _check_positive_int(self, "embedding_dim")
        if self.dtype not in _SPARSE_DTYPES:
            raise ValueError(
                f"`dtype` of feature '{self.name}' must be one of {_SPARSE_DTYPES}. "
                f"Received: dtype={self.dtype!r}"
            )
        if self.dtype == "string" and self.vocabulary is None and not self.use_hash:
            raise ValueError(
                f"Feature '{self.name}' has dtype='string' but neither `vocabulary` "
                "nor `use_hash=True`: strings need a lookup inside the model."
            )
        if self.embedding_name is None:
            object.__setattr__(self, "embedding_name", self.name)
        _check_name(self.embedding_name, "embedding_name")

    @property
    def needs_lookup(self):
        """True when raw values are mapped to indices inside the model."""
        return self.vocabulary is not None or self.use_hash


@keras_rec_export
@dataclasses.dataclass(frozen=True)
class DenseFeat(_Column):
    """A numeric feature fed as it is (after the user's own scaling).

    Args:
        name: str. Feature name; also the name of its `keras.Input`.
        dimension: int. Width of the feature vector. Defaults to 1.
        dtype: str. Float dtype. Defaults to `"float32"`.
    """

    name: str
    dimension: int = 1
    dtype: str = "float32"

    def __post_init__(self):
        _check_name(self.name)
        _check_positive_int(self, "dimension")
        if self.dtype not in _DENSE_DTYPES:
            raise ValueError(
                f"`dtype` of feature '{self.name}' must be one of {_DENSE_DTYPES}. "
                f"Received: dtype={self.dtype!r}"
            )


@keras_rec_export
@dataclasses.dataclass(frozen=True)
class VarLenSparseFeat(_Column):
    """A padded sequence or multi-valued categorical feature.

    Id 0 (or the padding value of a raw-id feature) marks padding; with
    `length_name`, the first `length` positions are valid instead.

    Args:
        sparsefeat: `SparseFeat`. The element feature (its table may be shared
            with a scalar feature through `embedding_name`).
        maxlen: int. Padded length.
        combiner: str. Pooling: `"mean"`, `"sum"` or `"max"`. Defaults to
            `"mean"`.
        length_name: str. Name of an int input holding the valid length of
            each sequence. Defaults to `None` (mask from id 0).
        weight_name: str. Name of a float input `(batch, maxlen)` weighting
            each position before pooling. Defaults to `None`.

    Example:

    >>> item = SparseFeat("hist_item_id", 1683, 16, embedding_name="item_id")
    >>> VarLenSparseFeat(item, maxlen=50, combiner="mean")
    """

    sparsefeat: SparseFeat
    maxlen: int
    combiner: str = "mean"
    length_name: str | None = None
    weight_name: str | None = None

    def __post_init__(self):
        if isinstance(self.sparsefeat, dict):
            object.__setattr__(
                self,
                "sparsefeat",
                keras.saving.deserialize_keras_object(self.sparsefeat),
            )
        if not isinstance(self.sparsefeat, SparseFeat):
            raise TypeError(
                "`sparsefeat` must be a SparseFeat. "
                f"Received: sparsefeat={self.sparsefeat!r}"
            )
        _check_positive_int(self, "maxlen")
        if self.combiner not in _COMBINERS:
            raise ValueError(
                f"`combiner` of feature '{self.name}' must be one of {_COMBINERS}. "
                f"Received: combiner={self.combiner!r}"
            )
        padding = "" if self.sparsefeat.dtype == "string" else 0
        if self.sparsefeat.vocabulary and padding in self.sparsefeat.vocabulary:
            raise ValueError(
                f"`vocabulary` of sequence feature '{self.name}' must not hold the "
                f"padding value {padding!r}: padded positions would not be masked."
            )
        if self.length_name is not None and self.length_name == self.weight_name:
            raise ValueError(
                f"`length_name` and `weight_name` of feature '{self.name}' must "
                f"differ. Received: both={self.length_name!r}"
            )
        for argument in ("length_name", "weight_name"):
            value = getattr(self, argument)
            if value is not None:
                _check_name(value, argument)
                if value == self.name:
                    raise ValueError(
                        f"`{argument}` of feature '{self.name}' must differ from "
                        f"the feature name. Received: {argument}={value!r}"
                    )

    # DeepCTR-compatible accessors.
    @property
    def name(self):
        return self.sparsefeat.name

    @property
    def vocabulary_size(self):
        return self.sparsefeat.vocabulary_size

    @property
    def embedding_dim(self):
        return self.sparsefeat.embedding_dim

    @property
    def embedding_name(self):
        return self.sparsefeat.embedding_name

    @property
    def dtype(self):
        return self.sparsefeat.dtype

    @property
    def group_name(self):
        return self.sparsefeat.group_name

    @property
    def needs_lookup(self):
        return self.sparsefeat.needs_lookup


FEATURE_TYPES = (SparseFeat, DenseFeat, VarLenSparseFeat)


def check_feature_columns(feature_columns, argument="feature_columns"):
    """Validates a list of columns: types, unique names, consistent shared tables.

    Args:
        feature_columns: list of `SparseFeat`, `DenseFeat`, `VarLenSparseFeat`.
        argument: str. Name used in error messages.

    Returns:
        The columns as a list, duplicates (the same column given twice, e.g. in
        both the linear and the DNN list) removed.
    """
    if isinstance(feature_columns, FEATURE_TYPES):
        feature_columns = [feature_columns]
    if not isinstance(feature_columns, (list, tuple)):
        raise TypeError(
            f"`{argument}` must be a list of feature columns. "
            f"Received: {argument}={feature_columns!r}"
        )
    columns, by_name, tables = [], {}, {}
    for column in feature_columns:
        if not isinstance(column, FEATURE_TYPES):
            raise TypeError(
                f"`{argument}` must hold SparseFeat, DenseFeat or VarLenSparseFeat. "
                f"Received an element: {column!r}"
            )
        if column.name in by_name:
            if by_name[column.name] != column:
                raise ValueError(
                    f"Two different feature columns are named '{column.name}': "
                    f"{by_name[column.name]!r} and {column!r}"
                )
            continue
        by_name[column.name] = column
        columns.append(column)
        if isinstance(column, DenseFeat):
            continue
        sparse = column.sparsefeat if isinstance(column, VarLenSparseFeat) else column
        owner = tables.setdefault(sparse.embedding_name, sparse)
        for field in ("vocabulary_size", "embedding_dim", "vocabulary", "use_hash"):
            if getattr(owner, field) != getattr(sparse, field):
                raise ValueError(
                    f"Features '{owner.name}' and '{sparse.name}' share the "
                    f"embedding table '{sparse.embedding_name}' but differ in "
                    f"`{field}`: {getattr(owner, field)!r} vs "
                    f"{getattr(sparse, field)!r}"
                )
        # int32 and int64 ids may share a table; strings and ints cannot share
        # its lookup layer.
        if sparse.needs_lookup and (owner.dtype == "string") != (
            sparse.dtype == "string"
        ):
            raise ValueError(
                f"Features '{owner.name}' and '{sparse.name}' share the embedding "
                f"table '{sparse.embedding_name}' but differ in `dtype`: "
                f"{owner.dtype!r} vs {sparse.dtype!r}"
            )
    extra = set()
    for column in columns:
        if isinstance(column, VarLenSparseFeat):
            extra.update(n for n in (column.length_name, column.weight_name) if n)
    clash = extra & set(by_name)
    if clash:
        raise ValueError(
            f"Length/weight input names clash with feature names: {sorted(clash)}"
        )
    return columns


def get_feature_names(feature_columns):
    """The names of the model inputs that `feature_columns` make, in order.

    DeepCTR's helper of the same name: each column's name, followed by the
    `length_name` and `weight_name` inputs of a `VarLenSparseFeat`, each name
    once (a column given in both the linear and the DNN list counts once).
    Build the input dict with it:
    `{name: data[name] for name in get_feature_names(columns)}`.

    Args:
        feature_columns: list of `SparseFeat`, `DenseFeat`, `VarLenSparseFeat`.

    Returns:
        list of str.
    """
    names = []
    for column in check_feature_columns(feature_columns):
        extra = ()
        if isinstance(column, VarLenSparseFeat):
            extra = (column.length_name, column.weight_name)
        names.extend(n for n in (column.name, *extra) if n and n not in names)
    return names
