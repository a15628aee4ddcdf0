"""One worker of the 2-worker MultiWorkerMirroredStrategy test (TF_CONFIG set by the test).

With `TF_CONFIG` unset it trains alone (the one-worker reference). Training
goes through `keras_rec.workflows.recall.train_recall(strategy=...)`: every
worker builds the same global batches and keeps its slice, so the workers
together train on exactly the reference's batches. The chief prints one JSON
line: per-epoch loss and exact HitRate@50.
"""

import json
import os

import keras

from keras_rec.datasets import make_synthetic
from keras_rec.distribute import make_strategy
from keras_rec.workflows.recall import exact_hit_rates
from keras_rec.workflows.recall import train_recall
from keras_rec.workflows.recall_data import prepare_recall_data


class EpochLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_epoch_end(self, epoch, logs=None):
        self.losses.append(float(keras.ops.convert_to_numpy(logs["loss"]).ravel()[0]))


def main():
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    workers = len(config.get("cluster", {}).get("worker", [])) or 1
    strategy = make_strategy("multi-worker" if workers > 1 else "default")
    interactions, users, _ = make_synthetic(
        n_users=400, n_items=200, n_interactions=8000, seed=0
    )
    data = prepare_recall_data(interactions, users, embedding_dim=8, recent=5)
    losses = EpochLosses()
    model, _, _ = train_recall(
        "dssm",
        data,
        epochs=3,
        batch_size=128,
        learning_rate=1e-2,
        temperature=0.2,
        seed=0,
        verbose=0,
        monitor=False,
        callbacks=[losses],
        strategy=strategy,
    )
    result = {
        "workers": workers,
        "loss": losses.losses,
        "hit_rate@50": exact_hit_rates(model, data, ks=(50,))["hit_rate@50"],
    }
    if config.get("task", {}).get("index", 0) == 0:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
