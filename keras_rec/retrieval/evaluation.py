"""Offline evaluation of retrieval: Recall / HitRate / Precision / NDCG / MRR.

`retrieval_metrics` scores ranked lists against held-out items;
`evaluate_retrieval` queries an item index for a batch of users and reports
the metrics with and without the users' already-seen items, plus the
approximate index's recall against exact search (`ann_recall@K`);
`popularity_baseline` gives the most-popular ranking's metrics for the same
table; `format_table` prints them.

Results are plain dicts (JSON-serialisable with
`keras_rec.io_utils.write_json_atomic`):

```
{
  "backend": "annoy",
  "index": "annoy(metric='angular', n_trees=50, search_k=-1, seed=0)",
  "index_params": {"metric": "angular", "n_trees": 50, "search_k": -1, ...},
  "note": "annoy(...): approximate search (...). Annoy's recall is limited...",
  "num_users": 943, "num_items": 1682, "ks": [10, 50, 100],
  "results": {
    "include_seen": {"recall@10": ..., ..., "mrr": ..., "ann_recall@10": ...},
    "exclude_seen": {...},
  },
}
```
"""

import math

import numpy as np

from keras_rec.retrieval.base import INT_PAD_ID
from keras_rec.retrieval.base import STR_PAD_ID
from keras_rec.retrieval.base import _as_id_array
from keras_rec.retrieval.base import _check_int
from keras_rec.retrieval.base import _is_scalar_id
from keras_rec.retrieval.brute_force import BruteForceItemIndex

_SETTING_NAMES = {False: "include_seen", True: "exclude_seen"}
# Users per block when comparing approximate and exact top-K lists.
_OVERLAP_BLOCK = 1024


def retrieval_metrics(ranked_item_ids, target_item_ids, ks=(10, 50, 100)):
    """Recall, HitRate, Precision and NDCG at each K, and MRR, averaged over users.

    Relevance is binary: an item is relevant to a user if it is one of the
    user's targets. With `T` the set of a user's targets and `hits@K` the
    number of distinct targets among the first K ranked items:

    - `recall@K = hits@K / |T|`
    - `hit_rate@K = 1 if hits@K > 0 else 0`
    - `precision@K = hits@K / K`
    - `ndcg@K = DCG@K / IDCG@K`, `DCG@K = sum over relevant ranks r <= K of
      1 / log2(r + 1)`, `IDCG@K` the same with `min(|T|, K)` relevant items
      at the top.
    - `mrr = 1 / rank` of the first relevant item in the whole ranked list
      (0 if none).

    Args:
        ranked_item_ids: array-like `(num_users, L)` of raw item ids, best
            first (e.g. the `ids` returned by `ItemIndex.query`). Padding
            ids (-1 / "") never match.
        target_item_ids: sequence of length `num_users`; each entry is one
            item id (leave-last-out) or a list / set / array of item ids.
            Every user needs at least one target; duplicates count once.
        ks: sequence of ints, each `1 <= K <= L`. Defaults to `(10, 50, 100)`.

    Returns:
        dict of floats: `recall@K`, `hit_rate@K`, `precision@K`, `ndcg@K` for
        each K, then `mrr`.

    Example:

    >>> retrieval_metrics([[5, 7, 9]], [9], ks=(3,))["ndcg@3"]  # 1 / log2(4)
    0.5
    """
    ranked = _as_id_array(ranked_item_ids, "ranked_item_ids")
    if ranked.ndim != 2:
        raise ValueError(
            "`ranked_item_ids` must be 2-D (num_users, list_length). "
            f"Received: ranked_item_ids with shape {ranked.shape}"
        )
    num_users, length = ranked.shape
    ks = _check_ks(ks, length, "the length of the ranked lists")
    targets = _target_sets(target_item_ids, num_users, "target_item_ids")
    relevant, num_targets = _relevance(ranked, targets)  # (users, L), (users,)

    if num_users == 0:
        raise ValueError("`ranked_item_ids` must hold at least one user.")
    discounts = 1.0 / np.log2(np.arange(2, length + 2))  # (L,)
    ideal = np.cumsum(discounts)  # ideal[j]: IDCG with j + 1 relevant items
    metrics = {}
    for k in ks:
        hits = relevant[:, :k].sum(axis=1)
        dcg = relevant[:, :k].astype(np.float64) @ discounts[:k]
        idcg = ideal[np.minimum(num_targets, k) - 1]
        metrics[f"recall@{k}"] = float(np.mean(hits / num_targets))
        metrics[f"hit_rate@{k}"] = float(np.mean(hits > 0))
        metrics[f"precision@{k}"] = float(np.mean(hits / k))
        metrics[f"ndcg@{k}"] = float(np.mean(dcg / idcg))
    first = np.argmax(relevant, axis=1)
    reciprocal = np.where(relevant.any(axis=1), 1.0 / (first + 1), 0.0)
    metrics["mrr"] = float(np.mean(reciprocal))
    return metrics


