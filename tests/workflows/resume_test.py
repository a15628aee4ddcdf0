"""A `keras-rec train` killed with SIGKILL mid-epoch resumes and ends the same.

The test really kills a subprocess: it starts the command, waits until the
first epoch's backup is on disk plus a little into the next epoch, sends
SIGKILL, runs the same command again, and compares the final metrics and the
item embeddings with those of an uninterrupted run.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ARGS = [
    "train",
    "dssm",
    "--epochs",
    "3",
    "--batch-size",
    "128",
    "--embedding-dim",
    "8",
    "--synthetic-scale",
    "0.25",
    "--seed",
    "7",
    "--quiet",
]

# Makes TensorFlow's kernels deterministic, then runs the CLI.
LAUNCHER = (
    "import sys, tensorflow as tf; tf.config.experimental.enable_op_determinism(); "
    "from keras_rec.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _command(output):
    return [sys.executable, "-c", LAUNCHER, *ARGS, "--output", str(output)]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}


def _run(output):
    subprocess.run(
        _command(output), check=True, env=_env(), capture_output=True, timeout=600
    )
    with open(output / "dssm" / "1" / "metrics.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_sigkill_mid_training_then_resume_gives_the_same_result(tmp_path):
    reference = _run(tmp_path / "uninterrupted")

    output = tmp_path / "killed"
    backup = output / "dssm" / ".backup-synthetic-seed7" / "training_metadata.json"
    process = subprocess.Popen(
        _command(output),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not backup.exists():
        assert process.poll() is None, "training ended before the first backup"
        assert time.time() < deadline, "no backup written within 300 s"
        time.sleep(0.05)
    time.sleep(0.5)  # into the second epoch
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert json.loads(backup.read_text())["epoch"] >= 1
    assert not (output / "dssm" / "1").exists()  # nothing half-written in place

    resumed = _run(output)
    assert not backup.parent.exists()  # the backup is removed after training
    for key in ("exact", "annoy"):
        for setting in ("include_seen", "exclude_seen"):
            a = reference["evaluation"][key]["results"][setting]
            b = resumed["evaluation"][key]["results"][setting]
            for metric in ("hit_rate@10", "hit_rate@50", "ndcg@10"):
                assert b[metric] == pytest.approx(a[metric], abs=1e-6), (key, metric)
    ref_items = np.load(
        tmp_path / "uninterrupted" / "dssm" / "1" / "index" / "item_embeddings.npy"
    )
    new_items = np.load(output / "dssm" / "1" / "index" / "item_embeddings.npy")
    np.testing.assert_allclose(new_items, ref_items, atol=1e-5)
