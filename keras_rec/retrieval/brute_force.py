"""`BruteForceItemIndex`: exact top-k by batched matrix products."""

import collections
import math

import numpy as np

from keras_rec.retrieval.base import ItemIndex
from keras_rec.retrieval.base import _check_int

# Upper bound on the entries of one (queries x items) score block, so that a
# large catalogue lowers the number of queries per block instead of the
# memory use growing with it: 2**25 float32 scores = 128 MiB.
_MAX_BLOCK_ENTRIES = 1 << 25
# Top-k selection (`_select_top_k`) cuts each row of scores into
# `groups * groups` strided slices, at most this many groups ...
_MAX_GROUPS = 8
# ... and only as many as leave each slice with at least this many times `k`
# columns, so that the threshold the slices give stays close to the k-th
# score. Below 2 groups the exact k-th score is taken directly.
_MIN_WIDTH_FACTOR = 4


class BruteForceItemIndex(ItemIndex):
    """Exact nearest-item search: scores every item for every query.

    The reference the approximate indexes (`AnnoyItemIndex`, `HnswItemIndex`)
    are measured against. Queries are scored in blocks of at most
    `batch_size` rows, one float32 matrix product per block (NumPy's BLAS)
    into a score buffer reused by every block and kept for the next call
    (at most 128 MiB). The top `k` of a
    block are then found without sorting or partitioning whole rows: maxima
    over 64 strided slices of each row give a threshold no larger than the
    row's k-th best score, and only the few slices that reach it are read
    again (`_select_top_k`). Selection costs about one streaming pass over
    the scores: in `bench/retrieval_speed.py` exact top-100 search runs at
    0.60-0.80 of the throughput of the bare matrix products (100K-1M items,
    32-64-d, two cores), against ~0.2 with `np.argpartition` on each block.

    Results are exactly those of a stable full sort of each row's float32
    scores: best first, ties broken by the lower item position (the order of
    `item_ids` at build time). Excluded items are masked to `-inf` before
    the selection, so exclusion is exact.

    For `metric="angular"` the items are L2-normalised once, when the index
    is built or loaded, and the queries once per call; the score is the
    cosine similarity. For `metric="dot"` it is the raw dot product.

    Threads: the matrix products use NumPy's BLAS thread pool (see
    `threadpoolctl.threadpool_info()`). A single query is a matrix-vector
    product bound by memory bandwidth; on an idle two-core machine two BLAS
    threads answered it faster than one (1M x 32-d: 8.8 ms against 12.1 ms),
    but on the same machine loaded by other jobs one thread was faster
    (13.6 ms against 16.6 ms), as helper threads wait to be scheduled. A
    latency-serving process sharing its cores may want
    `threadpoolctl.threadpool_limits(1, "blas")`; measure where it runs.

    Args:
        metric: str. `"angular"` or `"dot"`. Defaults to `"angular"`.
        batch_size: int. Maximum number of queries scored at once; lowered
            automatically for large catalogues so a score block stays below
            128 MiB (33 queries at 1M items). Defaults to 1024.

    Example:

    ```python
    index = BruteForceItemIndex(metric="dot").build(item_ids, item_embeddings)
    ids, scores = index.query(user_embeddings, k=10)  # (n, 10), (n, 10)
    ```
    """

    backend = "brute_force"
    is_exact = True

    def __init__(self, metric="angular", batch_size=1024):
        super().__init__(metric=metric)
        self.batch_size = _check_int("batch_size", batch_size, minimum=1)
        self._search_matrix = None  # (num_items, dimension) float32
        # The score buffer of the last call, for the next one (see `_top_k`).
        self._spare_buffer = collections.deque(maxlen=1)

    def _build_backend(self):
        vectors = np.asarray(self._item_embeddings, dtype=np.float32)
        if self.metric == "angular":
            vectors = _l2_normalize(vectors)
        self._search_matrix = np.ascontiguousarray(vectors)
        self._spare_buffer = collections.deque(maxlen=1)

    def _top_k(self, queries, k, excluded, **search_options):
        n, num_items = len(queries), self.num_items
        positions = np.empty((n, k), dtype=np.int64)
        scores = np.empty((n, k), dtype=np.float32)
        if n == 0:
            return positions, scores
        if self.metric == "angular":
            queries = _l2_normalize(queries)
        block = max(1, min(self.batch_size, _MAX_BLOCK_ENTRIES // num_items, n))
        buffer = self._take_buffer(block)
        items_t = self._search_matrix.T  # (dimension, items), a view
        for start in range(0, n, block):
            stop = min(n, start + block)
            block_scores = buffer[: stop - start]  # (b, items), C-contiguous
            np.matmul(queries[start:stop], items_t, out=block_scores)
            if excluded is not None:
                rows = [np.full(len(e), i) for i, e in enumerate(excluded[start:stop])]
                if rows:
                    block_scores[
                        np.concatenate(rows), np.concatenate(excluded[start:stop])
                    ] = -np.inf
            positions[start:stop], scores[start:stop] = _select_top_k(block_scores, k)
        self._spare_buffer.append(buffer)
        # Slots filled by masked (excluded) items: fewer than k were eligible.
        positions[np.isneginf(scores)] = -1
        return positions, scores

    def _take_buffer(self, rows):
        """A float32 `(>= rows, num_items)` score buffer, reused across calls.

        Every block of a call writes into the same buffer, and the buffer is
        kept for the next call (at most 128 MiB, `_MAX_BLOCK_ENTRIES`
        floats): the page faults of a fresh array on first touch cost 10-25%
        of a block's matrix product. A call running while another holds
        the buffer (queries from several threads) gets its own; deque
        operations are atomic, so no two calls ever share one.
        """
        try:
            buffer = self._spare_buffer.pop()
        except IndexError:
            buffer = None
        if buffer is None or len(buffer) < rows or buffer.shape[1] != self.num_items:
            buffer = np.empty((rows, self.num_items), dtype=np.float32)
        return buffer

    def _search(self, queries, k, **search_options):
        return self._top_k(queries, k, None)


def _select_top_k(scores, k):
    """Exact top-`k` of each row of `scores`, best first.

    Equal to `np.argsort(-scores, axis=1, kind="stable")[:, :k]` (ties go to
    the lower column) and its scores, without sorting or partitioning whole
    rows.

    Each row of `N` scores is read as `s = g * g` strided slices of
    `m = N // s` columns, slice `i` holding the columns `j + i * m`
    (`j < m`), the slices in `g` groups of `g` (the last `N - s m` columns
    are slices of one column). One streaming pass takes each group's
    maximum at each `j`; their maximum over groups is the maximum of
    "column slice" `j`, the `m` values `j, j + m, ..., j + (s - 1) m`. The
    k-th largest of these maxima, `t`, is a lower bound of the row's k-th
    largest score (k column slices each hold a score >= t), so every top-k
    score lies in a column slice whose maximum is >= t, and within it in a
    group whose maximum is >= t. Exactly k column slices reach `t` unless
    maxima tie; only their `g` group maxima, and the `g` scores of the few
    groups that reach `t`, are read again. Strided slices put neighbouring
    columns, e.g. similar items of a catalogue ordered by category, in
    different slices.

    Args:
        scores: float32 array `(b, N)` with unit column stride; `-inf` marks
            excluded items.
        k: int, `1 <= k <= N`.

    Returns:
        `(positions, values)`: int64 and float32 arrays `(b, k)`.
    """
    b, num_items = scores.shape
    cap = _candidate_cap(k)
    groups = min(_MAX_GROUPS, math.isqrt(num_items // (_MIN_WIDTH_FACTOR * k)))
    if groups < 2:
        # Small catalogue or k close to it: the exact k-th score is cheap.
        thresholds = np.partition(scores, num_items - k, axis=1)[:, num_items - k]
        above = scores >= thresholds[:, None]  # (b, N)
        counts = np.count_nonzero(above, axis=1)  # k unless scores tie
        above[counts > cap] = False  # left to `_select_row`
        # flatnonzero + divmod: several times faster than a 2-D nonzero.
        rows, cols = np.divmod(np.flatnonzero(above), num_items)
        candidate_scores = scores[rows, cols]
    else:
        width = num_items // groups**2  # m
        split = groups**2 * width
        size = scores.itemsize
        # (b, group, member, j) view of the first `split` columns: column
        # j + (group * groups + member) * width.
        fine = np.lib.stride_tricks.as_strided(
            scores,
            shape=(b, groups, groups, width),
            strides=(scores.strides[0], groups * width * size, width * size, size),
            writeable=False,
        )
        group_maxima = fine.max(axis=2)  # (b, g, m): the one full pass
        maxima = group_maxima.max(axis=1)  # (b, m)
        tail = scores[:, split:]  # (b, N - split): slices of one column
        both = np.concatenate([maxima, tail], axis=1) if tail.size else maxima
        length = both.shape[1]
        thresholds = np.partition(both, length - k, axis=1)[:, length - k]
        reached = both >= thresholds[:, None]  # (b, length)
        counts = np.count_nonzero(reached, axis=1)  # k unless maxima tie
        reached[counts > cap] = False  # left to `_select_row`
        # flatnonzero + divmod: several times faster than a 2-D nonzero.
        rows, j = np.divmod(np.flatnonzero(reached), length)
        in_tail = j >= width
        tail_rows, tail_cols = rows[in_tail], j[in_tail] - width
        rows, j = rows[~in_tail], j[~in_tail]
        # The groups of each reached column slice that reach the threshold.
        selected, group = np.divmod(
            np.flatnonzero(group_maxima[rows, :, j] >= thresholds[rows, None]),
            groups,
        )
        rows, j = rows[selected], j[selected]
        # The scores of those groups that reach it.
        gathered = fine[rows, group, :, j]  # (reached groups, members)
        kept = np.flatnonzero(gathered >= thresholds[rows, None])
        selected, member = np.divmod(kept, groups)
        candidate_scores = np.concatenate(
            [gathered.reshape(-1)[kept], tail[tail_rows, tail_cols]]
        )
        cols = np.concatenate(
            [
                j[selected] + width * (group[selected] * groups + member),
                split + tail_cols,
            ]
        )
        rows = np.concatenate([rows[selected], tail_rows])

    positions = np.empty((b, k), dtype=np.int64)
    values = np.empty((b, k), dtype=np.float32)
    light = np.flatnonzero(counts <= cap)
    if len(light):
        order = _ranking_order(rows, candidate_scores, cols)
        per_row = np.bincount(rows, minlength=b)
        # Every light row has >= k candidates: take its first k.
        first = (np.cumsum(per_row) - per_row)[light]
        take = order[first[:, None] + np.arange(k)]  # (light, k)
        positions[light] = cols[take]
        values[light] = candidate_scores[take]
    for row in np.flatnonzero(counts > cap):
        # Many ties at the threshold (e.g. duplicated item vectors, or fewer
        # than k items left after exclusion): select this row on its own.
        positions[row], values[row] = _select_row(scores[row], k)
    return positions, values


def _ranking_order(rows, scores, cols):
    """Indices ordering rows ascending, then scores descending, then columns."""
    # One sort of a 64-bit key, (row, score) with the float32 bits mapped to
    # unsigned integers in the same order, is several times faster than a
    # three-key lexsort. "+ 0" turns -0.0 into +0.0, which compares equal.
    bits = (scores + np.float32(0)).view(np.uint32)
    ascending = np.where(bits >> 31, ~bits, bits | 0x80000000)
    key = (rows.astype(np.uint64) << 32) | (0xFFFFFFFF - ascending)
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    if (ordered[1:] == ordered[:-1]).any():
        # Equal scores in a row: break the ties by column.
        order = np.lexsort((cols, key))
    return order


def _candidate_cap(k):
    # Rows with more candidates (slices) than this are handled one by one.
    return 4 * k + 64


def _select_row(row, k):
    """`_select_top_k` for one row of many tied scores."""
    kth = np.partition(row, len(row) - k)[len(row) - k]
    above = np.flatnonzero(row > kth)  # fewer than k
    tied = np.flatnonzero(row == kth)[: k - len(above)]  # lowest columns first
    cols = np.concatenate([above, tied])
    order = np.lexsort((cols, -row[cols]))
    return cols[order], row[cols[order]]


def _l2_normalize(x):
    # NumPy twin of `keras_rec.ops.l2_normalize` (which works on Keras
    # tensors); indexes are NumPy end to end. Zero rows were rejected at
    # validation, so no epsilon is needed; the norm is taken in float64
    # because a non-zero float32 row can still have squares that underflow
    # (an embedding row that weight decay shrank below ~1e-23, e.g. an item never
    # seen in training), which made its float32 norm 0 and its scores inf.
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    return (x / norm).astype(np.float32)
