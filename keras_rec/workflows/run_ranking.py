"""`keras-rec train deepfm|din|wdl|dcn`: load, split, train, pick, test, export, report."""

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import log_loss
from sklearn.metrics import roc_auc_score

from keras_rec.distribute import is_chief
from keras_rec.distribute import make_strategy
from keras_rec.distribute import predict_every_row
from keras_rec.io_utils import atomic_directory
from keras_rec.io_utils import write_json_atomic
from keras_rec.models.dcn import DCN
from keras_rec.models.deepfm import DeepFM
from keras_rec.models.din import DIN
from keras_rec.models.wdl import WDL
from keras_rec.workflows.checkpointing import AtomicBackupAndRestore
from keras_rec.workflows.pipeline import distributed_epoch_batches
from keras_rec.workflows.pipeline import restored_epoch
from keras_rec.workflows.ranking_data import RANKING_DATASETS
from keras_rec.workflows.ranking_data import load_ranking_data
from keras_rec.workflows.report import markdown_table
from keras_rec.workflows.report import plot_curves
from keras_rec.workflows.run_recall import load_metrics
from keras_rec.workflows.run_recall import next_version

RANKING_MODELS = ("deepfm", "din", "wdl", "dcn")
# Clipping of probabilities in the logloss, as sklearn's default for float32.
PROBABILITY_EPS = 1e-7

# Builder options chosen on MovieLens 100K's validation slice (the sweep is
# in BENCHMARKS.md); bench/ranking_quality.py measures with them.
MOVIELENS_MODEL_OPTIONS = {
    "deepfm": {"dnn_dropout": 0.3},
    "din": {"pool_history": True},
}
# The protocol of bench/ranking_quality.py (see BENCHMARKS.md): emb dim 8,
# DNN (256, 128, 64), Adam 1e-3, batch 512, up to 5 epochs, embeddings
# initialised N(0, 1e-4) (DeepCTR's default).
_PROTOCOL = dict(
    epochs=5,
    batch_size=512,
    embedding_dim=8,
    learning_rate=1e-3,
    dnn_hidden_units=(256, 128, 64),
    init_std=1e-4,
    # Reshuffled epochs. Time order (`shuffle=False`, each epoch ending on
    # the newest rows) beat them on MovieLens's validation slice, which
    # directly follows the training rows, but not on the later test period
    # (BENCHMARKS.md), so it is an option, not the default.
    shuffle=True,
    # After the best epoch is chosen on the validation slice, a fresh model
    # trains that many epochs on the training and validation rows together:
    # the most recent rows are the closest to the test period (MovieLens
    # 100K test AUC: DeepFM +0.004, DIN +0.002; BENCHMARKS.md).
    refit=True,
)
RANKING_DEFAULTS = {
    "synthetic": {**_PROTOCOL, "epochs": 3},
    "movielens-100k": {**_PROTOCOL, "model_options": MOVIELENS_MODEL_OPTIONS},
    "movielens-1m": {**_PROTOCOL, "model_options": MOVIELENS_MODEL_OPTIONS},
    "criteo": {**_PROTOCOL, "batch_size": 1024},
}


def ranking_settings(dataset):
    """The default settings of `keras-rec train <ranker> --dataset <dataset>`."""
    if dataset not in RANKING_DEFAULTS:
        raise ValueError(
            f"`dataset` must be one of {RANKING_DATASETS}. Received: dataset={dataset!r}"
        )
    return dict(RANKING_DEFAULTS[dataset])


def build_ranking_model(
    name, data, dnn_hidden_units=(256, 128, 64), seed=1024, options=None
):
    """A DeepFM / DIN / WDL / DCN over `data`'s feature columns.

    `options`: dict of extra builder keyword arguments (e.g. `dnn_dropout`).
    """
    options = dict(options or {})
    if name not in RANKING_MODELS:
        raise ValueError(
            f"`model` must be one of {RANKING_MODELS}. Received: model={name!r}"
        )
    columns = data.columns_for(name)
    if name == "din":
        if not data.has_history:
            raise ValueError(
                f"din needs behaviour sequences, which dataset={data.dataset!r} "
                "does not have. Use deepfm, wdl or dcn on it."
            )
        return DIN(
            columns,
            data.history,
            dnn_hidden_units=dnn_hidden_units,
            seed=seed,
            **options,
        )
    builder = {"deepfm": DeepFM, "wdl": WDL, "dcn": DCN}[name]
    return builder(
        columns, columns, dnn_hidden_units=dnn_hidden_units, seed=seed, **options
    )


