"""The `keras-rec` command line."""

import argparse
import os
import sys

from keras_rec.version import __version__

RECALL_MODELS = ("dssm", "youtubednn")
RANKING_MODELS = ("deepfm", "din", "wdl", "dcn")
DATASETS = ("synthetic", "movielens-100k", "movielens-1m", "criteo")


def _quiet_tensorflow():
    # TensorFlow's C++ start-up messages drown the command's own output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cmd_datasets(args):
    from keras_rec.datasets import DATASETS as registry

    width = max(len(name) for name in registry)
    for name, entry in registry.items():
        print(f"{name:<{width}}  {entry['description']}")
    return 0


def _cmd_train(args):
    if args.model in RECALL_MODELS:
        from keras_rec.workflows.run_recall import run_recall

        run_recall(
            args.model,
            strategy=args.strategy,
            select_best=args.select_best,
            **_common_train_kwargs(args),
        )
        return 0
    if args.model in RANKING_MODELS:
        from keras_rec.workflows.run_ranking import run_ranking

        shuffle = None if args.order is None else args.order == "shuffled"
        run_ranking(
            args.model,
            strategy=args.strategy,
            shuffle=shuffle,
            refit=False if args.no_refit else None,
            **_common_train_kwargs(args),
        )
        return 0
    raise ValueError(f"Unknown model {args.model!r}")


def _common_train_kwargs(args):
    """The `train` arguments every model's job takes."""
    return dict(
        dataset=args.dataset,
        data_dir=args.data_dir,
        download=args.download,
        output=args.output,
        epochs=args.epochs,
        batch_size=args.batch_size,
        embedding_dim=args.embedding_dim,
        seed=args.seed,
        verbose=_verbosity(args),
        synthetic_scale=args.synthetic_scale,
    )


def _verbosity(args):
    # A progress bar on a terminal; one line per epoch in logs and CI.
    if args.quiet:
        return 0
    return 1 if sys.stdout.isatty() else 2


def _cmd_evaluate(args):
    from keras_rec.workflows.report import markdown_table
    from keras_rec.workflows.run_recall import load_metrics

    metrics = load_metrics(args.run_dir)
    print(f"{metrics['model']} on {metrics['dataset']} (version {metrics['version']})")
    print(markdown_table(metrics["table"], columns=metrics.get("table_columns")))
    if args.recompute:
        from keras_rec.workflows.run_ranking import reevaluate_ranking
        from keras_rec.workflows.run_ranking import summary_rows

        _, evaluation = reevaluate_ranking(args.run_dir, data_dir=args.data_dir)
        rows = summary_rows(
            metrics["model"],
            evaluation,
            metrics.get("best_epoch"),
            metrics.get("best_val_auc"),
        )
        print("")
        print(f"Recomputed from {args.run_dir}/model.keras on the test split:")
        print(markdown_table(rows))
    return 0


def _cmd_recall(args):
    from keras_rec.serving import Recaller

    recaller = Recaller.load(args.run_dir)
    user_id = _parse_id(args.user_id)
    ids, scores = recaller.recommend_for_users(
        [user_id], k=args.k, exclude_seen=not args.include_seen
    )
    print(f"Top {args.k} items for user {user_id}:")
    for rank, (item, score) in enumerate(zip(ids[0], scores[0]), start=1):
        print(f"{rank:>3}  {item}  {score:.4f}")
    return 0


