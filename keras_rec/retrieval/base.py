"""`ItemIndex`: the logic shared by every item index backend.

An item index maps raw item ids (integers or strings) to internal positions
`0 .. num_items - 1`, keeps the item vectors it was built from, validates
queries, removes excluded items from the results, and saves / loads itself
as a directory of JSON and `.npy` files:

```
<directory>/
  metadata.json          dimension, metric, num_items, backend, parameters,
                         free-form metadata, and size + sha256 of every file
  item_ids.npy           integer ids (int64), or item_ids.json for string ids
  item_embeddings.npy    the item vectors as given to `build` (float32)
  <backend file>         e.g. index.ann (Annoy), index.hnsw (hnswlib)
```

The directory is written under a temporary name and renamed into place
(`keras_rec.io_utils.atomic_directory`), so a crash mid-save never leaves a
half-written index at the destination. Nothing is pickled.

This module uses only NumPy: no TensorFlow op runs when querying an index.
"""

import collections.abc
import hashlib
import json
import os

import numpy as np

from keras_rec import io_utils

METRICS = ("angular", "dot")
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
ITEM_EMBEDDINGS_FILE = "item_embeddings.npy"
INT_IDS_FILE = "item_ids.npy"
STR_IDS_FILE = "item_ids.json"

# Id returned in the padding slots of a result row that has fewer than `k`
# eligible items (every other item excluded). Item ids may not take it.
INT_PAD_ID = -1
STR_PAD_ID = ""

# Keys that `build(metadata=...)` may not override.
_BASE_KEYS = (
    "backend",
    "dimension",
    "metric",
    "num_items",
    "item_id_type",
    "format_version",
    "files",
)

# Backend name -> ItemIndex subclass, filled by `__init_subclass__`, so that
# `ItemIndex.load(directory)` can open any saved index.
_BACKENDS = {}


