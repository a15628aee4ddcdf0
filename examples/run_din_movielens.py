"""DIN on MovieLens as CTR (label: rating >= 4), or on the synthetic CTR data.

MovieLens: user features (id, gender, age, occupation, zip digit), item
features (id, first genre, all genres as a variable-length feature) and, as
behaviour sequences, the movies the user rated strictly earlier in time and
their first genre (`keras_rec.workflows.ranking_data`);
the candidate's item id and first genre are the attention queries. The
ratings are split globally by time: first 80% train, last 20% test.

Without arguments the built-in synthetic CTR impressions are used (clicks
depend on the candidate's similarity to the user's recent clicks).

Usage:
    python examples/run_din_movielens.py
    python examples/run_din_movielens.py --data-dir ../shared/data/movielens-100k
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import keras_rec as kr  # noqa: E402
from keras_rec.workflows.ranking_data import load_movielens_ctr  # noqa: E402
from keras_rec.workflows.ranking_data import movielens_ctr_columns  # noqa: E402
from keras_rec.workflows.ranking_data import synthetic_columns  # noqa: E402
from keras_rec.workflows.ranking_data import synthetic_ctr_frame  # noqa: E402


def movielens(data_dir, embedding_dim):
    """Rating events (time order), DIN's feature columns and history mapping."""
    frame, n_genres = load_movielens_ctr("100k", data_dir)
    columns = movielens_ctr_columns(frame, n_genres, embedding_dim, init_std=None)
    return frame, columns.base + columns.din_extra, columns.din_history


def synthetic(seed, embedding_dim):
    frame = synthetic_ctr_frame(seed=seed)
    base, extra, history = synthetic_columns(frame, embedding_dim)
    return frame, base + extra, history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="MovieLens 100K folder (u.data, ...).")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--embedding-dim", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(args.seed)

    # The library's preprocessing (keras_rec.workflows.ranking_data, also
    # `keras-rec train din`), on this script's 80 / 20 time split.
    if args.data_dir:
        frame, columns, history = movielens(args.data_dir, args.embedding_dim)
    else:
        frame, columns, history = synthetic(args.seed, args.embedding_dim)
    n_train = int(0.8 * len(frame))
    x = kr.to_model_inputs(frame, columns)
    y = frame["label"].to_numpy()
    x_train = {k: v[:n_train] for k, v in x.items()}
    x_test = {k: v[n_train:] for k, v in x.items()}

    model = kr.DIN(columns, history, dnn_hidden_units=(128, 64), seed=args.seed)
    model.compile(
        keras.optimizers.Adam(1e-3),
        "binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    model.fit(x_train, y[:n_train], batch_size=512, epochs=args.epochs, verbose=2)
    p = model.predict(x_test, batch_size=4096, verbose=0)[:, 0].astype("float64")
    y_test = y[n_train:]
    print(
        f"DIN test AUC {roc_auc_score(y_test, p):.4f}  "
        f"logloss {log_loss(y_test, np.clip(p, 1e-7, 1 - 1e-7)):.4f}  "
        f"({n_train} train / {len(y_test)} test rows, positives {y.mean():.3f})"
    )


if __name__ == "__main__":
    main()
