"""Local multi-worker clusters for the tests: free ports, TF_CONFIG, launch."""

import json
import os
import socket
import subprocess


def free_ports(n):
    """`n` TCP ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker_env(tf_config=None):
    """The test process's environment with TensorFlow quiet and `TF_CONFIG`."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def run_workers(command, n=2, timeout=600):
    """Runs `command` as the `n` workers of a cluster over 127.0.0.1.

    Returns:
        The workers' stdout texts, worker 0 first. Fails (AssertionError with
        the end of its stderr) if any worker exits with an error.
    """
    workers = [f"127.0.0.1:{port}" for port in free_ports(n)]
    processes = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=worker_env(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
            ),
        )
        for i in range(n)
    ]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=timeout))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    return [stdout for stdout, _ in outputs]