def evaluate_retrieval(
    index,
    user_embeddings,
    target_item_ids,
    ks=(10, 50, 100),
    seen_item_ids=None,
    exclude_seen=(False, True),
    exact_index=None,
):
    """Queries `index` for every user and scores the results.

    For each setting of `exclude_seen` the index is queried once, in batch,
    for the top `max(ks)` items (with `exclude=seen_item_ids` when True) and
    `retrieval_metrics` is computed. For approximate indexes the same
    queries go to an exact index and `ann_recall@K`, the mean fraction of
    the exact top-K that the index also returned in its top-K, is added: it
    bounds how much of the exact search's quality the index keeps. It is
    measured on the lists evaluated, i.e. from one query for `max(ks)`
    items; Annoy with `search_k=-1` searches wider for larger requests, so
    its recall@10 from a `k=100` query is higher than from a `k=10` query.

    Args:
        index: a built `ItemIndex`.
        user_embeddings: float array `(num_users, dimension)`.
        target_item_ids: sequence of length `num_users`: one held-out item id
            or a collection of them per user.
        ks: sequence of ints, each `1 <= K <= index.num_items`.
            Defaults to `(10, 50, 100)`.
        seen_item_ids: None or a sequence of length `num_users` of the item
            ids each user interacted with in training. Required when
            `exclude_seen` includes True. Defaults to None.
        exclude_seen: bool or sequence of bools: the settings to evaluate.
            Defaults to `(False, True)`.
        exact_index: None or an exact `ItemIndex` over the same items and
            metric. None builds a `BruteForceItemIndex` from
            `index.item_embeddings` when `index` is approximate. Defaults to
            None.

    Returns:
        dict with `backend`, `index` (its description), `index_params`,
        `note` (the backend's recall caveat), `num_users`, `num_items`, `ks`
        and `results`: `{"include_seen": metrics, "exclude_seen": metrics}`
        for the settings evaluated, each metrics dict as returned by
        `retrieval_metrics` plus `ann_recall@K` for approximate indexes.

    Example:

    ```python
    report = evaluate_retrieval(
        index, user_embeddings, last_items, seen_item_ids=train_items
    )
    print(format_table([report, popularity_baseline(train, last_items, ...)]))
    ```
    """
    if not getattr(index, "is_built", False):
        raise ValueError(
            f"`index` must be a built ItemIndex. Received: index={index!r}"
        )
    ks = _check_ks(ks, index.num_items, "the number of items")
    settings = _check_settings(exclude_seen, seen_item_ids)
    queries = np.asarray(user_embeddings)
    num_users = len(queries)
    targets = _target_sets(target_item_ids, num_users, "target_item_ids")
    seen = _check_seen(seen_item_ids, num_users)

    if exact_index is None and not index.is_exact:
        exact_index = BruteForceItemIndex(metric=index.metric).build(
            index.item_ids, index.item_embeddings
        )
    elif exact_index is not None:
        _check_exact_index(exact_index, index)
    k_max = max(ks)
    results = {}
    for setting in settings:
        exclude = seen if setting else None
        ids, _ = index.query(queries, k_max, exclude=exclude)
        metrics = retrieval_metrics(ids, targets, ks)
        if exact_index is not None:
            exact_ids, _ = exact_index.query(queries, k_max, exclude=exclude)
            metrics.update(_ann_recall(index, ids, exact_ids, ks))
        results[_SETTING_NAMES[setting]] = metrics
    return {
        "backend": index.backend,
        "index": index.describe(),
        "index_params": index.get_params(),
        "note": index.approximation_note,
        "num_users": num_users,
        "num_items": index.num_items,
        "ks": list(ks),
        "results": results,
    }


