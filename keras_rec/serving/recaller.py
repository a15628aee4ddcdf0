"""`Recaller`: the recall stage at serving time, user tower + item index.

`Recaller.load(directory)` opens a run directory as the main job writes it:

```
<directory>/
  user_tower/<version>/   SavedModel of the user tower (highest version used)
  index/                  item index saved by AnnoyItemIndex.save etc.
  user_features.npz       optional feature store: one array per user feature,
  user_ids.npy              row i holding the latest features of user_ids[i]
  seen_items.npz          optional: items each user has seen (CSR), excluded
                            by `recommend_for_users`
```

`seen_items.npz` holds three arrays: `user_ids` (n,), `indptr` int64
(n + 1,) and `items` (nnz,): the items seen by `user_ids[i]` are
`items[indptr[i]:indptr[i + 1]]`. Ids are int64 or strings (`str` arrays).
Every `.npy` / `.npz` here is written without pickling and read with
`allow_pickle=False`.

Serving needs only TensorFlow (to run the SavedModel), NumPy and the index
backend; the model's Keras code is not imported.
"""

import os
import zipfile

import numpy as np
import tensorflow as tf

from keras_rec import io_utils
from keras_rec.export.saved_model import SERVING_SIGNATURE
from keras_rec.export.saved_model import USER_EMBEDDING
from keras_rec.export.saved_model import USER_TOWER
from keras_rec.export.saved_model import latest_version_path
from keras_rec.retrieval import ItemIndex
from keras_rec.serving.requests import cast_feature
from keras_rec.serving.requests import feature_arrays

INDEX_DIR = "index"
USER_FEATURES_FILE = "user_features.npz"
USER_IDS_FILE = "user_ids.npy"
SEEN_ITEMS_FILE = "seen_items.npz"


