"""DeepFM and DIN train under tf.distribute like on one device.

MirroredStrategy over two logical CPU devices (one subprocess per model, see
`ranking_mirrored_script.py`): the same global batches from the same initial
weights give the same per-step loss curve as one-device training (losses,
embedding L2 penalty included, are scaled to the global batch), to float
rounding. The exception is DIN's default Dice activation: its batch
normalisation uses per-replica batch statistics (half the batch each), which
moves the curve by ~2e-4; DIN with PReLU matches to rounding.

MultiWorkerMirroredStrategy: two local worker processes over 127.0.0.1, each
keeping its slice of the same global batches, train DeepFM along the
one-worker curve (this needs `RankingModel`'s two fixes of Keras 3's
multi-worker `fit`; a plain functional model fails before the first step).
"""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tests.distribute.cluster import run_workers
from tests.distribute.cluster import worker_env

SCRIPT = pathlib.Path(__file__).with_name("ranking_mirrored_script.py")


def _run(model):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), model],
        capture_output=True,
        text=True,
        timeout=900,
        env=worker_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize(
    "model, tolerance",
    [("deepfm", 1e-5), ("din_prelu", 1e-5), ("din", 2e-3)],
)
def test_mirrored_loss_curve_matches_single_device(model, tolerance):
    curves = _run(model)
    assert len(curves["devices"]) == 2
    single, mirrored = np.array(curves["single"]), np.array(curves["mirrored"])
    assert len(single) == len(mirrored) > 20
    np.testing.assert_allclose(mirrored, single, rtol=0, atol=tolerance)
    # And it is a training run, not two flat lines.
    assert single[-5:].mean() < single[:5].mean() - 0.1


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_workers_train_deepfm_like_one():
    reference = _run("multi-worker")
    outputs = run_workers([sys.executable, str(SCRIPT), "multi-worker"])
    result = json.loads(outputs[0].strip().splitlines()[-1])
    assert (reference["workers"], result["workers"]) == (1, 2)
    single, multi = np.array(reference["loss"]), np.array(result["loss"])
    assert len(single) == len(multi) > 20
    # Same global batches split over two workers: the same training.
    np.testing.assert_allclose(multi, single, rtol=0, atol=1e-5)
