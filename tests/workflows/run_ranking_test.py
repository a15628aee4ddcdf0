"""`keras-rec train deepfm|din` end to end on small synthetic data, and `evaluate`."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rec.cli import main
from keras_rec.datasets import make_synthetic_criteo
from keras_rec.workflows.ranking_data import load_ranking_data
from keras_rec.workflows.run_ranking import auc_logloss

SCALE = "0.25"  # 500 users, 250 items, 15,000 impressions


def chance_margin(labels, z=4.0):
    """`z` standard deviations of the AUC of a random scorer on `labels`.

    Under the null (scores independent of labels) the AUC has mean 1/2 and
    variance (n_pos + n_neg + 1) / (12 n_pos n_neg) (Mann-Whitney U).
    """
    n_pos = int(np.sum(labels))
    n_neg = len(labels) - n_pos
    return z * np.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))


@pytest.fixture(scope="module")
def data():
    return load_ranking_data("synthetic", embedding_dim=8, scale=float(SCALE))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    output = tmp_path_factory.mktemp("saved_models")
    dirs = {}
    for model in ("deepfm", "din"):
        argv = ["train", model, "--synthetic-scale", SCALE, "--epochs", "2"]
        argv += ["--output", str(output), "--quiet"]
        assert main(argv) == 0
        dirs[model] = output / model / "1"
    return dirs


@pytest.mark.parametrize("model", ["deepfm", "din"])
def test_train_beats_chance_and_the_constant_baseline(runs, data, model):
    run_dir = runs[model]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    evaluation = metrics["evaluation"]
    labels = data.test[1]
    assert evaluation["num_test_examples"] == len(labels)
    auc = evaluation["model"]["auc"]
    assert auc > 0.5 + chance_margin(labels), (auc, chance_margin(labels))
    assert evaluation["constant"]["auc"] == 0.5
    assert evaluation["model"]["logloss"] < evaluation["constant"]["logloss"]
    # The constant predictor is the training positive rate.
    rate = float(np.mean(data.train[1]))
    assert evaluation["train_positive_rate"] == pytest.approx(rate)
    assert evaluation["constant"]["logloss"] == pytest.approx(
        auc_logloss(labels, np.full(len(labels), rate))[1]
    )
    # The best epoch is the one with the highest validation AUC.
    curves = metrics["curves"]
    assert [c["epoch"] for c in curves] == [1, 2]
    best = max(curves, key=lambda c: c["val_auc"])
    assert metrics["best_epoch"] == best["epoch"]
    assert metrics["best_val_auc"] == pytest.approx(best["val_auc"])
    for name in ("model.keras", "plots/training.png", "models.config"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "requests" / "request_instances.json").is_file()
    # The best-weights checkpoint is gone once the run directory exists.
    assert not list(run_dir.parent.glob(".checkpoint-*"))


@pytest.mark.parametrize("model", ["deepfm", "din"])
def test_saved_model_reproduces_model_predict(runs, data, model):
    run_dir = runs[model]
    keras_model = keras.models.load_model(run_dir / "model.keras")
    names = [t.name for t in keras_model.inputs]
    x = {k: v[:300] for k, v in data.test[0].items() if k in names}
    expected = keras_model.predict(x, verbose=0)[:, 0]
    # The stored model is the one tested: it reproduces the test AUC.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # Same batch size as the job's scoring: float32 sums depend on it.
    full = keras_model.predict(
        {k: v for k, v in data.test[0].items() if k in names},
        batch_size=4096,
        verbose=0,
    )[:, 0]
    assert auc_logloss(data.test[1], full)[0] == pytest.approx(
        metrics["evaluation"]["model"]["auc"], abs=1e-6
    )
    serving = tf.saved_model.load(os.fspath(run_dir / "serving" / "1"))
    signature = serving.signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    got = signature(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in x.items()})
    np.testing.assert_allclose(got["score"].numpy()[:, 0], expected, atol=1e-5)
    assert np.std(expected) > 1e-3  # not a constant output


def test_evaluate_reports_and_recomputes_a_ranking_run(runs, capsys):
    run_dir = runs["deepfm"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--recompute"]) == 0
    out = capsys.readouterr().out
    assert "deepfm on synthetic (version 1)" in out
    auc = f"{metrics['evaluation']['model']['auc']:.4f}"
    # Once in the stored table, once recomputed from model.keras.
    assert out.count(f"| deepfm | {auc} |") == 2
    assert "| constant (" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "din", "--dataset", "criteo", "--data-dir", "x"],
            "cannot train din",
        ),
        (["train", "deepfm", "--dataset", "criteo"], "--data-dir None"),
        (["train", "deepfm", "--batch-size", "0"], "--batch-size must be >= 1"),
    ],
)
def test_train_rejects_bad_ranking_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "deepfm", "--synthetic-scale", "0"], "scale=0"),
        (
            ["train", "deepfm", "--dataset", "criteo", "--data-dir", "/nowhere"],
            "/nowhere",
        ),
        (
            ["train", "deepfm", "--synthetic-scale", "0.01", "--batch-size", "100000"],
            "batch_size=100000",
        ),
    ],
)
def test_train_errors_name_the_bad_value(argv, message, tmp_path, capsys):
    assert main([*argv, "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "keras-rec: error" in err and message in err


def test_evaluate_recompute_rejects_a_recall_run(tmp_path, capsys):
    metrics = {"model": "dssm", "dataset": "synthetic", "version": 1, "table": []}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert main(["evaluate", str(tmp_path), "--recompute"]) == 2
    assert "not a ranking run" in capsys.readouterr().err


def test_best_epoch_checkpoint_restores_and_writes_the_best_weights(tmp_path):
    from keras_rec.workflows.run_ranking import BestEpochCheckpoint

    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 4)).astype("float32")
    y = (x[:, 0] + rng.normal(size=512) > 0).astype("int64")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    model.compile(keras.optimizers.SGD(0.5), "binary_crossentropy")
    # Validation labels that flip half the time: the best epoch need not be last.
    val_y = np.where(rng.random(512) < 0.5, y, 1 - y)
    path = tmp_path / "ckpt" / "best.weights.h5"
    checkpoint = BestEpochCheckpoint({"x": x}, val_y, str(path))
    model.fit({"x": x}, y, epochs=4, batch_size=64, verbose=0, callbacks=[checkpoint])
    aucs = [c["val_auc"] for c in checkpoint.history]
    assert checkpoint.best_epoch == int(np.argmax(aucs)) + 1
    # The model ends with the best epoch's weights, which are also on disk.
    restored_auc = auc_logloss(val_y, model.predict({"x": x}, verbose=0)[:, 0])[0]
    assert restored_auc == pytest.approx(max(aucs), abs=1e-6)
    clone = keras.models.clone_model(model)
    clone.load_weights(path)
    for a, b in zip(clone.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Next to it, its state (for a resumed run): best epoch, AUC, curves; no
    # temporary file left.
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "best.weights.h5",
        "best.weights.h5.json",
    ]
    state = json.loads((path.parent / "best.weights.h5.json").read_text())
    assert state["best_epoch"] == checkpoint.best_epoch
    assert state["history"] == checkpoint.history


@pytest.mark.parametrize("model", ["wdl", "dcn"])
def test_wdl_and_dcn_build_on_the_ranking_data(model):
    from keras_rec.workflows.ranking_data import synthetic_ranking_data
    from keras_rec.workflows.run_ranking import build_ranking_model
    from keras_rec.workflows.run_ranking import predict_scores

    small = synthetic_ranking_data(seed=0, scale=0.05, embedding_dim=4)
    ranker = build_ranking_model(model, small, dnn_hidden_units=(8,))
    assert {t.name for t in ranker.inputs} == {c.name for c in small.columns_for(model)}
    scores = predict_scores(ranker, small.test[0])
    assert scores.shape == (len(small.test[1]),)
    assert ((scores > 0) & (scores < 1)).all()


def test_din_without_sequences_is_a_clear_error():
    from keras_rec.workflows.ranking_data import criteo_ranking_data
    from keras_rec.workflows.run_ranking import build_ranking_model

    frame = make_synthetic_criteo(200, seed=0)
    with pytest.raises(ValueError, match="dataset='criteo'"):
        build_ranking_model("din", criteo_ranking_data(frame))
    with pytest.raises(ValueError, match="model='lr'"):
        build_ranking_model("lr", criteo_ranking_data(frame))


def test_mirrored_strategy_trains_like_one_device(runs, tmp_path):
    # On this machine MirroredStrategy has one replica (the CPU), so the same
    # seed must give the same model as the default strategy, up to float
    # reassociation; the two-replica case is tests/distribute's.
    argv = ["train", "deepfm", "--synthetic-scale", SCALE, "--epochs", "2"]
    argv += ["--output", str(tmp_path), "--quiet", "--strategy", "mirrored"]
    assert main(argv) == 0
    mirrored = json.loads((tmp_path / "deepfm" / "1" / "metrics.json").read_text())
    default = json.loads((runs["deepfm"] / "metrics.json").read_text())
    assert mirrored["evaluation"]["model"]["auc"] == pytest.approx(
        default["evaluation"]["model"]["auc"], abs=2e-3
    )


def test_time_ordered_training_goes_through_the_rows_in_order():
    from keras_rec.workflows.ranking_data import synthetic_ranking_data
    from keras_rec.workflows.run_ranking import build_ranking_model
    from keras_rec.workflows.run_ranking import ranking_settings
    from keras_rec.workflows.run_ranking import train_ranking

    assert ranking_settings("movielens-100k")["shuffle"] is True
    small = synthetic_ranking_data(seed=0, scale=0.05, embedding_dim=4)
    x, y = small.train
    batch = 64

    def one_epoch(shuffle):
        model, _, _ = train_ranking(
            "deepfm",
            small,
            epochs=1,
            batch_size=batch,
            dnn_hidden_units=(8,),
            seed=3,
            verbose=0,
            shuffle=shuffle,
        )
        return model

    trained = one_epoch(shuffle=False)
    # The same model fitted by hand on the rows in their order, the oldest
    # rows that do not fill a batch left out.
    keras.utils.set_random_seed(3)
    manual = build_ranking_model("deepfm", small, dnn_hidden_units=(8,), seed=3)
    manual.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    names = {t.name for t in manual.inputs}
    skip = len(y) % batch
    manual.fit(
        {k: v[skip:] for k, v in x.items() if k in names},
        y[skip:],
        batch_size=batch,
        shuffle=False,
        epochs=1,
        verbose=0,
    )
    for a, b in zip(trained.get_weights(), manual.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    shuffled = one_epoch(shuffle=True)
    assert not all(
        np.allclose(a, b, atol=1e-6)
        for a, b in zip(shuffled.get_weights(), manual.get_weights())
    )


def test_the_exported_ranker_is_refitted_on_training_and_validation_rows(runs, data):
    from keras_rec.workflows.run_ranking import ranking_settings
    from keras_rec.workflows.run_ranking import train_ranking
    from keras_rec.workflows.run_ranking import with_validation_rows

    assert ranking_settings("movielens-100k")["refit"] is True
    metrics = json.loads((runs["deepfm"] / "metrics.json").read_text())
    assert metrics["settings"]["refit"] is True
    refit_data = with_validation_rows(data)
    n_train, n_val = len(data.train[1]), len(data.validation[1])
    assert len(refit_data.train[1]) == n_train + n_val
    np.testing.assert_array_equal(refit_data.train[1][n_train:], data.validation[1])
    # A fresh model with the job's seed and settings, trained for the best
    # epoch's count on both slices, is the exported model.
    settings = metrics["settings"]
    expected, checkpoint, _ = train_ranking(
        "deepfm",
        refit_data,
        epochs=metrics["best_epoch"],
        batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        dnn_hidden_units=tuple(settings["dnn_hidden_units"]),
        seed=metrics["seed"],
        verbose=0,
        select=False,
    )
    assert checkpoint is None
    exported = keras.models.load_model(runs["deepfm"] / "model.keras")
    names = [t.name for t in exported.inputs]
    x = {k: v[:500] for k, v in data.test[0].items() if k in names}
    np.testing.assert_allclose(
        exported.predict(x, verbose=0), expected.predict(x, verbose=0), atol=1e-6
    )