def predict_scores(model, inputs, batch_size=4096):
    """Click probabilities `(n,)` as float64."""
    names = {t.name for t in model.inputs}
    x = {k: v for k, v in inputs.items() if k in names}
    return predict_every_row(model, x, batch_size)[:, 0].astype("float64")


def auc_logloss(labels, scores):
    """`(AUC, logloss)`; AUC is NaN when `labels` hold one class only."""
    labels = np.asarray(labels)
    scores = np.clip(
        np.asarray(scores, "float64"), PROBABILITY_EPS, 1 - PROBABILITY_EPS
    )
    auc = (
        float(roc_auc_score(labels, scores))
        if len(np.unique(labels)) == 2
        else float("nan")
    )
    return auc, float(log_loss(labels, scores, labels=[0, 1]))


class BestEpochCheckpoint(keras.callbacks.Callback):
    """Scores the validation slice after each epoch and keeps the best epoch.

    After each epoch, validation AUC and logloss go into the epoch's logs
    (`val_auc`, `val_logloss`; the progress bar shows them) and into
    `history`. The weights of the epoch with the highest validation AUC are
    kept in memory and, with `path`, written there atomically (a temporary
    file renamed over the old one), so a crash never leaves a torn
    checkpoint. At the end of training the best weights are restored.

    Args:
        inputs: dict of validation inputs.
        labels: validation labels.
        path: str or None. A `.weights.h5` file for the best weights.
    """

    def __init__(self, inputs, labels, path=None, resume=False):
        super().__init__()
        self.inputs = inputs
        self.labels = labels
        self.path = path
        self.resume = resume
        self.history = []
        self.best_epoch = None
        self.best_auc = -np.inf
        self._best_weights = None

    @property
    def _state_path(self):
        return None if self.path is None else f"{self.path}.json"

    def on_train_begin(self, logs=None):
        # A resumed run (`resume`, with `AtomicBackupAndRestore`) takes the
        # best epoch so far and the curves from the state written with the
        # best weights; the best weights stay on disk until the end.
        if not (self.resume and self.path and os.path.isfile(self._state_path)):
            return
        if not os.path.isfile(self.path):
            return
        with open(self._state_path, encoding="utf-8") as f:
            state = json.load(f)
        self.history = state["history"]
        self.best_epoch, self.best_auc = state["best_epoch"], state["best_auc"]

    def on_epoch_begin(self, epoch, logs=None):
        # Epochs re-run after a restart replace their earlier records.
        self.history = [h for h in self.history if h["epoch"] <= epoch]

    def on_epoch_end(self, epoch, logs=None):
        auc, loss = auc_logloss(self.labels, predict_scores(self.model, self.inputs))
        logs = logs if logs is not None else {}
        logs["val_auc"] = auc
        logs["val_logloss"] = loss
        self.history.append(
            {
                "epoch": epoch + 1,
                "loss": float(logs.get("loss", float("nan"))),
                "val_auc": auc,
                "val_logloss": loss,
            }
        )
        if self.best_epoch is None or auc > self.best_auc:
            self.best_auc, self.best_epoch = auc, epoch + 1
            self._best_weights = self.model.get_weights()
            if self.path is not None:
                self._write(self.path)
        if self.path is not None:
            # After the weights it describes: a crash in between re-runs this
            # epoch (the backup marks it done later), which rewrites both.
            write_json_atomic(
                self._state_path,
                {
                    "best_epoch": self.best_epoch,
                    "best_auc": self.best_auc,
                    "history": self.history,
                },
            )

    def _write(self, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = os.path.join(
            os.path.dirname(os.path.abspath(path)), f".tmp-{os.getpid()}.weights.h5"
        )
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, path)

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)
        elif self.best_epoch is not None and self.path and os.path.isfile(self.path):
            self.model.load_weights(self.path)  # best epoch before a restart


