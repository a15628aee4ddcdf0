"""Input pipelines that stream CSV, Parquet and TFRecord shards through `tf.data`.

For data that does not fit in memory. The preprocessing is the in-memory
path's (`keras_rec.features.to_model_inputs`), done batch by batch in the
`tf.data` graph, so a model sees exactly the same inputs either way:

1. `build_vocabularies` counts the raw values of the categorical columns in
   ONE streaming pass over the shards (pandas CSV chunks, pyarrow record
   batches, or `tf.data` for TFRecord); no file is ever loaded whole.
2. `feature_columns_from_vocabularies` turns the vocabularies into
   `SparseFeat(vocabulary=...)` columns.
3. `make_dataset` yields `(features, label)` batches of RAW values: the
   vocabulary lookup happens inside the model, in the `StringLookup` /
   `IntegerLookup` layers that `FeatureEncoder` builds from the columns.

Why the lookup lives in the model and not in the `tf.data` map (with a
`tf.lookup.StaticHashTable`): the vocabulary then travels with the saved
model, so serving sends raw values and cannot drift from training; the
in-memory path already feeds raw values to such columns, so both paths give
the model identical inputs by construction; and the input pipeline stays
stateless (no table to build per worker or per shard reader).

Per batch, `make_dataset` reproduces `to_model_inputs`: sparse values are cast
to the column's dtype; dense NaN (empty cell) becomes `dense_fill`;
variable-length features stored as delimited strings (`"3|17|42"`) or list
columns are split, cut to their most recent `maxlen` items and padded at the
end with 0 (or `""`). Empty tokens are dropped. Empty cells of integer
columns read as 0 (padding / out-of-vocabulary) and of string columns as
`""`.

Memory stays flat in the number of rows: a pipeline holds at most the
shuffle window, `num_parallel_reads` open shards, and a few prefetched
batches (`bench/streaming_memory.py` measures it).

This is the one module of `keras_rec.datasets` that needs TensorFlow; the
package imports it lazily, on first use of one of its names.
"""

import csv
import functools
import glob
import os
import shutil
import tempfile

import numpy as np
import pandas as pd
import tensorflow as tf

from keras_rec import io_utils
from keras_rec.datasets._validation import check_int
from keras_rec.datasets.preprocessing import LOG_SQUARE_MISSING
from keras_rec.features.columns import DenseFeat
from keras_rec.features.columns import SparseFeat
from keras_rec.features.columns import VarLenSparseFeat
from keras_rec.features.columns import check_feature_columns

FILE_FORMATS = ("csv", "parquet", "tfrecord")

# Integer literals as pandas / `tf.io.decode_csv` read them.
_INT_PATTERN = r"[+-]?\d+"

# `tf_log_square_bucket` compares with exact bucket boundaries up to this
# bucket (x < exp(sqrt(2000)) ~ 2.6e19, beyond any count) and uses
# `floor(log(x) ** 2)` in float64 above it.
_LOG_SQUARE_EXACT_BUCKETS = 2000


# --------------------------------------------------------------- transforms
@functools.lru_cache(maxsize=1)
def _log_square_boundaries():
    """`b[k - 1]`: the smallest float64 x with NumPy's floor(log(x)**2) >= k.

    Found by bisection over the float64 bit patterns (ordered like the
    values for positive floats), so the TF version below agrees with the
    NumPy one bit for bit, whatever the two `log` implementations round to.
    """
    k = np.arange(1, _LOG_SQUARE_EXACT_BUCKETS + 1, dtype=np.float64)
    approx = np.exp(np.sqrt(k))
    lo = (approx * (1 - 1e-9)).view(np.int64)  # floor(log(lo)**2) < k
    hi = (approx * (1 + 1e-9)).view(np.int64)  # floor(log(hi)**2) >= k
    with np.errstate(all="ignore"):
        assert np.all(np.floor(np.log(lo.view(np.float64)) ** 2) < k)
        assert np.all(np.floor(np.log(hi.view(np.float64)) ** 2) >= k)
        while np.any(hi - lo > 1):
            mid = lo + (hi - lo) // 2
            reached = np.floor(np.log(mid.view(np.float64)) ** 2) >= k
            hi = np.where(reached, mid, hi)
            lo = np.where(reached, lo, mid)
    return hi.view(np.float64)


def tf_log_square_bucket(x):
    """`log_square_bucket` as TensorFlow ops, for a `tf.data` map or a model.

    Gives exactly the NumPy function's values: `floor(log(x) ** 2)` for
    `x > 2`, `floor(x)` for `x <= 2` and `LOG_SQUARE_MISSING` (-2**31) for
    NaN. Bucket boundaries are precomputed with NumPy's `log`, because TF's
    `log` may differ in the last bit and move a value across a boundary
    (exact for x below about 2.6e19).

    Args:
        x: tensor or array-like of numbers (NaN for missing).

    Returns:
        An int64 tensor shaped like `x`.

    Example:

    >>> tf_log_square_bucket([0.0, 2.0, 3.0, 100.0, float("nan")]).numpy()
    array([          0,           2,           1,          21, -2147483648])
    """
    x = tf.cast(x, tf.float64)
    boundaries = tf.constant(_log_square_boundaries())
    flat = tf.reshape(x, [-1])
    # Rank of x among the boundaries = the bucket (for 2 < x < last one).
    exact = tf.reshape(
        tf.searchsorted(boundaries, flat, side="right", out_type=tf.int64),
        tf.shape(x),
    )
    big = x > 2
    safe = tf.where(big, x, tf.ones_like(x))
    approx = tf.cast(tf.floor(tf.square(tf.math.log(safe))), tf.int64)
    large = exact >= _LOG_SQUARE_EXACT_BUCKETS
    bucket = tf.where(large, approx, exact)
    small = tf.where(big | tf.math.is_nan(x), tf.zeros_like(x), x)
    small = tf.cast(tf.floor(small), tf.int64)
    out = tf.where(big, bucket, small)
    return tf.where(tf.math.is_nan(x), tf.constant(LOG_SQUARE_MISSING, tf.int64), out)


