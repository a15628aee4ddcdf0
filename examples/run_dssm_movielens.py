"""DSSM recall on MovieLens 100K, or on the built-in synthetic data.

Protocol (`keras_rec.workflows.recall_data`): every interaction is a
positive; each user's last interaction is the test target; each earlier
position predicts its item from the previous up-to-50 items. The user tower
reads the mean-pooled history, the last 5 items and the user's attributes;
the item tower reads the item id (its embedding table is shared with the
history). Training is an in-batch softmax with log-Q correction. Then every
user and item is embedded by its tower, the items go into an Annoy index,
and each user's top 100 are scored against their held-out item, next to
recommending the most popular items to everyone.

Settings are those of `keras-rec train dssm --dataset <data set>`.

Usage:
    python examples/run_dssm_movielens.py                 # synthetic, < 1 min
    python examples/run_dssm_movielens.py --data-dir ../shared/data/movielens-100k
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import keras_rec as kr  # noqa: E402
from keras_rec.retrieval import AnnoyItemIndex  # noqa: E402
from keras_rec.retrieval import evaluate_retrieval  # noqa: E402
from keras_rec.retrieval import popularity_baseline  # noqa: E402
from keras_rec.workflows.datasets import USER_ATTRIBUTES  # noqa: E402
from keras_rec.workflows.datasets import load_recall_dataset  # noqa: E402
from keras_rec.workflows.recall_data import prepare_recall_data  # noqa: E402
from keras_rec.workflows.run_recall import recall_settings  # noqa: E402

KS = (10, 50, 100)


def print_results(label, report):
    for setting, metrics in report["results"].items():
        seen = "seen excluded" if setting == "exclude_seen" else "seen kept"
        print(
            f"{label + ' (' + seen + ')':<38}"
            + "  ".join(f"HR@{k} {metrics[f'hit_rate@{k}']:.4f}" for k in KS)
            + f"  NDCG@10 {metrics['ndcg@10']:.4f}"
            + (
                f"  (ANN recall@10 {metrics['ann_recall@10']:.3f})"
                if "ann_recall@10" in metrics
                else ""
            )
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="MovieLens 100K folder (u.data, ...).")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1024)
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(args.seed)

    dataset = "movielens-100k" if args.data_dir else "synthetic"
    settings = recall_settings(dataset, "dssm")
    interactions, users = load_recall_dataset(dataset, args.data_dir)
    data = prepare_recall_data(
        interactions,
        users,
        user_attributes=USER_ATTRIBUTES[dataset],
        embedding_dim=settings["embedding_dim"],
        recent=settings["recent"],
        last_item=settings["last_item"],
    )
    # The feature columns: user tower = hist_item_id (VarLen, up to 50, mean),
    # recent_item_id (VarLen, last 5, mean), on MovieLens last_item_id (the
    # most recent item on its own), all sharing the `item_id`
    # embedding table, plus the user attributes; item tower = item_id.
    print(f"{dataset}: {data.num_train_examples} training examples")
    for column in data.user_columns + data.item_columns:
        print(f"  {type(column).__name__}: {column.name}")

    dim = settings["embedding_dim"]
    model = kr.DSSM(
        data.user_columns,
        data.item_columns,
        user_dnn_hidden_units=(128, dim),
        item_dnn_hidden_units=(128, dim),
        temperature=settings["temperature"],
        seed=args.seed,
    )
    model.compile(keras.optimizers.Adam(settings["learning_rate"]))
    model.fit(
        data.train_inputs,  # features only: the objective's labels are in-batch
        batch_size=settings["batch_size"],
        epochs=args.epochs or settings["epochs"],
        shuffle=True,
        verbose=2,
    )

    # Embed with each tower separately, then search the items with Annoy.
    user_vectors = model.user_model.predict(
        data.eval_user_inputs, batch_size=4096, verbose=0
    )
    item_vectors = model.item_model.predict(
        data.item_inputs, batch_size=4096, verbose=0
    )
    index = AnnoyItemIndex("angular", n_trees=50, seed=args.seed)
    index.build(data.item_codes, item_vectors)
    ids, scores = index.query(user_vectors[:1], k=10, exclude=data.eval_seen[:1])
    raw = data.item_vocabulary[ids[0] - 1]  # codes 1..n -> raw item ids
    print(f"User {data.eval_user_ids[0]}: top 10 unseen items {raw.tolist()}")

    print_results(
        "most popular",
        popularity_baseline(
            data.train_item_codes, data.eval_targets, KS, seen_item_ids=data.eval_seen
        ),
    )
    print_results(
        "DSSM, Annoy",
        evaluate_retrieval(
            index, user_vectors, data.eval_targets, KS, seen_item_ids=data.eval_seen
        ),
    )


if __name__ == "__main__":
    main()
