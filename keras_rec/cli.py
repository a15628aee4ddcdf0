"""The `keras-rec` command line."""

import argparse
import os
import sys

from keras_rec.version import __version__


def _quiet_tensorflow():
    # TensorFlow's C++ start-up messages drown the command's own output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cmd_datasets(args):
    from keras_rec.datasets import DATASETS

    width = max(len(name) for name in DATASETS)
    for name, entry in DATASETS.items():
        print(f"{name:<{width}}  {entry['description']}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-rec",
        description="Train, evaluate, export and query two-stage recommenders.",
    )
    parser.add_argument("--version", action="version", version=f"keras-rec {__version__}")
    sub = parser.add_subparsers(dest="command")
    datasets = sub.add_parser("datasets", help="list the data sets keras-rec can load")
    datasets.set_defaults(func=_cmd_datasets)
    return parser


def main(argv=None):
    _quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
