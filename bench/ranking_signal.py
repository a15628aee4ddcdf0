"""What the ranking protocol's features say about the label, without a network.

Two probes of the MovieLens CTR protocol (`bench/ranking_quality.py`):

1. What the behaviour sequence can add (the DIN question).

DIN's only input beyond DeepFM's is the user's previous rated items (and
their genres), without the ratings. This script measures what that history
can add, without a neural network: a logistic regression (on standardised
features) fitted on the validation slice (the last 10% of the training period), with every
statistic computed from the rows before it, tested on the test period:

- `item like-rate`: the candidate's share of ratings >= 4 in those rows,
  shrunk towards the mean (10 pseudo-ratings);
- `+ history aggregates`: number of past items, the mean like-rate and mean
  log-popularity of the past items (a user who watches acclaimed films);
- `+ item-to-item CF`: for each past item j, the candidate's like-rate among
  the users who rated j (shrunk, 5 pseudo-ratings), averaged over the
  history: the collaborative signal DIN's attention can learn at best;
- `+ raters' generosity`: each user's mean of (label - item like-rate) in
  those rows (shrunk, 5 pseudo-ratings), averaged per item over its raters
  (shrunk, 5), then over the history: "this user rates the films that
  generous raters rate", the one route from a history to how generously
  its owner rates;
- `+ past ratings`, for scale only (the protocol does not give them): the
  mean of the past items' ratings, i.e. how generously the user rates.

2. What another model family reaches on DeepFM's features (the DeepFM
   question): gradient-boosted trees on the whole training period, with
   the item and user ids target-encoded (out of fold on the training rows,
   from the whole training period on the test rows), the four demographic
   fields as categoricals and the genres as indicators.

The protocol, data preparation and split are `keras_rec.workflows.ranking_data`'s
(the same as `bench/ranking_quality.py`).

Usage:
    python bench/ranking_signal.py --data-dir ../shared/data/movielens-100k
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from keras_rec.workflows.ranking_data import load_movielens_ctr  # noqa: E402
from keras_rec.workflows.ranking_data import time_split  # noqa: E402

DEFAULT_DATA_DIR = (
    pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-100k"
)
ITEM_PRIOR = 10.0
PAIR_PRIOR = 5.0
DEMOGRAPHICS = ("gender", "age_bucket", "occupation", "zip_digit")


def statistics(rows, num_users, num_items):
    """Like-rates and co-rating counts of `rows` (the rows before the fitted slice)."""
    rated = np.zeros((num_users, num_items))
    liked = np.zeros((num_users, num_items))
    rated[rows["user_id"], rows["item_id"]] = 1.0
    liked[rows["user_id"], rows["item_id"]] = rows["label"]
    mean = rows["label"].mean()
    count = rated.sum(0)
    rate = (liked.sum(0) + ITEM_PRIOR * mean) / (count + ITEM_PRIOR)
    # Each user's lean above the like-rates of what they rated, and its mean
    # over each item's raters.
    lean = (liked - rated * rate).sum(1) / (rated.sum(1) + PAIR_PRIOR)
    generosity = rated.T @ lean / (count + PAIR_PRIOR)
    # [j, i]: users who rated j and liked i; users who rated both.
    return rate, count, generosity, rated.T @ liked, rated.T @ rated


def features(rows, stats):
    """`{group: (n, k) array}` of the three feature groups for `rows`."""
    rate, count, generosity, co_liked, co_rated = stats
    history = np.stack(rows["hist_item_id"].to_numpy())
    valid = history > 0
    length = valid.sum(1)
    item = rows["item_id"].to_numpy()
    empty = length == 0

    def mean(values, default):
        total = np.where(valid, values, 0.0).sum(1)
        return np.where(empty, default, total / np.maximum(length, 1))

    pair = (co_liked[history, item[:, None]] + PAIR_PRIOR * rate[item][:, None]) / (
        co_rated[history, item[:, None]] + PAIR_PRIOR
    )
    return {
        "item": np.stack([rate[item], np.log1p(count[item])], 1),
        "aggregates": np.stack(
            [
                np.log1p(length),
                empty.astype(float),
                mean(rate[history], rate.mean()),
                mean(np.log1p(count[history]), 0.0),
            ],
            1,
        ),
        "cf": mean(pair, rate[item])[:, None] - rate[item][:, None],
        "generosity": mean(generosity[history], 0.0)[:, None],
        "ratings": mean(np.stack(rows["hist_rating"].to_numpy()), 3.5)[:, None],
    }


def target_encoded(rows, source, key, mean):
    """`rows[key]`'s like-rate in `source` (shrunk to `mean`) and its count."""
    stats = source.groupby(key)["label"].agg(["sum", "count"])
    rate = (stats["sum"] + ITEM_PRIOR * mean) / (stats["count"] + ITEM_PRIOR)
    values = rows[key]
    return (
        values.map(rate).fillna(mean).to_numpy(),
        values.map(stats["count"]).fillna(0).to_numpy(),
    )


