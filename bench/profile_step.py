"""Op-level profile of a training step: where the CPU time of a step goes.

Profiles what the user runs, `model.fit` on a dict of NumPy arrays, with the
data, models and optimizer of `bench/throughput.py` (imported from it):
DeepFM at 13 dense + 26 categorical features, embedding dim 16, DNN
(256, 128, 64), batch 4096, `LazyAdam`, the library's default fused tables;
DIN / DSSM / YoutubeDNN at batch 1024 (`--variant plain`: the plain Keras 3
DeepFM of the throughput bench, with `keras.optimizers.Adam`). `fit`, not
the compiled `train_function` on materialised batches, because its step is
what the throughput figures ("public, dict") time: Keras's slicing of the
dict in `tf.data`, the train function, the metric updates. Its input ops
run on `tf.data` threads and are reported apart ("input pipeline").

Per model: a warm-up `fit` of 2 steps (tracing, first-call costs), a timed
`fit` of `--steps` steps without the profiler (wall clock and process CPU
time, from the end of its first step to the end of its last, by
`throughput.FitRun`), then the same `fit` under
`tf.profiler.experimental.start` / `stop` into a temporary directory. Its
`*.xplane.pb` is read with `xplane_pb2`: on the `/host:CPU` plane, TF op
events are named "<op name>:<op type>" (display name: the type), on the
executor lines (`tf_Compute/...`) and the `tf_data_*` lines; an XLA-compiled
step (DIN by default, `--jit-compile true`) instead shows its HLO
instructions (events with an `hlo_op` stat, fusions named after their ops,
no name scopes), categorised by name, roughly.

Attribution: an op's duration is its wall-clock latency on the thread that
ran it, including waits for its intra-op (Eigen) shards, whose threads carry
no op events, and time descheduled by other jobs. TF op events on one line
do not nest (XLA's do: the nested part is taken off its parent, i.e. self
time). Durations are summed over threads, so the sum can exceed wall time,
and leaves out executor scheduling and Python. "op us/ex" is that sum /
(steps x batch); "~CPU us/ex" splits the unprofiled process CPU time per
example in the same shares, an estimate. Tables: per category of op type,
per phase (name scope: the model = forward, `gradient_tape/` and the
tape's top-level `AddN` = backward, the optimizer's scope, loss, the rest),
the top 15 op types with calls per step, the top 10 ops by name.

    python bench/profile_step.py                         # deepfm, 20 steps
    python bench/profile_step.py --models deepfm,dssm --steps 10
    python bench/profile_step.py --variant both          # + plain Keras 3 DeepFM
    python bench/profile_step.py --rows 20000 --steps 3  # smoke run
"""

import argparse
import collections
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import throughput  # noqa: E402  (bench/throughput.py, not a package)

MODELS = throughput.MODELS

