"""`keras-rec train dssm|youtubednn`: load, split, train, evaluate, export, index, report."""

import json
import os
import time

import numpy as np

from keras_rec.distribute import is_chief
from keras_rec.distribute import make_strategy
from keras_rec.io_utils import atomic_directory
from keras_rec.io_utils import write_json_atomic
from keras_rec.workflows.checkpointing import AtomicBestWeights
from keras_rec.workflows.datasets import USER_ATTRIBUTES
from keras_rec.workflows.datasets import load_recall_dataset
from keras_rec.workflows.recall import KS
from keras_rec.workflows.recall import evaluate_recall
from keras_rec.workflows.recall import summary_rows
from keras_rec.workflows.recall import train_recall
from keras_rec.workflows.recall_data import prepare_recall_data
from keras_rec.workflows.report import markdown_table
from keras_rec.workflows.report import plot_curves
from keras_rec.workflows.report import plot_recall_at_k

# Defaults per data set, then per (data set, model). MovieLens values were
# chosen on the validation target (each user's second-to-last item), never on
# the test target: see BENCHMARKS.md and bench/retrieval_quality.py.
_COMMON = dict(
    batch_size=256,
    embedding_dim=32,
    temperature=0.2,
    learning_rate=1e-3,
    recent=5,
    last_item=False,
)
RECALL_DEFAULTS = {
    "synthetic": {**_COMMON, "epochs": 5, "learning_rate": 2e-3},
    "movielens-100k": {**_COMMON, "epochs": 20, "last_item": True},
    "movielens-1m": {**_COMMON, "epochs": 5, "batch_size": 512},
}
MODEL_DEFAULTS = {
    ("synthetic", "youtubednn"): dict(learning_rate=5e-3, num_sampled=200),
    ("movielens-100k", "youtubednn"): dict(
        epochs=30, learning_rate=3e-3, num_sampled=1000
    ),
    ("movielens-1m", "youtubednn"): dict(learning_rate=3e-3, num_sampled=1000),
}


# What `select_best` selects the epoch on: validation HitRate@50.
SELECTION_METRIC = "hit_rate@50"


def recall_settings(dataset, model_name):
    """The default settings of `keras-rec train <model_name> --dataset <dataset>`."""
    settings = dict(RECALL_DEFAULTS.get(dataset, RECALL_DEFAULTS["synthetic"]))
    settings.update(MODEL_DEFAULTS.get((dataset, model_name), {}))
    # YouTube's example age is part of YoutubeDNN's user tower (Covington et
    # al., 2016); DSSM reads it only when a data set's defaults say so.
    settings.setdefault("example_age", model_name == "youtubednn")
    return settings


def next_version(base_dir):
    """The next free integer version under `base_dir` (1 when empty)."""
    if not os.path.isdir(base_dir):
        return 1
    versions = [int(n) for n in os.listdir(base_dir) if n.isdigit()]
    return max(versions, default=0) + 1


