"""The best epoch by a validation metric is kept atomically and is what training returns.

The monitored value is scripted by a callback that runs before
`AtomicBestWeights`, so a run whose later epochs are "worse" is produced
without depending on real training dynamics; the same callback snapshots the
weights of every epoch to compare against.
"""

import json
import os

import keras
import numpy as np
import pytest

from keras_rec.datasets import make_synthetic
from keras_rec.workflows.checkpointing import AtomicBestWeights
from keras_rec.workflows.recall import train_recall
from keras_rec.workflows.recall_data import prepare_recall_data


class Scripted(keras.callbacks.Callback):
    """Sets `logs[key]` to `values[epoch]` and snapshots the weights."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, values
        self.snapshots = {}

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.snapshots[epoch + 1] = [w.copy() for w in self.model.get_weights()]


class DirectoryProbe(keras.callbacks.Callback):
    """Runs after AtomicBestWeights: records what a reader would find."""

    def __init__(self, directory):
        super().__init__()
        self.directory = directory
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        with open(os.path.join(self.directory, "best.json"), encoding="utf-8") as f:
            state = json.load(f)
        files = sorted(os.listdir(self.directory))
        assert state["file"] in files
        self.seen.append((state["best_epoch"], files))


def _tiny_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def _xy():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 2))


def _assert_weights(model, expected):
    for actual, wanted in zip(model.get_weights(), expected):
        np.testing.assert_array_equal(actual, wanted)


@pytest.mark.parametrize(
    "key, values, best_epoch",
    [
        ("val_loss", [0.9, 0.3, 0.5, 0.7], 2),  # min, chosen by the name
        ("hit_rate@50", [0.1, 0.2, 0.4, 0.3, 0.35], 3),  # max
        ("val_loss", [0.9, float("nan"), 0.95, 0.8], 4),  # NaN is never best
    ],
)
def test_later_worse_epochs_end_with_the_best_epochs_weights(
    tmp_path, key, values, best_epoch
):
    model = _tiny_model()
    x, y = _xy()
    directory = str(tmp_path / "best")
    script = Scripted(key, values)
    best = AtomicBestWeights(directory, monitor=key)
    probe = DirectoryProbe(directory)
    model.fit(
        x,
        y,
        epochs=len(values),
        batch_size=8,
        shuffle=False,
        verbose=0,
        callbacks=[script, best, probe],
    )
    _assert_weights(model, script.snapshots[best_epoch])
    if best_epoch < len(values):  # The last epoch really had other weights.
        last = script.snapshots[len(values)][0]
        assert not np.array_equal(model.get_weights()[0], last)
    assert best.best_epoch == best_epoch
    assert best.best == values[best_epoch - 1]
    # At every epoch end: one complete weights file, named by best.json, no
    # temporary file left behind.
    for epoch, files in probe.seen:
        assert files == sorted(["best.json", f"best-epoch{epoch}.weights.h5"])
    assert not os.path.exists(directory)  # removed once restored


def test_a_resumed_run_keeps_the_best_of_the_first_part(tmp_path):
    x, y = _xy()
    directory = str(tmp_path / "best")
    model = _tiny_model()
    first = Scripted("val_loss", [0.9, 0.2])
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        shuffle=False,
        callbacks=[first, AtomicBestWeights(directory, delete_on_end=False)],
    )
    # "Restart": a fresh model continues at epoch 3; every later epoch is worse.
    model = _tiny_model()
    best = AtomicBestWeights(directory)
    model.fit(
        x,
        y,
        initial_epoch=2,
        epochs=4,
        batch_size=8,
        verbose=0,
        shuffle=False,
        callbacks=[Scripted("val_loss", [None, None, 0.5, 0.4]), best],
    )
    assert (best.best_epoch, best.best) == (2, 0.2)
    _assert_weights(model, first.snapshots[2])


def test_a_resumed_run_must_select_on_the_same_metric(tmp_path):
    x, y = _xy()
    directory = str(tmp_path / "best")
    model = _tiny_model()
    model.fit(
        x,
        y,
        epochs=1,
        verbose=0,
        callbacks=[
            Scripted("val_loss", [0.5]),
            AtomicBestWeights(directory, delete_on_end=False),
        ],
    )
    with pytest.raises(ValueError, match=r"selects on 'val_loss'.*monitor='auc'"):
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[Scripted("auc", [0.5]), AtomicBestWeights(directory, "auc")],
        )


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="Received: mode='up'"):
        AtomicBestWeights(tmp_path, mode="up")
    with pytest.raises(ValueError, match="Received: monitor=''"):
        AtomicBestWeights(tmp_path, monitor="")


@pytest.fixture(scope="module")
def validation_data():
    interactions, users, _ = make_synthetic(
        n_users=300, n_items=150, n_interactions=6000, seed=0
    )
    return prepare_recall_data(
        interactions, users, embedding_dim=8, recent=0, holdout="validation"
    )


def _tower_weights(model):
    return [w.copy() for w in model.get_weights()]


def test_train_recall_returns_the_best_epoch_by_scripted_loss(
    tmp_path, validation_data
):
    # Training loss falls every epoch; the scripted "loss" says epoch 2 was
    # best, so the returned model must hold epoch 2's weights, also with the
    # resumable backup in place.
    script = Scripted("loss", [3.0, 1.0, 2.0, 2.5])
    model, _, _ = train_recall(
        "dssm",
        validation_data,
        epochs=4,
        batch_size=128,
        learning_rate=1e-2,
        verbose=0,
        monitor=False,
        callbacks=[script],
        backup_dir=str(tmp_path / "backup"),
        best_metric="loss",
        best_dir=str(tmp_path / "best"),
    )
    _assert_weights(model, script.snapshots[2])
    assert not os.path.exists(tmp_path / "best")


def test_train_recall_selects_on_validation_hit_rate(tmp_path, validation_data):
    snapshots = Scripted("unused", [0] * 4)
    best = AtomicBestWeights(str(tmp_path / "best"), monitor="hit_rate@50")
    model, curves, _ = train_recall(
        "dssm",
        validation_data,
        epochs=4,
        batch_size=128,
        learning_rate=1e-2,
        verbose=0,
        callbacks=[snapshots, best],
    )
    rates = [row["hit_rate@50"] for row in curves]
    assert best.best_epoch == int(np.argmax(rates)) + 1
    assert best.best == pytest.approx(max(rates))
    _assert_weights(model, snapshots.snapshots[best.best_epoch])


def test_selecting_on_the_test_target_is_refused(tmp_path):
    interactions, users, _ = make_synthetic(
        n_users=60, n_items=40, n_interactions=600, seed=0
    )
    data = prepare_recall_data(interactions, embedding_dim=4, recent=0)
    with pytest.raises(ValueError, match=r"leaks the test set.*hit_rate@50"):
        train_recall(
            "dssm",
            data,
            epochs=1,
            best_metric="hit_rate@50",
            best_dir=str(tmp_path / "best"),
        )
    with pytest.raises(ValueError, match=r"needs `best_dir`.*best_metric='loss'"):
        train_recall("dssm", data, epochs=1, best_metric="loss")


@pytest.mark.slow
def test_run_recall_select_best_exports_the_best_validation_epoch(tmp_path):
    from keras_rec.workflows.run_recall import run_recall

    run_dir, metrics = run_recall(
        "dssm",
        output=str(tmp_path),
        epochs=3,
        batch_size=128,
        embedding_dim=8,
        learning_rate=5e-3,
        verbose=0,
        print_fn=lambda *args: None,
        synthetic_scale=0.1,
        select_best=True,
    )
    selection = metrics["selection"]
    rates = [row["hit_rate@50"] for row in metrics["curves"]]
    assert selection["monitor"] == "hit_rate@50"
    assert selection["best_epoch"] == int(np.argmax(rates)) + 1
    assert selection["best"] == pytest.approx(max(rates))
    # Trained on the validation protocol: fewer examples than the test one.
    test_data = prepare_recall_data(*_synthetic(0.1), embedding_dim=8, recent=5)
    assert metrics["num_train_examples"] < test_data.num_train_examples
    # The best-weights folder is gone; the run directory is complete.
    leftovers = [n for n in os.listdir(tmp_path / "dssm") if n.startswith(".best")]
    assert leftovers == []
    assert os.path.isfile(os.path.join(run_dir, "metrics.json"))


def _synthetic(scale):
    from keras_rec.workflows.datasets import load_recall_dataset

    return load_recall_dataset("synthetic", scale=scale)