# Op type -> category; types not listed are "other".
CATEGORIES = {
    "dense matmul (+ bias)": (
        "MatMul _FusedMatMul BatchMatMul BatchMatMulV2 BatchMatMulV3 Einsum "
        "_MklMatMul _MklFusedMatMul BiasAdd BiasAddGrad"
    ),
    "embedding lookup": "ResourceGather ResourceGatherNd GatherV2 Gather GatherNd",
    "embedding gradient / sparse": (
        "UnsortedSegmentSum SparseSegmentSum SparseSegmentMean "
        "SparseSegmentSumGrad SparseSegmentMeanGrad Unique UniqueV2 "
        "UniqueWithCounts SparseTensorDenseMatMul ScatterNd TensorScatterUpdate "
        "TensorScatterAdd ResourceScatterAdd ResourceScatterSub "
        "ResourceScatterUpdate ResourceScatterNdUpdate ResourceScatterNdAdd "
        "DynamicStitch DynamicPartition SparseToDense"
    ),
    "variable read / assign": (
        "ReadVariableOp AssignVariableOp AssignAddVariableOp AssignSubVariableOp"
    ),
    "elementwise": (
        "Mul AddV2 Add Sub RealDiv Div DivNoNan Sqrt Rsqrt Square Pow Neg Abs "
        "Exp Log Log1p Sigmoid SigmoidGrad Tanh TanhGrad Relu ReluGrad "
        "Maximum Minimum Cast Select SelectV2 Less LessEqual Greater "
        "GreaterEqual Equal NotEqual LogicalAnd LogicalOr LogicalNot "
        "SquaredDifference AddN Reciprocal ClipByValue Sign Floor OnesLike "
        "ZerosLike"
    ),
    "concat / reshape / copy": (
        "ConcatV2 Concat ConcatOffset Pack Unpack Reshape Transpose Slice "
        "StridedSlice StridedSliceGrad Split SplitV ExpandDims Squeeze Tile "
        "BroadcastTo BroadcastArgs BroadcastGradientArgs Fill Identity Pad "
        "Shape ShapeN Size Range"
    ),
    "reductions / softmax": (
        "Sum Mean Max Min Prod ArgMax ArgMin All Any Softmax LogSoftmax "
        "SoftmaxCrossEntropyWithLogits SparseSoftmaxCrossEntropyWithLogits "
        "TopKV2 Cumsum L2Loss"
    ),
    "input pipeline": (
        "IteratorGetNext IteratorGetNextAsOptional OptionalGetValue OptionalHasValue "
        "OptionalFromValue"
    ),
    "XLA cluster (opaque)": "_XlaRun XlaLaunch XlaLaunchV2 _XlaCompile",
}
CATEGORY = {t: c for c, types in CATEGORIES.items() for t in types.split()}
ORDER = [*CATEGORIES, "other"]


