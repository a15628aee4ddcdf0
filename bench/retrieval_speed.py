"""Retrieval speed: build time, size, latency, throughput and recall of the item indexes.

For each catalogue (synthetic items of every `--sizes` x `--dims`, then the
item embeddings of a DSSM trained briefly on MovieLens 100K) the exact
`BruteForceItemIndex`, a grid of `AnnoyItemIndex` (n_trees x search_k) and a
grid of `HnswItemIndex` (M, ef_construction x ef) are built and measured:

- build time, and the size on disk of the saved index directory (ids, item
  vectors and the backend file: what ships next to the towers);
- single-query latency p50 / p99 (`index.query(one_row, k=100)`, wall
  clock, over `--latency-queries` queries), and batch throughput (one
  `query` call for all `--queries` queries, k=100, each backend's own
  threads; "1 thread" repeats the batch of the default setting with
  `num_threads=1`);
- recall@10 and recall@100: the mean fraction of the exact top-K found in the
  index's top-K, both read from the k=100 answer (as `evaluate_retrieval`
  measures `ann_recall@K`);
- "x exact p50": single-query speed-up over the faster of two exact
  configurations measured in the same section, NumPy's BLAS threads as they
  are and limited to one (`threadpoolctl`);
- exact top-100 throughput of `BruteForceItemIndex.query` against the
  machine's float32 matrix-multiply throughput on the same block shapes
  (`np.matmul` into one reused buffer), measured alternately in the same run
  (best of three each), with BLAS threads as they are and limited to one,
  and against the former selection (`np.argpartition` on each score block).

Synthetic items are shaped like trained item embeddings, not isotropic noise:
a mixture of 300 Gaussian clusters around random unit centres, cluster sizes
Zipf-skewed (the largest holds ~15% of the items), noise norm per cluster
log-uniform in [0.25, 1.0] x the centre's, seen through a linear map whose
i-th principal direction has variance 1 / i (trained embeddings concentrate
their variance in a few directions), L2-normalised, in random order. Their
participation ratio (effective number of dimensions) is 13.6 of 32, against
7.1 for the MovieLens DSSM item embeddings: still more spread out, hence
harder for approximate search, than trained embeddings; `--isotropic` drops
the map for a harder case still (1M 32-d items, HNSW M=16,
ef_construction=100, ef=200: 90% of the exact top-100 instead of 96.5%). Queries mix two clusters' centres
(weight 0.6-1.0 on the first, both drawn by popularity) plus noise, as a
user tower mixes interests, so they do not sit on item clusters. Metric:
cosine ("angular"), k=100.

Grids: at 1M items only the default HNSW graph and a 10-tree Annoy forest are
built. Building is the slow part: on two idle cores a 1M-item HNSW graph
(M=16, ef_construction=200) took 2.8 min (32-d) and 3.4 min (64-d), 2-3x
longer with other jobs running; Annoy's default 50 trees took 2.6 min and
1 GB for 1M 32-d items (`--annoy-grid "50:-1,20000,100000"` reproduces it).
A full run took 11 min with the load average at 0.2-2; timings on a shared
machine are noisy, so the load average is printed with every table, and
ratios measured in one run are what to compare.

    python bench/retrieval_speed.py                     # full run, ~11-25 min
    python bench/retrieval_speed.py --quick             # 100K x 32-d, ~2 min
    python bench/retrieval_speed.py --sizes 1000000 --dims 32 --queries 300 \
        --annoy-grid "50:-1,20000" --hnsw-grid "16/100:200,300"
"""

import argparse
import gc
import os
import platform
import shutil
import tempfile
import time
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_rec.retrieval import AnnoyItemIndex  # noqa: E402
from keras_rec.retrieval import BruteForceItemIndex  # noqa: E402
from keras_rec.retrieval import HnswItemIndex  # noqa: E402
from keras_rec.retrieval import brute_force  # noqa: E402

K = 100
NUM_CLUSTERS = 300

