"""Streaming input pipelines: peak memory and throughput as the row count grows.

Writes synthetic Criteo-format shards (label, I1..I13, C1..C26) to a
temporary directory, generated `--shard-rows` rows at a time with
`make_synthetic_criteo` so generation itself stays flat, then, for each size
in `--rows`, runs in a FRESH subprocess (so peaks do not mix):

- `vocab`: `build_vocabularies` over C1..C26 and the log-square buckets of
  I1..I13, one streaming pass;
- `stream`: iterates `make_dataset(...)` (shuffle buffer 10,000, batches of
  `--batch-size`, I1..I13 bucketed in the graph) to the end;
- `fit` (only for sizes <= `--fit-rows`): one epoch of a small DeepFM whose
  39 columns carry the vocabularies of the `vocab` step.

Each reports the peak RSS of its process (VmHWM), the RSS after
TensorFlow and the pipeline are set up (before the first row), the RSS at
quarters of the pass (psutil), and rows per second. The claim checked: peak
RSS does not grow with the number of rows.

    python bench/streaming_memory.py
    python bench/streaming_memory.py --rows 1000000,10000000 --format parquet
    python bench/streaming_memory.py --rows 1000000 --fit-rows 0 --keep
    python bench/streaming_memory.py --rows 1000000,5000000 --steps stream
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

C_COLUMNS = [f"C{j}" for j in range(1, 27)]
I_COLUMNS = [f"I{j}" for j in range(1, 14)]


def peak_rss_mb():
    """Peak RSS of this process, in MB.

    Linux's VmHWM, which starts afresh at `exec`: `ru_maxrss` does not (it
    keeps the high-water mark of the process that forked the worker, here
    the parent that generated the shards).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # Elsewhere ru_maxrss (kilobytes on Linux, bytes on macOS).
    scale = 2**20 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def current_rss_mb():
    import psutil

    return psutil.Process().memory_info().rss / 2**20


# ------------------------------------------------------------------ shards
def write_shards(directory, n_rows, shard_rows, file_format):
    """Writes `ceil(n_rows / shard_rows)` shards; returns their paths."""
    from keras_rec.datasets import make_synthetic_criteo

    paths = []
    for i, start in enumerate(range(0, n_rows, shard_rows)):
        rows = min(shard_rows, n_rows - start)
        frame = make_synthetic_criteo(rows, seed=i)
        path = os.path.join(directory, f"part-{i:05d}.{file_format}")
        if file_format == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        paths.append(path)
        del frame
    return paths


# ----------------------------------------------------------------- workers
def _columns(vocabularies=None):
    from keras_rec.features import SparseFeat

    if vocabularies is None:
        # Streaming alone does not need the vocabularies: hashed columns
        # are parsed exactly like vocabulary columns (raw int64 values).
        return [
            SparseFeat(name, vocabulary_size=2**20, use_hash=True, embedding_dim=4)
            for name in I_COLUMNS + C_COLUMNS
        ]
    from keras_rec.datasets import feature_columns_from_vocabularies

    return feature_columns_from_vocabularies(vocabularies, embedding_dim=4)


def _dataset(spec, columns):
    from keras_rec.datasets import make_dataset

    return make_dataset(
        spec["files"],
        columns,
        label="label",
        file_format=spec["format"],
        batch_size=spec["batch_size"],
        shuffle_buffer=10_000,
        seed=0,
        transforms=dict.fromkeys(I_COLUMNS, "log_square_bucket"),
    )


