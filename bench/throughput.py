"""Training throughput: examples/second and peak RSS of the library's models.

For each model, in one process (so ratios are measured under the same load):

- public, dict: `model.fit` on a dict of NumPy arrays (Keras's own slicing);
- public, tf.data: `model.fit` on the library's pipeline
  (`keras_rec.workflows.pipeline.epoch_batches`);
- bare: the same model and optimizer, one `tf.function` train step (forward,
  loss + regularisation, gradients, `optimizer.apply`) looping over batches
  materialised as tensors beforehand; "bare+XLA" is the same step with
  `jit_compile=True`.

Every variant of a model is measured in rounds of `--steps` training steps
(default 60; whole epochs of 1M rows take minutes each on a shared 2-core
machine), the variants interleaved and their order rotated each round so a
change of load hits them alike; the figure is the median of rounds 2..
`--rounds` (round 1 includes tracing and warm-up). Two figures per variant:
wall-clock examples/s, and process CPU time per example (user + system, all
threads), which other jobs on the machine disturb far less. "ratio" is
public / the better of bare and bare+XLA, on each of the two.

DeepFM also gets two references: the DNN's matmul-only bound (forward and
backward matmuls of a (batch, 429) x (429, 256, 128, 64, 1) MLP, i.e. the
least work any implementation must do) and a plain Keras 3 DeepFM written
the naive way (one `Embedding` per feature, `keras.optimizers.Adam`, which
updates every row of every table at every step), trained with `model.fit` on
the same dict: the "plain Keras 3 step"; the library's DeepFM compiled
with `keras.optimizers.Adam` instead of `LazyAdam` (before / after); and
the library's DeepFM with `fuse_tables=False` (one table and one gather per
feature; the default, `True`, keeps the 26 categorical features in one
table and their linear weights in another).

Data:

- DeepFM: `make_synthetic_criteo` (13 dense + 26 categorical, vocabularies
  10..100,000 log-uniform, Zipf frequencies, 25% positives), dense features
  as log1p counts, embedding dim 16, DNN (256, 128, 64), batch 4096,
  optimizer 1e-3, no L2 penalties (a table-wide penalty gives every row a
  gradient at every step, see `LazyAdam`);
- DIN: user (100,000 ids), candidate item (50,000) and category (1,000),
  behaviour sequences of items and categories of length 50 (lengths uniform
  1..50, Zipf item frequencies), embedding dim 16, batch 1024;
- DSSM / YoutubeDNN: user id + mean-pooled 50-item history against item id
  (+ category for DSSM), embedding dim 32, in-batch softmax, batch 1024.

Each model runs in its own subprocess, so the peak RSS is that model's.

    python bench/throughput.py                       # full run
    python bench/throughput.py --quick               # 100K / 50K rows
    python bench/throughput.py --models deepfm --optimizer adam
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

MODELS = ("deepfm", "din", "dssm", "youtubednn")


def load():
    return "load {:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------- data
def deepfm_data(rows):
    from keras_rec import DenseFeat
    from keras_rec import SparseFeat
    from keras_rec.datasets import make_synthetic_criteo
    from keras_rec.datasets.synthetic import _criteo_schema

    frame = make_synthetic_criteo(rows, seed=0)
    columns, inputs = [], {}
    for j in range(1, 14):
        values = np.log1p(np.maximum(frame[f"I{j}"].to_numpy(), 0.0))
        inputs[f"I{j}"] = np.nan_to_num(values).astype("float32")[:, None]
        columns.append(DenseFeat(f"I{j}"))
    for j, vocab in enumerate(_criteo_schema().tolist(), start=1):
        inputs[f"C{j}"] = frame[f"C{j}"].to_numpy().astype("int32")
        columns.append(SparseFeat(f"C{j}", vocab + 1, 16))
    labels = frame["label"].to_numpy().astype("float32")[:, None]
    return columns, inputs, labels


def _zipf(rng, n, vocab, exponent=1.1):
    # Inverse CDF of x^-exponent on [1, vocab + 1): ids 1..vocab, id 1 commonest.
    top = (vocab + 1.0) ** (1.0 - exponent) - 1.0
    u = rng.random(n)
    rank = np.floor((1.0 + u * top) ** (1.0 / (1.0 - exponent))).astype("int64")
    return np.clip(rank, 1, vocab).astype("int32")


def sequence_data(rows, maxlen=50, users=100_000, items=50_000, categories=1_000):
    rng = np.random.default_rng(0)
    item_category = rng.integers(1, categories + 1, size=items + 1).astype("int32")
    item_category[0] = 0
    lengths = rng.integers(1, maxlen + 1, size=rows)
    history = _zipf(rng, rows * maxlen, items).reshape(rows, maxlen)
    history[np.arange(maxlen)[None, :] >= lengths[:, None]] = 0
    item = _zipf(rng, rows, items)
    inputs = {
        "user_id": rng.integers(1, users + 1, size=rows).astype("int32"),
        "item_id": item,
        "cate_id": item_category[item],
        "hist_item_id": history,
        "hist_cate_id": item_category[history],
    }
    labels = (rng.random(rows) < 0.25).astype("float32")[:, None]
    return inputs, labels, (users + 1, items + 1, categories + 1)


def deepfm_setup(rows):
    """`(build, columns, x, y)`: the library DeepFM (no L2, for `LazyAdam`)."""
    from keras_rec import DeepFM

    columns, x, y = deepfm_data(rows)

    def build(fuse_tables=True):
        return DeepFM(
            columns,
            columns,
            (256, 128, 64),
            l2_reg_linear=0,
            l2_reg_embedding=0,
            fuse_tables=fuse_tables,
        )

    return build, columns, x, y


def din_setup(rows):
    from keras_rec import DIN
    from keras_rec import SparseFeat
    from keras_rec import VarLenSparseFeat

    inputs, labels, (users, items, cats) = sequence_data(rows)
    columns = [
        SparseFeat("user_id", users, 16),
        SparseFeat("item_id", items, 16),
        SparseFeat("cate_id", cats, 16),
        VarLenSparseFeat(SparseFeat("hist_item_id", items, 16, "item_id"), 50),
        VarLenSparseFeat(SparseFeat("hist_cate_id", cats, 16, "cate_id"), 50),
    ]

    def build():
        return DIN(columns, ["item_id", "cate_id"])

    return build, inputs, labels


def two_tower_setup(rows, name):
    from keras_rec import DSSM
    from keras_rec import SparseFeat
    from keras_rec import VarLenSparseFeat
    from keras_rec import YoutubeDNN

    inputs, _, (users, items, cats) = sequence_data(rows)
    del inputs["hist_cate_id"]
    user = [
        SparseFeat("user_id", users, 32),
        VarLenSparseFeat(SparseFeat("hist_item_id", items, 32, "item_id"), 50),
    ]
    if name == "dssm":
        item = [SparseFeat("item_id", items, 32), SparseFeat("cate_id", cats, 32)]

        def build():
            return DSSM(user, item, loss_type="softmax")

    else:
        del inputs["cate_id"]
        item = [SparseFeat("item_id", items, 32)]

        def build():
            return YoutubeDNN(user, item, loss_type="softmax")

    return build, inputs, None


# ------------------------------------------------------------ measurements
def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def steady(values):
    """Median of rounds 2.. (the first round includes tracing and warm-up)."""
    return float(np.median(values[1:] if len(values) > 1 else values))


def make_optimizer(kind, lr=1e-3):
    import keras

    from keras_rec.optimizers import LazyAdam

    return LazyAdam(lr) if kind == "lazy" else keras.optimizers.Adam(lr)


def compile_model(model, optimizer, two_tower, jit_compile="auto"):
    if two_tower:
        model.compile(optimizer, jit_compile=jit_compile)
    else:
        model.compile(optimizer, "binary_crossentropy", jit_compile=jit_compile)
    return model


class FitRun:
    """`model.fit` for `steps` steps per round, on a dict or on the pipeline.

    Timed from the end of the first step to the end of the last one, by a
    callback: a round is a slice of an epoch, and `fit`'s set-up (data
    adapter, iterator, callbacks), paid once per epoch, would weigh on 10
    steps as it does not on a 244-step epoch.
    """

    def __init__(self, model, x, y, batch_size, steps, dataset):
        import keras

        self.model, self.x, self.y = model, x, y
        self.batch_size, self.steps, self.dataset = batch_size, steps, dataset
        self.marks = []
        marks = self.marks

        class Marks(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                marks.append((time.perf_counter(), cpu_seconds()))

        self.callbacks = [Marks()]
        if dataset:
            from keras_rec.workflows.pipeline import epoch_batches

            self.ds, _ = epoch_batches(x, batch_size, seed=0, epochs=1, labels=y)

    def __call__(self):
        del self.marks[:]
        if self.dataset:
            self.model.fit(
                self.ds,
                epochs=1,
                steps_per_epoch=self.steps,
                verbose=0,
                callbacks=self.callbacks,
            )
        else:
            self.model.fit(
                self.x,
                self.y,
                batch_size=self.batch_size,
                epochs=1,
                steps_per_epoch=self.steps,
                verbose=0,
                callbacks=self.callbacks,
            )
        (t0, c0), (t1, c1) = self.marks[0], self.marks[-1]
        return (len(self.marks) - 1) * self.batch_size, t1 - t0, c1 - c0


class BareRun:
    """One `tf.function` train step looping over pre-materialised batches."""

    def __init__(self, model, batches, jit, two_tower):
        import keras
        import tensorflow as tf

        self.batches = batches
        self.examples = sum(len(b[0][next(iter(b[0]))]) for b in batches)
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)
        variables = model.trainable_variables
        bce = keras.losses.BinaryCrossentropy()

        @tf.function(jit_compile=jit)
        def step(features, labels):
            with tf.GradientTape() as tape:
                if two_tower:
                    loss = tf.reduce_mean(model._objective_loss(features, None, True))
                else:
                    loss = bce(labels, model(features, training=True))
                if model.losses:
                    loss = loss + tf.add_n(model.losses)
            grads = tape.gradient(loss, variables)
            optimizer.apply(grads, variables)
            return loss

        self.step = step

    def __call__(self):
        # Timed from the end of the first step, as `FitRun`.
        float(self.step(*self.batches[0]))
        t0, c0 = time.perf_counter(), cpu_seconds()
        for features, labels in self.batches[1:]:
            loss = self.step(features, labels)
        float(loss)  # Waits for the last step.
        examples = self.examples - len(next(iter(self.batches[0][0].values())))
        return examples, time.perf_counter() - t0, cpu_seconds() - c0


def materialise(x, y, batch_size, steps):
    import tensorflow as tf

    rows = len(next(iter(x.values())))
    n = min(steps, rows // batch_size)
    return [
        (
            {
                k: tf.constant(v[i * batch_size : (i + 1) * batch_size])
                for k, v in x.items()
            },
            None
            if y is None
            else tf.constant(y[i * batch_size : (i + 1) * batch_size]),
        )
        for i in range(n)
    ]


class MatmulRun:
    """The DNN's forward + backward matmuls alone, `steps` times."""

    def __init__(self, batch, widths, steps):
        import tensorflow as tf

        rng = tf.random.Generator.from_seed(0)
        self.x = rng.normal((batch, widths[0]))
        weights = [rng.normal((a, b)) * 0.05 for a, b in zip(widths[:-1], widths[1:])]
        self.steps, self.examples = steps, steps * batch

        @tf.function
        def step(x):
            acts = [x]
            for w in weights:
                acts.append(tf.nn.relu(acts[-1] @ w))
            grad = tf.ones_like(acts[-1])
            total = 0.0
            for i in reversed(range(len(weights))):
                dw = tf.matmul(acts[i], grad, transpose_a=True)  # (in, out)
                grad = tf.matmul(grad, weights[i], transpose_b=True)  # (batch, in)
                total += tf.reduce_sum(dw[:1, :1])
            return total + tf.reduce_sum(grad[:1, :1])

        self.step = step

    def __call__(self):
        for _ in range(self.steps):
            out = self.step(self.x)
        float(out)