def train_ranking(
    name,
    data,
    epochs=5,
    batch_size=512,
    learning_rate=1e-3,
    dnn_hidden_units=(256, 128, 64),
    seed=1024,
    verbose=1,
    checkpoint_path=None,
    model_options=None,
    strategy=None,
    backup_dir=None,
    shuffle=True,
    select=True,
):
    """Trains a ranker and keeps its best validation epoch.

    Batches come from `distributed_epoch_batches`: shuffled per (seed, epoch),
    the last partial batch of each epoch dropped; with `shuffle=False`, the
    training rows in their order (time order for the built-in data sets),
    the oldest rows that do not fill a batch dropped. With `backup_dir`, every
    epoch is backed up atomically (`AtomicBackupAndRestore`) and a run killed
    and started again with the same arguments resumes from the last completed
    epoch and ends with the same model as an uninterrupted run.

    With a `tf.distribute` `strategy` (e.g. `MirroredStrategy`), the model is
    built and compiled in its scope and `fit` splits each global batch of
    `batch_size` rows across its replicas; under a
    `MultiWorkerMirroredStrategy` every worker builds the same global batches
    and keeps its slice, so several workers train like one.

    With `select=False` (a refit), the validation slice is not scored and
    the model keeps the weights of its last epoch.

    Returns:
        `(model, checkpoint_callback, seconds)`; the model holds the best
        epoch's weights (the last epoch's, and no callback, with
        `select=False`).
    """
    keras.utils.set_random_seed(seed)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build_ranking_model(
            name, data, dnn_hidden_units, seed, (model_options or {}).get(name)
        )
        model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy")
    names = {t.name for t in model.inputs}
    x, y = data.train
    x = {k: v for k, v in x.items() if k in names}
    val_x = {k: v for k, v in data.validation[0].items() if k in names}
    start_epoch = 0
    callbacks = []
    if backup_dir is not None:
        start_epoch = min(restored_epoch(backup_dir), epochs)
        callbacks.append(AtomicBackupAndRestore(backup_dir))
    checkpoint = None
    if select:
        checkpoint = BestEpochCheckpoint(
            val_x, data.validation[1], checkpoint_path, resume=start_epoch > 0
        )
    dataset, steps = distributed_epoch_batches(
        strategy, x, batch_size, seed, epochs, start_epoch, labels=y, shuffle=shuffle
    )
    start = time.time()
    # The best-epoch callback comes before the backup: an epoch is considered
    # for the best before it is marked done.
    model.fit(
        dataset,
        epochs=epochs,
        steps_per_epoch=steps,
        shuffle=False,  # `epoch_batches` shuffles, deterministically per epoch
        verbose=verbose,
        callbacks=[*([checkpoint] if checkpoint else []), *callbacks],
    )
    return model, checkpoint, time.time() - start


def with_validation_rows(data):
    """`data` whose training rows are followed by its validation rows (a refit's)."""
    (x, y), (val_x, val_y) = data.train, data.validation
    rows = {k: np.concatenate([x[k], val_x[k]]) for k in x}
    return dataclasses.replace(data, train=(rows, np.concatenate([y, val_y])))


def evaluate_ranking(model, data):
    """Test AUC / logloss of `model` and of the constant train-rate predictor."""
    x, y = data.test
    model_auc, model_loss = auc_logloss(y, predict_scores(model, x))
    rate = float(np.mean(data.train[1]))
    constant_auc, constant_loss = auc_logloss(y, np.full(len(y), rate))
    return {
        "model": {"auc": model_auc, "logloss": model_loss},
        "constant": {"auc": constant_auc, "logloss": constant_loss},
        "train_positive_rate": rate,
        "test_positive_rate": float(np.mean(y)),
        "num_test_examples": int(len(y)),
    }


def summary_rows(name, evaluation, best_epoch=None, best_val_auc=None):
    rate = evaluation["train_positive_rate"]
    return [
        {
            "method": f"constant ({rate:.3f})",
            "test AUC": evaluation["constant"]["auc"],
            "test logloss": evaluation["constant"]["logloss"],
            "best epoch": "-",
            "val AUC": None,
        },
        {
            "method": name,
            "test AUC": evaluation["model"]["auc"],
            "test logloss": evaluation["model"]["logloss"],
            "best epoch": best_epoch,
            "val AUC": best_val_auc,
        },
    ]


