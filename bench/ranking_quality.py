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
- epochs reshuffled (`--order time`: each epoch goes through the training
  rows in time order and ends on the most recent ones; better on the
  validation slice for DeepFM and DIN, not on the test period, see
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
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import keras_rec as kr  # noqa: E402
from keras_rec.workflows.ranking_data import load_movielens_ctr  # noqa: E402
from keras_rec.workflows.ranking_data import movielens_ctr_columns  # noqa: E402
from keras_rec.workflows.ranking_data import split_frame  # noqa: E402

DEFAULT_DATA_DIR = (
    pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-100k"
)
MODELS = ("LR", "DeepFM", "WDL", "DCN", "DIN", "DIN+ratings")
EMBEDDING_DIM = 8
DNN_UNITS = (256, 128, 64)
# Chosen on the validation slice (seed 0, bench/ranking_quality.py's own
# split; BENCHMARKS.md lists the figures); the library defaults otherwise.
# `--dnn-dropout` overrides the dropout of every model.
TUNED = {
    "DeepFM": {"dnn_dropout": 0.3},
    "DIN": {"pool_history": True},
}


def build(name, columns, args):
    base = columns.base
    common = {"seed": args.seed, **TUNED.get(name, {})}
    if args.l2_reg_embedding is not None:  # else each builder's default
        common["l2_reg_embedding"] = args.l2_reg_embedding
    if name != "LR" and args.dnn_dropout is not None:
        common["dnn_dropout"] = args.dnn_dropout
    if name == "LR":
        return kr.WDL(base, base, dnn_hidden_units=(), **common)
    if name == "DeepFM":
        return kr.DeepFM(base, base, dnn_hidden_units=DNN_UNITS, **common)
    if name == "WDL":
        return kr.WDL(base, base, dnn_hidden_units=DNN_UNITS, **common)
    if name == "DCN":
        return kr.DCN(base, base, dnn_hidden_units=DNN_UNITS, **common)
    extra, history = (
        (columns.din_extra, columns.din_history)
        if name == "DIN"
        else (columns.ratings_extra, columns.ratings_history)
    )
    return kr.DIN(
        base + extra,
        history,
        dnn_hidden_units=DNN_UNITS,
        att_hidden_units=tuple(args.att_hidden_units),
        att_activation=args.att_activation,
        **common,
    )


def evaluate(model, x, y):
    p = model.predict(x, batch_size=4096, verbose=0)[:, 0].astype(np.float64)
    return roc_auc_score(y, p), log_loss(y, np.clip(p, 1e-7, 1 - 1e-7))


def select(data, names):
    return {k: v for k, v in data.items() if k in names}


def train_and_test(name, columns, splits, args):
    """Picks the epoch on validation, optionally refits, tests once.

    Returns:
        `(test_auc, test_logloss, best_epoch, validation_aucs)`.
    """
    (x_fit, y_fit), (x_val, y_val), (x_test, y_test) = splits

    def fresh():
        keras.utils.set_random_seed(args.seed)
        model = build(name, columns, args)
        model.compile(keras.optimizers.Adam(args.learning_rate), "binary_crossentropy")
        return model, {t.name for t in model.inputs}

    model, names = fresh()
    val_aucs, best_weights = [], None
    for _ in range(args.epochs):
        model.fit(
            select(x_fit, names),
            y_fit,
            batch_size=args.batch_size,
            shuffle=args.order == "shuffled",
            verbose=0,
        )
        val_aucs.append(evaluate(model, select(x_val, names), y_val)[0])
        if val_aucs[-1] == max(val_aucs):
            best_weights = model.get_weights()
    best_epoch = int(np.argmax(val_aucs)) + 1
    if args.refit:
        # The same number of epochs on the whole training period, whose most
        # recent slice (the validation one) is the closest to the test period.
        model, names = fresh()
        x_train = {k: np.concatenate([x_fit[k], x_val[k]]) for k in names}
        y_train = np.concatenate([y_fit, y_val])
        model.fit(
            x_train,
            y_train,
            batch_size=args.batch_size,
            epochs=best_epoch,
            shuffle=args.order == "shuffled",
            verbose=0,
        )
    else:
        model.set_weights(best_weights)
    test_auc, test_logloss = evaluate(model, select(x_test, names), y_test)
    return test_auc, test_logloss, best_epoch, val_aucs


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
    frame, n_genres = load_movielens_ctr("100k", args.data_dir)
    columns = movielens_ctr_columns(
        frame, n_genres, EMBEDDING_DIM, args.embedding_init_std
    )
    frame["query_rating"] = 5
    splits = split_frame(frame, columns.base + columns.ratings_extra)
    sizes = [len(y) for _, y in splits]
    print(
        f"MovieLens 100K CTR: {sizes[0]} fit / {sizes[1]} validation / "
        f"{sizes[2]} test rows, positives {frame['label'].mean():.3f} "
        f"(prepared in {time.time() - start:.1f} s)",
        flush=True,
    )
    results = {name: [] for name in args.models}
    for seed in args.seeds:
        args.seed = seed
        for name in args.models:
            t = time.time()
            auc, loss, epoch, val_aucs = train_and_test(name, columns, splits, args)
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