class Recaller:
    """Top-k items for users: runs the exported user tower, queries the index.

    Usually opened with `Recaller.load(run_directory)`; the constructor takes
    the pieces already loaded.

    Args:
        user_tower: the `serving_default` signature of an exported user tower
            (`tf.saved_model.load(path).signatures["serving_default"]`).
        index: a built or loaded `keras_rec.retrieval.ItemIndex`.
        user_store: `UserFeatureStore` or None. Needed by
            `recommend_for_users`. Defaults to None.
        seen_items: `SeenItems` or None. Items excluded by
            `recommend_for_users(exclude_seen=True)`. Defaults to None.
        output_name: str or None. The tower output holding the embedding.
            Defaults to `"user_embedding"`, or the only output.

    Example:

    ```python
    recaller = Recaller.load("runs/dssm")
    ids, scores = recaller.recommend({"user_id": "u42", "age": [0.3]}, k=10)
    ids, scores = recaller.recommend_for_users(["u42", "u7"], k=50)
    ```
    """

    def __init__(
        self, user_tower, index, user_store=None, seen_items=None, output_name=None
    ):
        if not hasattr(user_tower, "structured_input_signature"):
            raise TypeError(
                "`user_tower` must be a SavedModel signature (a concrete function, "
                "e.g. `tf.saved_model.load(path).signatures['serving_default']`). "
                f"Received: user_tower={user_tower!r}"
            )
        if not isinstance(index, ItemIndex) or not index.is_built:
            raise TypeError(
                f"`index` must be a built ItemIndex. Received: index={index!r}"
            )
        self._tower = user_tower
        self.index = index
        self.user_store = user_store
        self.seen_items = seen_items
        args, kwargs = user_tower.structured_input_signature
        if args or not kwargs:
            raise ValueError(
                "The user tower's signature must take named inputs (one per "
                f"feature). Received: {user_tower.structured_input_signature}"
            )
        self.input_specs = dict(kwargs)
        outputs = user_tower.structured_outputs
        if not isinstance(outputs, dict) or not outputs:
            raise ValueError(
                f"The user tower's signature must return named outputs. Received: {outputs}"
            )
        if output_name is None:
            if USER_EMBEDDING in outputs:
                output_name = USER_EMBEDDING
            elif len(outputs) == 1:
                output_name = next(iter(outputs))
            else:
                raise ValueError(
                    "The user tower has several outputs "
                    f"{sorted(outputs)}; pass `output_name`."
                )
        if output_name not in outputs:
            raise ValueError(
                f"The user tower has no output {output_name!r}; its outputs are "
                f"{sorted(outputs)}. Received: output_name={output_name!r}"
            )
        self.output_name = output_name
        dimension = outputs[output_name].shape[-1]
        if dimension is not None and dimension != index.dimension:
            raise ValueError(
                f"The item index has dimension {index.dimension} but the user tower "
                f"outputs {output_name!r} of dimension {dimension}; they must match "
                "(were they exported from the same model?)."
            )
        self.embedding_dim = dimension
        if user_store is not None:
            missing = [n for n in self.input_specs if n not in user_store.feature_names]
            if missing:
                raise ValueError(
                    f"The user feature store lacks the user tower inputs {missing}. "
                    f"Store features: {user_store.feature_names}"
                )

    # ------------------------------------------------------------------
    # Loading.

    @classmethod
    def load(cls, directory, *, verify_checksums=True):
        """Opens a run directory: user tower, item index, optional stores.

        Args:
            directory: str or path-like. See the module docstring for the
                layout.
            verify_checksums: bool. Check the index files' sha256 against its
                metadata (sizes are always checked). Defaults to True.

        Returns:
            A `Recaller`.

        Raises:
            FileNotFoundError: the directory, the user tower, the index (or one
                of its files) or half of the feature store is missing.
            ValueError: a truncated or corrupted file, or an index whose
                dimension differs from the user tower's output.
        """
        directory = os.path.abspath(os.fspath(directory))
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"No run directory at {directory!r}. Received: directory={directory!r}"
            )
        tower_path = latest_version_path(os.path.join(directory, USER_TOWER))
        try:
            loaded = tf.saved_model.load(tower_path)
        except Exception as error:  # TF raises many types for a bad SavedModel.
            # TensorFlow's own traceback adds nothing to its message: drop it.
            raise ValueError(
                f"The user tower at {tower_path!r} could not be loaded "
                f"({type(error).__name__}): {error}"
            ) from None
        if SERVING_SIGNATURE not in loaded.signatures:
            raise ValueError(
                f"The user tower at {tower_path!r} has no {SERVING_SIGNATURE!r} "
                f"signature; it has {sorted(loaded.signatures)}."
            )
        # ItemIndex.load picks the backend class from metadata.json's `backend`.
        index_path = os.path.join(directory, INDEX_DIR)
        index = ItemIndex.load(index_path, verify_checksums=verify_checksums)
        signature = loaded.signatures[SERVING_SIGNATURE]
        dims = {k: v.shape[-1] for k, v in signature.structured_outputs.items()}
        dimension = dims.get(USER_EMBEDDING, next(iter(dims.values())))
        if dimension is not None and dimension != index.dimension:
            raise ValueError(
                f"The item index at {index_path!r} has dimension {index.dimension}, "
                f"but the user tower at {tower_path!r} outputs embeddings of "
                f"dimension {dimension}; they must match (same model run?)."
            )
        features = os.path.join(directory, USER_FEATURES_FILE)
        ids = os.path.join(directory, USER_IDS_FILE)
        user_store = None
        if os.path.exists(features) or os.path.exists(ids):
            user_store = UserFeatureStore.load(directory)
        seen_items = None
        if os.path.exists(os.path.join(directory, SEEN_ITEMS_FILE)):
            seen_items = SeenItems.load(directory)
        recaller = cls(signature, index, user_store, seen_items)
        recaller._loaded = loaded  # keeps the signature's variables alive
        recaller.tower_path = tower_path
        return recaller

    # ------------------------------------------------------------------
    # Serving.

    def embed(self, user_features):
        """User embeddings `(n, d)` float32 for a batch (or one user)."""
        return self._embed(user_features)[0]

    def recommend(self, user_features, k=10, exclude=None):
        """Top-`k` items for a batch of users described by their features.

        Args:
            user_features: dict name -> array holding every user tower input
                (extra entries are ignored): a batch (`(n,)` scalars,
                `(n, maxlen)` sequences, `(n, dim)` dense values), or one
                user (scalars, `(maxlen,)`, `(dim,)`), treated as a batch of
                1. A pandas DataFrame is a batch.
            k: int. Items per user. Defaults to 10.
            exclude: None, or one iterable of raw item ids per user never to
                return (for one user, a flat iterable of ids is accepted).
                Defaults to None.

        Returns:
            `(ids, scores)`, each `(n, k)`: raw item ids best first, and the
            index's similarity scores (float32).
        """
        embeddings, single = self._embed(user_features)
        if single and exclude is not None and _is_flat(exclude):
            exclude = [exclude]
        return self.index.query(embeddings, k, exclude=exclude)

    def recommend_for_users(self, user_ids, k=10, exclude_seen=True):
        """Top-`k` items for known users, their features read from the store.

        Args:
            user_ids: one raw user id or a 1-D sequence of them.
            k: int. Items per user. Defaults to 10.
            exclude_seen: bool. Exclude each user's seen items (from
                `seen_items.npz`; nothing is excluded when there is none).
                Defaults to True.

        Returns:
            `(ids, scores)`, each `(len(user_ids), k)`.

        Raises:
            KeyError: a user id is not in the feature store.
        """
        if self.user_store is None:
            raise ValueError(
                "recommend_for_users needs a user feature store: write "
                f"{USER_FEATURES_FILE} and {USER_IDS_FILE} with "
                "keras_rec.serving.save_user_features."
            )
        user_ids = np.asarray(user_ids)
        if user_ids.ndim == 0:
            user_ids = user_ids.reshape(1)
        features = self.user_store.lookup(user_ids)
        exclude = None
        if exclude_seen and self.seen_items is not None:
            exclude = self.seen_items.lookup(user_ids)
        embeddings, _ = self._embed(features)
        return self.index.query(embeddings, k, exclude=exclude)

    def _embed(self, user_features):
        tensors, single = self._prepare(user_features)
        outputs = self._tower(**tensors)
        return np.asarray(outputs[self.output_name], dtype=np.float32), single

    def _prepare(self, user_features):
        """Named input tensors `(n, ...)` and whether one user was given."""
        is_frame = hasattr(user_features, "columns")
        if not is_frame and not hasattr(user_features, "keys"):
            raise TypeError(
                "`user_features` must be a dict of arrays or a DataFrame. Received: "
                f"user_features of type {type(user_features).__name__}"
            )
        missing = [n for n in self.input_specs if n not in user_features]
        if missing:
            raise ValueError(
                f"`user_features` lacks the user tower inputs {missing}. Inputs: "
                f"{list(self.input_specs)}; received: {sorted(map(str, user_features.keys()))}"
            )
        raw = {n: user_features[n] for n in self.input_specs}
        single = not is_frame and all(
            _unbatched(raw[n], spec) for n, spec in self.input_specs.items()
        )
        if single:
            raw = {n: [v] for n, v in raw.items()}
        arrays = feature_arrays(raw)
        tensors = {}
        for name, spec in self.input_specs.items():
            dtype = "string" if spec.dtype == tf.string else spec.dtype.as_numpy_dtype
            array = cast_feature(name, arrays[name], dtype, spec.shape.as_list()[1:])
            tensors[name] = tf.constant(array, dtype=spec.dtype)
        return tensors, single


