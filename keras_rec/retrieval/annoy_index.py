"""`AnnoyItemIndex`: approximate top-k with Annoy's random-projection forest."""

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

import annoy
import numpy as np

from keras_rec.retrieval.base import ItemIndex
from keras_rec.retrieval.base import _check_int

ANNOY_FILE = "index.ann"
# Rows converted to Python lists at once when adding items (bounded memory).
_ADD_CHUNK = 8192
# A batch is split across threads only if each thread gets this many queries;
# below that, starting the threads costs more than they save.
_MIN_ROWS_PER_THREAD = 8


class AnnoyItemIndex(ItemIndex):
    """Approximate nearest-item search with Annoy (Spotify).

    Annoy builds `n_trees` random-projection trees and, at query time,
    inspects `search_k` tree nodes. More trees cost memory and build time and
    raise recall; a larger `search_k` costs latency and raises recall.
    The file is memory-mapped on load (`prefault=False`), so several
    processes serving the same index share its pages.

    Recall is Annoy's weak point, and it falls as the catalogue grows. In
    `bench/retrieval_speed.py` (clustered cosine embeddings, k=100, two
    cores) the defaults, `n_trees=50` and `search_k=-1` (Annoy's own budget,
    `n_trees * k` nodes: 5,000 for k=100), found 88-89% of the exact
    top-100 on 100K items (32-d and 64-d, ~1 ms per query, which is only
    1.3-2.3x faster than exact search there) and 61% on 1M 32-d items
    (1.1 ms, 1 GB on disk, 2.6 min build). Buying recall back costs more than
    exact search: 1M items, `search_k=100_000`: 94% at 13.5 ms, slower than
    exact search's 12.6 ms. The defaults sit on Annoy's measured
    recall/latency frontier (25 trees: 77% at 0.6 ms; 100 trees: 94% at
    2 ms on 100K 32-d items), not at a recall target: `HnswItemIndex` is the
    recommended index when recall and latency both matter (97% of the exact
    top-100 on the same 1M items at 0.4 ms). Whatever the index, report
    `ann_recall@K` against `BruteForceItemIndex` (`evaluate_retrieval` does).

    Batches: Annoy answers one vector per call but releases the GIL while it
    searches, so `query` splits a batch over `num_threads` threads (1.8-1.9x
    the single-thread throughput on two idle cores) and converts the results
    to arrays once per batch.

    Scores are similarities: for `metric="angular"` Annoy's angular distance
    `d = sqrt(2 - 2 cos)` is converted back to the cosine similarity
    `1 - d**2 / 2`; for `metric="dot"` Annoy returns the dot product itself.

    Args:
        metric: str. `"angular"` or `"dot"`. Defaults to `"angular"`.
        n_trees: int. Number of trees built. Defaults to 50.
        search_k: int. Tree nodes inspected per query; -1 means Annoy's
            default, `n_trees * n` for `n` requested items. Defaults to -1.
        seed: int or None. Seed of the tree construction. Defaults to None.
        n_jobs: int or None. Build threads; -1 uses all cores. Annoy builds
            are reproducible only single-threaded, so None means 1 when
            `seed` is set and -1 otherwise. Defaults to None.
        num_threads: int or None. Threads answering a batch of queries (a
            batch of fewer than 8 queries per thread uses fewer threads);
            None or -1 uses every core this process may run on. Results do
            not depend on it. Defaults to None.

    Example:

    ```python
    index = AnnoyItemIndex(metric="angular", n_trees=50, seed=0)
    index.build(item_ids, item_embeddings, metadata={"model_name": "dssm"})
    ids, scores = index.query(user_embeddings, k=100, exclude=seen)
    index.save("saved_models/dssm/1/annoy")
    ```

    References:
        - [Annoy](https://github.com/spotify/annoy), E. Bernhardsson.
    """

    backend = "annoy"

    def __init__(
        self,
        metric="angular",
        n_trees=50,
        search_k=-1,
        seed=None,
        n_jobs=None,
        num_threads=None,
    ):
        super().__init__(metric=metric)
        self.n_trees = _check_int("n_trees", n_trees, minimum=1)
        self.search_k = _check_int("search_k", search_k, minimum=1, allowed=(-1,))
        self.seed = None if seed is None else _check_int("seed", seed, minimum=0)
        if n_jobs is not None:
            n_jobs = _check_int("n_jobs", n_jobs, minimum=1, allowed=(-1,))
        self.n_jobs = n_jobs
        if num_threads is not None:
            num_threads = _check_int(
                "num_threads", num_threads, minimum=1, allowed=(-1,)
            )
        self.num_threads = num_threads
        self._annoy = None

    def get_params(self):
        return {
            "metric": self.metric,
            "n_trees": self.n_trees,
            "search_k": self.search_k,
            "seed": self.seed,
        }

    @property
    def approximation_note(self):
        budget = (
            "n_trees * k nodes inspected per query"
            if self.search_k == -1
            else f"{self.search_k} nodes inspected per query"
        )
        return (
            f"{self.describe()}: approximate search ({budget}). Annoy's recall "
            "is limited and falls on large catalogues: with the defaults "
            "(n_trees=50, search_k=-1) it found 88-89% of the exact top-100 "
            "on 100K and 61% on 1M clustered items in "
            "bench/retrieval_speed.py. ann_recall@K measures it here and "
            "bounds what these metrics can reach. Prefer HnswItemIndex when "
            "recall and latency both matter."
        )

    def build(
        self, item_ids, item_embeddings, metric=None, n_trees=None, metadata=None
    ):
        """Builds the Annoy forest over `item_embeddings`.

        Args:
            item_ids: sequence or 1-D array of unique int or str item ids.
            item_embeddings: float array `(num_items, dimension)`.
            metric: str or None. Overrides the constructor's metric.
                Defaults to None.
            n_trees: int or None. Overrides the constructor's `n_trees`.
                Defaults to None.
            metadata: dict or None. Free-form JSON-serialisable entries
                (`model_name`, `model_version`, ...). Defaults to None.

        Returns:
            `self`.
        """
        previous = self.n_trees
        if n_trees is not None:
            self.n_trees = _check_int("n_trees", n_trees, minimum=1)
        try:
            return super().build(item_ids, item_embeddings, metric, metadata)
        except BaseException:
            self.n_trees = previous
            raise

    def _build_backend(self):
        index = annoy.AnnoyIndex(self.dimension, self.metric)
        if self.seed is not None:
            index.set_seed(self.seed)
        vectors = np.asarray(self._item_embeddings)
        add_item = index.add_item
        for start in range(0, len(vectors), _ADD_CHUNK):
            # Annoy reads Python sequences; one `tolist` per chunk of rows is
            # much cheaper than one per row.
            rows = vectors[start : start + _ADD_CHUNK].tolist()
            for position, vector in enumerate(rows, start):
                add_item(position, vector)
        n_jobs = self.n_jobs
        if n_jobs is None:
            n_jobs = 1 if self.seed is not None else -1
        index.build(self.n_trees, n_jobs=n_jobs)
        self._annoy = index

    def query(self, user_embeddings, k, search_k=None, exclude=None):
        """Returns the approximate top-`k` items for each user embedding.

        Args:
            user_embeddings: float array `(num_queries, dimension)`.
            k: int. Items per query, `1 <= k <= num_items`.
            search_k: int or None. Overrides the constructor's `search_k` for
                this call. Defaults to None.
            exclude: None or one iterable of raw item ids per query; see
                `ItemIndex.query`. Over-fetching for exclusions requests more
                items from Annoy, which (with `search_k=-1`) also widens its
                search. Defaults to None.

        Returns:
            `(ids, scores)`, each `(num_queries, k)`: raw ids best first and
            float32 cosine similarities (`"angular"`) or dot products.
        """
        if search_k is None:
            search_k = self.search_k
        else:
            search_k = _check_int("search_k", search_k, minimum=1, allowed=(-1,))
        return self._query(user_embeddings, k, exclude, search_k=search_k)

    def _search(self, queries, k, search_k=-1):
        n = len(queries)
        get_nns = self._annoy.get_nns_by_vector

        def search_rows(rows):
            # Annoy answers one vector per call (a Python list in, lists
            # out) and releases the GIL while it searches.
            return [get_nns(vector, k, search_k, True) for vector in rows]

        rows = queries.tolist()
        threads = min(self._query_threads(), n // _MIN_ROWS_PER_THREAD)
        if threads > 1:
            step = -(-n // threads)
            with ThreadPoolExecutor(threads) as pool:
                parts = pool.map(
                    search_rows, [rows[i : i + step] for i in range(0, n, step)]
                )
                results = [result for part in parts for result in part]
        else:
            results = search_rows(rows)
        found, distances = zip(*results)
        if all(len(row) == k for row in found):
            # The common case: one conversion of the whole batch.
            positions = np.array(found, dtype=np.int64)
            scores = np.array(distances, dtype=np.float32)
        else:
            # Some query reached fewer than k items (few trees, small
            # search_k): pad with -1 / -inf.
            positions = np.full((n, k), -1, dtype=np.int64)
            scores = np.full((n, k), np.inf, dtype=np.float32)
            for row, (ids, dists) in enumerate(results):
                positions[row, : len(ids)] = ids
                scores[row, : len(ids)] = dists
        if self.metric == "angular":
            # Annoy's angular distance is |u/|u| - v/|v|| = sqrt(2 - 2 cos);
            # padding (+inf) becomes -inf.
            np.square(scores, out=scores)
            scores *= -0.5
            scores += 1.0
        else:
            # Annoy's "dot" distance is the dot product itself.
            scores[positions < 0] = -np.inf
        return positions, scores

    def _query_threads(self):
        threads = self.num_threads
        if threads is None or threads == -1:
            threads = _available_cores()
        return threads

    def _save_backend(self, directory):
        path = os.path.join(directory, ANNOY_FILE)
        # Annoy writes straight to a path: write a temporary name in the same
        # directory and rename it, so `path` is never half-written.
        fd, tmp = tempfile.mkstemp(
            prefix=f".{ANNOY_FILE}.", suffix=".tmp", dir=directory
        )
        os.close(fd)
        try:
            if not self._annoy.save(tmp):
                raise OSError(f"Annoy could not write {tmp}")
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        return [ANNOY_FILE]

    @classmethod
    def _backend_files(cls):
        return [ANNOY_FILE]

    @classmethod
    def _from_params(cls, meta):
        try:
            return cls(
                metric=meta["metric"],
                n_trees=meta["n_trees"],
                search_k=meta["search_k"],
                seed=meta["seed"],
            )
        except (KeyError, ValueError) as error:
            raise ValueError(
                f"Invalid Annoy parameters in metadata.json: {error}"
            ) from None

    def _load_backend(self, directory, meta):
        path = os.path.join(directory, ANNOY_FILE)
        index = annoy.AnnoyIndex(self.dimension, self.metric)
        try:
            index.load(path, prefault=False)
        except OSError as error:
            raise ValueError(f"{path} could not be loaded by Annoy: {error}") from None
        if index.get_n_items() != self.num_items:
            raise ValueError(
                f"{path} holds {index.get_n_items()} items; metadata.json "
                f"expects {self.num_items}. The file is corrupted."
            )
        self._annoy = index


def _available_cores():
    # The cores this process may run on (a container's CPU set), not the host's.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
