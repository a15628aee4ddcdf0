"""`keras-rec train deepfm` killed with SIGKILL mid-epoch resumes and ends the
same as an uninterrupted run (the ranking twin of resume_test.py)."""

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.workflows.resume_test import LAUNCHER
from tests.workflows.resume_test import _env

ARGS = ["train", "deepfm", "--epochs", "3", "--batch-size", "128"]
ARGS += ["--synthetic-scale", "0.25", "--seed", "7", "--quiet"]


def _command(output):
    return [sys.executable, "-c", LAUNCHER, *ARGS, "--output", str(output)]


def _run(output):
    subprocess.run(
        _command(output), check=True, env=_env(), capture_output=True, timeout=600
    )
    with open(output / "deepfm" / "1" / "metrics.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_sigkill_mid_training_then_resume_gives_the_same_ranker(tmp_path):
    reference = _run(tmp_path / "uninterrupted")

    output = tmp_path / "killed"
    backup = output / "deepfm" / ".backup-synthetic-seed7" / "training_metadata.json"
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
    time.sleep(0.3)  # into the second epoch
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert json.loads(backup.read_text())["epoch"] >= 1
    assert not (output / "deepfm" / "1").exists()  # nothing half-written in place

    resumed = _run(output)
    assert sorted(p.name for p in (output / "deepfm").iterdir()) == ["1"]
    for key in ("auc", "logloss"):
        assert resumed["evaluation"]["model"][key] == pytest.approx(
            reference["evaluation"]["model"][key], abs=1e-6
        )
    assert resumed["best_epoch"] == reference["best_epoch"]
    assert [h["epoch"] for h in resumed["curves"]] == [1, 2, 3]
    for a, b in zip(reference["curves"], resumed["curves"]):
        assert b["val_auc"] == pytest.approx(a["val_auc"], abs=1e-6)