class ItemIndex:
    """Base class of the item indexes: id map, validation, exclusion, save/load.

    Subclasses implement the search itself (`_build_backend`, `_search`) and
    the backend file (`_save_backend`, `_load_backend`); everything else
    (raw-id bookkeeping, argument checks, `exclude`, metadata, the on-disk
    layout and its validation) lives here, so every backend behaves the same.

    Scores are similarities, larger is better: the cosine similarity for
    `metric="angular"`, the dot product for `metric="dot"`.

    Args:
        metric: str. `"angular"` (cosine similarity) or `"dot"` (inner
            product). Defaults to `"angular"`.

    Example:

    ```python
    index = keras_rec.retrieval.BruteForceItemIndex(metric="dot")
    index.build(item_ids, item_embeddings, metadata={"model_name": "dssm"})
    ids, scores = index.query(user_embeddings, k=100, exclude=seen_item_ids)
    index.save("saved_models/dssm/1/index")
    index = keras_rec.retrieval.ItemIndex.load(
        "saved_models/dssm/1/index", expected_dimension=64
    )
    ```
    """

    # Set by each subclass; the name stored as `metadata["backend"]`.
    backend = None
    # Whether `query` returns the exact top-k (True only for brute force).
    is_exact = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.backend is not None:
            _BACKENDS[cls.backend] = cls

    def __init__(self, metric="angular"):
        self._metric = _check_metric(metric)
        self._item_ids = None  # (num_items,) int64 or str
        self._sorted_ids = None  # item ids sorted, for vectorised lookup
        self._sorted_positions = None  # positions of `_sorted_ids`
        self._item_embeddings = None  # (num_items, dimension) float32
        self._user_metadata = {}

    # ------------------------------------------------------------------
    # Properties.

    @property
    def metric(self):
        """`"angular"` or `"dot"`."""
        return self._metric

    @property
    def is_built(self):
        """Whether `build` or `load` has been called."""
        return self._item_ids is not None

    @property
    def num_items(self):
        """Number of indexed items."""
        self._check_built()
        return len(self._item_ids)

    @property
    def dimension(self):
        """Length of the item (and user) embeddings."""
        self._check_built()
        return self._item_embeddings.shape[1]

    @property
    def item_ids(self):
        """Raw item ids in position order: int64 or str array `(num_items,)`."""
        self._check_built()
        return self._item_ids.copy()

    @property
    def item_embeddings(self):
        """The item vectors given to `build`, float32 `(num_items, dimension)`.

        Kept so that an exact `BruteForceItemIndex` can be built from any index
        (e.g. to measure an approximate index's recall).
        """
        self._check_built()
        return self._item_embeddings

    @property
    def item_id_type(self):
        """`"int"` or `"str"`."""
        self._check_built()
        return "str" if self._item_ids.dtype.kind == "U" else "int"

    @property
    def pad_id(self):
        """The id filling result slots when fewer than `k` items are eligible."""
        return STR_PAD_ID if self.item_id_type == "str" else INT_PAD_ID

    def get_params(self):
        """The backend's parameters, as saved in `metadata.json`.

        Returns:
            dict, e.g. `{"metric": "angular", "n_trees": 50, "search_k": -1}`.
        """
        return {"metric": self._metric}

    @property
    def metadata(self):
        """A copy of the index metadata.

        Contains `backend`, `dimension`, `metric`, `num_items`,
        `item_id_type`, the backend parameters (`get_params()`), and the
        free-form entries given as `build(metadata=...)` (`model_name`,
        `model_version`, ...).
        """
        self._check_built()
        return {
            **self._user_metadata,
            **self.get_params(),
            "backend": self.backend,
            "dimension": int(self.dimension),
            "metric": self._metric,
            "num_items": int(self.num_items),
            "item_id_type": self.item_id_type,
        }

    def describe(self):
        """One line naming the backend and its parameters."""
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{self.backend}({params})"

    @property
    def approximation_note(self):
        """A sentence on the backend's recall limits, for evaluation reports."""
        if self.is_exact:
            return f"{self.describe()}: exact search."
        return (
            f"{self.describe()}: approximate search; compare with an exact "
            "index (ann_recall@K)."
        )

    def __len__(self):
        return self.num_items

    def __repr__(self):
        size = (
            f"num_items={self.num_items}, dimension={self.dimension}"
            if self.is_built
            else "not built"
        )
        return f"<{type(self).__name__} {self.describe()} {size}>"

    # ------------------------------------------------------------------
    # Building.

    def build(self, item_ids, item_embeddings, metric=None, metadata=None):
        """Indexes `item_embeddings` under the raw ids `item_ids`.

        Args:
            item_ids: sequence or 1-D array of unique item ids, all integers or
                all strings, one per row of `item_embeddings`. `-1` and `""`
                are reserved for padding.
            item_embeddings: float array `(num_items, dimension)`, finite; for
                `metric="angular"` every row must be non-zero.
            metric: str or None. Overrides the constructor's metric.
                Defaults to None.
            metadata: dict or None. Free-form JSON-serialisable entries saved
                with the index, e.g. `{"model_name": "dssm",
                "model_version": 3}`. Defaults to None.

        Returns:
            `self`.
        """
        previous = dict(self.__dict__)
        try:
            self._set_items(item_ids, item_embeddings, metric, metadata)
            self._build_backend()
        except BaseException:
            # A failed (re)build leaves the index as it was, never half-built.
            self.__dict__.update(previous)
            raise
        return self

    def _set_items(self, item_ids, item_embeddings, metric, metadata):
        if metric is not None:
            metric = _check_metric(metric)
        else:
            metric = self._metric
        ids = _as_id_array(item_ids, "item_ids")
        if ids.ndim != 1:
            raise ValueError(
                f"`item_ids` must be 1-D. Received: item_ids with shape {ids.shape}"
            )
        if len(ids) == 0:
            raise ValueError("`item_ids` must not be empty. Received: 0 item ids")
        _check_unique_ids(ids)
        # A private, read-only copy: the caller's array may change later, and
        # `item_embeddings` hands this one out without copying.
        vectors = _as_float_matrix(item_embeddings, "item_embeddings", copy=True)
        if vectors.shape[0] != len(ids):
            raise ValueError(
                "`item_embeddings` must have one row per item id "
                f"({len(ids)}). Received: item_embeddings with shape "
                f"{vectors.shape}"
            )
        if metric == "angular":
            _check_nonzero_rows(vectors, "item_embeddings")
        user_metadata = _check_user_metadata(metadata, self.get_params())
        self._metric = metric
        self._set_state(ids, vectors, user_metadata)

    def _set_state(self, ids, vectors, user_metadata):
        self._item_ids = ids
        order = np.argsort(ids, kind="stable")
        self._sorted_ids = ids[order]
        self._sorted_positions = order.astype(np.int64)
        vectors.setflags(write=False)
        self._item_embeddings = vectors
        self._user_metadata = dict(user_metadata)

    def _build_backend(self):
        """Builds the search structure from `self._item_embeddings`."""
        raise NotImplementedError

    # ------------------------------------------------------------------
    # Id map.

    def ids_to_positions(self, item_ids, missing="raise"):
        """Maps raw item ids to internal positions.

        Args:
            item_ids: sequence or array of raw ids (any shape).
            missing: str. `"raise"` raises a ValueError naming the first id
                that is not indexed; `"ignore"` maps it to -1. Defaults to
                `"raise"`.

        Returns:
            int64 array of the same shape as `item_ids`.
        """
        self._check_built()
        if missing not in ("raise", "ignore"):
            raise ValueError(
                f"`missing` must be 'raise' or 'ignore'. Received: missing={missing!r}"
            )
        ids = _as_id_array(item_ids, "item_ids")
        positions = np.full(ids.shape, -1, dtype=np.int64)
        if ids.size == 0:
            return positions
        if (ids.dtype.kind == "U") != (self._item_ids.dtype.kind == "U"):
            raise ValueError(
                f"`item_ids` must be {self.item_id_type} ids like the index's. "
                f"Received: item_ids with dtype {ids.dtype}"
            )
        flat = ids.reshape(-1)
        where = np.searchsorted(self._sorted_ids, flat)
        where = np.minimum(where, len(self._sorted_ids) - 1)
        found = self._sorted_ids[where] == flat
        positions.reshape(-1)[found] = self._sorted_positions[where[found]]
        if missing == "raise" and (positions < 0).any():
            bad = ids.reshape(-1)[np.flatnonzero(positions.reshape(-1) < 0)[0]].item()
            raise ValueError(
                f"Item id {bad!r} is not in the index ({self.num_items} items). "
                f"Received: item_ids containing {bad!r}"
            )
        return positions

    def positions_to_ids(self, positions):
        """Maps internal positions to raw ids; -1 becomes `pad_id`.

        Args:
            positions: int array of any shape, values in `-1 .. num_items-1`.

        Returns:
            Array of raw ids (int64 or str) with the shape of `positions`.
        """
        self._check_built()
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size == 0 or positions.min() >= 0:
            # The common case, no padding: one gather (a single query pays
            # microseconds per NumPy call, so the wrapper keeps them few).
            return self._item_ids[positions]
        ids = self._item_ids[np.maximum(positions, 0)]
        ids[positions < 0] = self.pad_id
        return ids

    # ------------------------------------------------------------------
    # Querying.

    def query(self, user_embeddings, k, exclude=None):
        """Returns the top-`k` items for each user embedding.

        Args:
            user_embeddings: float array `(num_queries, dimension)`, finite
                (non-zero rows for `metric="angular"`).
            k: int. Number of items per query, `1 <= k <= num_items`.
            exclude: None, or a sequence with one entry per query, each None or
                an iterable of raw item ids never to return for that query
                (e.g. the items a user has already seen). Ids that are not in
                the index are ignored. The index fetches extra candidates and
                filters them, so a row still holds `k` items whenever at least
                `k` items are not excluded. Defaults to None.

        Returns:
            `(ids, scores)`: `ids` an array `(num_queries, k)` of raw item ids
            (int64 or str), best first; `scores` float32 `(num_queries, k)`,
            the cosine similarity (`"angular"`) or dot product (`"dot"`).
            Rows with fewer than `k` eligible items are padded with `pad_id`
            (-1 or "") and score `-inf`.
        """
        return self._query(user_embeddings, k, exclude)

    def _query(self, user_embeddings, k, exclude, **search_options):
        queries = self._check_queries(user_embeddings, k)
        excluded = self._exclusion_lists(exclude, len(queries))
        positions, scores = self._top_k(queries, k, excluded, **search_options)
        return self.positions_to_ids(positions), scores

    def _check_queries(self, user_embeddings, k):
        self._check_built()
        _check_k(k, self.num_items)
        queries = _as_float_matrix(user_embeddings, "user_embeddings", allow_empty=True)
        if queries.shape[1] != self.dimension:
            raise ValueError(
                "`user_embeddings` must have the index dimension "
                f"({self.dimension}) as last axis. Received: user_embeddings "
                f"with shape {queries.shape}"
            )
        if self._metric == "angular":
            _check_nonzero_rows(queries, "user_embeddings")
        return queries

    def _exclusion_lists(self, exclude, num_queries):
        """Per-query int64 arrays of excluded positions, or None."""
        if exclude is None:
            return None
        if isinstance(exclude, (str, bytes)) or not hasattr(exclude, "__len__"):
            raise ValueError(
                "`exclude` must be a sequence with one iterable of item ids per "
                f"query. Received: exclude of type {type(exclude).__name__}"
            )
        if len(exclude) != num_queries:
            raise ValueError(
                f"`exclude` must have one entry per query ({num_queries}). "
                f"Received: len(exclude)={len(exclude)}"
            )
        # One vectorised id lookup for the whole batch, then split per query.
        flat, lengths = [], []
        for row in exclude:
            if row is None:
                row = ()
            elif _is_scalar_id(row):
                row = (row,)
            row = list(row)
            flat.extend(row)
            lengths.append(len(row))
        try:
            positions = self.ids_to_positions(flat, missing="ignore")
        except ValueError as error:
            raise ValueError(f"Invalid `exclude`: {error}") from None
        rows = np.split(positions, np.cumsum(lengths)[:-1])
        return [np.unique(row[row >= 0]) for row in rows]

    def _top_k(self, queries, k, excluded, **search_options):
        """Top-`k` positions and scores after removing `excluded`.

        Over-fetches `k + len(excluded[i])` candidates per query (rounded up
        to a power of two so that queries can share a batched search), drops
        the excluded ones, and doubles the fetch for rows that still have
        fewer than `k`, up to `num_items`.
        """
        n = len(queries)
        if excluded is None and n:
            # The common case: one batched search, nothing to filter.
            return self._search(queries, k, **search_options)
        positions = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        if n == 0:
            return positions, scores
        num_items = self.num_items
        fetch = np.array(
            [
                k if len(e) == 0 else min(num_items, _next_pow2(k + len(e)))
                for e in excluded
            ]
        )
        pending = np.arange(n)
        while len(pending):
            still_pending = []
            groups = [
                (s, pending[fetch[pending] == s]) for s in np.unique(fetch[pending])
            ]
            for size, rows in groups:
                found, found_scores = self._search(
                    queries[rows], int(size), **search_options
                )
                for row, cand, cand_scores in zip(rows, found, found_scores):
                    keep = cand >= 0
                    if len(excluded[row]):
                        keep &= ~np.isin(cand, excluded[row])
                    cand, cand_scores = cand[keep][:k], cand_scores[keep][:k]
                    if len(cand) < k and size < num_items:
                        fetch[row] = min(num_items, 2 * size)
                        still_pending.append(row)
                        continue
                    positions[row, : len(cand)] = cand
                    scores[row, : len(cand)] = cand_scores
            pending = np.array(still_pending, dtype=np.int64)
        return positions, scores

    def _search(self, queries, k, **search_options):
        """Backend search: `(positions, scores)`, each `(len(queries), k)`.

        Positions are int64 (-1 where the backend found fewer than `k`
        items), scores float32 similarities (`-inf` in padded slots), best
        first.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------
    # Saving and loading.

    def save(self, directory, overwrite=False):
        """Saves the index as a directory of JSON and `.npy` files, atomically.

        The directory is assembled under a temporary name beside `directory`
        and renamed into place only when complete; on any error nothing is
        left at `directory` (and an existing index there is kept).

        Args:
            directory: str or path-like. Destination directory.
            overwrite: bool. Replace an existing directory. Defaults to False,
                in which case an existing `directory` raises FileExistsError.
        """
        self._check_built()
        with io_utils.atomic_directory(directory, overwrite=overwrite) as tmp:
            if self.item_id_type == "str":
                io_utils.write_json_atomic(
                    os.path.join(tmp, STR_IDS_FILE), self._item_ids.tolist()
                )
                names = [STR_IDS_FILE]
            else:
                _save_npy(os.path.join(tmp, INT_IDS_FILE), self._item_ids)
                names = [INT_IDS_FILE]
            _save_npy(
                os.path.join(tmp, ITEM_EMBEDDINGS_FILE),
                np.asarray(self._item_embeddings, dtype=np.float32),
            )
            names.append(ITEM_EMBEDDINGS_FILE)
            names.extend(self._save_backend(tmp))
            files = {name: _file_record(os.path.join(tmp, name)) for name in names}
            io_utils.write_json_atomic(
                os.path.join(tmp, METADATA_FILE),
                {**self.metadata, "format_version": FORMAT_VERSION, "files": files},
            )

    def _save_backend(self, directory):
        """Writes the backend's files into `directory`; returns their names."""
        return []

    @classmethod
    def load(
        cls,
        directory,
        expected_dimension=None,
        expected_metric=None,
        *,
        verify_checksums=True,
    ):
        """Loads an index saved with `save`, validating every file.

        `ItemIndex.load` opens an index of any backend; a subclass's `load`
        insists on its own backend.

        Args:
            directory: str or path-like. A directory written by `save`.
            expected_dimension: int or None. If given, the index dimension
                must equal it (e.g. the user tower's output size).
                Defaults to None.
            expected_metric: str or None. If given, the index metric must
                equal it. Defaults to None.
            verify_checksums: bool. Check each file's sha256 against
                `metadata.json` (sizes are always checked). Defaults to True.

        Returns:
            The loaded index.

        Raises:
            FileNotFoundError: the directory or one of its files is missing.
            ValueError: a file is truncated or corrupted, or the index does
                not have the expected dimension / metric / backend.
        """
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"No saved index at {directory!r}: not a directory. "
                f"Received: directory={directory!r}"
            )
        meta = _read_metadata(directory)
        backend = meta["backend"]
        if cls.backend is None:
            if backend not in _BACKENDS:
                raise ValueError(
                    f"{_meta_path(directory)} names an unknown backend "
                    f"{backend!r}; known: {sorted(_BACKENDS)}"
                )
            target = _BACKENDS[backend]
        elif backend != cls.backend:
            raise ValueError(
                f"The index at {directory!r} was saved by the {backend!r} "
                f"backend, not {cls.backend!r}; load it with "
                f"{_BACKENDS.get(backend, ItemIndex).__name__}.load or "
                "ItemIndex.load."
            )
        else:
            target = cls
        if expected_dimension is not None and meta["dimension"] != expected_dimension:
            raise ValueError(
                f"The index at {directory!r} has dimension {meta['dimension']}, "
                "which does not match the expected dimension. Received: "
                f"expected_dimension={expected_dimension!r}"
            )
        if expected_metric is not None and meta["metric"] != expected_metric:
            raise ValueError(
                f"The index at {directory!r} uses metric {meta['metric']!r}, "
                "which does not match the expected metric. Received: "
                f"expected_metric={expected_metric!r}"
            )
        ids_file = STR_IDS_FILE if meta["item_id_type"] == "str" else INT_IDS_FILE
        required = [ids_file, ITEM_EMBEDDINGS_FILE, *target._backend_files()]
        for name in required:
            if name not in meta["files"]:
                raise ValueError(
                    f"{_meta_path(directory)} does not list the file {name!r}; "
                    "the index is incomplete or was not written by `save`."
                )
        for name in required:
            _verify_file(directory, name, meta["files"][name], verify_checksums)

        index = target._from_params(meta)
        num_items, dimension = meta["num_items"], meta["dimension"]
        ids = _load_ids(directory, ids_file, num_items)
        vectors = _load_npy(
            os.path.join(directory, ITEM_EMBEDDINGS_FILE),
            mmap=not target.is_exact,
        )
        if vectors.shape != (num_items, dimension) or vectors.dtype != np.float32:
            raise ValueError(
                f"{os.path.join(directory, ITEM_EMBEDDINGS_FILE)} holds "
                f"{vectors.dtype} {vectors.shape}; metadata.json expects float32 "
                f"{(num_items, dimension)}."
            )
        user_metadata = {
            key: value
            for key, value in meta.items()
            if key not in _BASE_KEYS and key not in index.get_params()
        }
        index._set_state(ids, vectors, user_metadata)
        index._load_backend(directory, meta)
        return index

    @classmethod
    def _backend_files(cls):
        """Names of the backend's files inside a saved directory."""
        return []

    @classmethod
    def _from_params(cls, meta):
        """A new, unbuilt instance with the parameters saved in `meta`."""
        return cls(metric=meta["metric"])

    def _load_backend(self, directory, meta):
        """Opens the backend's files; the base state is already set."""
        self._build_backend()

    def _check_built(self):
        if self._item_ids is None:
            raise RuntimeError(
                f"This {type(self).__name__} is empty: call `build(item_ids, "
                "item_embeddings)` or `load(directory)` first."
            )