# ---------------------------------------------------------------- parsing
def op_events(logdir):
    """(source, op name, op type, self time in us) of the profile's op events.

    source: "tf" (an op of the step's graph), "tf.data" (an op on a tf.data
    thread) or "xla" (an HLO instruction of an XLA-compiled step, carrying an
    `hlo_op` stat; its "type" is its name without the ".N" suffix).
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    files = sorted(Path(logdir).rglob("*.xplane.pb"))
    if not files:
        raise RuntimeError(f"the profiler wrote no *.xplane.pb under {logdir}")
    space = xplane_pb2.XSpace()
    space.ParseFromString(files[-1].read_bytes())
    planes = [p for p in space.planes if p.name == "/host:CPU"]
    if not planes:
        names = [p.name for p in space.planes]
        raise RuntimeError(f"no /host:CPU plane in {files[-1]} (planes: {names})")
    plane = planes[0]
    hlo = {k for k, m in plane.stat_metadata.items() if m.name == "hlo_op"}
    events, nested = [], 0
    for line in plane.lines:
        source = "tf.data" if line.name.startswith("tf_data") else "tf"
        ops = []
        for ev in line.events:
            meta = plane.event_metadata[ev.metadata_id]
            kind = meta.display_name
            # TF op events: "<name>:<type>"; tf.data's "Iterator::..." are not.
            if kind and meta.name.endswith(":" + kind) and "::" not in kind:
                name = meta.name[: -len(kind) - 1]
                ops.append((ev.offset_ps, ev.duration_ps, source, name, kind))
            elif any(s.metadata_id in hlo for s in ev.stats):
                kind = re.sub(r"(_\d+)?\.\d+$", "", meta.name)
                ops.append((ev.offset_ps, ev.duration_ps, "xla", meta.name, kind))
        ops.sort(key=lambda o: (o[0], -o[1]))
        # Self time: the part of an event inside another leaves its parent.
        selfs, stack = [o[1] for o in ops], []
        for i, (start, duration, *_) in enumerate(ops):
            while stack and start >= ops[stack[-1]][0] + ops[stack[-1]][1]:
                stack.pop()
            if stack:
                parent_end = ops[stack[-1]][0] + ops[stack[-1]][1]
                selfs[stack[-1]] -= min(start + duration, parent_end) - start
                nested += 1
            stack.append(i)
        for (_, _, source, name, kind), ps in zip(ops, selfs):
            events.append((source, name, kind, max(ps, 0) / 1e6))
    if not events:
        lines = sorted({line.name for line in plane.lines})
        raise RuntimeError(f"no TF op events on /host:CPU (lines: {lines})")
    return events, nested


XLA_CATEGORIES = (  # First match in an HLO name (fusions are named by their ops).
    ("dot|matmul|einsum|convolution", "dense matmul (+ bias)"),
    ("gather|dynamic-slice", "embedding lookup"),
    ("scatter|sort|dynamic-update-slice", "embedding gradient / sparse"),
    ("reduce", "reductions / softmax"),
    (
        "^(bitcast_)?(concatenate|copy|transpose|slice|pad|broadcast)",
        "concat / reshape / copy",
    ),
    ("ynn", "other"),  # XNNPACK/YNNPACK call: dot or elementwise, unknown here.
    ("", "elementwise"),
)


def category(source, kind):
    if source == "tf.data":
        return "input pipeline"
    if source == "xla":
        return next(c for r, c in XLA_CATEGORIES if re.search(r, kind.lower()))
    return CATEGORY.get(kind, "other")


def phase(name, optimizer):
    """Forward / backward / optimizer / loss / metrics+other, from the scope."""
    parts = [p for p in name.split("/") if not p.endswith("PartitionedCall")] or [""]
    # Top-level "AddN_k": the tape summing the gradients of a shared variable
    # ("AddN_k/inputs_j": an IndexedSlices made dense for it).
    if "gradient_tape" in parts or re.fullmatch(r"AddN(_\d+)?", parts[0]):
        return "backward"
    head = re.sub(r"_\d+$", "", parts[0])
    if head == optimizer:
        return "optimizer"
    if head == "compile_loss":
        return "loss"
    if len(parts) > 1:
        return "forward (model)"
    return "top level (metrics, counters, ...)"


# ---------------------------------------------------------------- running
def setup(name, rows, variant):
    """(model factory, x, y, batch, two_tower) as in `throughput.run_model`."""
    if name == "deepfm":
        build, columns, x, y = throughput.deepfm_setup(rows)
        if variant == "plain":
            return (lambda: throughput.plain_keras_deepfm(columns)), x, y, 4096, False
        return build, x, y, 4096, False
    if name == "din":
        build, x, y = throughput.din_setup(rows)
        return build, x, y, 1024, False
    build, x, y = throughput.two_tower_setup(rows, name)
    return build, x, y, 1024, True


def profile(name, variant, args):
    import keras
    import tensorflow as tf

    rows = args.rows or (200_000 if name == "deepfm" else 50_000)
    build, x, y, batch, two_tower = setup(name, rows, variant)
    steps = min(args.steps, rows // batch)
    if steps < 2:
        raise SystemExit(f"--rows {rows} gives fewer than 2 steps of {batch}")
    keras.utils.set_random_seed(0)
    model = build()
    if variant == "plain":  # As the throughput bench: dense `keras.optimizers.Adam`.
        model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    else:
        jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
        optimizer = throughput.make_optimizer(args.optimizer)
        throughput.compile_model(model, optimizer, two_tower, jit)
    fit = throughput.FitRun(model, x, y, batch, steps, dataset=False)

    model.fit(x, y, batch_size=batch, epochs=1, steps_per_epoch=2, verbose=0)
    examples, wall, cpu = fit()
    options = tf.profiler.experimental.ProfilerOptions(
        host_tracer_level=2, python_tracer_level=0, device_tracer_level=0
    )
    with tempfile.TemporaryDirectory(prefix="profile_step_") as logdir:
        tf.profiler.experimental.start(logdir, options=options)
        try:
            _, profiled_wall, _ = fit()
        finally:
            tf.profiler.experimental.stop()
        events, nested = op_events(logdir)

    label = name if variant == "library" else f"{name} (plain Keras 3, Adam)"
    jit = getattr(model, "jit_compile", None)
    timed_steps = examples // batch
    print(
        f"\n## {label}: {rows:,} rows, batch {batch}, {steps} profiled steps, "
        f"optimizer {model.optimizer.name}, jit_compile={jit}; {throughput.load()}"
    )
    print(
        f"Unprofiled fit: {wall / timed_steps * 1e3:.1f} ms/step wall, "
        f"{cpu / examples * 1e6:.1f} process-CPU us/example; profiled fit: "
        f"{profiled_wall / timed_steps * 1e3:.1f} ms/step wall."
    )
    report(events, nested, steps, batch, model.optimizer.name, cpu / examples * 1e6)


def report(events, nested, steps, batch, optimizer, cpu_us):
    """Tables of op time per category, phase and op type.

    "op us/ex": summed op durations / (steps x batch); "~CPU us/ex": the
    unprofiled process CPU time per example split in the same shares.
    """
    per_example = 1.0 / (steps * batch)
    by_cat = collections.Counter()
    by_phase = collections.Counter()
    by_type = collections.Counter()
    by_name = collections.Counter()
    calls = collections.Counter()
    cat_of = {}
    for source, name, kind, us in events:
        cat = category(source, kind)
        if source == "tf":
            ph = "input pipeline" if cat == "input pipeline" else phase(name, optimizer)
        else:  # Keras's slicing of the dict; XLA HLO names carry no scopes.
            kind = f"{kind} ({source})"
            ph = "input pipeline" if source == "tf.data" else "XLA-compiled step"
        by_cat[cat] += us
        by_phase[ph] += us
        by_type[kind] += us
        calls[kind] += 1
        cat_of[kind] = cat
        key = (re.sub(r"^(\w*PartitionedCall/)+", "", name), kind)
        by_name[key] += us
        calls[key] += 1
    total = sum(by_cat.values())
    print(
        f"Summed op time: {total * per_example:.1f} us/example "
        f"({total / steps / 1e3:.1f} ms/step, all threads)"
        + (f"; {nested} nested events charged self time" if nested else "")
    )

    def rows(counter, keys):
        for k in keys:
            if counter[k]:
                share = counter[k] / total
                yield (
                    f"| {k} | {counter[k] * per_example:.2f} | {share:.1%} "
                    f"| {share * cpu_us:.1f} |"
                )

    head = "| op us/ex | share | ~CPU us/ex |\n|---|---:|---:|---:|"
    print(f"\n| category {head}")
    print("\n".join(rows(by_cat, ORDER)))
    print(f"| total | {total * per_example:.2f} | 100% | {cpu_us:.1f} |")
    others = sorted((k for k in by_type if cat_of[k] == "other"), key=by_type.get)
    if others:
        print("other: " + ", ".join(reversed(others)))
    print(f"\n| phase (name scope) {head}")
    print("\n".join(rows(by_phase, [k for k, _ in by_phase.most_common()])))
    print(
        "\n| op type | category | op us/ex | share | calls/step | us/call |"
        "\n|---|---|---:|---:|---:|---:|"
    )
    for kind, us in by_type.most_common(15):
        print(
            f"| {kind} | {cat_of[kind]} | {us * per_example:.2f} | {us / total:.1%} "
            f"| {calls[kind] / steps:.1f} | {us / calls[kind]:.0f} |"
        )
    print(
        "\n| op (name scope) | op type | op us/ex | share | calls/step |"
        "\n|---|---|---:|---:|---:|"
    )
    for (name, kind), us in by_name.most_common(10):
        print(
            f"| {name} | {kind} | {us * per_example:.2f} | {us / total:.1%} "
            f"| {calls[name, kind] / steps:.1f} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="deepfm", help=f"from {MODELS}")
    parser.add_argument(
        "--rows", type=int, default=None, help="default 200,000 deepfm, 50,000 others"
    )
    parser.add_argument("--steps", type=int, default=20, help="profiled steps")
    parser.add_argument(
        "--variant",
        choices=("library", "plain", "both"),
        default="library",
        help="plain: the plain Keras 3 DeepFM of throughput.py (deepfm only)",
    )
    parser.add_argument("--optimizer", choices=("lazy", "adam"), default="lazy")
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "true", "false"),
        default="auto",
        help="for the library's models (auto: XLA for DIN only)",
    )
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown --models {unknown}; choose from {MODELS}")
    variants = ("library", "plain") if args.variant == "both" else (args.variant,)
    if "plain" in variants and "deepfm" not in models:
        parser.error("--variant plain/both needs deepfm in --models")
    for name in models:
        for variant in variants:
            if variant == "plain" and name != "deepfm":
                continue
            profile(name, variant, args)


if __name__ == "__main__":
    main()