_NAMED_TRANSFORMS = {"log_square_bucket": tf_log_square_bucket}


def _check_transforms(transforms, file_format=None):
    """`transforms` as a dict name -> callable (named ones resolved)."""
    if transforms is None:
        return {}
    if not isinstance(transforms, dict):
        raise TypeError(
            "`transforms` must be a dict column name -> callable or "
            f"{sorted(_NAMED_TRANSFORMS)}. Received: transforms={transforms!r}"
        )
    if transforms and file_format == "tfrecord":
        raise ValueError(
            "`transforms` cannot be applied to TFRecord shards: they hold the "
            "feature values themselves. Transform the columns before "
            "`write_tfrecord_shards` (e.g. with the NumPy `log_square_bucket`). "
            f"Received: transforms for {sorted(transforms)}"
        )
    out = {}
    for name, transform in transforms.items():
        if isinstance(transform, str):
            if transform not in _NAMED_TRANSFORMS:
                raise ValueError(
                    f"Unknown transform for column '{name}'. Expected a callable "
                    f"or one of {sorted(_NAMED_TRANSFORMS)}. "
                    f"Received: {transform!r}"
                )
            transform = _NAMED_TRANSFORMS[transform]
        elif not callable(transform):
            raise TypeError(
                f"The transform of column '{name}' must be callable. "
                f"Received: {transform!r}"
            )
        out[name] = transform
    return out


# -------------------------------------------------------------------- files
def _check_format(file_format):
    if file_format not in FILE_FORMATS:
        raise ValueError(
            f"`file_format` must be one of {FILE_FORMATS}. "
            f"Received: file_format={file_format!r}"
        )
    return file_format


def _resolve_files(files):
    """`files` (a path, a glob pattern or a list of paths) as a list of str."""
    if isinstance(files, (str, os.PathLike)):
        pattern = os.fspath(files)
        if glob.has_magic(pattern):
            paths = sorted(glob.glob(pattern))
            if not paths:
                raise ValueError(
                    f"`files` matches no file. Received: files={pattern!r}"
                )
            return paths
        files = [pattern]
    try:
        paths = [os.fspath(f) for f in files]
    except TypeError as error:
        raise TypeError(
            "`files` must be a path, a glob pattern or a list of paths. "
            f"Received: files={files!r}"
        ) from error
    if not paths:
        raise ValueError("`files` is empty: give at least one shard. Received: []")
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Shard not found. Received: {path!r}")
    return paths


def _csv_header(path):
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise ValueError(f"CSV shard {path} is empty: it needs a header line.")
    return header


def _parquet_file(path):
    try:
        import pyarrow.parquet as pq
    except ImportError as error:  # pragma: no cover - pyarrow is an extra.
        raise ImportError(
            "Reading Parquet shards needs pyarrow: pip install 'keras-rec[parquet]'"
        ) from error
    return pq.ParquetFile(path)


def _first_example(path):
    for record in tf.data.TFRecordDataset(path).take(1):
        return tf.train.Example.FromString(record.numpy())
    raise ValueError(f"TFRecord shard {path} holds no record.")


def _file_columns(path, file_format):
    """Column names of one shard (TFRecord: the features of its first record)."""
    if file_format == "csv":
        return _csv_header(path)
    if file_format == "parquet":
        return list(_parquet_file(path).schema_arrow.names)
    return list(_first_example(path).features.feature.keys())


def _check_file_columns(paths, file_format, needed):
    """Raises a ValueError naming the first needed column absent from a shard."""
    headers = {}
    for path in paths:
        available = _file_columns(path, file_format)
        missing = [c for c in needed if c not in available]
        if missing:
            raise ValueError(
                f"Column '{missing[0]}' is missing from {path} (all missing: "
                f"{missing}). Available columns: {available}"
            )
        headers[path] = available
    return headers


# ------------------------------------------------------------- vocabularies
class _Tally:
    """Value counts accumulated chunk by chunk, in memory bounded by the
    number of distinct values (chunk counts are merged every 16 chunks)."""

    def __init__(self):
        self.parts = []

    def add(self, counts):
        """Adds a Series value -> count."""
        if len(counts):
            self.parts.append(counts)
        if len(self.parts) >= 16:
            self.parts = [self.total()]

    def add_values(self, values):
        """Adds the values of a 1-D array or Series (missing ones skipped)."""
        self.add(pd.Series(values).value_counts(dropna=True))

    def total(self):
        """One Series value -> count, or None when nothing was counted."""
        if not self.parts:
            return None
        parts = self.parts
        if len({p.index.dtype for p in parts}) > 1:
            # E.g. integer buckets in one column and text in another, counted
            # into one vocabulary: count them all as text.
            parts = [pd.Series(p.to_numpy(), index=p.index.astype(str)) for p in parts]
        if len(parts) == 1:
            return parts[0]
        return pd.concat(parts).groupby(level=0, sort=False).sum()