# ----------------------------------------------------------------------
# Validation helpers.


def _check_metric(metric):
    if metric not in METRICS:
        raise ValueError(
            f"`metric` must be one of {METRICS}. Received: metric={metric!r}"
        )
    return metric


def _check_int(name, value, minimum=None, allowed=()):
    """Checks that `value` is an int (not bool) >= `minimum` or in `allowed`."""
    if value in allowed and not isinstance(value, bool):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an integer. Received: {name}={value!r}")
    if minimum is not None and value < minimum:
        extra = f" (or one of {list(allowed)})" if allowed else ""
        raise ValueError(
            f"`{name}` must be >= {minimum}{extra}. Received: {name}={value!r}"
        )
    return int(value)


def _check_k(k, num_items):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"`k` must be an integer. Received: k={k!r}")
    if not 1 <= k <= num_items:
        raise ValueError(
            "`k` must be between 1 and the number of items "
            f"({num_items}). Received: k={k}"
        )


def _as_id_array(values, name):
    """Converts raw ids to an int64 or str array; rejects other types."""
    array = np.asarray(values)
    if array.size == 0:
        return array.astype(np.int64)
    kind = array.dtype.kind
    if kind in "iu":
        if kind == "u" and array.max() > np.iinfo(np.int64).max:
            raise ValueError(f"`{name}` contains ids larger than int64 allows.")
        return array.astype(np.int64)
    if kind == "U":
        return array
    if kind == "O":
        flat = array.ravel()
        if all(isinstance(v, str) for v in flat):
            return np.array(flat.tolist(), dtype=str).reshape(array.shape)
        if all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in flat
        ):
            return np.array(flat.tolist(), dtype=np.int64).reshape(array.shape)
    raise ValueError(
        f"`{name}` must hold integers or strings (not a mixture). "
        f"Received: {name} with dtype {array.dtype}"
    )