# ----------------------------------------------------------------------
# Feature store and seen items.


class UserFeatureStore:
    """The latest features of each known user: `user_ids.npy` + `user_features.npz`.

    Args:
        user_ids: 1-D int or str array of unique ids.
        features: dict name -> array with one row per user id.
        path: str. Where it was loaded from, for error messages.
    """

    def __init__(self, user_ids, features, path=None):
        self.user_ids = user_ids
        self.features = features
        self.path = path
        self._order = np.argsort(user_ids, kind="stable")
        self._sorted = user_ids[self._order]

    @property
    def feature_names(self):
        return list(self.features)

    def __len__(self):
        return len(self.user_ids)

    @classmethod
    def load(cls, directory):
        ids_path = os.path.join(directory, USER_IDS_FILE)
        features_path = os.path.join(directory, USER_FEATURES_FILE)
        for path in (ids_path, features_path):
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{path} is missing: the user feature store is {USER_IDS_FILE} "
                    f"plus {USER_FEATURES_FILE}, written by save_user_features."
                )
        ids = _load_npy(ids_path)
        if ids.ndim != 1 or ids.dtype.kind not in "iuU":
            raise ValueError(
                f"{ids_path} must hold a 1-D array of int or str ids. Found "
                f"{ids.dtype} {ids.shape}."
            )
        features = _load_npz(features_path)
        for name, array in features.items():
            if len(array) != len(ids):
                raise ValueError(
                    f"{features_path}: feature '{name}' has {len(array)} rows but "
                    f"{ids_path} has {len(ids)} user ids (written by different runs?)."
                )
        return cls(_normalize_ids(ids), features, path=features_path)

    def lookup(self, user_ids):
        """Feature rows of `user_ids` (1-D), as a dict of arrays."""
        rows = _positions(self._sorted, self._order, user_ids)
        unknown = rows < 0
        if unknown.any():
            bad = user_ids[np.flatnonzero(unknown)[0]].item()
            raise KeyError(
                f"Unknown user id {bad!r}: not in the user feature store "
                f"{self.path or ''} ({len(self)} users)."
            )
        return {name: array[rows] for name, array in self.features.items()}


