"""DeepFM on Criteo-format data: 13 integer and 26 categorical features.

Integer features are bucketed with the log-squared rule of the Criteo
winners (their own bucket when missing) and also fed as `log1p` dense
values; categorical values are label-encoded on the training rows (rare and
unseen values share id 0). The first 80% of the rows train, the last 20%
test (Criteo's file is in time order).

Usage:
    python examples/run_deepfm_criteo.py                  # synthetic, 100k rows
    python examples/run_deepfm_criteo.py --data train.txt # Kaggle / DeepCTR file
    python examples/run_deepfm_criteo.py --data-dir ../shared/data/criteo-sample
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import keras_rec as kr  # noqa: E402
from keras_rec.datasets import load_criteo  # noqa: E402
from keras_rec.datasets import make_synthetic_criteo  # noqa: E402
from keras_rec.workflows.ranking_data import criteo_columns  # noqa: E402
from keras_rec.workflows.ranking_data import encode_criteo  # noqa: E402
from keras_rec.workflows.ranking_data import find_criteo_file  # noqa: E402


def load(args):
    if args.data_dir:
        args.data = find_criteo_file(args.data_dir)  # the largest file in it
    if args.data:
        print(f"Reading {args.data}")
        return load_criteo(args.data, nrows=args.rows)
    print(f"Synthetic Criteo-format data, {args.rows or 100_000} rows")
    return make_synthetic_criteo(n_rows=args.rows or 100_000, seed=args.seed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="Criteo file (Kaggle train.txt or CSV).")
    parser.add_argument("--data-dir", help="Folder holding one Criteo file.")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--embedding-dim", type=int, default=8)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(args.seed)

    frame = load(args)
    n_train = int(0.8 * len(frame))
    min_count = args.min_count if n_train >= 10_000 else 1  # tiny samples
    # The library's Criteo preprocessing (also `keras-rec train deepfm
    # --dataset criteo`), on this script's 80 / 20 split.
    data = encode_criteo(frame, n_train, min_count)
    columns = criteo_columns(data, args.embedding_dim, init_std=None)
    x = kr.to_model_inputs(data, columns)
    y = frame["label"].to_numpy()
    x_train = {k: v[:n_train] for k, v in x.items()}
    x_test = {k: v[n_train:] for k, v in x.items()}

    model = kr.DeepFM(columns, columns, dnn_hidden_units=(256, 128), seed=args.seed)
    model.compile(
        keras.optimizers.Adam(1e-3),
        "binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    model.fit(
        x_train,
        y[:n_train],
        batch_size=1024,
        epochs=args.epochs,
        validation_split=0.1 if n_train >= 10_000 else 0.0,
        verbose=2,
    )
    p = model.predict(x_test, batch_size=8192, verbose=0)[:, 0].astype("float64")
    y_test = y[n_train:]
    print(
        f"DeepFM test AUC {roc_auc_score(y_test, p):.4f}  "
        f"logloss {log_loss(y_test, np.clip(p, 1e-7, 1 - 1e-7)):.4f}  "
        f"({n_train} train / {len(y_test)} test rows, positives {y.mean():.3f})"
    )


if __name__ == "__main__":
    main()
