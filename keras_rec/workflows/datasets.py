"""Loading the CLI's named data sets into the recall protocol's tables."""

import numpy as np

from keras_rec.datasets import load_movielens
from keras_rec.datasets import make_synthetic

RECALL_DATASETS = ("synthetic", "movielens-100k", "movielens-1m")

# User attributes used as user-tower features, per data set.
USER_ATTRIBUTES = {
    "synthetic": ("gender", "age_bucket", "occupation", "region"),
    "movielens-100k": ("gender", "age_bucket", "occupation", "zip1"),
    "movielens-1m": ("gender", "age_bucket", "occupation", "zip1"),
}

# MovieLens 1M's own age groups; 100K ages are bucketed the same way.
AGE_EDGES = (0, 18, 25, 35, 45, 50, 56, 200)


def movielens_user_attributes(users):
    """Adds `age_bucket` and `zip1` (first character of the zip code) to `users`."""
    users = users.copy()
    users["age_bucket"] = np.searchsorted(AGE_EDGES, users["age"].to_numpy(), "right")
    users["zip1"] = users["zip"].astype(str).str[:1]
    return users


def load_recall_dataset(name, data_dir=None, download=False, seed=0, scale=1.0):
    """`(interactions, users)` for a recall data set name.

    Args:
        name: str. One of `RECALL_DATASETS`.
        data_dir: str. Folder of the MovieLens files.
        download: bool. Fetch MovieLens from the publisher when absent.
        seed: int. Seed of the synthetic data.
        scale: float. Size of the synthetic data relative to the default
            (2,000 users, 1,000 items, 60,000 interactions).
    """
    if name == "synthetic":
        if not scale > 0:
            raise ValueError(f"`scale` must be > 0. Received: scale={scale!r}")
        interactions, users, _ = make_synthetic(
            n_users=max(10, round(2000 * scale)),
            n_items=max(20, round(1000 * min(scale, 50.0))),
            n_interactions=max(200, round(60_000 * scale)),
            seed=seed,
        )
        return interactions, users
    if name in ("movielens-100k", "movielens-1m"):
        variant = name.split("-")[1]
        ratings, users, _ = load_movielens(
            variant, data_dir=data_dir, download=download
        )
        return (
            ratings[["user_id", "item_id", "timestamp"]],
            movielens_user_attributes(users),
        )
    raise ValueError(
        f"`dataset` must be one of {RECALL_DATASETS} for recall models. "
        f"Received: dataset={name!r}"
    )