class SeenItems:
    """Per-user seen items in CSR form (`seen_items.npz`).

    Args:
        user_ids: 1-D int or str array of unique ids.
        indptr: int64 array `(len(user_ids) + 1,)`.
        items: array of item ids; user i's are `items[indptr[i]:indptr[i+1]]`.
    """

    def __init__(self, user_ids, indptr, items):
        self.user_ids = user_ids
        self.indptr = indptr
        self.items = items
        self._order = np.argsort(user_ids, kind="stable")
        self._sorted = user_ids[self._order]

    @classmethod
    def load(cls, directory):
        path = os.path.join(directory, SEEN_ITEMS_FILE)
        arrays = _load_npz(path)
        missing = [k for k in ("user_ids", "indptr", "items") if k not in arrays]
        if missing:
            raise ValueError(f"{path} lacks the arrays {missing}.")
        ids, indptr, items = arrays["user_ids"], arrays["indptr"], arrays["items"]
        if (
            ids.ndim != 1
            or indptr.shape != (len(ids) + 1,)
            or indptr.dtype.kind not in "iu"
            or (len(indptr) and indptr[0] != 0)
            or np.any(np.diff(indptr) < 0)
            or indptr[-1] != len(items)
        ):
            raise ValueError(
                f"{path} is not a valid CSR: user_ids {ids.shape}, indptr "
                f"{indptr.shape} (must start at 0, never decrease, end at "
                f"len(items)={len(items)})."
            )
        return cls(_normalize_ids(ids), indptr.astype(np.int64), _normalize_ids(items))

    def lookup(self, user_ids):
        """One array of seen item ids per user; empty for users not listed."""
        rows = _positions(self._sorted, self._order, user_ids)
        empty = self.items[:0]
        return [
            self.items[self.indptr[r] : self.indptr[r + 1]] if r >= 0 else empty
            for r in rows.tolist()
        ]


def save_user_features(directory, user_ids, features):
    """Writes a user feature store: `user_ids.npy` and `user_features.npz`.

    Each file is written atomically (temporary file, then rename); nothing
    is pickled. When a user id occurs several times, its last row is kept:
    pass rows in time order and the store holds each user's latest features.

    Args:
        directory: str or path-like. The run directory.
        user_ids: 1-D array-like of int or str user ids.
        features: dict name -> array-like (or DataFrame) with one row per
            entry of `user_ids`: every user tower input, padded and typed as
            for the model (e.g. from `keras_rec.to_model_inputs`).

    Returns:
        `(user_ids_path, user_features_path)`.
    """
    ids = _normalize_ids(np.asarray(user_ids), argument="user_ids")
    arrays = feature_arrays(features)
    for name, array in arrays.items():
        if len(array) != len(ids):
            raise ValueError(
                f"Feature '{name}' has {len(array)} rows; `user_ids` has {len(ids)}."
            )
        if array.dtype == object:
            raise TypeError(
                f"Feature '{name}' has dtype object; store numbers or strings only "
                "(nothing is pickled)."
            )
    # Last occurrence of each id: unique over the reversed ids.
    _, first_in_reversed = np.unique(ids[::-1], return_index=True)
    keep = np.sort(len(ids) - 1 - first_in_reversed)
    directory = os.fspath(directory)
    ids_path = os.path.join(directory, USER_IDS_FILE)
    features_path = os.path.join(directory, USER_FEATURES_FILE)
    _save_npz(features_path, {name: array[keep] for name, array in arrays.items()})
    with io_utils.atomic_write(ids_path, "wb") as f:
        np.save(f, ids[keep], allow_pickle=False)
    return ids_path, features_path


