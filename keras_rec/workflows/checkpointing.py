"""Atomic training checkpoints: resumable backups and the best epoch's weights."""

import json
import math
import os
import shutil

import keras
import numpy as np

from keras_rec.io_utils import write_json_atomic


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Backs up weights, optimizer state and epoch at the end of every epoch.

    The stock callback overwrites its files in place, so a process killed
    while saving can leave a torn weights file. Here each file is written
    under a temporary name and renamed over the old one: a restart always
    finds a complete, consistent (weights, epoch) pair.

    Args:
        backup_dir: str. Folder of the backup; deleted when training ends.
    """

    def __init__(self, backup_dir):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=True)

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        tmp = os.path.join(self.backup_dir, f".tmp-{os.getpid()}.weights.h5")
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, self._weights_path)
        # The epoch is written after the weights it describes: a crash in
        # between resumes one epoch early, never with weights from the future.
        write_json_atomic(
            self._training_metadata_path, {"epoch": self._current_epoch, "batch": 0}
        )


class AtomicBestWeights(keras.callbacks.Callback):
    """Keeps the weights of the best epoch by a monitored metric; restores them.

    At the end of every epoch the value of `monitor` in the epoch's logs
    (e.g. `val_loss`, or `hit_rate@50` written by a callback that runs
    earlier, on a validation holdout) is compared with the best so far. A
    better epoch's weights are written under a temporary name and renamed to
    `best-epoch<N>.weights.h5`; then `best.json` (epoch, value, file) is
    replaced atomically, and only then the previous file is deleted. A
    reader (or a resumed run) always finds a `best.json` naming a complete
    file. At the end of training the best weights are loaded into the model,
    so what is saved or exported afterwards is the best epoch, and the
    folder is deleted.

    A run resumed with `AtomicBackupAndRestore` picks up the best value and
    epoch from `best.json`. Put this callback before the backup callback, so
    that an epoch is never marked done before it was considered.

    Args:
        directory: str. Folder of the best weights and `best.json`.
        monitor: str. Key of the epoch logs to select on. Defaults to
            `"val_loss"`.
        mode: str. `"min"`, `"max"` or `"auto"` (min for names containing
            "loss", max otherwise). Defaults to `"auto"`.
        delete_on_end: bool. Remove `directory` once the best weights are
            restored. Defaults to True.

    Attributes:
        best: float or None. Best value seen.
        best_epoch: int or None. 1-based epoch of `best`.
    """

    def __init__(self, directory, monitor="val_loss", mode="auto", delete_on_end=True):
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(
                f"`monitor` must be a metric name. Received: monitor={monitor!r}"
            )
        if mode not in ("auto", "min", "max"):
            raise ValueError(
                f"`mode` must be 'auto', 'min' or 'max'. Received: mode={mode!r}"
            )
        if mode == "auto":
            mode = "min" if "loss" in monitor else "max"
        self.directory = os.fspath(directory)
        self.monitor = monitor
        self.mode = mode
        self.delete_on_end = delete_on_end
        self.best = None
        self.best_epoch = None
        self._file = None

    @property
    def _state_path(self):
        return os.path.join(self.directory, "best.json")

    def summary(self):
        """`{"monitor", "mode", "best", "best_epoch"}`, JSON-ready."""
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "best": self.best,
            "best_epoch": self.best_epoch,
        }

    def on_train_begin(self, logs=None):
        self.best = self.best_epoch = self._file = None
        if not os.path.isfile(self._state_path):
            return
        with open(self._state_path, encoding="utf-8") as f:
            state = json.load(f)
        if state.get("monitor") != self.monitor or state.get("mode") != self.mode:
            raise ValueError(
                f"{self._state_path} selects on {state.get('monitor')!r} "
                f"({state.get('mode')}), not on this run's. Received: "
                f"monitor={self.monitor!r}, mode={self.mode!r}"
            )
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self._file = os.path.join(self.directory, state["file"])

    def _improved(self, value):
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"`monitor` {self.monitor!r} is not among the metrics logged at "
                f"the end of epoch {epoch + 1}: {sorted(logs)}. Received: "
                f"monitor={self.monitor!r}"
            )
        value = float(np.ravel(keras.ops.convert_to_numpy(logs[self.monitor]))[0])
        if not self._improved(value):
            return
        os.makedirs(self.directory, exist_ok=True)
        name = f"best-epoch{epoch + 1}.weights.h5"
        tmp = os.path.join(self.directory, f".tmp-{os.getpid()}.weights.h5")
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, os.path.join(self.directory, name))
        # The state names a file that is already complete; the old file goes
        # only after the state no longer names it.
        write_json_atomic(
            self._state_path,
            {
                "monitor": self.monitor,
                "mode": self.mode,
                "best": value,
                "best_epoch": epoch + 1,
                "file": name,
            },
        )
        previous, self._file = self._file, os.path.join(self.directory, name)
        if previous and previous != self._file and os.path.exists(previous):
            os.remove(previous)
        self.best, self.best_epoch = value, epoch + 1

    def on_train_end(self, logs=None):
        if self._file is not None:
            self.model.load_weights(self._file)
        if self.delete_on_end:
            shutil.rmtree(self.directory, ignore_errors=True)