def _is_scalar_id(value):
    """True for one item id; False for a collection (list, set, array) of ids."""
    if isinstance(value, (str, bytes)):
        return True
    if isinstance(value, np.ndarray):
        return value.ndim == 0
    return not isinstance(value, collections.abc.Iterable)


def _check_unique_ids(ids):
    pad = STR_PAD_ID if ids.dtype.kind == "U" else INT_PAD_ID
    if (ids == pad).any():
        raise ValueError(
            f"`item_ids` may not contain {pad!r}, which marks padding in query "
            f"results. Received: item_ids containing {pad!r}"
        )
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != len(ids):
        duplicate = unique[np.argmax(counts > 1)].item()
        raise ValueError(
            "`item_ids` must be unique. Received: item_ids with "
            f"{len(ids) - len(unique)} duplicates, e.g. {duplicate!r}"
        )


def _as_float_matrix(values, name, allow_empty=False, copy=False):
    """`values` as a finite float32 matrix; errors name the first bad row."""
    try:
        matrix = np.array(values, dtype=np.float32, copy=copy or None)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`{name}` must be a 2-D float array. Received: {name} that cannot "
            f"be converted to float32 ({error})"
        ) from None
    if matrix.ndim != 2:
        hint = " Use x.reshape(1, -1) for a single vector." if matrix.ndim == 1 else ""
        raise ValueError(
            f"`{name}` must be 2-D (rows, dimension).{hint} Received: {name} "
            f"with shape {matrix.shape}"
        )
    if matrix.shape[1] == 0 or (matrix.shape[0] == 0 and not allow_empty):
        raise ValueError(
            f"`{name}` must not be empty. Received: {name} with shape {matrix.shape}"
        )
    if np.isfinite(matrix).all():
        return matrix
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        kind = "NaN" if np.isnan(matrix[row]).any() else "infinite values"
        raise ValueError(
            f"`{name}` contains {kind} in row {row} ({int((~finite).sum())} "
            f"bad rows in all; values beyond float32 range count as infinite). "
            f"Received: {name}[{row}] with {kind}"
        )
    return matrix


