"""DIN on MovieLens as CTR (label: rating >= 4), or on the synthetic CTR data.

MovieLens: user features (id, gender, age, occupation, zip digit), item
features (id, first genre, all genres as a variable-length feature) and, as
behaviour sequences, the movies the user rated before and their first genre;
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
from keras_rec.datasets import build_history_sequences  # noqa: E402
from keras_rec.datasets import encode_ids  # noqa: E402
from keras_rec.datasets import load_movielens  # noqa: E402
from keras_rec.datasets import make_synthetic_ctr  # noqa: E402

MAXLEN = 50  # MovieLens history length
SYNTHETIC_MAXLEN = 20


def movielens(data_dir):
    """Rating events with features and histories; (frame, feature names)."""
    ratings, users, items = load_movielens("100k", data_dir=data_dir)
    users["gender"] = encode_ids(users["gender"])[0]
    users["age"] = np.searchsorted([18, 25, 35, 45, 50, 56], users["age"], "right") + 1
    users["occupation"] = encode_ids(users["occupation"])[0]
    users["zip"] = encode_ids(users["zip"].str[:1])[0]
    codes, _ = encode_ids(np.concatenate(items["genres"].to_numpy()))
    per_item = np.cumsum([0] + [len(g) for g in items["genres"]])
    items["genres"] = [codes[a:b][:6] for a, b in zip(per_item[:-1], per_item[1:])]
    items["genre"] = [g[0] for g in items["genres"]]
    frame = ratings.merge(items[["item_id", "genre"]], on="item_id")
    frame = build_history_sequences(
        frame, maxlen=MAXLEN, extra_cols=("genre",), min_history=0
    )
    frame = frame.merge(users, on="user_id").merge(
        items[["item_id", "genres"]], on="item_id"
    )
    frame["label"] = (frame["rating"] >= 4).astype("int64")
    sparse = ["user_id", "gender", "age", "occupation", "zip", "item_id", "genre"]
    return frame, sparse, ("item_id", "genre")


def synthetic(seed):
    impressions, users, items = make_synthetic_ctr(
        n_users=2000,
        n_items=1000,
        n_impressions=60_000,
        history_length=SYNTHETIC_MAXLEN,
        seed=seed,
    )
    frame = impressions.merge(users, on="user_id").merge(items, on="item_id")
    sparse = ["user_id", "gender", "age_bucket", "occupation", "region"]
    sparse += ["item_id", "category", "price_bucket"]
    return frame, sparse, ("item_id", "category")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="MovieLens 100K folder (u.data, ...).")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--embedding-dim", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(args.seed)

    if args.data_dir:
        frame, sparse, history = movielens(args.data_dir)
        maxlen = MAXLEN
    else:
        frame, sparse, history = synthetic(args.seed)
        maxlen = SYNTHETIC_MAXLEN
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    d = args.embedding_dim
    columns = [kr.SparseFeat(n, int(frame[n].max()) + 1, d) for n in sparse]
    size = {c.name: c.vocabulary_size for c in columns}
    if "genres" in frame:
        columns.append(
            kr.VarLenSparseFeat(
                kr.SparseFeat("genres", size["genre"], d, embedding_name="genre"), 6
            )
        )
    for name in history:  # hist_<name> shares the candidate's table
        columns.append(
            kr.VarLenSparseFeat(
                kr.SparseFeat(f"hist_{name}", size[name], d, embedding_name=name),
                maxlen,
                length_name="hist_len",
            )
        )
    n_train = int(0.8 * len(frame))
    x = kr.to_model_inputs(frame, columns)
    y = frame["label"].to_numpy()
    x_train = {k: v[:n_train] for k, v in x.items()}
    x_test = {k: v[n_train:] for k, v in x.items()}

    model = kr.DIN(columns, list(history), dnn_hidden_units=(128, 64), seed=args.seed)
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
