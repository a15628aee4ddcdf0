"""Run in a subprocess by ranking_distribute_test.py.

`python ranking_mirrored_script.py MODEL` splits the CPU in two logical
devices and prints one JSON line: the per-step losses of MODEL (`deepfm`,
`din` or `din_prelu`) trained on one device and under MirroredStrategy over
the two devices, on the same global batches from the same initial weights.

`python ranking_mirrored_script.py multi-worker` is one worker of a
MultiWorkerMirroredStrategy run of DeepFM (TF_CONFIG set by the test); with
TF_CONFIG unset it trains the one-worker reference. Every worker builds the
same global batches and keeps its slice. Worker 0 prints the losses.
"""

import json
import os
import sys

import tensorflow as tf

MODEL = sys.argv[1]
if MODEL != "multi-worker":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_rec.datasets import make_synthetic_ctr  # noqa: E402
from keras_rec.features import SparseFeat  # noqa: E402
from keras_rec.features import VarLenSparseFeat  # noqa: E402
from keras_rec.features import to_model_inputs  # noqa: E402
from keras_rec.models import DIN  # noqa: E402
from keras_rec.models import DeepFM  # noqa: E402
from keras_rec.workflows.pipeline import epoch_batches  # noqa: E402

BATCH, EPOCHS, HISTORY, DIM = 128, 2, 5, 4


class StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(np.ravel(keras.ops.convert_to_numpy(logs["loss"]))[0]))


def ctr_data():
    impressions, users, items = make_synthetic_ctr(
        n_users=200, n_items=150, n_impressions=3000, history_length=HISTORY, seed=0
    )
    frame = impressions.merge(users, on="user_id").merge(items, on="item_id")
    names = ("user_id", "item_id", "gender", "age_bucket", "category")
    base = [SparseFeat(n, int(frame[n].max()) + 1, DIM) for n in names]
    history = [
        VarLenSparseFeat(
            SparseFeat("hist_item_id", base[1].vocabulary_size, DIM, "item_id"),
            HISTORY,
        ),
        VarLenSparseFeat(
            SparseFeat("hist_category", base[4].vocabulary_size, DIM, "category"),
            HISTORY,
        ),
    ]
    inputs = to_model_inputs(frame, base + history)
    return base, history, inputs, frame["label"].to_numpy().astype("float32")


def build(name, base, history):
    if name == "deepfm":
        return DeepFM(base, base, dnn_hidden_units=(16, 8), seed=0)
    activation = "prelu" if name == "din_prelu" else "dice"
    return DIN(
        base + history,
        ["item_id", "category"],
        dnn_hidden_units=(16, 8),
        att_hidden_units=(8,),
        att_activation=activation,
        seed=0,
    )


def train(strategy, name, data, make_dataset=None):
    base, history, inputs, labels = data
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build(name, base, history)
        model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    inputs = {t.name: inputs[t.name] for t in model.inputs}
    if make_dataset is None:
        dataset, steps = epoch_batches(inputs, BATCH, 0, EPOCHS, labels=labels)
    else:
        dataset, steps = make_dataset(strategy, inputs, labels)
    record = StepLosses()
    model.fit(
        dataset,
        epochs=EPOCHS,
        steps_per_epoch=steps,
        shuffle=False,
        verbose=0,
        callbacks=[record],
    )
    return record.losses


def worker_slices(strategy, inputs, labels):
    """The one-worker global batches, each worker keeping its slice."""

    def dataset_fn(context):
        local, _ = epoch_batches(inputs, BATCH, 0, EPOCHS, labels=labels)
        size = context.get_per_replica_batch_size(BATCH)
        start = context.input_pipeline_id * size
        return local.map(
            lambda x, y: (
                {k: v[start : start + size] for k, v in x.items()},
                y[start : start + size],
            )
        )

    return strategy.distribute_datasets_from_function(dataset_fn), len(labels) // BATCH


def multi_worker(data):
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    workers = len(config.get("cluster", {}).get("worker", [])) or 1
    if workers == 1:
        losses = train(tf.distribute.get_strategy(), "deepfm", data)
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        losses = train(strategy, "deepfm", data, make_dataset=worker_slices)
    if config.get("task", {}).get("index", 0) == 0:
        print(json.dumps({"workers": workers, "loss": losses}), flush=True)


def main():
    data = ctr_data()
    if MODEL == "multi-worker":
        multi_worker(data)
        return
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    out = {
        "devices": devices,
        "single": train(tf.distribute.get_strategy(), MODEL, data),
        "mirrored": train(tf.distribute.MirroredStrategy(devices), MODEL, data),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