# Per catalogue size: Annoy (n_trees, search_k values) and HNSW ((M,
# ef_construction), ef values). search_k=-1 is Annoy's default, n_trees * k.
GRIDS = {
    # >= 500,000 items: the default HNSW graph and a small Annoy forest only;
    # 1M-item builds are the slow part (see the module docstring).
    "large": {
        "annoy": [(10, (-1, 10_000, 50_000))],
        "hnsw": [((16, 200), (100, 200, 300, 400))],
    },
    "medium": {
        "annoy": [(25, (-1,)), (50, (-1, 10_000, 30_000)), (100, (-1, 30_000))],
        "hnsw": [((16, 100), (100, 200, 300)), ((16, 200), (100, 200, 300, 400))],
    },
    "quick": {
        "annoy": [(50, (-1, 10_000))],
        "hnsw": [((16, 200), (100, 200, 400))],
    },
}


def clustered_embeddings(num_items, num_queries, dim, seed=0, isotropic=False):
    """`(items, queries)`: L2-normalised float32, shaped like trained embeddings.

    A mixture of `NUM_CLUSTERS` Gaussian clusters (Zipf-skewed sizes, varied
    spread) seen through a linear map with a decaying spectrum: the variance
    along the i-th principal direction (a random basis) falls as 1 / i, as in
    trained embeddings, whose variance concentrates in a few directions.
    `isotropic=True` skips the map: full-rank clusters, a harder case for
    approximate search.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(NUM_CLUSTERS, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    if isotropic:
        mixing = np.eye(dim)
    else:
        basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        mixing = basis * (1.0 / np.sqrt(np.arange(1, dim + 1)))  # (dim, dim)
    popularity = 1.0 / np.arange(1, NUM_CLUSTERS + 1) ** 0.9
    popularity /= popularity.sum()
    spread = np.exp(rng.uniform(np.log(0.25), np.log(1.0), size=NUM_CLUSTERS))
    items = np.empty((num_items, dim), dtype=np.float32)
    for start in range(0, num_items, 1 << 18):  # bounded float64 temporaries
        stop = min(num_items, start + (1 << 18))
        cluster = rng.choice(NUM_CLUSTERS, size=stop - start, p=popularity)
        noise = rng.normal(size=(stop - start, dim)) / np.sqrt(dim)
        items[start:stop] = (
            centres[cluster] + spread[cluster, None] * noise
        ) @ mixing.T
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    first, second = rng.choice(NUM_CLUSTERS, size=(2, num_queries), p=popularity)
    weight = rng.uniform(0.6, 1.0, size=(num_queries, 1))
    queries = weight * centres[first] + (1 - weight) * centres[second]
    queries += 0.5 * rng.normal(size=(num_queries, dim)) / np.sqrt(dim)
    queries = queries @ mixing.T
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return items, queries.astype(np.float32)


# ----------------------------------------------------------------------
# Measurements.


def load_avg():
    return "{:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def recall_at(found, exact, k):
    """Mean |found[:, :k] ∩ exact[:, :k]| / k (ids are unique per row)."""
    a, e = found[:, :k], exact[:, :k]
    hits = (a[:, :, None] == e[:, None, :]).any(axis=2).sum(axis=1)
    return float(np.mean(hits / k))


def latency_ms(index, queries, **options):
    """p50 and p99 of single-query wall-clock latency, in ms."""
    for row in queries[:3]:  # warm-up: page in memory-mapped files, caches
        index.query(row[None], K, **options)
    times = np.empty(len(queries))
    for i, row in enumerate(queries):
        start = time.perf_counter()
        index.query(row[None], K, **options)
        times[i] = time.perf_counter() - start
    return 1e3 * np.percentile(times, 50), 1e3 * np.percentile(times, 99)


def saved_size_mb(index, workdir):
    path = os.path.join(workdir, "index")
    index.save(path)
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    shutil.rmtree(path)
    return size / 2**20


def measure(index, queries, latency_queries, exact_ids, **options):
    """One row of measurements for a built index and one search setting."""
    (ids, _), seconds = timed(index.query, queries, K, **options)
    p50, p99 = latency_ms(index, latency_queries, **options)
    row = {"p50": p50, "p99": p99, "qps": len(queries) / seconds}
    if exact_ids is not None:
        row["r10"] = recall_at(ids, exact_ids, 10)
        row["r100"] = recall_at(ids, exact_ids, K)
    return row, ids


def exact_throughput(index, items, queries, repeats=3):
    """Exact top-K vs plain matmul (and argpartition selection), same shapes.

    Returns GFLOP/s (2 * queries * items * dim per pass) of: the raw float32
    matrix products of the index's query blocks into one reused buffer; the
    full `index.query(queries, K)`; the same products followed by the former
    `np.argpartition` selection.
    """
    num_items, dim = items.shape
    block = max(1, min(index.batch_size, brute_force._MAX_BLOCK_ENTRIES // num_items))
    buffer = np.empty((min(block, len(queries)), num_items), dtype=np.float32)
    items_t = np.ascontiguousarray(items).T

    def matmul_only():
        for start in range(0, len(queries), block):
            stop = min(len(queries), start + block)
            np.matmul(queries[start:stop], items_t, out=buffer[: stop - start])

    def argpartition_top_k():
        for start in range(0, len(queries), block):
            stop = min(len(queries), start + block)
            scores = buffer[: stop - start]
            np.matmul(queries[start:stop], items_t, out=scores)
            top = np.argpartition(scores, num_items - K, axis=1)[:, -K:]
            top_scores = np.take_along_axis(scores, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            np.take_along_axis(top, order, axis=1)

    flops = 2.0 * len(queries) * num_items * dim
    best = {"matmul": np.inf, "query": np.inf, "argpartition": np.inf}
    index.query(queries[:block], K)  # warm-up
    for repeat in range(repeats):
        # Alternate, so that both see the same background load.
        best["matmul"] = min(best["matmul"], timed(matmul_only)[1])
        best["query"] = min(best["query"], timed(index.query, queries, K)[1])
        if repeat == 0:
            best["argpartition"] = timed(argpartition_top_k)[1]
    return {name: flops / seconds / 1e9 for name, seconds in best.items()}, block


# ----------------------------------------------------------------------
# One catalogue.


def run_catalogue(title, items, queries, grid, args):
    """Measures every index on one catalogue; returns (rows, throughput)."""
    item_ids = np.arange(len(items))
    latency_queries = queries[: args.latency_queries]
    workdir = tempfile.mkdtemp(prefix="retrieval_speed_")
    rows = []
    started = time.time()
    print(f"\n### {title}\n", flush=True)
    print(f"load average at start: {load_avg()}", flush=True)
    try:
        exact, build = timed(BruteForceItemIndex("angular").build, item_ids, items)
        row, exact_ids = measure(exact, queries, latency_queries, None)
        row.update(
            index="exact (brute force)",
            setting="-",
            build=build,
            size=saved_size_mb(exact, workdir),
            r10=1.0,
            r100=1.0,
        )
        rows.append(row)
        limit_blas = _blas_limiter()
        if limit_blas is not None:
            # Single queries are matrix-vector products: on a machine shared
            # with other jobs one BLAS thread can be much faster than several
            # (no waiting for a descheduled helper thread).
            with limit_blas(1):
                single = dict(row)
                single["p50"], single["p99"] = latency_ms(exact, latency_queries)
                single["qps"] = len(queries) / timed(exact.query, queries, K)[1]
            single["index"] = "exact (brute force), 1 BLAS thread"
            rows.append(single)
        # Speed-ups are against the faster exact configuration.
        exact_p50 = min(r["p50"] for r in rows)
        throughput = None
        if args.throughput:
            count = min(len(queries), args.throughput_queries)
            throughput, block = exact_throughput(exact, items, queries[:count])
            throughput.update(block=block, queries=count, load=load_avg())
            limit_blas = _blas_limiter()
            if limit_blas is not None:
                with limit_blas(1):
                    one, _ = exact_throughput(exact, items, queries[:count], repeats=2)
                throughput["matmul1"], throughput["query1"] = (
                    one["matmul"],
                    one["query"],
                )
        del exact
        gc.collect()

        for n_trees, search_ks in grid["annoy"]:
            index, build = timed(
                AnnoyItemIndex("angular", n_trees=n_trees, seed=0, n_jobs=-1).build,
                item_ids,
                items,
            )
            size = saved_size_mb(index, workdir)
            for search_k in search_ks:
                row, _ = measure(
                    index, queries, latency_queries, exact_ids, search_k=search_k
                )
                if (n_trees, search_k) == _annoy_defaults():
                    row["default"] = "annoy"
                    index.num_threads = 1
                    row["qps1"] = (
                        len(queries)
                        / timed(index.query, queries, K, search_k=search_k)[1]
                    )
                    index.num_threads = None
                row.update(
                    index=f"annoy n_trees={n_trees}",
                    setting=f"search_k={search_k}",
                    build=build,
                    size=size,
                )
                rows.append(row)
                _progress(rows[-1])
            del index
            gc.collect()

        for (m, ef_construction), efs in grid["hnsw"]:
            index, build = timed(
                HnswItemIndex(
                    "angular",
                    M=m,
                    ef_construction=ef_construction,
                    seed=0,
                    num_threads=-1,
                ).build,
                item_ids,
                items,
            )
            size = saved_size_mb(index, workdir)
            for ef in efs:
                row, _ = measure(index, queries, latency_queries, exact_ids, ef=ef)
                if (m, ef_construction, ef) == _hnsw_defaults():
                    row["default"] = "hnsw"
                    index.num_threads = 1
                    row["qps1"] = (
                        len(queries) / timed(index.query, queries, K, ef=ef)[1]
                    )
                    index.num_threads = -1
                row.update(
                    index=f"hnsw M={m} ef_construction={ef_construction}",
                    setting=f"ef={ef}",
                    build=build,
                    size=size,
                )
                rows.append(row)
                _progress(rows[-1])
            del index
            gc.collect()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for row in rows:
        row["speedup"] = exact_p50 / row["p50"]
    print(_rows_table(rows))
    print(
        f"\nload average at end: {load_avg()}; section took "
        f"{time.time() - started:.0f} s",
        flush=True,
    )
    return rows, throughput


def _blas_limiter():
    """`threadpoolctl.threadpool_limits` for BLAS, or None if unavailable."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return lambda n: threadpool_limits(limits=n, user_api="blas")