def popularity_baseline(
    train_item_ids,
    target_item_ids,
    ks=(10, 50, 100),
    seen_item_ids=None,
    exclude_seen=(False, True),
):
    """The metrics of recommending the most popular training items to everyone.

    Items are ranked by their number of occurrences in `train_item_ids`,
    ties broken by item id; with `exclude_seen=True` each user's seen items
    are skipped. Lists shorter than `max(ks)` (a small catalogue) are padded
    with -1 / "" and count as misses.

    Args:
        train_item_ids: 1-D sequence of item ids, one per training
            interaction.
        target_item_ids: sequence of length `num_users`, as in
            `retrieval_metrics`.
        ks: sequence of positive ints. Defaults to `(10, 50, 100)`.
        seen_item_ids: None or a sequence of length `num_users` of seen item
            ids. Required when `exclude_seen` includes True. Defaults to None.
        exclude_seen: bool or sequence of bools. Defaults to `(False, True)`.

    Returns:
        dict shaped like `evaluate_retrieval`'s, with backend `"popularity"`.
    """
    train = _as_id_array(train_item_ids, "train_item_ids")
    if train.ndim != 1 or len(train) == 0:
        raise ValueError(
            "`train_item_ids` must be a non-empty 1-D sequence of item ids. "
            f"Received: train_item_ids with shape {train.shape}"
        )
    ks = _check_ks(ks, None, None)
    settings = _check_settings(exclude_seen, seen_item_ids)
    num_users = len(target_item_ids) if hasattr(target_item_ids, "__len__") else -1
    targets = _target_sets(target_item_ids, num_users, "target_item_ids")
    seen = _check_seen(seen_item_ids, num_users)

    items, counts = np.unique(train, return_counts=True)  # sorted by id
    ranking = items[np.argsort(-counts, kind="stable")]
    pad = STR_PAD_ID if ranking.dtype.kind == "U" else INT_PAD_ID
    k_max = max(ks)
    results = {}
    for setting in settings:
        ranked = np.full((num_users, k_max), pad, dtype=ranking.dtype)
        if setting:
            for user, user_seen in enumerate(seen):
                user_seen = _as_id_array(list(user_seen), "seen_item_ids")
                candidates = ranking[: k_max + len(user_seen)]
                if len(user_seen):
                    candidates = candidates[~np.isin(candidates, user_seen)]
                candidates = candidates[:k_max]
                ranked[user, : len(candidates)] = candidates
        else:
            top = ranking[:k_max]
            ranked[:, : len(top)] = top
        results[_SETTING_NAMES[setting]] = retrieval_metrics(ranked, targets, ks)
    return {
        "backend": "popularity",
        "index": f"popularity(num_items={len(items)})",
        "index_params": {"num_items": len(items)},
        "note": (
            "Most-popular ranking from the training interactions, the same "
            "for every user (ties broken by item id)."
        ),
        "num_users": num_users,
        "num_items": len(items),
        "ks": list(ks),
        "results": results,
    }


