"""`keras-rec train deepfm --strategy multi-worker`: two local workers over
127.0.0.1 end with the same model as one worker with the same global batches;
the chief alone writes the run directory."""

import json
import subprocess
import sys

import pytest

from tests.distribute.cluster import run_workers
from tests.distribute.cluster import worker_env

ARGS = ["train", "deepfm", "--synthetic-scale", "0.1", "--epochs", "2"]
ARGS += ["--batch-size", "256", "--strategy", "multi-worker", "--quiet"]


def _command(output):
    code = "import sys; from keras_rec.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, *ARGS, "--output", str(output)]


def _metrics(output):
    runs = sorted((output / "deepfm").glob("[0-9]*"))
    assert [p.name for p in runs] == ["1"], runs
    return json.loads((runs[0] / "metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_workers_train_deepfm_like_one(tmp_path):
    single = subprocess.run(
        _command(tmp_path / "one"),
        capture_output=True,
        text=True,
        timeout=600,
        env=worker_env(),
    )
    assert single.returncode == 0, single.stderr[-3000:]
    reference = _metrics(tmp_path / "one")

    run_workers(_command(tmp_path / "two"))
    result = _metrics(tmp_path / "two")  # one run directory: the chief's

    for key in ("model", "constant"):
        assert result["evaluation"][key]["auc"] == pytest.approx(
            reference["evaluation"][key]["auc"], abs=1e-3
        )
    # It learned: 0.60 here, against 0.5 for the constant predictor.
    evaluation = result["evaluation"]
    assert evaluation["model"]["auc"] > 0.55
    assert evaluation["model"]["logloss"] < evaluation["constant"]["logloss"]
    leftovers = [p.name for p in (tmp_path / "two" / "deepfm").iterdir()]
    assert leftovers == ["1"], leftovers  # no worker checkpoint left behind
