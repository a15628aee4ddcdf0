"""The `keras-rec` command line: version, data sets, argument errors, evaluate."""

import json

import pytest

from keras_rec import __version__
from keras_rec.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"keras-rec {__version__}"


def test_datasets_lists_every_loadable_data_set(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("synthetic", "movielens-100k", "movielens-1m", "criteo"):
        assert name in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "0"], "--epochs must be >= 1. Received: 0"),
        (["train", "--dataset", "criteo"], "criteo"),
        (["train", "ranker"], "invalid choice"),
    ],
)
def test_train_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_movielens_directory_is_a_clear_error(tmp_path, capsys):
    code = main(
        ["train", "--dataset", "movielens-100k", "--data-dir", str(tmp_path / "nope")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "keras-rec: error" in err and "nope" in err


def test_evaluate_prints_a_run_directory_table(tmp_path, capsys):
    metrics = {
        "model": "dssm",
        "dataset": "synthetic",
        "version": 3,
        "table": [{"method": "dssm", "HR@50": 0.5}],
        "table_columns": ["method", "HR@50"],
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert main(["evaluate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "dssm on synthetic (version 3)" in out
    assert "| dssm | 0.5000 |" in out
    assert main(["evaluate", str(tmp_path / "missing")]) == 2


def test_select_best_reaches_the_recall_job_and_is_refused_for_rankers(
    monkeypatch, capsys
):
    import keras_rec.workflows.run_recall as run_recall_module

    received = {}

    def fake_run_recall(model, **kwargs):
        received.update(kwargs, model=model)
        return None, {}

    monkeypatch.setattr(run_recall_module, "run_recall", fake_run_recall)
    assert main(["train", "dssm", "--select-best", "--quiet"]) == 0
    assert received["model"] == "dssm" and received["select_best"] is True
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "deepfm", "--select-best"])
    assert exit_info.value.code == 2
    assert "Received: deepfm --select-best" in capsys.readouterr().err


def test_order_and_refit_reach_the_ranking_job_and_are_refused_for_recall(
    monkeypatch, capsys
):
    import keras_rec.workflows.run_ranking as run_ranking_module

    received = []

    def fake_run_ranking(model, **kwargs):
        received.append(dict(kwargs, model=model))
        return None, {}

    monkeypatch.setattr(run_ranking_module, "run_ranking", fake_run_ranking)
    assert main(["train", "deepfm", "--order", "time", "--quiet"]) == 0
    assert main(["train", "din", "--order", "shuffled", "--quiet"]) == 0
    assert main(["train", "dcn", "--quiet"]) == 0
    assert main(["train", "wdl", "--no-refit", "--quiet"]) == 0
    assert [r["shuffle"] for r in received] == [False, True, None, None]
    assert [r["refit"] for r in received] == [None, None, None, False]
    for flag in (["--order", "time"], ["--no-refit"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "dssm", *flag])
        assert exit_info.value.code == 2
        assert f"Received: dssm {' '.join(flag)}" in capsys.readouterr().err