def _typed_counts(name, counts, text_is_int):
    """Counts keyed by Python-typed values: ints, or strings.

    Text tokens (`text_is_int`: CSV cells, items of delimited sequences)
    become integers when every one is an integer literal, as
    `tf.io.decode_csv` / `tf.strings.to_number` will read them; typed
    string columns (Parquet, TFRecord) stay strings. Integral floats (an
    integer column with missing values) become integers. Empty strings are
    dropped: they are the missing value of a string column.
    """
    index = counts.index
    if index.dtype.kind == "f":
        values = index.to_numpy()
        if not np.all(values == np.floor(values)):
            raise TypeError(
                f"Column '{name}' holds non-integral numbers, which cannot form a "
                "vocabulary. Bucket them first (`transforms`), or use DenseFeat. "
                f"Received values like {values[:3].tolist()}"
            )
        return counts.groupby(values.astype(np.int64)).sum()
    if index.dtype.kind in "iu":
        return counts
    tokens = pd.Index(
        [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in index],
        dtype=object,
    )
    counts = pd.Series(counts.to_numpy(), index=tokens)
    counts = counts[tokens != ""]
    if text_is_int and len(counts) and counts.index.str.fullmatch(_INT_PATTERN).all():
        try:
            ints = counts.index.astype(np.int64)
        except (OverflowError, ValueError):  # beyond int64: keep strings
            return counts
        return counts.groupby(ints).sum()
    return counts


def _vocabulary(counts, drop_zero, min_count, max_size):
    """Sorted vocabulary (frequency desc, ties by value) from a count Series."""
    if counts is None or not len(counts):
        return []
    if counts.index.dtype.kind in "iu" and drop_zero:
        counts = counts[counts.index != 0]
    counts = counts[counts >= min_count]
    order = np.lexsort((counts.index.to_numpy(), -counts.to_numpy()))
    values = counts.index.to_numpy()[order]
    if max_size is not None:
        values = values[:max_size]
    return values.tolist()


def _as_vocabulary_spec(columns):
    """`columns` as a dict vocabulary name -> list of source columns."""
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(columns, dict):
        spec = {}
        for name, sources in columns.items():
            sources = [sources] if isinstance(sources, str) else list(sources)
            if not sources:
                raise ValueError(
                    f"`columns` gives vocabulary '{name}' no source column. "
                    f"Received: columns={columns!r}"
                )
            spec[name] = sources
    else:
        spec = {name: [name] for name in columns}
    if not spec:
        raise ValueError(f"`columns` is empty. Received: columns={columns!r}")
    return spec


def build_vocabularies(
    files,
    columns,
    file_format="csv",
    min_count=1,
    max_size=None,
    chunksize=100_000,
    sequence_columns=(),
    sequence_sep="|",
    transforms=None,
):
    """Counts categorical values over all shards in one streaming pass.

    CSV shards are read with `pandas.read_csv(chunksize=...)`, Parquet shards
    with `pyarrow.parquet.ParquetFile.iter_batches`, TFRecord shards with
    `tf.data`; only `chunksize` rows of the needed columns are in memory at
    a time, and the counts.

    A vocabulary holds integers when every value of its columns is an
    integer (in CSV: every cell is an integer literal), strings otherwise,
    so it matches how `make_dataset` parses the column. Missing cells and
    empty strings are never counted; neither is 0 in a vocabulary fed by a
    sequence column (it is the padding id there). In a scalar column 0 is
    an ordinary value (e.g. a count of 0 after `log_square_bucket`).

    Args:
        files: str or list of str. A path, a glob pattern, or a list of paths.
        columns: list of str, or dict. The columns to count, one vocabulary
            each; a dict `{vocabulary_name: [column, ...]}` counts several
            columns into one vocabulary (e.g. `{"item_id": ["item_id",
            "hist_item_id"]}`, for a shared embedding table).
        file_format: str. `"csv"`, `"parquet"` or `"tfrecord"`. Defaults to
            `"csv"`.
        min_count: int. Fewest occurrences a value needs, >= 1. Defaults to 1.
        max_size: int or None. Keep at most this many (most frequent) values.
            Defaults to None (all).
        chunksize: int. Rows read at a time. Defaults to 100000.
        sequence_columns: iterable of str. Columns holding sequences:
            delimited strings (`"3|17|42"`) or list columns; their items are
            counted. Defaults to `()`.
        sequence_sep: str. Delimiter of the sequence strings. Defaults to
            `"|"`.
        transforms: dict or None. Column -> callable (or
            `"log_square_bucket"`), applied to the column read as float64
            (NaN when missing) before counting, as in `make_dataset`.
            Defaults to None.

    Returns:
        Dict vocabulary name -> list of raw values (Python ints or strs),
        most frequent first, ties by value.

    Example:

    >>> vocabularies = build_vocabularies("shards/*.csv", ["C1", "C2"])
    >>> columns = feature_columns_from_vocabularies(vocabularies, embedding_dim=8)
    """
    file_format = _check_format(file_format)
    paths = _resolve_files(files)
    spec = _as_vocabulary_spec(columns)
    min_count = check_int("min_count", min_count, minimum=1)
    if max_size is not None:
        max_size = check_int("max_size", max_size, minimum=1)
    chunksize = check_int("chunksize", chunksize, minimum=1)
    sequence_columns = set(
        [sequence_columns] if isinstance(sequence_columns, str) else sequence_columns
    )
    transforms = _check_transforms(transforms, file_format)
    sources = list(dict.fromkeys(c for cols in spec.values() for c in cols))
    bad = sorted(set(transforms) & sequence_columns)
    if bad:
        raise ValueError(f"Sequence columns cannot have transforms. Received: {bad}")
    _check_file_columns(paths, file_format, sources)

    counts = {column: _Tally() for column in sources}
    if file_format == "csv":
        for path in paths:
            reader = pd.read_csv(
                path,
                usecols=sources,
                dtype={c: np.float64 if c in transforms else str for c in sources},
                keep_default_na=False,
                na_values=[""],
                chunksize=chunksize,
            )
            with reader:
                for chunk in reader:
                    for column in sources:
                        values = chunk[column]
                        if column in transforms:
                            values = _eager(transforms[column], values.to_numpy())
                        elif column in sequence_columns:
                            values = values.dropna().str.split(sequence_sep).explode()
                        counts[column].add_values(values)
    elif file_format == "parquet":
        import pyarrow.compute as pc

        for path in paths:
            parquet = _parquet_file(path)
            for batch in parquet.iter_batches(batch_size=chunksize, columns=sources):
                for column in sources:
                    array = batch.column(column)
                    if column in transforms:
                        values = _eager(transforms[column], _float64(array))
                        counts[column].add_values(values)
                        continue
                    if column in sequence_columns:
                        array = _as_list_array(array, sequence_sep)
                        array = pc.list_flatten(array)
                    tally = pc.value_counts(array.drop_null())
                    counts[column].add(_arrow_counts(tally))
    else:
        example = _first_example(paths[0])
        spec_tf = {}
        for column in sources:
            kind = example.features.feature[column].WhichOneof("kind")
            dtype = {"int64_list": tf.int64, "bytes_list": tf.string}.get(kind)
            if dtype is None:
                raise TypeError(
                    f"Column '{column}' of {paths[0]} holds floats, which cannot "
                    "form a vocabulary."
                )
            spec_tf[column] = tf.io.RaggedFeature(dtype)
        dataset = (
            tf.data.TFRecordDataset(paths)
            .batch(chunksize)
            .map(lambda records: tf.io.parse_example(records, spec_tf))
        )
        for batch in dataset:
            for column in sources:
                values = batch[column].flat_values.numpy()
                counts[column].add_values(values)

    # CSV cells are untyped text; so are the items of delimited sequences.
    text_is_int = {
        c: file_format == "csv" or (file_format == "parquet" and c in sequence_columns)
        for c in sources
    }
    out = {}
    for name, cols in spec.items():
        total = _Tally()
        for column in cols:
            column_counts = counts[column].total()
            if column_counts is not None:
                total.add(_typed_counts(column, column_counts, text_is_int[column]))
        drop_zero = any(c in sequence_columns for c in cols)
        out[name] = _vocabulary(total.total(), drop_zero, min_count, max_size)
    return out