def run_worker(mode, spec):
    """One measurement in this (fresh) process; prints a JSON line."""
    import tensorflow as tf  # noqa: F401  (counted in the set-up RSS)

    expected = spec["rows"]
    samples = []
    start = time.perf_counter()
    if mode == "vocab":
        from keras_rec.datasets import build_vocabularies

        setup_rss = current_rss_mb()
        start = time.perf_counter()
        vocabularies = build_vocabularies(
            spec["files"],
            C_COLUMNS + I_COLUMNS,
            file_format=spec["format"],
            chunksize=100_000,
            transforms=dict.fromkeys(I_COLUMNS, "log_square_bucket"),
        )
        rows = expected
        with open(spec["vocabulary_path"], "w") as f:
            json.dump(vocabularies, f)
        extra = {"vocabulary_entries": sum(len(v) for v in vocabularies.values())}
    elif mode == "stream":
        dataset = _dataset(spec, _columns())
        setup_rss = current_rss_mb()
        start = time.perf_counter()
        rows, quarter = 0, expected // 4
        for _, label in dataset:
            rows += int(label.shape[0])
            if rows >= quarter * (len(samples) + 1) and len(samples) < 4:
                samples.append(round(current_rss_mb()))
        extra = {}
    else:
        import keras

        from keras_rec.models import DeepFM

        with open(spec["vocabulary_path"]) as f:
            vocabularies = json.load(f)
        columns = _columns(vocabularies)
        model = DeepFM(columns, columns, dnn_hidden_units=(64, 32))
        model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
        dataset = _dataset(spec, columns)
        setup_rss = current_rss_mb()

        class Sampler(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seen = 0

            def on_train_batch_end(self, batch, logs=None):
                self.seen += spec["batch_size"]
                if self.seen >= expected // 4 * (len(samples) + 1):
                    samples.append(round(current_rss_mb()))

        start = time.perf_counter()
        history = model.fit(dataset, epochs=1, verbose=0, callbacks=[Sampler()])
        rows = expected
        extra = {"loss": round(history.history["loss"][-1], 4)}
    seconds = time.perf_counter() - start
    if mode == "stream" and rows != expected:
        raise RuntimeError(f"streamed {rows} rows, expected {expected}")
    print(
        json.dumps(
            {
                "mode": mode,
                "rows": rows,
                "seconds": round(seconds, 1),
                "rows_per_s": round(rows / seconds),
                "setup_rss_mb": round(setup_rss),
                "rss_at_quarters_mb": samples,
                "peak_rss_mb": round(peak_rss_mb()),
                **extra,
            }
        )
    )


def measure(mode, spec, work_dir):
    spec_path = os.path.join(work_dir, f"spec-{mode}-{spec['rows']}.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", mode, spec_path],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{mode} worker failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--shard-rows", type=int, default=500_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument(
        "--fit-rows",
        type=int,
        default=1_000_000,
        help="also fit one epoch of DeepFM for sizes up to this (0: never)",
    )
    parser.add_argument(
        "--steps",
        default="vocab,stream,fit",
        help="comma-separated subset of vocab,stream,fit (fit needs vocab)",
    )
    parser.add_argument("--dir", default=None, help="where to write the shards")
    parser.add_argument("--keep", action="store_true", help="keep the shards")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        mode, spec_path = args.worker
        with open(spec_path) as f:
            run_worker(mode, json.load(f))
        return

    sizes = sorted(int(s) for s in args.rows.split(","))
    steps = set(args.steps.split(","))
    if not steps <= {"vocab", "stream", "fit"} or ("fit" in steps) > ("vocab" in steps):
        parser.error("--steps: a subset of vocab,stream,fit; fit needs vocab")
    if any(n % args.shard_rows for n in sizes):
        parser.error("every --rows size must be a multiple of --shard-rows")
    work_dir = tempfile.mkdtemp(prefix="keras_rec_streaming_", dir=args.dir)
    try:
        start = time.perf_counter()
        paths = write_shards(work_dir, sizes[-1], args.shard_rows, args.format)
        size_gb = sum(os.path.getsize(p) for p in paths) / 1e9
        print(
            f"wrote {len(paths)} {args.format} shards ({sizes[-1]:,} rows, "
            f"{size_gb:.2f} GB) in {time.perf_counter() - start:.0f} s, "
            f"generator peak RSS {peak_rss_mb():.0f} MB: {work_dir}"
        )
        header = (
            f"{'step':<7}{'rows':>12}{'seconds':>9}{'rows/s':>10}"
            f"{'setup MB':>10}{'peak MB':>9}  RSS at 1/4..4/4 (MB)"
        )
        print(header)
        print("-" * len(header))
        for n in sizes:
            spec = {
                "files": paths[: n // args.shard_rows],
                "format": args.format,
                "rows": n,
                "batch_size": args.batch_size,
                "vocabulary_path": os.path.join(work_dir, f"vocabulary-{n}.json"),
            }
            modes = [m for m in ("vocab", "stream", "fit") if m in steps]
            if n > args.fit_rows:
                modes = [m for m in modes if m != "fit"]
            for mode in modes:
                r = measure(mode, spec, work_dir)
                note = ""
                if "loss" in r:
                    note = f"  loss {r['loss']}"
                if "vocabulary_entries" in r:
                    note = f"  {r['vocabulary_entries']:,} vocabulary entries"
                print(
                    f"{mode:<7}{n:>12,}{r['seconds']:>9}{r['rows_per_s']:>10,}"
                    f"{r['setup_rss_mb']:>10}{r['peak_rss_mb']:>9}  "
                    f"{r['rss_at_quarters_mb']}{note}",
                    flush=True,
                )
    finally:
        if args.keep:
            print(f"kept {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
