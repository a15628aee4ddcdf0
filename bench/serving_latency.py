"""Serving latency: exported towers and rankers through `tf.saved_model.load`, and
`Recaller.recommend` end to end (user tower + Annoy) over a large catalogue.

Cases (p50 / p99 over `--repeats` timed calls after warm-up, wall-clock):

- the user tower of a DSSM (user id, 50-item history with a length input, one
  dense feature; 32-d output), one request and a batch of 256;
- a DeepFM scoring 100 candidate items for one user (one batch of 100 rows);
- `Recaller.recommend` for one user and for 256 users: the exported user
  tower, then an Annoy query (k=10) over `--items` synthetic items (clustered,
  L2-normalised, 32-d); and the Annoy query alone, for the split.

Models have random weights (latency does not depend on training). Everything
is written to a temporary directory. TensorFlow uses `--threads` intra-op
threads (default 1: a serving process usually pins one core per worker).

    python bench/serving_latency.py
    python bench/serving_latency.py --items 1000000 --repeats 500
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_rec.export import export_saved_model  # noqa: E402
from keras_rec.export import export_towers  # noqa: E402
from keras_rec.features import DenseFeat  # noqa: E402
from keras_rec.features import SparseFeat  # noqa: E402
from keras_rec.features import VarLenSparseFeat  # noqa: E402
from keras_rec.models import DSSM  # noqa: E402
from keras_rec.models import DeepFM  # noqa: E402
from keras_rec.retrieval import AnnoyItemIndex  # noqa: E402
from keras_rec.serving import Recaller  # noqa: E402

DIM = 32
MAXLEN = 50
NUM_USERS = 10_000
NUM_CATEGORIES = 50
CANDIDATES = 100
K = 10


def clustered_items(num_items, dim, num_clusters=100, seed=0):
    """L2-normalised vectors around `num_clusters` random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_clusters, dim))
    vectors = centres[rng.integers(0, num_clusters, size=num_items)]
    vectors = vectors + 0.4 * rng.normal(size=(num_items, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype("float32")


def user_batch(rng, n, num_items):
    lengths = rng.integers(1, MAXLEN + 1, size=n).astype("int32")
    hist = rng.integers(1, num_items + 1, size=(n, MAXLEN)).astype("int32")
    hist[np.arange(MAXLEN)[None, :] >= lengths[:, None]] = 0
    return {
        "user_id": rng.integers(1, NUM_USERS + 1, size=n).astype("int32"),
        "hist_item_id": hist,
        "hist_len": lengths,
        "age": rng.normal(size=(n, 1)).astype("float32"),
    }


def timed(fn, repeats, warmup=10):
    """Milliseconds per call: (p50, p99)."""
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3


def signature_caller(path, inputs):
    signature = tf.saved_model.load(path).signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    feed = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()}
    # Keep the loaded object alive through the closure's signature.
    return lambda: signature(**feed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--n-trees", type=int, default=50)
    parser.add_argument("--search-k", type=int, default=-1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []

    with tempfile.TemporaryDirectory() as root:
        # ---- Towers: DSSM user tower.
        user_columns = [
            SparseFeat("user_id", NUM_USERS + 1, DIM),
            VarLenSparseFeat(
                SparseFeat(
                    "hist_item_id", args.items + 1, DIM, embedding_name="item_id"
                ),
                maxlen=MAXLEN,
                length_name="hist_len",
            ),
            DenseFeat("age", 1),
        ]
        item_columns = [
            SparseFeat("item_id", args.items + 1, DIM),
            SparseFeat("category", NUM_CATEGORIES + 1, 8),
        ]
        dssm = DSSM(
            user_columns,
            item_columns,
            user_dnn_hidden_units=(128, DIM),
            item_dnn_hidden_units=(128, DIM),
        )
        start = time.perf_counter()
        paths = export_towers(dssm, root)
        export_seconds = time.perf_counter() - start
        for batch in (1, 256):
            call = signature_caller(
                paths["user_tower"], user_batch(rng, batch, args.items)
            )
            p50, p99 = timed(call, args.repeats)
            rows.append(("user tower (SavedModel)", batch, p50, p99))

        # ---- Ranking: DeepFM, 100 candidates for one user.
        rank_columns = [
            SparseFeat("user_id", NUM_USERS + 1, 8),
            SparseFeat("item_id", args.items + 1, 8),
            SparseFeat("category", NUM_CATEGORIES + 1, 8),
            VarLenSparseFeat(
                SparseFeat("hist_item_id", args.items + 1, 8, embedding_name="item_id"),
                maxlen=MAXLEN,
                length_name="hist_len",
            ),
            DenseFeat("age", 1),
        ]
        deepfm = DeepFM(rank_columns, rank_columns, dnn_hidden_units=(128, 64))
        ranker_path = export_saved_model(deepfm, os.path.join(root, "deepfm"))
        user = user_batch(rng, 1, args.items)
        candidates = {k: np.repeat(v, CANDIDATES, axis=0) for k, v in user.items()}
        candidates["item_id"] = rng.integers(1, args.items + 1, CANDIDATES).astype(
            "int32"
        )
        candidates["category"] = rng.integers(1, NUM_CATEGORIES + 1, CANDIDATES).astype(
            "int32"
        )
        p50, p99 = timed(signature_caller(ranker_path, candidates), args.repeats)
        rows.append(
            (f"DeepFM, {CANDIDATES} candidates of one user", CANDIDATES, p50, p99)
        )

        # ---- Recall end to end: Recaller = user tower + Annoy.
        item_ids = np.arange(1, args.items + 1)
        start = time.perf_counter()
        index = AnnoyItemIndex(n_trees=args.n_trees, search_k=args.search_k)
        index.build(item_ids, clustered_items(args.items, DIM))
        build_seconds = time.perf_counter() - start
        index.save(os.path.join(root, "index"))
        recaller = Recaller.load(root)
        for batch in (1, 256):
            features = user_batch(rng, batch, args.items)
            p50, p99 = timed(
                lambda f=features: recaller.recommend(f, k=K), args.repeats
            )
            rows.append((f"Recaller.recommend (tower + Annoy, k={K})", batch, p50, p99))
            embeddings = recaller.embed(features)
            p50, p99 = timed(
                lambda e=embeddings: recaller.index.query(e, K), args.repeats
            )
            rows.append((f"  of which Annoy query alone (k={K})", batch, p50, p99))

    print(
        f"\nServing latency: {args.items:,} items ({DIM}-d, clustered), Annoy "
        f"n_trees={args.n_trees}, search_k={args.search_k}; {args.repeats} timed "
        f"calls per row; TF threads={args.threads}; towers exported in "
        f"{export_seconds:.1f}s, Annoy built in {build_seconds:.1f}s.\n"
    )
    print("| case | batch | p50 (ms) | p99 (ms) | rows/s at p50 |")
    print("|---|---:|---:|---:|---:|")
    for name, batch, p50, p99 in rows:
        print(
            f"| {name} | {batch} | {p50:.2f} | {p99:.2f} | {batch / p50 * 1e3:,.0f} |"
        )


if __name__ == "__main__":
    main()