def _eager(transform, values):
    return np.asarray(transform(tf.constant(values, tf.float64)))


def _float64(array):
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)


def _arrow_counts(tally):
    """The struct array of `pyarrow.compute.value_counts` as a Series."""
    values = tally.field("values").to_numpy(zero_copy_only=False)
    return pd.Series(tally.field("counts").to_numpy(), index=values)


def _as_list_array(array, sep):
    """A Parquet sequence column (list, or delimited string) as a list array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return pc.split_pattern(pc.fill_null(array, ""), sep)
    return array


def feature_columns_from_vocabularies(
    vocabularies,
    embedding_dim=8,
    sequences=None,
    shared=None,
    combiner="mean",
):
    """One `SparseFeat(vocabulary=...)` per vocabulary: lookups in the model.

    The encoder's `StringLookup` / `IntegerLookup` layer maps raw values to
    `1..len(vocabulary)` inside the model (unknown values to 0), so the saved
    model carries its vocabularies and `make_dataset` feeds raw values.

    Args:
        vocabularies: dict name -> list of values, from `build_vocabularies`.
        embedding_dim: int. Embedding width of every column. Defaults to 8.
        sequences: dict name -> maxlen, or None. These columns become
            `VarLenSparseFeat(maxlen=...)`. Defaults to None.
        shared: dict column -> vocabulary name, or None. Extra columns that
            use another column's vocabulary and embedding table (e.g.
            `{"hist_item_id": "item_id"}`). Defaults to None.
        combiner: str. Pooling of the sequence columns. Defaults to `"mean"`.

    Returns:
        A list of `SparseFeat` / `VarLenSparseFeat`, in the order of
        `vocabularies`, then `shared`.
    """
    sequences = dict(sequences or {})
    shared = dict(shared or {})
    for column, vocabulary_name in shared.items():
        if vocabulary_name not in vocabularies:
            raise ValueError(
                f"`shared` maps '{column}' to an unknown vocabulary "
                f"'{vocabulary_name}'. Known: {sorted(vocabularies)}"
            )
    unknown = [n for n in sequences if n not in vocabularies and n not in shared]
    if unknown:
        raise ValueError(
            f"`sequences` names columns with no vocabulary: {unknown}. "
            f"Known: {sorted(set(vocabularies) | set(shared))}"
        )
    table_of = {name: name for name in vocabularies}
    table_of.update({c: v for c, v in shared.items() if c not in vocabularies})
    columns = []
    for name, table in table_of.items():
        vocabulary = list(vocabularies[table])
        dtype = "string" if vocabulary and isinstance(vocabulary[0], str) else "int32"
        if dtype == "int32" and any(not -(2**31) <= v < 2**31 for v in vocabulary):
            dtype = "int64"
        sparse = SparseFeat(
            name,
            vocabulary=vocabulary,
            embedding_dim=embedding_dim,
            embedding_name=table,
            dtype=dtype,
        )
        if name in sequences:
            maxlen = check_int(f"sequences['{name}']", sequences[name], minimum=1)
            columns.append(VarLenSparseFeat(sparse, maxlen, combiner=combiner))
        else:
            columns.append(sparse)
    return columns


# ------------------------------------------------------------------ parsing
# How a file column is read, whatever the format:
#   "int"      int64 scalar (empty -> 0)        "string" string scalar (-> "")
#   "float"    float32 scalar (empty -> NaN)    "double" float64 scalar (-> NaN)
#   "vector"   `dimension` floats               "label"  float32, required
#   "int_seq" / "string_seq" / "float_seq"      sequences (delimited or lists)
_SEQUENCE_KINDS = ("int_seq", "string_seq", "float_seq")


class _Plan:
    """Which file columns a pipeline reads and how it turns them into inputs."""

    def __init__(self, feature_columns, label, transforms, dense_fill, sequence_sep):
        self.columns = check_feature_columns(feature_columns)
        self.label = label
        self.transforms = transforms
        self.dense_fill = dense_fill
        self.sequence_sep = sequence_sep
        self.kinds = {}  # file column -> kind, in column order
        self.dims = {}
        for column in self.columns:
            if isinstance(column, VarLenSparseFeat):
                if column.name in transforms:
                    raise ValueError(
                        f"Sequence feature '{column.name}' cannot have a transform."
                    )
                self.kinds[column.name] = (
                    "string_seq" if column.dtype == "string" else "int_seq"
                )
                if column.weight_name:
                    self.kinds[column.weight_name] = "float_seq"
            elif column.name in transforms:
                self.kinds[column.name] = "double"
            elif isinstance(column, SparseFeat):
                self.kinds[column.name] = (
                    "string" if column.dtype == "string" else "int"
                )
            elif column.dimension > 1:
                self.kinds[column.name] = "vector"
                self.dims[column.name] = column.dimension
            else:
                self.kinds[column.name] = (
                    "double" if column.dtype == "float64" else "float"
                )
        unknown = sorted(set(transforms) - {c.name for c in self.columns})
        if unknown:
            raise ValueError(
                f"`transforms` names columns that are not features: {unknown}"
            )
        if label is not None:
            if not isinstance(label, str):
                raise TypeError(
                    f"`label` must be a column name or None. Received: label={label!r}"
                )
            if label in self.kinds:
                raise ValueError(
                    f"`label` must not be a feature column. Received: label={label!r}"
                )
            self.kinds[label] = "label"

    # ------------------------------------------------------------ per format
    def csv_defaults(self):
        defaults = {
            "int": tf.constant(0, tf.int64),
            "string": tf.constant("", tf.string),
            "float": tf.constant(np.nan, tf.float32),
            "double": tf.constant(np.nan, tf.float64),
            "label": tf.constant([], tf.float32),  # empty default = required
        }
        return [
            defaults.get(kind, tf.constant("", tf.string))
            for kind in self.kinds.values()
        ]

    def tensor_specs(self):
        """Specs of the raw columns of the Parquet reader (one batch)."""
        dtypes = {
            "int": tf.int64,
            "string": tf.string,
            "float": tf.float32,
            "double": tf.float64,
            "label": tf.float32,
        }
        return tuple(
            tf.TensorSpec([None], dtypes.get(kind, tf.string))
            for kind in self.kinds.values()
        )

    def example_spec(self):
        spec = {}
        for name, kind in self.kinds.items():
            if kind == "int":
                spec[name] = tf.io.FixedLenFeature([], tf.int64, default_value=0)
            elif kind == "string":
                spec[name] = tf.io.FixedLenFeature([], tf.string, default_value="")
            elif kind in ("float", "double"):
                spec[name] = tf.io.FixedLenFeature([], tf.float32, default_value=np.nan)
            elif kind == "vector":
                dim = self.dims[name]
                spec[name] = tf.io.FixedLenFeature(
                    [dim], tf.float32, default_value=[np.nan] * dim
                )
            elif kind == "label":
                spec[name] = tf.io.FixedLenFeature([], tf.float32)
            else:
                dtype = {
                    "int_seq": tf.int64,
                    "string_seq": tf.string,
                    "float_seq": tf.float32,
                }[kind]
                spec[name] = tf.io.RaggedFeature(dtype)
        return spec

    # -------------------------------------------------------------- shared
    def _tokens(self, x, kind):
        """`(batch, None)` ragged items of a sequence column."""
        if not isinstance(x, tf.RaggedTensor):
            x = tf.strings.split(x, sep=self.sequence_sep)
        if x.dtype == tf.string:
            x = tf.ragged.boolean_mask(x, tf.not_equal(x, ""))
            if kind == "int_seq":
                x = tf.ragged.map_flat_values(tf.strings.to_number, x, tf.int64)
            elif kind == "float_seq":
                x = tf.ragged.map_flat_values(tf.strings.to_number, x, tf.float32)
        return x

    def to_inputs(self, raw):
        """Raw columns of one batch -> the model's input dict (and the label)."""
        features = {}
        for column in self.columns:
            name = column.name
            x = raw[name]
            if name in self.transforms:
                x = self.transforms[name](x)
            if isinstance(column, SparseFeat):
                if column.dtype == "string":
                    if x.dtype != tf.string:
                        x = tf.strings.as_string(x)
                elif x.dtype == tf.string:
                    x = tf.strings.to_number(x, tf.int64)
                features[name] = tf.cast(x, column.dtype)
            elif isinstance(column, DenseFeat):
                if name in self.dims:
                    if x.dtype == tf.string:
                        x = self._tokens(x, "float_seq").to_tensor(
                            np.nan, shape=[None, column.dimension]
                        )
                else:
                    x = tf.reshape(x, [-1, 1])
                x = tf.cast(x, column.dtype)
                features[name] = tf.where(
                    tf.math.is_nan(x), tf.cast(self.dense_fill, column.dtype), x
                )
            else:
                tokens = self._tokens(x, self.kinds[name])[:, -column.maxlen :]
                padding = "" if column.dtype == "string" else 0
                features[name] = tf.cast(
                    tokens.to_tensor(padding, shape=[None, column.maxlen]),
                    column.dtype,
                )
                if column.length_name:
                    features[column.length_name] = tf.cast(
                        tokens.row_lengths(), tf.int32
                    )
                if column.weight_name:
                    weights = self._tokens(raw[column.weight_name], "float_seq")
                    features[column.weight_name] = tf.cast(
                        weights[:, -column.maxlen :].to_tensor(
                            0.0, shape=[None, column.maxlen]
                        ),
                        tf.float32,
                    )
        if self.label is None:
            return features
        return features, tf.cast(raw[self.label], tf.float32)


