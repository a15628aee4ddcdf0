"""`keras-rec train deepfm` killed with SIGKILL mid-epoch resumes and ends the
same as an uninterrupted run (the ranking twin of resume_test.py)."""

import pytest

from tests.workflows.killed_job import kill_after_first_backup
from tests.workflows.killed_job import run

ARGS = ["train", "deepfm", "--epochs", "3", "--batch-size", "128"]
ARGS += ["--synthetic-scale", "0.25", "--seed", "7", "--quiet"]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_sigkill_mid_training_then_resume_gives_the_same_ranker(tmp_path):
    reference = run(ARGS, tmp_path / "uninterrupted")
    output = tmp_path / "killed"
    kill_after_first_backup(ARGS, output, delay=0.3)

    resumed = run(ARGS, output)
    assert sorted(p.name for p in (output / "deepfm").iterdir()) == ["1"]
    for key in ("auc", "logloss"):
        assert resumed["evaluation"]["model"][key] == pytest.approx(
            reference["evaluation"]["model"][key], abs=1e-6
        )
    assert resumed["best_epoch"] == reference["best_epoch"]
    assert [h["epoch"] for h in resumed["curves"]] == [1, 2, 3]
    for a, b in zip(reference["curves"], resumed["curves"]):
        assert b["val_auc"] == pytest.approx(a["val_auc"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_sigkill_mid_refit_then_resume_gives_the_same_ranker(tmp_path):
    # The selection run's best epoch is 3 on these arguments, so the refit
    # has three epochs; the kill lands in its second.
    reference = run(ARGS, tmp_path / "uninterrupted")
    assert reference["best_epoch"] == 3 and reference["settings"]["refit"]
    output = tmp_path / "killed"
    kill_after_first_backup(
        ARGS, output, delay=0.3, backup=".backup-synthetic-seed7-refit"
    )

    resumed = run(ARGS, output)
    assert sorted(p.name for p in (output / "deepfm").iterdir()) == ["1"]
    for key in ("auc", "logloss"):
        assert resumed["evaluation"]["model"][key] == pytest.approx(
            reference["evaluation"]["model"][key], abs=1e-6
        )