def plain_keras_deepfm(columns, seed=1024):
    """DeepFM as a Keras 3 user would write it: one Embedding per feature."""
    import keras
    from keras import ops

    from keras_rec import DenseFeat

    class FMTerm(keras.layers.Layer):
        def call(self, x):  # (batch, fields, d)
            square_of_sum = ops.square(ops.sum(x, axis=1))
            sum_of_square = ops.sum(ops.square(x), axis=1)
            return 0.5 * ops.sum(square_of_sum - sum_of_square, axis=1, keepdims=True)

    inputs, embedded, linear, dense = {}, [], [], []
    for c in columns:
        if isinstance(c, DenseFeat):
            inputs[c.name] = keras.Input((1,), name=c.name)
            dense.append(inputs[c.name])
            continue
        inputs[c.name] = keras.Input((), dtype="int32", name=c.name)
        embedded.append(
            keras.layers.Embedding(c.vocabulary_size, c.embedding_dim)(inputs[c.name])
        )
        linear.append(keras.layers.Embedding(c.vocabulary_size, 1)(inputs[c.name]))
    stacked = keras.layers.Concatenate(axis=1)(
        [keras.layers.Reshape((1, -1))(e) for e in embedded]
    )
    dense_x = keras.layers.Concatenate()(dense)
    linear_logit = keras.layers.Add()(
        [keras.layers.Concatenate()(linear), keras.layers.Dense(26)(dense_x)]
    )
    linear_logit = ops.sum(linear_logit, axis=-1, keepdims=True)
    x = keras.layers.Concatenate()([keras.layers.Flatten()(stacked), dense_x])
    for units in (256, 128, 64):
        x = keras.layers.Dense(units, activation="relu")(x)
    logit = keras.layers.Add()(
        [linear_logit, FMTerm()(stacked), keras.layers.Dense(1, use_bias=False)(x)]
    )
    return keras.Model(inputs, keras.layers.Activation("sigmoid")(logit))