def _parquet_batches(path, names, kinds, batch_size, sep):
    """Yields tuples of NumPy columns, one per record batch of a Parquet shard."""
    import pyarrow as pa
    import pyarrow.compute as pc

    path = path.decode() if isinstance(path, bytes) else path
    parquet = _parquet_file(path)
    for batch in parquet.iter_batches(batch_size=batch_size, columns=names):
        out = []
        for name, kind in zip(names, kinds):
            array = batch.column(name)
            if kind == "int":
                if pa.types.is_floating(array.type):
                    values = np.nan_to_num(_float64(array), nan=0.0)
                    out.append(values.astype(np.int64))
                else:
                    array = pc.fill_null(pc.cast(array, pa.int64()), 0)
                    out.append(array.to_numpy(zero_copy_only=False))
            elif kind == "string":
                if not (
                    pa.types.is_string(array.type)
                    or pa.types.is_large_string(array.type)
                ):
                    array = pc.cast(array, pa.string())
                array = pc.fill_null(array, "")
                out.append(array.to_numpy(zero_copy_only=False).astype(object))
            elif kind in ("float", "label"):
                out.append(_float64(array).astype(np.float32))
            elif kind == "double":
                out.append(_float64(array))
            else:
                # Sequences and vectors travel as delimited strings, like CSV
                # cells, and are split by the same graph code.
                if not (
                    pa.types.is_string(array.type)
                    or pa.types.is_large_string(array.type)
                ):
                    array = pc.binary_join(pc.cast(array, pa.list_(pa.string())), sep)
                array = pc.fill_null(array, "")
                out.append(array.to_numpy(zero_copy_only=False).astype(object))
        yield tuple(out)


