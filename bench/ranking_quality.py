"""Ranking quality on MovieLens 100K as CTR: LR, DeepFM, WDL, DCN, DIN.

Protocol (the data preparation is keras_rec.workflows.ranking_data, shared
with `keras-rec train deepfm|din --dataset movielens-100k`):
- label = 1 if rating >= 4 (55% positive);
- all ratings sorted globally by timestamp: first 80% train, last 20% test;
  the last 10% of the training period (by time) is the validation slice that
  picks the best epoch; the model is then refitted on the whole training
  period for that many epochs (`--no-refit`: the best epoch's weights are
  tested as they are). The test slice is scored once, at the end;
- sparse features: user_id, item_id, gender, age bucket (MovieLens-1M's 7
  groups), occupation, first digit of the zip code; genres as a
  variable-length feature (up to 6, mean-pooled);
- DIN also gets the user's previous up-to-50 rated items, strictly before
  the event in time, and their first genre as behaviour sequences (the
  candidate's first genre is its query). DIN+ratings adds the ratings of
  those past items as a third aligned behaviour feature (strictly past
  information; its query is a constant learned vector). Plain DIN's DNN
  also reads the mean-pooled behaviour sequences (`pool_history`, see
  TUNED);
- embedding dim 8 (initializer N(0, 1e-4), DeepCTR's default), DNN
  (256, 128, 64), Adam 1e-3, batch 512, up to 5 epochs; test AUC and
  logloss, mean and std over seeds;
- the training loop is `keras-rec train`'s (`train_ranking`): batches of
  the rows shuffled per (seed, epoch), the last partial batch of an epoch
  dropped, so seed S here gives what `keras-rec train <model> --dataset
  movielens-100k --seed S` gives (`--order time`: each epoch goes through
  the training rows in time order and ends on the most recent ones; better
  on the validation slice for DeepFM and DIN, not on the test period, see
  BENCHMARKS.md).

Usage:
    python bench/ranking_quality.py --data-dir ../shared/data/movielens-100k
    python bench/ranking_quality.py --seeds 0 1 2 --models DeepFM DIN
"""

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_rec.workflows.ranking_data import movielens_ranking_data  # noqa: E402
from keras_rec.workflows.run_ranking import MOVIELENS_MODEL_OPTIONS  # noqa: E402
from keras_rec.workflows.run_ranking import evaluate_ranking  # noqa: E402
from keras_rec.workflows.run_ranking import train_ranking  # noqa: E402
from keras_rec.workflows.run_ranking import with_validation_rows  # noqa: E402

DEFAULT_DATA_DIR = (
    pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-100k"
)
MODELS = ("LR", "DeepFM", "WDL", "DCN", "DIN", "DIN+ratings")
EMBEDDING_DIM = 8
DNN_UNITS = (256, 128, 64)
# Chosen on the validation slice (seed 0; BENCHMARKS.md lists the figures)
# and used by `keras-rec train` on MovieLens; the library defaults
# otherwise (DIN+ratings too). `--dnn-dropout` overrides the dropout of
# every model.
TUNED = {
    "DeepFM": MOVIELENS_MODEL_OPTIONS["deepfm"],
    "DIN": MOVIELENS_MODEL_OPTIONS["din"],
}


# Bench name -> the library's model name (LR is a WDL without its DNN).
LIBRARY_MODEL = {
    "LR": "wdl",
    "DeepFM": "deepfm",
    "WDL": "wdl",
    "DCN": "dcn",
    "DIN": "din",
    "DIN+ratings": "din",
}


def options(name, args):
    """The builder options of `name`: TUNED, then the command line's."""
    common = dict(TUNED.get(name, {}))
    if args.l2_reg_embedding is not None:  # else each builder's default
        common["l2_reg_embedding"] = args.l2_reg_embedding
    if name != "LR" and args.dnn_dropout is not None:
        common["dnn_dropout"] = args.dnn_dropout
    if name.startswith("DIN"):
        common["att_hidden_units"] = tuple(args.att_hidden_units)
        common["att_activation"] = args.att_activation
    return common