def format_table(results, precision=4):
    """Formats evaluation results as a plain-text table, one column per run.

    Args:
        results: one result dict (from `evaluate_retrieval` or
            `popularity_baseline`), a list of them, a dict `{name: result}`,
            or plain metrics dicts from `retrieval_metrics` in any of these
            forms.
        precision: int. Decimals shown. Defaults to 4.

    Returns:
        str: a header row of run names (`backend/setting`), one row per
        metric, and the runs' notes (index parameters, recall caveats)
        underneath.

    Example:

    ```
    metric          annoy/include_seen  annoy/exclude_seen  popularity/include_seen
    recall@10       0.0551              0.0689              0.0382
    ...
    ```
    """
    runs = _named_runs(results)
    columns, notes = [], []
    for name, result in runs:
        if _is_report(result):
            for setting, metrics in result["results"].items():
                columns.append((f"{name}/{setting}", metrics))
            note = result.get("note") or result.get("index")
            if note:
                notes.append(f"{name}: {note}")
        else:
            columns.append((name, result))
    if not columns:
        raise ValueError("`results` holds no metrics to format.")
    rows = []
    for _, metrics in columns:
        for key in metrics:
            if key not in rows:
                rows.append(key)
    header = ["metric"] + [label for label, _ in columns]
    body = [
        [row] + [_format_number(metrics.get(row), precision) for _, metrics in columns]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
        for line in [header, *body]
    ]
    if notes:
        lines.append("")
        lines.extend(f"* {note}" for note in notes)
    return "\n".join(lines)


# ----------------------------------------------------------------------
# Helpers.


def _check_ks(ks, limit, limit_name):
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, bool):
        ks = (ks,)
    try:
        ks = tuple(ks)
    except TypeError:
        raise ValueError(
            f"`ks` must be a sequence of positive ints. Received: ks={ks!r}"
        ) from None
    if not ks:
        raise ValueError(f"`ks` must not be empty. Received: ks={ks!r}")
    for k in ks:
        _check_int("ks", k, minimum=1)
    ks = tuple(sorted(set(int(k) for k in ks)))
    if limit is not None and ks[-1] > limit:
        raise ValueError(
            f"Every K in `ks` must be <= {limit_name} ({limit}). Received: ks={ks}"
        )
    return ks


def _check_settings(exclude_seen, seen_item_ids):
    if isinstance(exclude_seen, (bool, np.bool_)):
        exclude_seen = (bool(exclude_seen),)
    settings = []
    for setting in exclude_seen:
        if not isinstance(setting, (bool, np.bool_)):
            raise ValueError(
                "`exclude_seen` must be a bool or a sequence of bools. "
                f"Received: exclude_seen={exclude_seen!r}"
            )
        if bool(setting) not in settings:
            settings.append(bool(setting))
    if not settings:
        raise ValueError(
            f"`exclude_seen` must not be empty. Received: exclude_seen={exclude_seen!r}"
        )
    if True in settings and seen_item_ids is None:
        raise ValueError(
            "`exclude_seen` includes True, which needs `seen_item_ids` (the "
            "items each user saw in training). Pass seen_item_ids or "
            f"exclude_seen=False. Received: exclude_seen={exclude_seen!r}, "
            "seen_item_ids=None"
        )
    return settings


def _check_seen(seen_item_ids, num_users):
    if seen_item_ids is None:
        return None
    if len(seen_item_ids) != num_users:
        raise ValueError(
            f"`seen_item_ids` must have one entry per user ({num_users}). "
            f"Received: len(seen_item_ids)={len(seen_item_ids)}"
        )
    return [() if row is None else row for row in seen_item_ids]


def _target_sets(target_item_ids, num_users, name):
    """Targets as a 1-D id array (one per user) or a list of id arrays."""
    if isinstance(target_item_ids, (str, bytes)) or not hasattr(
        target_item_ids, "__len__"
    ):
        raise ValueError(
            f"`{name}` must be a sequence with one entry per user. Received: "
            f"{name} of type {type(target_item_ids).__name__}"
        )
    if len(target_item_ids) != num_users:
        raise ValueError(
            f"`{name}` must have one entry per user ({num_users}). "
            f"Received: len({name})={len(target_item_ids)}"
        )
    if all(_is_scalar_id(t) for t in target_item_ids):
        return _as_id_array(list(target_item_ids), name)
    sets = []
    for user, row in enumerate(target_item_ids):
        row = [row] if _is_scalar_id(row) else list(row)
        if not row:
            raise ValueError(
                f"`{name}` must give every user at least one target. "
                f"Received: {name}[{user}] empty"
            )
        sets.append(np.unique(_as_id_array(row, name)))
    return sets