def run_ranking(
    model_name,
    dataset="synthetic",
    data_dir=None,
    download=False,
    output="saved_models",
    epochs=None,
    batch_size=None,
    embedding_dim=None,
    learning_rate=None,
    seed=1024,
    verbose=1,
    print_fn=print,
    synthetic_scale=1.0,
    strategy="default",
    shuffle=None,
    refit=None,
):
    """Runs the whole ranking job and returns the run directory and metrics.

    `shuffle`: bool or None. Shuffle the training rows each epoch (True) or
    train in their time order (False); None keeps the data set's default
    (shuffled).

    `refit`: bool or None. After the best epoch is chosen on the validation
    slice, train a fresh model (same seed) for that many epochs on the
    training and validation rows together, and test and export it (True);
    or test and export the best epoch's weights (False). None keeps the
    default (True). A run killed during the refit is started again with the
    same command: the selection is re-run (it is deterministic) and the
    refit resumes from its last completed epoch.

    `strategy`: `"default"` (one device), `"mirrored"` (every local device)
    or `"multi-worker"` (`MultiWorkerMirroredStrategy` over the cluster in
    `TF_CONFIG`; the chief alone writes the run directory).
    """
    if model_name not in RANKING_MODELS:
        raise ValueError(
            f"`model` must be one of {RANKING_MODELS}. Received: model={model_name!r}"
        )
    settings = ranking_settings(dataset)
    for key, value in dict(
        epochs=epochs,
        batch_size=batch_size,
        embedding_dim=embedding_dim,
        learning_rate=learning_rate,
        shuffle=shuffle,
        refit=refit,
    ).items():
        if value is not None:
            settings[key] = value
    started = time.time()
    print_fn(f"Loading {dataset} ...")
    data = load_ranking_data(
        dataset,
        data_dir=data_dir,
        download=download,
        embedding_dim=settings["embedding_dim"],
        init_std=settings["init_std"],
        scale=synthetic_scale,
    )
    sizes = data.sizes()
    if batch_size is None and settings["batch_size"] > sizes["train"]:
        # A small file (e.g. a 1,000-row Criteo sample) with the default
        # batch: one full-data batch per step.
        settings["batch_size"] = sizes["train"]
    if settings["batch_size"] > sizes["train"]:
        raise ValueError(
            f"`batch_size` ({settings['batch_size']}) is larger than the number of "
            f"training examples ({sizes['train']}). Received: "
            f"batch_size={settings['batch_size']}"
        )
    if model_name == "din" and not data.has_history:
        raise ValueError(
            f"din needs behaviour sequences, which dataset={dataset!r} does not "
            "have. Use deepfm, wdl or dcn on it."
        )
    print_fn(
        f"{sizes['train']} train / {sizes['validation']} validation / "
        f"{sizes['test']} test examples, train positives "
        f"{np.mean(data.train[1]):.3f}. Training {model_name} ..."
    )
    base_dir = os.path.join(output, model_name)
    checkpoint_path = os.path.join(
        base_dir, f".checkpoint-{dataset}-seed{seed}", "best.weights.h5"
    )
    # Killed and started again with the same command, training resumes from
    # the last completed epoch kept here (deleted once training ends).
    backup_dir = os.path.join(base_dir, f".backup-{dataset}-seed{seed}")
    if not is_chief():
        # Each worker of a multi-worker run keeps its own checkpoints.
        checkpoint_path = checkpoint_path.replace(
            "best.weights.h5", f"best-worker{os.getpid()}.weights.h5"
        )
        backup_dir += f"-worker{os.getpid()}"
    # What the selection run and the refit share.
    training = dict(
        batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        dnn_hidden_units=settings["dnn_hidden_units"],
        seed=seed,
        verbose=verbose,
        model_options=settings.get("model_options"),
        strategy=make_strategy(strategy),
        shuffle=settings["shuffle"],
    )
    model, checkpoint, train_seconds = train_ranking(
        model_name,
        data,
        epochs=settings["epochs"],
        checkpoint_path=checkpoint_path,
        backup_dir=backup_dir,
        **training,
    )
    if settings["refit"]:
        print_fn(
            f"Best validation epoch: {checkpoint.best_epoch}. Refitting on the "
            f"training and validation rows for {checkpoint.best_epoch} epoch(s) ..."
        )
        model, _, refit_seconds = train_ranking(
            model_name,
            with_validation_rows(data),
            epochs=checkpoint.best_epoch,
            backup_dir=f"{backup_dir}-refit",
            select=False,
            **training,
        )
        train_seconds += refit_seconds
    evaluation = evaluate_ranking(model, data)
    rows = summary_rows(
        model_name, evaluation, checkpoint.best_epoch, checkpoint.best_auc
    )
    if not is_chief():
        # The other workers trained the same model; the chief alone writes
        # the run directory.
        _remove_checkpoint(checkpoint_path)
        return None, {"model": model_name, "evaluation": evaluation}
    version = next_version(base_dir)
    run_dir = os.path.join(base_dir, str(version))
    metrics = {
        "model": model_name,
        "task": "ranking",
        "dataset": dataset,
        "data_dir": None if data_dir is None else os.path.abspath(data_dir),
        "synthetic_scale": synthetic_scale,
        "version": version,
        "settings": {
            **settings,
            "dnn_hidden_units": list(settings["dnn_hidden_units"]),
        },
        "seed": seed,
        "num_examples": sizes,
        "train_seconds": round(train_seconds, 2),
        "best_epoch": checkpoint.best_epoch,
        "best_val_auc": checkpoint.best_auc,
        "curves": checkpoint.history,
        "evaluation": evaluation,
        "table": rows,
        "table_columns": list(rows[0]),
    }
    with atomic_directory(run_dir) as tmp:
        model.save(os.path.join(tmp, "model.keras"))
        _export_ranking_artifacts(model, data, tmp, run_dir, model_name)
        os.makedirs(os.path.join(tmp, "plots"))
        plot_curves(
            checkpoint.history,
            os.path.join(tmp, "plots", "training.png"),
            metrics=("loss", "val_logloss", "val_auc"),
            title=f"{model_name} on {dataset}",
        )
        metrics["total_seconds"] = round(time.time() - started, 2)
        write_json_atomic(os.path.join(tmp, "metrics.json"), metrics)
    # The best weights now live in the run directory.
    _remove_checkpoint(checkpoint_path)
    print_fn("")
    print_fn(markdown_table(rows))
    print_fn("")
    print_fn(f"Exported to {run_dir} ({metrics['total_seconds']:.0f} s in all)")
    return run_dir, metrics