def train_and_test(name, data, args):
    """Picks the epoch on validation, optionally refits, tests once.

    The training is `keras_rec.workflows.run_ranking.train_ranking`, the
    loop of `keras-rec train` (same batches, selection and refit), so a
    seed's row here is what `keras-rec train <model> --seed <seed>` gives.

    Returns:
        `(test_auc, test_logloss, best_epoch, validation_aucs)`.
    """
    model_name = LIBRARY_MODEL[name]
    common = dict(
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        dnn_hidden_units=() if name == "LR" else DNN_UNITS,
        seed=args.seed,
        verbose=0,
        model_options={model_name: options(name, args)},
        shuffle=args.order == "shuffled",
    )
    model, checkpoint, _ = train_ranking(model_name, data, epochs=args.epochs, **common)
    if args.refit:
        # The same number of epochs on the whole training period, whose most
        # recent slice (the validation one) is the closest to the test period.
        model, _, _ = train_ranking(
            model_name,
            with_validation_rows(data),
            epochs=checkpoint.best_epoch,
            select=False,
            **common,
        )
    test = evaluate_ranking(model, data)["model"]
    val_aucs = [h["val_auc"] for h in checkpoint.history]
    return test["auc"], test["logloss"], checkpoint.best_epoch, val_aucs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--embedding-init-std",
        type=float,
        default=1e-4,
        help="Stddev of the embedding initializer (DeepCTR's default, 1e-4).",
    )
    parser.add_argument(
        "--no-refit",
        dest="refit",
        action="store_false",
        help="Test the best validation epoch's weights instead of refitting "
        "on the whole training period for that many epochs.",
    )
    parser.add_argument(
        "--order",
        default="shuffled",
        choices=("shuffled", "time"),
        help="Reshuffle the training rows each epoch (default) or go through "
        "them in time order.",
    )
    parser.add_argument("--l2-reg-embedding", type=float, default=None)
    parser.add_argument("--dnn-dropout", type=float, default=None)
    parser.add_argument("--att-hidden-units", type=int, nargs="+", default=[80, 40])
    parser.add_argument("--att-activation", default="dice")
    args = parser.parse_args(argv)
    start = time.time()
    # The data and its split: keras_rec.workflows.ranking_data, shared with
    # `keras-rec train deepfm|din --dataset movielens-100k`.
    datasets = {
        with_ratings: movielens_ranking_data(
            "100k",
            args.data_dir,
            embedding_dim=EMBEDDING_DIM,
            init_std=args.embedding_init_std,
            with_ratings=with_ratings,
        )[0]
        for with_ratings in {name == "DIN+ratings" for name in args.models}
    }
    data = next(iter(datasets.values()))
    sizes = data.sizes()
    positives = np.concatenate([y for _, y in (data.train, data.validation, data.test)])
    print(
        f"MovieLens 100K CTR: {sizes['train']} fit / {sizes['validation']} "
        f"validation / {sizes['test']} test rows, positives {positives.mean():.3f} "
        f"(prepared in {time.time() - start:.1f} s)",
        flush=True,
    )
    results = {name: [] for name in args.models}
    for seed in args.seeds:
        args.seed = seed
        for name in args.models:
            t = time.time()
            auc, loss, epoch, val_aucs = train_and_test(
                name, datasets[name == "DIN+ratings"], args
            )
            results[name].append((auc, loss))
            print(
                f"seed {seed} {name:11s} test AUC {auc:.4f} logloss {loss:.4f} "
                f"(best epoch {epoch}; validation AUC by epoch "
                f"{' '.join(f'{v:.4f}' for v in val_aucs)}; {time.time() - t:.0f} s)",
                flush=True,
            )
            keras.backend.clear_session()
    print()
    print(f"| model | test AUC (mean ± std, {len(args.seeds)} seeds) | test logloss |")
    print("|---|---|---|")
    for name, values in results.items():
        auc, loss = np.asarray(values).T
        print(
            f"| {name} | {auc.mean():.4f} ± {auc.std():.4f} | "
            f"{loss.mean():.4f} ± {loss.std():.4f} |"
        )
    print(f"\n({time.time() - start:.0f} s in all)")
    return results


if __name__ == "__main__":
    sys.exit(main() and 0)