def _parse_id(value):
    try:
        return int(value)
    except ValueError:
        return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-rec",
        description="Train, evaluate, export and query two-stage recommenders.",
    )
    parser.add_argument(
        "--version", action="version", version=f"keras-rec {__version__}"
    )
    sub = parser.add_subparsers(dest="command")

    datasets = sub.add_parser("datasets", help="list the data sets keras-rec can load")
    datasets.set_defaults(func=_cmd_datasets)

    train = sub.add_parser(
        "train",
        help="train, evaluate, export and report (default: dssm on synthetic data)",
    )
    train.add_argument(
        "model", nargs="?", default="dssm", choices=RECALL_MODELS + RANKING_MODELS
    )
    train.add_argument("--dataset", default=None, choices=DATASETS)
    train.add_argument(
        "--data-dir",
        default=None,
        help="folder of the real data files (criteo: the file, or its folder)",
    )
    train.add_argument(
        "--download",
        action="store_true",
        help="download MovieLens from the publisher when --data-dir has no copy",
    )
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--embedding-dim", type=int, default=None)
    train.add_argument("--seed", type=int, default=1024)
    train.add_argument(
        "--synthetic-scale",
        type=float,
        default=1.0,
        help="size of the synthetic data relative to the default (2,000 users)",
    )
    train.add_argument("--output", default="saved_models")
    train.add_argument(
        "--strategy",
        default="default",
        choices=("default", "mirrored", "multi-worker"),
        help="tf.distribute strategy; multi-worker reads TF_CONFIG on each machine",
    )
    train.add_argument(
        "--select-best",
        action="store_true",
        help="recall models: train on the validation protocol, keep the epoch "
        "with the best validation HitRate@50, then evaluate on the test target",
    )
    train.add_argument(
        "--order",
        default=None,
        choices=("shuffled", "time"),
        help="rankers: shuffle the training rows each epoch (default), or train "
        "in time order, each epoch ending on the newest rows",
    )
    train.add_argument(
        "--no-refit",
        action="store_true",
        help="rankers: test and export the best validation epoch's weights, "
        "instead of refitting that many epochs on the training and validation "
        "rows (the default)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_cmd_train)

    evaluate = sub.add_parser("evaluate", help="print the results of a run directory")
    evaluate.add_argument("run_dir")
    evaluate.add_argument(
        "--recompute",
        action="store_true",
        help="(ranking runs) reload model.keras and rescore the test split",
    )
    evaluate.add_argument(
        "--data-dir", default=None, help="with --recompute: where the data now is"
    )
    evaluate.set_defaults(func=_cmd_evaluate)

    recall = sub.add_parser(
        "recall", help="top-K items for a user from an exported run"
    )
    recall.add_argument("run_dir")
    recall.add_argument("--user-id", required=True)
    recall.add_argument("-k", type=int, default=10)
    recall.add_argument(
        "--include-seen", action="store_true", help="keep items the user already has"
    )
    recall.set_defaults(func=_cmd_recall)
    return parser


def main(argv=None):
    _quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if getattr(args, "command", None) == "train":
        if args.dataset is None:
            args.dataset = "synthetic"
        _check_train_args(parser, args)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, KeyError) as error:
        print(f"keras-rec: error: {error}", file=sys.stderr)
        return 2


def _check_train_args(parser, args):
    for name in ("epochs", "batch_size", "embedding_dim"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1. Received: {value}")
    if args.model in RANKING_MODELS:
        if args.select_best:
            parser.error(
                "rankers always keep their best validation epoch; --select-best "
                f"is for recall models. Received: {args.model} --select-best"
            )
        if args.model == "din" and args.dataset == "criteo":
            parser.error(
                "--dataset criteo has no behaviour sequences, so it cannot train "
                f"din (use deepfm, wdl or dcn). Received: {args.model}"
            )
        if args.dataset == "criteo" and args.data_dir is None:
            parser.error(
                "--dataset criteo needs --data-dir (the Criteo file or its "
                "folder). Received: --data-dir None"
            )
        return
    if args.order is not None:
        parser.error(
            "--order is for rankers (deepfm, din, wdl, dcn); recall models "
            f"shuffle their examples. Received: {args.model} --order {args.order}"
        )
    if args.no_refit:
        parser.error(
            "--no-refit is for rankers (deepfm, din, wdl, dcn); recall models "
            f"train once (see --select-best). Received: {args.model} --no-refit"
        )
    if args.dataset == "criteo":
        parser.error(
            "--dataset criteo has no user histories, so it cannot train a recall "
            f"model. Received: {args.model}"
        )


if __name__ == "__main__":
    sys.exit(main())