def _check_nonzero_rows(matrix, name):
    if matrix.any(axis=1).all():
        return
    zero = ~matrix.any(axis=1)
    if zero.any():
        row = int(np.flatnonzero(zero)[0])
        raise ValueError(
            f"`{name}` row {row} is all zeros; the 'angular' metric needs "
            f"non-zero vectors. Received: {name}[{row}] with norm 0"
        )


def _check_user_metadata(metadata, params):
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValueError(
            "`metadata` must be a dict. Received: metadata of type "
            f"{type(metadata).__name__}"
        )
    reserved = sorted(set(metadata) & (set(_BASE_KEYS) | set(params)))
    if reserved:
        raise ValueError(
            f"`metadata` may not set the reserved keys {reserved}; they are "
            f"filled in by the index. Received: metadata={metadata!r}"
        )
    for key in metadata:
        if not isinstance(key, str):
            raise ValueError(f"`metadata` keys must be strings. Received: key {key!r}")
    try:
        # Round-trip now, so that an unserialisable value fails at build
        # time rather than in the middle of `save`.
        return json.loads(json.dumps(metadata, default=io_utils._json_default))
    except TypeError as error:
        raise ValueError(
            f"`metadata` must be JSON-serialisable. Received: metadata with {error}"
        ) from None