def _annoy_defaults():
    index = AnnoyItemIndex()
    return index.n_trees, index.search_k


def _hnsw_defaults():
    index = HnswItemIndex()
    return index.M, index.ef_construction, index.ef


def _progress(row):
    print(
        f"  {row['index']} {row['setting']}: recall@100 {row.get('r100', 0):.3f}, "
        f"p50 {row['p50']:.2f} ms, load {load_avg()}",
        flush=True,
    )


def _rows_table(rows):
    header = (
        "| index | build s | size MB | setting | recall@10 | recall@100 "
        "| p50 ms | p99 ms | batch q/s | batch q/s, 1 thread | x exact p50 |"
    )
    lines = [header, "|" + "---|" * 11]
    for row in rows:
        qps1 = f"{row['qps1']:.0f}" if "qps1" in row else "-"
        lines.append(
            f"| {row['index']} | {row['build']:.1f} | {row['size']:.0f} "
            f"| {row['setting']} | {row['r10']:.3f} | {row['r100']:.3f} "
            f"| {row['p50']:.3f} | {row['p99']:.3f} | {row['qps']:.0f} | {qps1} "
            f"| {row['speedup']:.1f} |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------
# Real embeddings: DSSM on MovieLens 100K.


def movielens_catalogue(data_dir, epochs):
    """`(items, users)` from a briefly trained DSSM, or None with a message."""
    if not os.path.isfile(os.path.join(data_dir, "u.data")):
        print(f"\nSkipping the MovieLens row: no u.data in {data_dir!r}.")
        return None
    try:
        from keras_rec.workflows.datasets import USER_ATTRIBUTES
        from keras_rec.workflows.datasets import load_recall_dataset
        from keras_rec.workflows.recall import embed
        from keras_rec.workflows.recall import train_recall
        from keras_rec.workflows.recall_data import prepare_recall_data
    except ImportError as error:
        print(
            f"\nSkipping the MovieLens row: keras_rec.workflows unavailable ({error})."
        )
        return None
    interactions, users = load_recall_dataset("movielens-100k", data_dir)
    data = prepare_recall_data(
        interactions,
        users,
        user_attributes=USER_ATTRIBUTES.get("movielens-100k", ()),
        embedding_dim=32,
    )
    model, _, seconds = train_recall(
        "dssm", data, epochs=epochs, verbose=0, monitor=False, seed=1
    )
    user_vectors, item_vectors = embed(model, data)
    print(
        f"\nDSSM trained on MovieLens 100K for {epochs} epochs in {seconds:.0f} s: "
        f"{len(item_vectors)} items, {len(user_vectors)} users, "
        f"{item_vectors.shape[1]}-d.",
        flush=True,
    )
    return np.asarray(item_vectors, np.float32), np.asarray(user_vectors, np.float32)


# ----------------------------------------------------------------------


def _parse_grid(text, parse_key):
    """ "a:x,y;b:z" -> [(parse_key(a), (x, y)), (parse_key(b), (z,))]; "" -> []."""
    grid = []
    for part in filter(None, text.split(";")):
        key, values = part.split(":")
        grid.append((parse_key(key), tuple(int(v) for v in values.split(","))))
    return grid


def environment():
    lines = [
        f"- CPU: {os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        f"- numpy {np.__version__}",
    ]
    try:
        lines.append(f"- annoy {version('annoy')}, hnswlib {version('hnswlib')}")
    except PackageNotFoundError:
        pass
    try:
        import threadpoolctl

        for pool in threadpoolctl.threadpool_info():
            lines.append(
                f"- {pool['user_api']}: {pool['internal_api']} "
                f"{pool.get('version')}, {pool['num_threads']} threads"
            )
    except ImportError:
        lines.append("- BLAS threads: unknown (threadpoolctl not installed)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--dims", default="32,64")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--throughput-queries", type=int, default=256)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--data-dir",
        default=os.path.join("..", "shared", "data", "movielens-100k"),
    )
    parser.add_argument(
        "--annoy-grid",
        help='replaces the built-in Annoy grid: "n_trees:search_k,...;...", '
        'e.g. "50:-1,20000;100:50000"',
    )
    parser.add_argument(
        "--hnsw-grid",
        help='replaces the built-in HNSW grid: "M/ef_construction:ef,...;...", '
        'e.g. "16/100:100,200;32/100:200"',
    )
    parser.add_argument(
        "--isotropic",
        action="store_true",
        help="full-rank clusters (no decaying spectrum): harder for ANN search",
    )
    parser.add_argument("--movielens-epochs", type=int, default=3)
    parser.add_argument("--no-movielens", action="store_true")
    parser.add_argument("--no-throughput", dest="throughput", action="store_false")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.dims = "100000", "32"
        args.queries = min(args.queries, 300)
        args.latency_queries = min(args.latency_queries, 100)
    sizes = [int(s) for s in args.sizes.split(",")]
    dims = [int(d) for d in args.dims.split(",")]
    started = time.time()

    print("## Retrieval speed\n")
    print(environment())
    print(
        f"- queries: {args.queries} (batch, recall), {args.latency_queries} "
        f"(single-query latency); k={K}; metric angular"
    )
    print(f"- load average: {load_avg()}", flush=True)

    throughput_rows, summaries = [], []
    for size in sizes:
        for dim in dims:
            items, queries = clustered_embeddings(
                size, args.queries, dim, isotropic=args.isotropic
            )
            grid = dict(
                GRIDS[
                    "quick" if args.quick else "large" if size >= 500_000 else "medium"
                ]
            )
            if args.annoy_grid is not None:
                grid["annoy"] = _parse_grid(args.annoy_grid, int)
            if args.hnsw_grid is not None:
                grid["hnsw"] = _parse_grid(
                    args.hnsw_grid, lambda x: tuple(int(v) for v in x.split("/"))
                )
            title = f"{size:,} clustered items, {dim}-d" + (
                " (isotropic clusters)" if args.isotropic else ""
            )
            rows, throughput = run_catalogue(title, items, queries, grid, args)
            if throughput:
                throughput_rows.append((size, dim, throughput))
            summaries.append((title, size, rows))
            del items, queries
            gc.collect()

    if not args.no_movielens:
        catalogue = movielens_catalogue(args.data_dir, args.movielens_epochs)
        if catalogue is not None:
            items, users = catalogue
            grid = {
                "annoy": [(_annoy_defaults()[0], (_annoy_defaults()[1],))],
                "hnsw": [(_hnsw_defaults()[:2], (_hnsw_defaults()[2],))],
            }
            title = f"MovieLens 100K DSSM item embeddings ({len(items)} items)"
            args_ml = argparse.Namespace(**vars(args))
            args_ml.latency_queries = min(args.latency_queries, len(users))
            rows = run_catalogue(title, items, users, grid, args_ml)[0]
            summaries.append((title, len(items), rows))

    if throughput_rows:
        print("\n### Exact top-100 throughput against float32 matmul\n")
        print(
            "| items | dim | queries (per block) | matmul GFLOP/s | exact query "
            "GFLOP/s | exact / matmul | argpartition GFLOP/s | argpartition / "
            "matmul | 1 BLAS thread: matmul, exact, ratio | load |"
        )
        print("|" + "---|" * 10)
        for size, dim, t in throughput_rows:
            one = (
                f"{t['matmul1']:.1f}, {t['query1']:.1f}, "
                f"{t['query1'] / t['matmul1']:.2f}"
                if "matmul1" in t
                else "-"
            )
            print(
                f"| {size:,} | {dim} | {t['queries']} ({t['block']}) "
                f"| {t['matmul']:.1f} | {t['query']:.1f} "
                f"| {t['query'] / t['matmul']:.2f} | {t['argpartition']:.1f} "
                f"| {t['argpartition'] / t['matmul']:.2f} | {one} | {t['load']} |"
            )

    print("\n### Library defaults and targets\n")
    print(f"- AnnoyItemIndex: n_trees, search_k = {_annoy_defaults()}")
    print(f"- HnswItemIndex: M, ef_construction, ef = {_hnsw_defaults()}")
    for title, size, rows in summaries:
        for row in rows:
            if not row.get("default"):
                continue
            line = (
                f"- {title}: {row['index']} {row['setting']}: recall@100 "
                f"{row['r100']:.3f}, p50 {row['p50']:.3f} ms = "
                f"{row['speedup']:.1f}x faster than exact single-query"
            )
            if row["default"] == "hnsw" and size >= 1_000_000:
                met = row["r100"] >= 0.95 and row["speedup"] >= 20
                line += " -- target recall@100 >= 0.95 at >= 20x: " + (
                    "met" if met else "NOT met"
                )
            print(line)
    for size, dim, t in throughput_rows:
        ratio = t["query"] / t["matmul"]
        print(
            f"- exact top-{K} on {size:,} x {dim}-d: {ratio:.2f} of the matmul "
            "throughput -- target >= 0.5: " + ("met" if ratio >= 0.5 else "NOT met")
        )
    print(f"\nTotal time {time.time() - started:.0f} s; load average {load_avg()}.")


if __name__ == "__main__":
    main()