def _shuffle_windows(windows, seed):
    """Permutes the rows of each batch of `windows` (a batched dataset).

    The vectorised form of a shuffle buffer: each window of
    `shuffle_buffer` rows is permuted as a whole by one gather, instead of
    passing every row through `Dataset.shuffle` one element at a time (which
    costs more than parsing the rows). A row moves anywhere within its
    window; windows come from shards interleaved in a shuffled order. Each
    iteration (epoch) draws new permutations; a seed makes them
    reproducible.
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def permute(window, random):
        size = tf.shape(tf.nest.flatten(window)[0], out_type=tf.int64)[0]
        order = tf.random.experimental.stateless_shuffle(
            tf.range(size), seed=tf.stack([random, random // 3 + 1])
        )
        return tf.nest.map_structure(lambda x: tf.gather(x, order), window)

    return tf.data.Dataset.zip(windows, seeds).map(
        permute, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def _check_positive_or_none(name, value):
    if value is None or value == 0:
        return None
    return check_int(name, value, minimum=1)


def make_dataset(
    files,
    feature_columns,
    label=None,
    file_format="csv",
    batch_size=1024,
    shuffle_buffer=10_000,
    seed=None,
    num_epochs=1,
    sequence_sep="|",
    dense_fill=0.0,
    transforms=None,
    num_parallel_reads=tf.data.AUTOTUNE,
):
    """A `tf.data.Dataset` of `(features, label)` batches streamed from shards.

    The pipeline: shards (in a new order each epoch when shuffling) ->
    `interleave` of `num_parallel_reads` readers -> raw rows (CSV lines,
    serialized Examples, or Parquet record batches from pyarrow) in batches
    -> shuffle buffer -> `repeat` -> `rebatch(batch_size)` -> vectorised
    parsing of the whole batch (`tf.io.decode_csv` / `tf.io.parse_example`,
    then splitting, padding, transforms) -> `prefetch(AUTOTUNE)`. The
    features are what `to_model_inputs` makes from the same rows (see the
    module docstring), so the dataset goes straight into `model.fit` /
    `model.predict`.

    The shuffle buffer is vectorised: each window of `shuffle_buffer`
    consecutive rows (of the interleaved shards) is permuted as a whole
    with one gather. `Dataset.shuffle` instead moves every row through the
    buffer as its own element, which for a Parquet row of 40 columns is
    about six times slower than the whole parse. Same memory bound; a row
    moves anywhere within its window, and every epoch draws new
    permutations.

    Without shuffling (`shuffle_buffer=0` or None) the rows come in file
    order, shards one after another, as `to_model_inputs` on the
    concatenated frames would give them.

    Formats: CSV shards have a header line and share it (`,`-separated,
    quoted as pandas writes them); integer columns hold integer literals
    (pandas writes an integer column with missing values as floats, `3.0`:
    fill and cast it first, or read it through a transform). Parquet shards
    are read a record batch at a time; sequence columns may be list columns
    or delimited strings. TFRecord shards hold `tf.train.Example`s as
    `write_tfrecord_shards` writes them. A malformed cell fails at iteration
    with TensorFlow's `InvalidArgumentError`, which names the field.

    Args:
        files: str or list of str. A path, a glob pattern, or a list of paths.
        feature_columns: list of `SparseFeat`, `DenseFeat`, `VarLenSparseFeat`.
            Each names a column of the shards (plus `weight_name` columns of
            sequences; `length_name` inputs are computed).
        label: str or None. Label column, read as float32 and required in
            every row; None yields the feature dicts alone (for `predict`).
            Defaults to None.
        file_format: str. `"csv"`, `"parquet"` or `"tfrecord"`. Defaults to
            `"csv"`.
        batch_size: int. Rows per batch (the last one may be smaller).
            Defaults to 1024.
        shuffle_buffer: int or None. Rows permuted together (the shuffle
            window); 0 or None keeps file order. Defaults to 10000.
        seed: int or None. Seed of the shard and row shuffles: the same seed
            gives the same sequence of epoch orders. Defaults to None.
        num_epochs: int or None. Passes over the data; None repeats forever.
            Defaults to 1.
        sequence_sep: str. Delimiter of sequence cells (`"3|17|42"`).
            Defaults to `"|"`.
        dense_fill: float. Value of missing (NaN) dense cells. Defaults to 0.
        transforms: dict or None. Column -> callable on a float64 `(batch,)`
            tensor (NaN when missing) returning the feature's values, or the
            name `"log_square_bucket"` (`tf_log_square_bucket`). CSV and
            Parquet only. Defaults to None.
        num_parallel_reads: int. Shards read at once when shuffling.
            Defaults to `tf.data.AUTOTUNE`.

    Returns:
        A `tf.data.Dataset` of `(features, label)` (or `features`), features
        a dict name -> tensor shaped like the model's inputs: `(batch,)` for
        `SparseFeat`, `(batch, maxlen)` for sequences, `(batch, dimension)`
        for dense features; label `(batch,)` float32.

    Raises:
        ValueError: `files` is empty or matches nothing, `file_format` is
            unknown, or a shard lacks a needed column (the error names the
            column and the shard).

    Example:

    >>> ds = make_dataset("train/*.csv", columns, label="label", seed=0)
    >>> model.fit(ds, epochs=2)
    """
    file_format = _check_format(file_format)
    paths = _resolve_files(files)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    shuffle_buffer = _check_positive_or_none("shuffle_buffer", shuffle_buffer)
    if num_epochs is not None:
        num_epochs = check_int("num_epochs", num_epochs, minimum=1)
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    if num_parallel_reads != tf.data.AUTOTUNE:
        num_parallel_reads = check_int(
            "num_parallel_reads", num_parallel_reads, minimum=1
        )
    if not isinstance(sequence_sep, str) or not sequence_sep:
        raise ValueError(
            f"`sequence_sep` must be a non-empty string. Received: {sequence_sep!r}"
        )
    plan = _Plan(
        feature_columns,
        label,
        _check_transforms(transforms, file_format),
        float(dense_fill),
        sequence_sep,
    )
    names = list(plan.kinds)
    headers = _check_file_columns(paths, file_format, names)

    shuffling = shuffle_buffer is not None
    files_ds = tf.data.Dataset.from_tensor_slices(paths)
    if shuffling and len(paths) > 1:
        files_ds = files_ds.shuffle(
            len(paths), seed=seed, reshuffle_each_iteration=True
        )
    cycle = 1
    if shuffling:
        cycle = num_parallel_reads
        if cycle != tf.data.AUTOTUNE:
            cycle = min(cycle, len(paths))

    def interleave(reader):
        if cycle == 1:
            return files_ds.interleave(reader, cycle_length=1)
        return files_ds.interleave(
            reader,
            cycle_length=cycle,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    def batches_of(batched):
        """Batched rows -> shuffled (in windows), repeated and re-batched."""
        if shuffling:
            # Shuffled before `repeat`, so that epochs do not mix.
            batched = _shuffle_windows(
                batched.rebatch(max(shuffle_buffer, batch_size)), seed
            )
        return batched.repeat(num_epochs).rebatch(batch_size)

    if file_format == "csv":
        header = headers[paths[0]]
        for path in paths[1:]:
            if headers[path] != header:
                raise ValueError(
                    f"CSV shards must share one header. {path} has {headers[path]}, "
                    f"{paths[0]} has {header}."
                )
        index = {name: header.index(name) for name in names}
        selected = sorted(names, key=index.get)
        defaults = dict(zip(names, plan.csv_defaults()))

        def parse(lines):
            values = tf.io.decode_csv(
                lines,
                record_defaults=[defaults[n] for n in selected],
                select_cols=[index[n] for n in selected],
            )
            return plan.to_inputs(dict(zip(selected, values)))

        lines = interleave(lambda path: tf.data.TextLineDataset(path).skip(1))
        batches = batches_of(lines.batch(batch_size))
    elif file_format == "parquet":
        kinds = [plan.kinds[n] for n in names]
        specs = plan.tensor_specs()

        def read(path):
            return tf.data.Dataset.from_generator(
                functools.partial(
                    _parquet_batches,
                    names=names,
                    kinds=kinds,
                    batch_size=batch_size,
                    sep=sequence_sep,
                ),
                args=(path,),
                output_signature=specs,
            )

        def parse(*values):
            return plan.to_inputs(dict(zip(names, values)))

        batches = batches_of(interleave(read))
    else:
        spec = plan.example_spec()

        def parse(records):
            return plan.to_inputs(tf.io.parse_example(records, spec))

        records = interleave(lambda path: tf.data.TFRecordDataset(path))
        batches = batches_of(records.batch(batch_size))

    return batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE
    )


# ------------------------------------------------------------------ writing
def _feature(kind, value, sep):
    """One `tf.train.Feature` from a raw cell."""
    if kind in _SEQUENCE_KINDS or kind == "vector":
        if isinstance(value, str):
            items = [v for v in value.split(sep) if v != ""]
        elif value is None or (np.ndim(value) == 0 and _missing(value)):
            items = []
        else:
            items = list(np.asarray(value).reshape(-1))
        if kind == "int_seq":
            return tf.train.Feature(
                int64_list=tf.train.Int64List(value=[int(v) for v in items])
            )
        if kind == "string_seq":
            return tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[_bytes(v) for v in items])
            )
        return tf.train.Feature(
            float_list=tf.train.FloatList(value=[float(v) for v in items])
        )
    if kind == "int":
        return tf.train.Feature(
            int64_list=tf.train.Int64List(value=[0 if _missing(value) else int(value)])
        )
    if kind == "string":
        return tf.train.Feature(
            bytes_list=tf.train.BytesList(
                value=[b"" if _missing(value) else _bytes(value)]
            )
        )
    return tf.train.Feature(
        float_list=tf.train.FloatList(value=[np.nan if _missing(value) else value])
    )


def _missing(value):
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _bytes(value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def write_tfrecord_shards(
    data,
    directory,
    feature_columns,
    label=None,
    rows_per_shard=100_000,
    sequence_sep="|",
):
    """Writes rows as `tf.train.Example` TFRecord shards for `make_dataset`.

    Frames are consumed one at a time, so a generator of chunks (e.g.
    `pandas.read_csv(chunksize=...)`) writes any number of rows in bounded
    memory. Each shard is written under a temporary name and renamed into
    place (`keras_rec.io_utils.atomic_write`): a reader never sees half a
    shard. Raw values are stored: integers as `int64_list` (missing -> 0),
    strings as `bytes_list` (missing -> `""`), dense values as `float_list`
    (float32, NaN kept and filled by `make_dataset`), sequences (lists or
    delimited strings) as variable-length lists, the label as a float.

    Args:
        data: `pandas.DataFrame` or iterable of DataFrames.
        directory: str. Output directory (created if needed); shards are
            `part-00000.tfrecord`, `part-00001.tfrecord`, ...
        feature_columns: list of feature columns: which columns to store and
            how.
        label: str or None. Label column. Defaults to None.
        rows_per_shard: int. Rows per shard (the last may hold fewer).
            Defaults to 100000.
        sequence_sep: str. Delimiter of sequence cells given as strings.
            Defaults to `"|"`.

    Returns:
        The list of shard paths written, in order.
    """
    rows_per_shard = check_int("rows_per_shard", rows_per_shard, minimum=1)
    plan = _Plan(feature_columns, label, {}, 0.0, sequence_sep)
    if isinstance(data, pd.DataFrame):
        data = [data]
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tfrecord-shards.", dir=directory)
    paths = []
    writer, staged, rows = None, None, 0

    def finish():
        # TFRecordWriter writes to a path; the finished shard is then copied
        # through `atomic_write` so it appears in one rename.
        writer.close()
        path = os.path.join(directory, f"part-{len(paths):05d}.tfrecord")
        with open(staged, "rb") as src, io_utils.atomic_write(path, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        os.remove(staged)
        paths.append(path)

    try:
        for frame in data:
            if not isinstance(frame, pd.DataFrame):
                raise TypeError(
                    "`data` must be a DataFrame or an iterable of DataFrames. "
                    f"Received an element of type {type(frame).__name__}"
                )
            missing = [n for n in plan.kinds if n not in frame.columns]
            if missing:
                raise ValueError(
                    f"Column '{missing[0]}' is missing from `data` (all missing: "
                    f"{missing}). Available columns: {list(frame.columns)}"
                )
            cells = [
                (name, kind, frame[name].to_numpy(dtype=object))
                for name, kind in plan.kinds.items()
            ]
            for i in range(len(frame)):
                if writer is None:
                    staged = os.path.join(staging, f"part-{len(paths):05d}")
                    writer = tf.io.TFRecordWriter(staged)
                example = tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            name: _feature(kind, values[i], sequence_sep)
                            for name, kind, values in cells
                        }
                    )
                )
                writer.write(example.SerializeToString())
                rows += 1
                if rows == rows_per_shard:
                    finish()
                    writer, rows = None, 0
        if writer is not None:
            finish()
            writer = None
    finally:
        if writer is not None:
            writer.close()
        shutil.rmtree(staging, ignore_errors=True)
    return paths


__all__ = [
    "FILE_FORMATS",
    "build_vocabularies",
    "feature_columns_from_vocabularies",
    "make_dataset",
    "tf_log_square_bucket",
    "write_tfrecord_shards",
]
