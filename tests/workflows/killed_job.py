"""Runs `keras-rec` in a subprocess, and kills one mid-epoch with SIGKILL.

Shared by the recall and ranking resume tests (resume_test.py and
ranking_resume_test.py).
"""

import json
import os
import signal
import subprocess
import sys
import time

# Makes TensorFlow's kernels deterministic, then runs the CLI.
LAUNCHER = (
    "import sys, tensorflow as tf; tf.config.experimental.enable_op_determinism(); "
    "from keras_rec.cli import main; sys.exit(main(sys.argv[1:]))"
)


def command(args, output):
    return [sys.executable, "-c", LAUNCHER, *args, "--output", str(output)]


def env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}


def run(args, output):
    """Runs `keras-rec *args` to the end; returns its run's metrics.json."""
    subprocess.run(
        command(args, output), check=True, env=env(), capture_output=True, timeout=600
    )
    with open(output / args[1] / "1" / "metrics.json", encoding="utf-8") as f:
        return json.load(f)


def kill_after_first_backup(args, output, delay, backup=".backup-synthetic-seed7"):
    """Starts `keras-rec *args`, SIGKILLs it `delay` s after the first epoch's
    backup appears in the folder `backup`, and returns the backup's metadata
    file.

    Asserts that the kill happened mid-training and left no run directory.
    """
    model = args[1]
    backup = output / model / backup / "training_metadata.json"
    process = subprocess.Popen(
        command(args, output),
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not backup.exists():
        assert process.poll() is None, "training ended before the first backup"
        assert time.time() < deadline, "no backup written within 300 s"
        time.sleep(0.05)
    time.sleep(delay)  # into the second epoch
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert json.loads(backup.read_text())["epoch"] >= 1
    assert not (output / model / "1").exists()  # nothing half-written in place
    return backup