def save_seen_items(directory, user_ids, item_ids):
    """Writes `seen_items.npz` from interaction pairs (one row per interaction).

    Args:
        directory: str or path-like. The run directory.
        user_ids: 1-D array-like of raw user ids.
        item_ids: 1-D array-like of raw item ids, aligned with `user_ids`
            (duplicates are dropped).

    Returns:
        str path of `seen_items.npz`.
    """
    users = _normalize_ids(np.asarray(user_ids), argument="user_ids", unique=False)
    items = _normalize_ids(np.asarray(item_ids), argument="item_ids", unique=False)
    if len(users) != len(items):
        raise ValueError(
            f"`user_ids` and `item_ids` must be aligned. Received {len(users)} user "
            f"ids and {len(items)} item ids."
        )
    unique_users, user_index = np.unique(users, return_inverse=True)
    pairs = np.unique(
        np.stack([user_index, np.unique(items, return_inverse=True)[1]], axis=1), axis=0
    )
    item_vocab = np.unique(items)
    counts = np.bincount(pairs[:, 0], minlength=len(unique_users))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    path = os.path.join(os.fspath(directory), SEEN_ITEMS_FILE)
    _save_npz(
        path,
        {"user_ids": unique_users, "indptr": indptr, "items": item_vocab[pairs[:, 1]]},
    )
    return path


# ----------------------------------------------------------------------
# Helpers.


def _unbatched(value, spec):
    """Whether `value` is one user's value of an input with `spec`."""
    rank = np.ndim(value)
    # A one-wide dense input (None, 1) also takes a bare number for one user.
    return rank == spec.shape.rank - 1 or (
        rank == 0 and spec.shape.as_list()[1:] == [1]
    )


def _is_flat(exclude):
    values = list(exclude) if not isinstance(exclude, (str, bytes)) else [exclude]
    return all(np.ndim(v) == 0 for v in values)


def _normalize_ids(ids, argument="ids", unique=True):
    if ids.ndim != 1:
        raise ValueError(f"`{argument}` must be 1-D. Received shape {ids.shape}")
    if ids.dtype == object:
        if all(isinstance(v, str) for v in ids.tolist()):
            ids = ids.astype(str)
        elif all(isinstance(v, (int, np.integer)) for v in ids.tolist()):
            ids = ids.astype(np.int64)
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64)
    if ids.dtype.kind == "U":
        return ids
    raise ValueError(
        f"`{argument}` must hold integers or strings. Received dtype {ids.dtype}"
    )


def _positions(sorted_ids, order, wanted):
    """Rows of `wanted` ids (searchsorted on the sorted store); -1 when absent."""
    wanted = np.asarray(wanted)
    if wanted.ndim != 1:
        raise ValueError(f"`user_ids` must be 1-D. Received shape {wanted.shape}")
    rows = np.full(len(wanted), -1, dtype=np.int64)
    if not len(wanted) or not len(sorted_ids):
        return rows
    if (wanted.dtype.kind == "U") != (sorted_ids.dtype.kind == "U"):
        kind = "string" if sorted_ids.dtype.kind == "U" else "integer"
        raise KeyError(
            f"User ids must be {kind}s like the store's. Received "
            f"{wanted[:3].tolist()} (dtype {wanted.dtype})"
        )
    where = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
    found = sorted_ids[where] == wanted
    rows[found] = order[where[found]]
    return rows


def _save_npz(path, arrays):
    # The `np.savez` format (a zip of .npy files), written with
    # allow_pickle=False and atomically; any feature name is a valid key.
    with io_utils.atomic_write(path, "wb") as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(
                        member, np.asarray(array), allow_pickle=False
                    )


def _load_npy(path):
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path} could not be read as .npy: {error}") from None


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} could not be read as .npz: {error}") from None
