"""DeepFM vs Wide & Deep vs DCN (and logistic regression) on one CTR data set.

The built-in synthetic CTR impressions: clicks depend on gender x category,
age x price and user x item interactions, which the three models learn in
different ways (FM, DNN, cross network) and a linear model cannot. The
impressions are split globally by time: first 80% train, last 20% test.

Usage:
    python examples/run_wdl_dcn_compare.py
    python examples/run_wdl_dcn_compare.py --impressions 200000 --epochs 3
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import keras_rec as kr  # noqa: E402
from keras_rec.datasets import make_synthetic_ctr  # noqa: E402

SPARSE = [
    "user_id",
    "gender",
    "age_bucket",
    "occupation",
    "region",
    "item_id",
    "category",
    "price_bucket",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impressions", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    impressions, users, items = make_synthetic_ctr(
        n_impressions=args.impressions, seed=args.seed
    )
    frame = impressions.merge(users, on="user_id").merge(items, on="item_id")
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    columns = [kr.SparseFeat(n, int(frame[n].max()) + 1, 8) for n in SPARSE]
    x = kr.to_model_inputs(frame, columns)
    y = frame["label"].to_numpy()
    n_train = int(0.8 * len(frame))
    x_train = {k: v[:n_train] for k, v in x.items()}
    x_test = {k: v[n_train:] for k, v in x.items()}

    units = (128, 64)
    builders = {
        "LR": lambda: kr.WDL(columns, columns, dnn_hidden_units=()),
        "DeepFM": lambda: kr.DeepFM(columns, columns, dnn_hidden_units=units),
        "WDL": lambda: kr.WDL(columns, columns, dnn_hidden_units=units),
        "DCN": lambda: kr.DCN(columns, columns, cross_num=2, dnn_hidden_units=units),
        "DCN-M": lambda: kr.DCN(
            columns, columns, cross_parameterization="matrix", dnn_hidden_units=units
        ),
    }
    rows = []
    for name, build in builders.items():
        keras.utils.set_random_seed(args.seed)
        start = time.time()
        model = build()
        model.compile(keras.optimizers.Adam(2e-3), "binary_crossentropy")
        model.fit(x_train, y[:n_train], batch_size=512, epochs=args.epochs, verbose=0)
        p = model.predict(x_test, batch_size=4096, verbose=0)[:, 0].astype("float64")
        auc = roc_auc_score(y[n_train:], p)
        loss = log_loss(y[n_train:], np.clip(p, 1e-7, 1 - 1e-7))
        rows.append((name, auc, loss, model.count_params(), time.time() - start))
        print(f"{name}: test AUC {auc:.4f} logloss {loss:.4f}", flush=True)

    print(f"\n{n_train} train / {len(y) - n_train} test impressions\n")
    print("| model | test AUC | test logloss | parameters | seconds |")
    print("|---|---|---|---|---|")
    for name, auc, loss, params, seconds in rows:
        print(f"| {name} | {auc:.4f} | {loss:.4f} | {params:,} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