def _check_kinds(ranked, target_kind):
    if ranked.size and (ranked.dtype.kind == "U") != (target_kind == "U"):
        raise ValueError(
            "`ranked_item_ids` and `target_item_ids` must both be integer ids "
            f"or both string ids. Received: ranked ids of dtype {ranked.dtype} "
            f"and target ids of kind {target_kind!r}"
        )


def _relevance(ranked, targets):
    """Boolean `(users, L)`: first occurrence of a target; target counts."""
    num_users, length = ranked.shape
    if isinstance(targets, np.ndarray):  # one target per user
        _check_kinds(ranked, targets.dtype.kind)
        relevant = ranked == targets[:, None]
        # A duplicated target in a ranked list counts once.
        relevant &= np.cumsum(relevant, axis=1) == 1
        return relevant, np.ones(num_users, dtype=np.int64)
    relevant = np.zeros((num_users, length), dtype=bool)
    counts = np.empty(num_users, dtype=np.int64)
    for user, (row, target) in enumerate(zip(ranked, targets)):
        _check_kinds(ranked, target.dtype.kind)
        hit = np.isin(row, target)
        if hit.any():
            _, first = np.unique(row, return_index=True)
            once = np.zeros(length, dtype=bool)
            once[first] = True
            hit &= once
        relevant[user] = hit
        counts[user] = len(target)
    return relevant, counts


def _check_exact_index(exact_index, index):
    if not getattr(exact_index, "is_built", False):
        raise ValueError(
            f"`exact_index` must be a built ItemIndex. Received: exact_index={exact_index!r}"
        )
    if (
        exact_index.metric != index.metric
        or exact_index.dimension != index.dimension
        or exact_index.num_items != index.num_items
    ):
        raise ValueError(
            "`exact_index` must index the same items with the same metric as "
            f"`index` ({index.metric}, {index.num_items} items of dimension "
            f"{index.dimension}). Received: exact_index={exact_index!r}"
        )


def _ann_recall(index, ids, exact_ids, ks):
    """Mean |top-K ∩ exact top-K| / |exact top-K| for each K."""
    ann = index.ids_to_positions(ids, missing="ignore")  # (users, K_max)
    exact = index.ids_to_positions(exact_ids, missing="ignore")
    recalls = {}
    for k in ks:
        found = np.zeros(len(ann), dtype=np.int64)
        for start in range(0, len(ann), _OVERLAP_BLOCK):
            a = ann[start : start + _OVERLAP_BLOCK, :k]
            e = exact[start : start + _OVERLAP_BLOCK, :k]
            # (block, K, K) comparisons; padding (-1) never counts.
            match = (e[:, :, None] == a[:, None, :]).any(axis=2) & (e >= 0)
            found[start : start + len(a)] = match.sum(axis=1)
        size = (exact[:, :k] >= 0).sum(axis=1)
        valid = size > 0
        recalls[f"ann_recall@{k}"] = (
            float(np.mean(found[valid] / size[valid])) if valid.any() else math.nan
        )
    return recalls


def _named_runs(results):
    if isinstance(results, dict):
        if _is_report(results):
            return [(results.get("backend", "run"), results)]
        if all(_is_number(v) for v in results.values()):
            return [("metrics", results)]
        return list(results.items())
    runs, seen = [], {}
    for i, result in enumerate(results):
        name = result.get("backend", f"run{i}") if _is_report(result) else f"run{i}"
        seen[name] = seen.get(name, 0) + 1
        runs.append((name if seen[name] == 1 else f"{name}#{seen[name]}", result))
    return runs


def _is_report(result):
    return isinstance(result, dict) and isinstance(result.get("results"), dict)


def _is_number(value):
    return value is None or isinstance(value, (int, float, np.integer, np.floating))


def _format_number(value, precision):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.{precision}f}"