def _remove_checkpoint(path):
    folder = os.path.dirname(path)
    for name in (path, f"{path}.json"):
        if os.path.isfile(name):
            os.remove(name)
    if os.path.isdir(folder) and not os.listdir(folder):
        os.rmdir(folder)


def _export_ranking_artifacts(model, data, directory, final_dir, model_name):
    """The SavedModel for TF Serving, its models.config and sample requests."""
    from keras_rec.export import export_saved_model
    from keras_rec.export import write_sample_requests
    from keras_rec.export import write_serving_config

    export_saved_model(model, os.path.join(directory, "serving"), version=1)
    write_sample_requests(
        os.path.join(directory, "requests"),
        model,
        {name: values[:2] for name, values in data.test[0].items()},
    )
    # models.config names the final location, not the temporary directory.
    write_serving_config(
        directory,
        {model_name: "serving"},
        base_path_prefix=os.path.abspath(final_dir),
    )


def reevaluate_ranking(run_dir, data_dir=None):
    """Recomputes a ranking run's test metrics from its `model.keras`.

    The data set is rebuilt with the run's settings (from `metrics.json`);
    `data_dir` overrides the recorded data folder.

    Returns:
        `(metrics, evaluation)`: the stored metrics and the new evaluation.
    """
    metrics = load_metrics(run_dir)
    if metrics.get("task") != "ranking":
        raise ValueError(
            f"{run_dir!r} is not a ranking run (task={metrics.get('task')!r}); "
            "only ranking runs can be re-evaluated."
        )
    settings = metrics["settings"]
    data = load_ranking_data(
        metrics["dataset"],
        data_dir=data_dir or metrics.get("data_dir"),
        embedding_dim=settings["embedding_dim"],
        init_std=settings["init_std"],
        scale=metrics.get("synthetic_scale", 1.0),
    )
    model = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    return metrics, evaluate_ranking(model, data)