def run_recall(
    model_name,
    dataset="synthetic",
    data_dir=None,
    download=False,
    output="saved_models",
    epochs=None,
    batch_size=None,
    embedding_dim=None,
    temperature=None,
    learning_rate=None,
    seed=1024,
    verbose=1,
    print_fn=print,
    synthetic_scale=1.0,
    strategy="default",
    select_best=False,
):
    """Runs the whole recall job and returns the run directory and metrics.

    With `select_best`, training runs on the validation protocol (each
    user's last item dropped, the second-to-last the target) and the weights
    of the epoch with the best validation HitRate@50 are kept (atomically)
    and restored before evaluation and export; the test target is used only
    for the final report. The curves are then validation curves, and
    `metrics["selection"]` records the chosen epoch.
    """
    settings = recall_settings(dataset, model_name)
    for key, value in dict(
        epochs=epochs,
        batch_size=batch_size,
        embedding_dim=embedding_dim,
        temperature=temperature,
        learning_rate=learning_rate,
    ).items():
        if value is not None:
            settings[key] = value
    started = time.time()
    print_fn(f"Loading {dataset} ...")
    interactions, users = load_recall_dataset(
        dataset, data_dir, download, scale=synthetic_scale
    )

    def prepare(holdout):
        return prepare_recall_data(
            interactions,
            users,
            user_attributes=USER_ATTRIBUTES.get(dataset, ()),
            embedding_dim=settings["embedding_dim"],
            recent=settings["recent"],
            last_item=settings["last_item"],
            example_age_feature=settings["example_age"],
            holdout=holdout,
        )

    data = prepare("test")
    train_data = prepare("validation") if select_best else data
    if settings["batch_size"] > train_data.num_train_examples:
        raise ValueError(
            f"`batch_size` ({settings['batch_size']}) is larger than the number of "
            f"training examples ({train_data.num_train_examples}). "
            f"Received: batch_size={settings['batch_size']}"
        )
    print_fn(
        f"{train_data.num_train_examples} training examples, {len(data.eval_targets)} "
        f"evaluation users, {data.num_items - 1} items. Training {model_name} ..."
    )
    # Killed and started again with the same command, training resumes from
    # the last completed epoch kept here (deleted once training ends).
    backup_dir = os.path.join(output, model_name, f".backup-{dataset}-seed{seed}")
    best_dir = os.path.join(output, model_name, f".best-{dataset}-seed{seed}")
    if not is_chief():
        # Each worker of a multi-worker run keeps its own backup.
        backup_dir += f"-worker{os.getpid()}"
        best_dir += f"-worker{os.getpid()}"
    best = (
        AtomicBestWeights(best_dir, monitor=SELECTION_METRIC) if select_best else None
    )
    model, curves, train_seconds = train_recall(
        model_name,
        train_data,
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        temperature=settings["temperature"],
        seed=seed,
        verbose=verbose,
        backup_dir=backup_dir,
        callbacks=[best] if best else (),
        strategy=make_strategy(strategy),
        **(
            {"num_sampled": settings["num_sampled"]}
            if "num_sampled" in settings
            else {}
        ),
    )
    report, built = evaluate_recall(model, data)
    if not is_chief():
        # Other workers of a multi-worker run trained the same model; the
        # chief alone writes the run directory.
        return None, {"model": model_name, "table": summary_rows(model_name, report)}
    rows = summary_rows(model_name, report)
    base_dir = os.path.join(output, model_name)
    version = next_version(base_dir)
    run_dir = os.path.join(base_dir, str(version))
    metrics = {
        "model": model_name,
        "dataset": dataset,
        "version": version,
        "settings": settings,
        "seed": seed,
        "num_train_examples": train_data.num_train_examples,
        "num_eval_users": len(data.eval_targets),
        "num_items": data.num_items - 1,
        "train_seconds": round(train_seconds, 2),
        "curves": curves,
        "selection": best.summary() if best else None,
        "evaluation": {k: v for k, v in report.items()},
        "table": rows,
        "table_columns": list(rows[0]),
    }
    with atomic_directory(run_dir) as tmp:
        model.save(os.path.join(tmp, "model.keras"))
        _export_recall_artifacts(model, data, built, tmp, run_dir, model_name, version)
        os.makedirs(os.path.join(tmp, "plots"))
        plot_curves(
            curves,
            os.path.join(tmp, "plots", "training.png"),
            metrics=("loss", "hit_rate@10", "hit_rate@50"),
            title=f"{model_name} on {dataset}",
        )
        plot_recall_at_k(
            {
                label: {
                    k: report[key]["results"]["include_seen"][f"recall@{k}"] for k in KS
                }
                for label, key in (
                    ("popularity", "popularity"),
                    (f"{model_name} exact", "exact"),
                    (f"{model_name} annoy", "annoy"),
                )
            },
            os.path.join(tmp, "plots", "recall_at_k.png"),
            title=f"Recall@K, {model_name} on {dataset}",
        )
        metrics["total_seconds"] = round(time.time() - started, 2)
        write_json_atomic(os.path.join(tmp, "metrics.json"), metrics)
    print_fn("")
    print_fn(markdown_table(rows))
    print_fn("")
    print_fn(report["annoy"]["note"])
    print_fn(f"Exported to {run_dir} ({metrics['total_seconds']:.0f} s in all)")
    return run_dir, metrics


def _export_recall_artifacts(
    model, data, built, directory, final_dir, model_name, version
):
    """Towers (SavedModels), Annoy index keyed by raw item ids, user feature store."""
    from keras_rec.export import export_towers
    from keras_rec.export import write_sample_requests
    from keras_rec.export import write_serving_config
    from keras_rec.retrieval import AnnoyItemIndex
    from keras_rec.serving import save_seen_items
    from keras_rec.serving import save_user_features

    export_towers(model, directory, version=1)
    raw_ids = data.item_vocabulary[data.item_codes - 1]
    index = AnnoyItemIndex("angular", n_trees=50).build(
        raw_ids,
        built["items"],
        metadata={"model_name": model_name, "model_version": version},
    )
    index.save(os.path.join(directory, "index"))
    # The feature store holds each user's latest features (their history at
    # the end of training), so `keras-rec recall --user-id` needs only the id.
    user_ids = np.asarray(data.eval_user_ids)
    save_user_features(directory, user_ids, data.eval_user_inputs)
    seen_counts = [len(s) for s in data.eval_seen]
    save_seen_items(
        directory,
        np.repeat(user_ids, seen_counts),
        data.item_vocabulary[np.concatenate(data.eval_seen) - 1],
    )
    # REST request bodies a client can send to the user tower as they are.
    write_sample_requests(
        os.path.join(directory, "requests"),
        model.user_model,
        {name: values[:2] for name, values in data.eval_user_inputs.items()},
    )
    # models.config names the final location, not the temporary directory.
    write_serving_config(
        directory,
        {
            f"{model_name}_user_tower": "user_tower",
            f"{model_name}_item_tower": "item_tower",
        },
        base_path_prefix=os.path.abspath(final_dir),
    )


def load_metrics(run_dir):
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No metrics.json in {run_dir!r}: not a keras-rec run directory."
        )
    with open(path, encoding="utf-8") as f:
        return json.load(f)