def _next_pow2(n):
    return 1 << (int(n) - 1).bit_length()


# ----------------------------------------------------------------------
# File helpers.


def _save_npy(path, array):
    with io_utils.atomic_write(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_record(path):
    return {"bytes": os.path.getsize(path), "sha256": _sha256(path)}


def _meta_path(directory):
    return os.path.join(directory, METADATA_FILE)


def _read_metadata(directory):
    path = _meta_path(directory)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} is missing: {directory!r} is not a saved item index "
            "(or its save did not complete)."
        )
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not valid JSON (truncated or corrupted?): {error}"
        ) from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} must hold a JSON object.")
    expected = {
        "format_version": int,
        "backend": str,
        "dimension": int,
        "metric": str,
        "num_items": int,
        "item_id_type": str,
        "files": dict,
    }
    for key, kind in expected.items():
        if key not in meta:
            raise ValueError(f"{path} is missing the key {key!r}.")
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise ValueError(
                f"{path}: {key!r} must be a {kind.__name__}. "
                f"Received: {key}={meta[key]!r}"
            )
    if meta["format_version"] > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {meta['format_version']}; this "
            f"keras_rec reads up to {FORMAT_VERSION}. Upgrade keras_rec."
        )
    if meta["metric"] not in METRICS or meta["item_id_type"] not in ("int", "str"):
        raise ValueError(
            f"{path} has metric={meta['metric']!r}, "
            f"item_id_type={meta['item_id_type']!r}; expected a metric in "
            f"{METRICS} and item_id_type 'int' or 'str'."
        )
    if meta["dimension"] < 1 or meta["num_items"] < 1:
        raise ValueError(
            f"{path} has dimension={meta['dimension']}, "
            f"num_items={meta['num_items']}; both must be >= 1."
        )
    return meta


