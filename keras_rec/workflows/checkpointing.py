"""`AtomicBackupAndRestore`: Keras's BackupAndRestore, with atomic writes."""

import os

import keras

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
