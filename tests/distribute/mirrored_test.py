"""MirroredStrategy over two logical CPU devices matches one-device training.

The CPU is split with `tf.config.set_logical_device_configuration`, which must
happen before TensorFlow starts, so the training runs in a subprocess
(`mirrored_script.py`). With in-batch softmax the candidates are gathered from
both replicas, so the loss on each global batch is the single-device loss.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).with_name("mirrored_script.py")


def _run(name):
    # One process per model: several MirroredStrategy instances with
    # collective ops in one process are not reliable in TensorFlow.
    result = subprocess.run(
        [sys.executable, str(SCRIPT), name],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def curves():
    out = {}
    for name in ("dssm", "youtubednn"):
        out.update(_run(name))
    return out


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_replicas_were_used(curves):
    assert len(curves["devices"]) == 2


@pytest.mark.slow
@pytest.mark.multiprocess
def test_dssm_in_batch_softmax_loss_curve_matches_single_device(curves):
    single = np.array(curves["dssm"]["single"])
    mirrored = np.array(curves["dssm"]["mirrored"])
    assert len(single) == len(mirrored) > 10
    # Same global batches, candidates gathered across replicas: same curve.
    np.testing.assert_allclose(mirrored, single, rtol=1e-4, atol=1e-4)
    assert single[-1] < single[0] - 0.5


@pytest.mark.slow
@pytest.mark.multiprocess
def test_youtubednn_trains_under_mirrored_strategy(curves):
    # Sampled negatives differ per replica, so only the trend is compared.
    single = np.array(curves["youtubednn"]["single"])
    mirrored = np.array(curves["youtubednn"]["mirrored"])
    assert np.isfinite(mirrored).all()
    assert mirrored[-1] < mirrored[0] - 0.5
    assert abs(mirrored[-1] - single[-1]) < 0.3