def _verify_file(directory, name, record, verify_checksum):
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} is missing from the saved index at {directory!r}."
        )
    try:
        expected_bytes, expected_sha = int(record["bytes"]), str(record["sha256"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{_meta_path(directory)} has no valid size/sha256 for {name!r}."
        ) from None
    size = os.path.getsize(path)
    if size != expected_bytes:
        raise ValueError(
            f"{path} is truncated or corrupted: metadata.json records "
            f"{expected_bytes} bytes, the file has {size}."
        )
    if verify_checksum and _sha256(path) != expected_sha:
        raise ValueError(
            f"{path} is corrupted: its sha256 does not match metadata.json."
        )


def _load_npy(path, mmap=False):
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path} could not be read as .npy: {error}") from None


def _load_ids(directory, name, num_items):
    path = os.path.join(directory, name)
    if name == STR_IDS_FILE:
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(
                f"{path} is not valid JSON (truncated or corrupted?): {error}"
            ) from None
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise ValueError(f"{path} must hold a JSON list of strings.")
        ids = np.array(raw, dtype=str)
    else:
        ids = _load_npy(path)
        if ids.dtype != np.int64:
            raise ValueError(f"{path} must hold int64 ids. Found dtype {ids.dtype}.")
    if ids.shape != (num_items,):
        raise ValueError(
            f"{path} holds {ids.shape} ids; metadata.json expects ({num_items},)."
        )
    return ids
