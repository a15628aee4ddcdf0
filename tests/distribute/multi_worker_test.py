"""Two local worker processes (MultiWorkerMirroredStrategy over 127.0.0.1) train
DSSM to the same quality as one worker with the same global batch."""

import json
import pathlib
import subprocess
import sys

import pytest

from tests.distribute.cluster import run_workers
from tests.distribute.cluster import worker_env

SCRIPT = pathlib.Path(__file__).with_name("multi_worker_script.py")


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_workers_train_dssm_like_one():
    single = subprocess.run(
        [sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=600,
        env=worker_env(),
    )
    assert single.returncode == 0, single.stderr[-3000:]
    reference = json.loads(single.stdout.strip().splitlines()[-1])

    outputs = run_workers([sys.executable, str(SCRIPT)])
    result = json.loads(outputs[0].strip().splitlines()[-1])

    assert result["workers"] == 2
    # Same global batches split over two workers: the same training.
    assert result["loss"] == pytest.approx(reference["loss"], rel=1e-3, abs=1e-3)
    assert result["hit_rate@50"] == pytest.approx(reference["hit_rate@50"], abs=0.02)
    assert reference["loss"][-1] < reference["loss"][0]
