"""Run in a subprocess by mirrored_test.py: the CPU is split in two logical devices.

Prints one JSON line: per-step losses of DSSM trained on one device and under
MirroredStrategy over two devices, with the same global batches.
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402

from keras_rec.datasets import make_synthetic  # noqa: E402
from keras_rec.workflows.pipeline import epoch_batches  # noqa: E402
from keras_rec.workflows.recall import build_recall_model  # noqa: E402
from keras_rec.workflows.recall_data import prepare_recall_data  # noqa: E402


class StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def train(strategy, data, name):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build_recall_model(name, data, temperature=0.2, seed=0)
        model.compile(keras.optimizers.Adam(1e-2))
    dataset, steps = epoch_batches(data.train_inputs, 128, seed=0, epochs=2)
    record = StepLosses()
    model.fit(
        dataset,
        epochs=2,
        steps_per_epoch=steps,
        shuffle=False,
        verbose=0,
        callbacks=[record],
    )
    return record.losses


def main():
    interactions, users, _ = make_synthetic(
        n_users=300, n_items=200, n_interactions=6000, seed=0
    )
    data = prepare_recall_data(interactions, users, embedding_dim=8, recent=5)
    names = sys.argv[1].split(",")
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    out = {"devices": devices}
    for name in names:
        out[name] = {
            "single": train(tf.distribute.get_strategy(), data, name),
            "mirrored": train(tf.distribute.MirroredStrategy(devices), data, name),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
