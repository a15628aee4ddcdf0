"""Recall quality on MovieLens 100K: DSSM and YoutubeDNN against most-popular.

Protocol (see keras_rec/workflows/recall_data.py): every rating is a positive;
each user's interactions sorted by (timestamp, item id); the last is the test
target, the rest is training; each training position t >= 1 predicts item t
from the previous up-to-50 items; at evaluation the user embedding comes from
the last up-to-50 training items and all 1,682 items are ranked. HitRate@10/50/100
and NDCG@10, exact and through Annoy, with and without seen-item exclusion,
over several seeds (mean ± std).

The settings are the CLI's defaults for `--dataset movielens-100k`, chosen on
the validation target (`--holdout validation`: each user's second-to-last
item, the last one dropped), never on the test target.

    python bench/retrieval_quality.py --data-dir ../shared/data/movielens-100k
    python bench/retrieval_quality.py --holdout validation --epochs 30   # tuning
    python bench/retrieval_quality.py --holdout validation --models dssm \
        --temperature 0.15 --learning-rate 2e-3
"""

import argparse
import ast
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_rec.workflows.datasets import USER_ATTRIBUTES  # noqa: E402
from keras_rec.workflows.datasets import load_recall_dataset  # noqa: E402
from keras_rec.workflows.recall import evaluate_recall  # noqa: E402
from keras_rec.workflows.recall import mean_std  # noqa: E402
from keras_rec.workflows.recall import train_recall  # noqa: E402
from keras_rec.workflows.recall_data import prepare_recall_data  # noqa: E402
from keras_rec.workflows.run_recall import recall_settings  # noqa: E402

COLUMNS = (
    ("HR@10", "hit_rate@10"),
    ("HR@50", "hit_rate@50"),
    ("HR@100", "hit_rate@100"),
    ("NDCG@10", "ndcg@10"),
)


def _parse_option(text):
    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--option must be KEY=VALUE. Received: {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument(
        "--data-dir",
        default=os.path.join(
            os.path.dirname(__file__), "..", "..", "shared", "data", "movielens-100k"
        ),
    )
    parser.add_argument("--models", default="dssm,youtubednn")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--holdout", default="test", choices=("test", "validation"))
    parser.add_argument("--epochs", type=int, default=None)
    # Overrides of the CLI defaults, for tuning on the validation target.
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--num-sampled", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--embedding-dim", type=int, default=None)
    parser.add_argument("--recent", type=int, default=None)
    parser.add_argument(
        "--last-item",
        choices=("on", "off"),
        default=None,
        help="the most recent history item as its own user feature (default: "
        "the CLI's setting)",
    )
    parser.add_argument(
        "--example-age",
        choices=("on", "off"),
        default=None,
        help="YouTube's example-age feature on the user tower (default: the "
        "CLI's setting for the model)",
    )
    parser.add_argument(
        "--jit-compile",
        action="store_true",
        help="compile the train step with XLA (not the default of the two towers)",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra model option, e.g. logq_correction=False or dropout=0.1 "
        "(value parsed as a Python literal); repeatable",
    )
    args = parser.parse_args(argv)
    options = dict(_parse_option(o) for o in args.option)
    overrides = {
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "temperature": args.temperature,
        "num_sampled": args.num_sampled,
        "batch_size": args.batch_size,
        "embedding_dim": args.embedding_dim,
        "recent": args.recent,
        "example_age": None if args.example_age is None else args.example_age == "on",
        "last_item": None if args.last_item is None else args.last_item == "on",
    }

    interactions, users = load_recall_dataset(args.dataset, args.data_dir)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = {}
    for name in args.models.split(","):
        defaults = recall_settings(args.dataset, name)
        defaults.update({k: v for k, v in overrides.items() if v is not None})
        print(f"{name}: {defaults}", file=sys.stderr)
        data = prepare_recall_data(
            interactions,
            users,
            user_attributes=USER_ATTRIBUTES.get(args.dataset, ()),
            embedding_dim=defaults["embedding_dim"],
            recent=defaults["recent"],
            last_item=defaults["last_item"],
            example_age_feature=defaults["example_age"],
            holdout=args.holdout,
        )
        for seed in seeds:
            start = time.time()
            model, curves, _ = train_recall(
                name,
                data,
                epochs=defaults["epochs"],
                batch_size=defaults["batch_size"],
                learning_rate=defaults["learning_rate"],
                temperature=defaults["temperature"],
                seed=seed,
                verbose=0,
                monitor=args.holdout == "validation",
                jit_compile=True if args.jit_compile else "auto",
                **{
                    **{k: v for k, v in defaults.items() if k == "num_sampled"},
                    **options,
                },
            )
            report, _ = evaluate_recall(model, data)
            for key, label in (
                ("popularity", "most popular"),
                ("exact", f"{name} exact"),
                ("annoy", f"{name} Annoy"),
            ):
                for setting, metrics in report[key]["results"].items():
                    rows.setdefault((label, setting), []).append(metrics)
            hr50 = report["exact"]["results"]["include_seen"]["hit_rate@50"]
            print(
                f"{name} seed {seed}: HR@50 {hr50:.4f} ({time.time() - start:.0f} s)",
                file=sys.stderr,
            )
            for c in curves:
                print(
                    f"  epoch {c['epoch']}: loss {c['loss']:.4f} "
                    f"HR@50 {c['hit_rate@50']:.4f}",
                    file=sys.stderr,
                )

    print(f"\n{args.dataset}, {args.holdout} target, seeds {args.seeds} (mean ± std)\n")
    print("| method | seen items | " + " | ".join(c for c, _ in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for (label, setting), runs in rows.items():
        cells = []
        for _, key in COLUMNS:
            mean, std = mean_std([r[key] for r in runs])
            cells.append(f"{mean:.4f} ± {std:.4f}")
        kept = "excluded" if setting == "exclude_seen" else "kept"
        print(f"| {label} | {kept} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