# ------------------------------------------------------------------ worker
def run_model(name, args):
    import keras

    out = {"model": name}
    two_tower = name in ("dssm", "youtubednn")
    if name == "deepfm":
        rows = args.rows or (100_000 if args.quick else 1_000_000)
        batch = 4096
        build, columns, x, y = deepfm_setup(rows)
    else:
        rows = args.rows or (50_000 if args.quick else 200_000)
        batch = 1024
        if name == "din":
            build, x, y = din_setup(rows)
        else:
            build, x, y = two_tower_setup(rows, name)
    steps = min(args.steps or (10 if args.quick else 60), rows // batch)
    out.update(rows=rows, batch=batch, steps=steps, optimizer=args.optimizer)
    out["rss_data_mb"] = peak_rss_mb()
    print(f"[{name}] {rows} rows, batch {batch}, {steps} steps/round; {load()}")

    def new_model(optimizer=None, jit_compile="auto", **kwargs):
        keras.utils.set_random_seed(0)
        optimizer = optimizer or make_optimizer(args.optimizer)
        return compile_model(build(**kwargs), optimizer, two_tower, jit_compile)

    batches = materialise(x, y, batch, steps)
    runs = {
        "public_dict": FitRun(new_model(), x, y, batch, steps, dataset=False),
        "public_tfdata": FitRun(new_model(), x, y, batch, steps, dataset=True),
        "bare": BareRun(new_model(), batches, False, two_tower),
        "bare_xla": BareRun(new_model(), batches, True, two_tower),
    }
    if args.xla_fit:
        # The public path to XLA: `compile(jit_compile=True)`.
        runs["public_dict_xla"] = FitRun(
            new_model(jit_compile=True), x, y, batch, steps, dataset=False
        )
    if name == "deepfm":
        runs["public_dict_separate"] = FitRun(
            new_model(fuse_tables=False), x, y, batch, steps, dataset=False
        )
        runs["public_dict_dense_adam"] = FitRun(
            new_model(keras.optimizers.Adam(1e-3)), x, y, batch, steps, dataset=False
        )
        keras.utils.set_random_seed(0)
        plain = plain_keras_deepfm(columns)
        plain.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
        runs["plain_keras"] = FitRun(plain, x, y, batch, steps, dataset=False)
        runs["matmul_bound"] = MatmulRun(batch, (13 + 26 * 16, 256, 128, 64, 1), 20)
    # Rounds interleave the variants, so a change of load hits them alike.
    wall = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    names = list(runs)
    for r in range(args.rounds):
        # Rotated each round, so no variant always runs first or last.
        for key in names[r % len(names) :] + names[: r % len(names)]:
            if key not in wall:
                continue
            run = runs[key]
            t, c = time.perf_counter(), cpu_seconds()
            try:
                timed = run()
            except Exception as error:  # e.g. an op XLA cannot compile.
                first = str(error).splitlines()[0][:200] if str(error) else ""
                print(f"[{name}] {key}: failed ({type(error).__name__}: {first})")
                del wall[key], cpu[key]
                out[key] = None
                continue
            if timed is None:
                timed = run.examples, time.perf_counter() - t, cpu_seconds() - c
            examples, seconds, cpu_time = timed
            wall[key].append(examples / seconds)
            cpu[key].append(cpu_time / examples * 1e6)
            print(
                f"[{name}] round {r + 1} {key}: {wall[key][-1]:,.0f} ex/s, "
                f"{cpu[key][-1]:.0f} CPU-us/ex; {load()}",
                flush=True,
            )
    for key in wall:
        out[key] = steady(wall[key])
        out[key + "_cpu_us"] = steady(cpu[key])
    out["load"] = os.getloadavg()[0]
    out["peak_rss_mb"] = peak_rss_mb()
    for key in wall:
        print(
            f"[{name}] {key}: {out[key]:,.0f} ex/s, {out[key + '_cpu_us']:.0f} "
            f"CPU-us/ex; {load()}"
        )
    print("RESULT " + json.dumps(out), flush=True)


def table(results):
    def f(v):
        return "n/a" if v is None else f"{v:,.0f}"

    def cell(r, key):
        if r.get(key) is None:
            return "n/a"
        return f"{r[key]:,.0f} / {r[key + '_cpu_us']:.0f}"

    lines = [
        "| model | rows | batch | public dict | public tf.data | bare | bare+XLA "
        "| ratio dict, tf.data (CPU) | ratio dict, tf.data (wall) "
        "| peak RSS (MB) | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        bare = [k for k in ("bare", "bare_xla") if r.get(k) is not None]
        best = max(bare, key=lambda k: r[k])
        best_cpu = min(r[k + "_cpu_us"] for k in bare)
        lines.append(
            f"| {r['model']} | {r['rows']:,} | {r['batch']} "
            f"| {cell(r, 'public_dict')} | {cell(r, 'public_tfdata')} "
            f"| {cell(r, 'bare')} | {cell(r, 'bare_xla')} "
            f"| {best_cpu / r['public_dict_cpu_us']:.2f}, "
            f"{best_cpu / r['public_tfdata_cpu_us']:.2f} "
            f"| {r['public_dict'] / r[best]:.2f}, {r['public_tfdata'] / r[best]:.2f} "
            f"| {r['peak_rss_mb']:,.0f} | {r['load']:.1f} |"
        )
    for r in results:
        if r.get("public_dict_xla") is not None:
            best = max(r[k] for k in ("bare", "bare_xla") if r.get(k) is not None)
            lines.append(
                f"| {r['model']}, fit(dict) with jit_compile=True "
                f"| | | {cell(r, 'public_dict_xla')} | | | | "
                f"{r['bare_xla_cpu_us'] / r['public_dict_xla_cpu_us']:.2f} (vs XLA) "
                f"| {r['public_dict_xla'] / best:.2f} | | |"
            )
    lines.append("")
    lines.append("Cells: wall-clock examples/s / CPU microseconds per example.")
    for r in results:
        if r["model"] == "deepfm":
            lines.append("")
            lines.append(
                "DeepFM (wall ex/s / CPU us per example): public dict "
                f"{cell(r, 'public_dict')}; with fuse_tables=False "
                f"{cell(r, 'public_dict_separate')}; the same model with "
                f"keras.optimizers.Adam {cell(r, 'public_dict_dense_adam')}; "
                f"plain Keras 3 step (dense Adam) {cell(r, 'plain_keras')}; "
                f"matmul-only bound {cell(r, 'matmul_bound')}. Public dict vs "
                f"plain: {r['plain_keras_cpu_us'] / r['public_dict_cpu_us']:.2f}x "
                f"(CPU), {r['public_dict'] / r['plain_keras']:.2f}x (wall); "
                "LazyAdam vs Adam on the same model: "
                f"{r['public_dict_dense_adam_cpu_us'] / r['public_dict_cpu_us']:.2f}x "
                "(CPU); ceiling if all but the DNN matmuls were free: "
                f"{r['plain_keras_cpu_us'] / r['matmul_bound_cpu_us']:.2f}x (CPU)."
            )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--quick", action="store_true", help="fewer rows")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps per variant and round (default 60, quick 10)",
    )
    parser.add_argument("--optimizer", choices=("lazy", "adam"), default="lazy")
    parser.add_argument(
        "--xla-fit",
        action="store_true",
        help="also measure model.fit(dict) compiled with jit_compile=True",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_model(args.worker, args)
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown --models {unknown}; choose from {MODELS}")
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {load()}",
        flush=True,
    )
    results = []
    for name in models:
        command = [sys.executable, __file__, "--worker", name]
        command += ["--rounds", str(args.rounds)]
        command += ["--xla-fit"] if args.xla_fit else []
        command += ["--steps", str(args.steps)] if args.steps else []
        command += ["--optimizer", args.optimizer]
        command += ["--quick"] if args.quick else []
        command += ["--rows", str(args.rows)] if args.rows else []
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:  # Streamed, so progress shows as it comes.
            if line.startswith("RESULT "):
                results.append(json.loads(line[len("RESULT ") :]))
            else:
                print(line, end="", flush=True)
        proc.wait()
        if proc.returncode:
            print(f"[{name}] worker failed with exit code {proc.returncode}")
    if results:
        print()
        print(table(results))


if __name__ == "__main__":
    main()