def tabular(rows, source, num_genres):
    """DeepFM's features as a table: target-encoded ids, categoricals, genres."""
    table = pd.DataFrame(index=rows.index)
    mean = source["label"].mean()
    for key in ("item_id", "user_id"):
        table[f"{key}_rate"], table[f"{key}_count"] = target_encoded(
            rows, source, key, mean
        )
    for name in DEMOGRAPHICS:
        table[name] = rows[name].to_numpy()
    genres = np.stack(rows["genres"].to_numpy())
    for genre in range(1, num_genres + 1):
        table[f"genre_{genre}"] = (genres == genre).any(axis=1).astype(float)
    return table


def boosted_trees(train, test, num_genres, seed=0):
    """Test AUC of gradient-boosted trees on DeepFM's features."""
    folds = KFold(5, shuffle=True, random_state=seed).split(train)
    x_train = pd.concat(
        [
            tabular(train.iloc[held], train.iloc[rest], num_genres)
            for rest, held in folds
        ]
    ).loc[train.index]
    model = HistGradientBoostingClassifier(
        max_iter=300,
        learning_rate=0.05,
        categorical_features=[c in DEMOGRAPHICS for c in x_train.columns],
        random_state=seed,
    ).fit(x_train, train["label"])
    p = model.predict_proba(tabular(test, train, num_genres))[:, 1]
    return roc_auc_score(test["label"], p)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    args = parser.parse_args(argv)
    frame, num_genres = load_movielens_ctr("100k", args.data_dir)
    n_fit, n_train = time_split(len(frame))
    before, fitted, test = (
        frame.iloc[:n_fit],
        frame.iloc[n_fit:n_train],
        frame.iloc[n_train:],
    )
    stats = statistics(
        before, int(frame["user_id"].max()) + 1, int(frame["item_id"].max()) + 1
    )
    x_fit, x_test = features(fitted, stats), features(test, stats)
    unseen = ~test["user_id"].isin(set(frame["user_id"][:n_train])).to_numpy()
    y_test = test["label"].to_numpy()
    print(
        f"Logistic regression fitted on the {len(fitted)} validation rows, tested on "
        f"the {len(test)} test rows ({unseen.mean():.0%} from users absent from "
        "the training period)\n"
    )
    print("| features | test AUC | test AUC, unseen users |")
    print("|---|---|---|")
    groups = []
    for label, group in (
        ("item like-rate and popularity", "item"),
        ("+ history aggregates", "aggregates"),
        ("+ item-to-item CF over the history", "cf"),
        ("+ raters' generosity of the past items", "generosity"),
        ("+ past ratings (not in the protocol; for scale)", "ratings"),
    ):
        groups.append(group)
        # Standardised, so that the L2 penalty does not mute a feature of
        # small spread (the generosity's std is about 0.007).
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(np.hstack([x_fit[g] for g in groups]), fitted["label"])
        p = model.predict_proba(np.hstack([x_test[g] for g in groups]))[:, 1]
        print(
            f"| {label} | {roc_auc_score(y_test, p):.4f} | "
            f"{roc_auc_score(y_test[unseen], p[unseen]):.4f} |"
        )
    train = frame.iloc[:n_train].reset_index(drop=True)
    auc = boosted_trees(train, test.reset_index(drop=True), num_genres)
    print(
        f"\nGradient-boosted trees on DeepFM's features, fitted on the {len(train)} "
        f"training rows: test AUC {auc:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
