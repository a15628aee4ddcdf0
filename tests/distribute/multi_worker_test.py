"""Two local worker processes (MultiWorkerMirroredStrategy over 127.0.0.1) train
DSSM to the same quality as one worker with the same global batch."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).with_name("multi_worker_script.py")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _env(tf_config=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_workers_train_dssm_like_one():
    single = subprocess.run(
        [sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
    )
    assert single.returncode == 0, single.stderr[-3000:]
    reference = json.loads(single.stdout.strip().splitlines()[-1])

    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
            ),
        )
        for i in range(2)
    ]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=600))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    result = json.loads(outputs[0][0].strip().splitlines()[-1])

    assert result["workers"] == 2
    # Same global batches split over two workers: the same training.
    assert result["loss"] == pytest.approx(reference["loss"], rel=1e-3, abs=1e-3)
    assert result["hit_rate@50"] == pytest.approx(reference["hit_rate@50"], abs=0.02)
    assert reference["loss"][-1] < reference["loss"][0]
