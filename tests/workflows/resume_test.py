"""A `keras-rec train` killed with SIGKILL mid-epoch resumes and ends the same.

The test really kills a subprocess: it starts the command, waits until the
first epoch's backup is on disk plus a little into the next epoch, sends
SIGKILL, runs the same command again, and compares the final metrics and the
item embeddings with those of an uninterrupted run.
"""

import numpy as np
import pytest

from tests.workflows.killed_job import kill_after_first_backup
from tests.workflows.killed_job import run

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


@pytest.mark.slow
@pytest.mark.multiprocess
def test_sigkill_mid_training_then_resume_gives_the_same_result(tmp_path):
    reference = run(ARGS, tmp_path / "uninterrupted")
    output = tmp_path / "killed"
    backup = kill_after_first_backup(ARGS, output, delay=0.5)

    resumed = run(ARGS, output)
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
