"""Train, evaluate and export a recall model: the body of `keras-rec train dssm|youtubednn`."""

import time

import keras
import numpy as np
import tensorflow as tf

from keras_rec.distribute import predict_every_row
from keras_rec.models.dssm import DSSM
from keras_rec.models.youtube_dnn import YoutubeDNN
from keras_rec.retrieval import AnnoyItemIndex
from keras_rec.retrieval import BruteForceItemIndex
from keras_rec.retrieval import evaluate_retrieval
from keras_rec.retrieval import popularity_baseline
from keras_rec.retrieval import retrieval_metrics
from keras_rec.workflows.checkpointing import AtomicBackupAndRestore
from keras_rec.workflows.checkpointing import AtomicBestWeights
from keras_rec.workflows.pipeline import distributed_epoch_batches
from keras_rec.workflows.pipeline import restored_epoch

RECALL_MODELS = ("dssm", "youtubednn")
KS = (10, 50, 100)


def build_recall_model(
    name,
    data,
    temperature=0.05,
    hidden_units=(128,),
    seed=1024,
    num_sampled=None,
    dropout=0.0,
    **options,
):
    """A `DSSM` or `YoutubeDNN` over `data`'s feature columns.

    Both towers end in `embedding_dim` units (the item embedding width), so
    YoutubeDNN's item side can be the item embedding table itself. Other
    keyword `options` (e.g. `logq_correction`, `l2_reg_embedding`) go to the
    model builder unchanged.
    """
    if name not in RECALL_MODELS:
        raise ValueError(f"`name` must be one of {RECALL_MODELS}. Received: {name!r}")
    width = data.item_columns[0].embedding_dim
    units = (*hidden_units, width)
    # Distinct negatives, drawn from the items seen in training.
    drawable = min(data.num_items - 3, int((data.item_counts[1:] > 0).sum()) - 1)
    if name == "dssm":
        if num_sampled:  # mixed negatives: in-batch plus shared sampled items
            options.update(
                num_sampled=min(num_sampled, drawable), item_counts=data.item_counts
            )
        return DSSM(
            data.user_columns,
            data.item_columns,
            user_dnn_hidden_units=units,
            item_dnn_hidden_units=units,
            dnn_dropout=dropout,
            temperature=temperature,
            seed=seed,
            **options,
        )
    return YoutubeDNN(
        data.user_columns,
        data.item_columns,
        user_dnn_hidden_units=units,
        dnn_dropout=dropout,
        temperature=temperature,
        num_sampled=min(200 if num_sampled is None else num_sampled, drawable),
        item_counts=data.item_counts,
        seed=seed,
        **options,
    )


def embed(model, data, batch_size=4096):
    """`(user_vectors, item_vectors)` of the evaluation users and all items."""
    return (
        predict_every_row(model.user_model, data.eval_user_inputs, batch_size),
        predict_every_row(model.item_model, data.item_inputs, batch_size),
    )


def exact_hit_rates(model, data, ks=KS):
    """Exact-search metrics on the evaluation targets (no exclusion)."""
    users, items = embed(model, data)
    index = BruteForceItemIndex("angular").build(data.item_codes, items)
    ids, _ = index.query(users, max(ks))
    return retrieval_metrics(ids, data.eval_targets, ks)


class RetrievalMonitor(keras.callbacks.Callback):
    """Records exact HitRate@K / NDCG@10 on the evaluation targets after each epoch.

    For curves only: nothing is selected on these numbers.
    """

    def __init__(self, data, ks=KS):
        super().__init__()
        self.data = data
        self.ks = ks
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        metrics = exact_hit_rates(self.model, self.data, self.ks)
        metrics["epoch"] = epoch + 1
        metrics["loss"] = float((logs or {}).get("loss", float("nan")))
        self.history.append(metrics)
        if logs is not None:
            for k in self.ks:
                logs[f"hit_rate@{k}"] = metrics[f"hit_rate@{k}"]


def train_recall(
    name,
    data,
    epochs=10,
    batch_size=256,
    learning_rate=1e-3,
    temperature=0.05,
    seed=1024,
    verbose=1,
    monitor=True,
    callbacks=(),
    backup_dir=None,
    strategy=None,
    best_metric=None,
    best_dir=None,
    jit_compile="auto",
    **model_kwargs,
):
    """Builds and trains a recall model; returns `(model, curves, seconds)`.

    Batches come from `epoch_batches`: a deterministic shuffle per epoch, so
    with `backup_dir` a run killed at any point and started again with the
    same arguments resumes from its last completed epoch and ends with the
    same weights as an uninterrupted run. With a `tf.distribute` `strategy`,
    the model is built and compiled in its scope and `batch_size` is the
    global batch.

    With `best_metric` (e.g. `"hit_rate@50"`, logged each epoch by the
    monitor on `data`'s evaluation targets, or `"loss"`), the weights of the
    best epoch are kept atomically in `best_dir` (an `AtomicBestWeights`,
    which may also be passed in `callbacks` instead) and restored when
    training ends, so the returned model is the best epoch. Selecting on a
    retrieval metric needs `data` prepared with `holdout="validation"`:
    selecting on the test target would leak it.

    `jit_compile` goes to `model.compile` (`True`: XLA, 1.3-1.5x faster on
    CPU with Keras's `Adam`, but lower DSSM quality on MovieLens; see
    `TwoTowerModel.compile`).
    """
    if best_metric is not None:
        if best_dir is None:
            raise ValueError(
                "`best_metric` needs `best_dir`, the folder of the best weights. "
                f"Received: best_metric={best_metric!r}, best_dir=None"
            )
        callbacks = [*callbacks, AtomicBestWeights(best_dir, monitor=best_metric)]
    for callback in callbacks:
        if isinstance(callback, AtomicBestWeights):
            _check_selection(callback.monitor, data, monitor)
    keras.utils.set_random_seed(seed)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build_recall_model(
            name, data, temperature=temperature, seed=seed, **model_kwargs
        )
        model.compile(keras.optimizers.Adam(learning_rate), jit_compile=jit_compile)
    start_epoch = 0
    extra = list(callbacks)
    if backup_dir is not None:
        start_epoch = min(restored_epoch(backup_dir), epochs)
        extra.append(AtomicBackupAndRestore(backup_dir))
    # The best-epoch callback sits in `extra` before the backup: an epoch is
    # considered for the best before it is marked done.
    dataset, steps = distributed_epoch_batches(
        strategy, data.train_inputs, batch_size, seed, epochs, start_epoch
    )
    monitor_cb = RetrievalMonitor(data) if monitor else None
    start = time.time()
    model.fit(
        dataset,
        epochs=epochs,
        steps_per_epoch=steps,
        shuffle=False,  # `epoch_batches` shuffles, deterministically per epoch
        verbose=verbose,
        callbacks=[*([monitor_cb] if monitor_cb else []), *extra],
    )
    seconds = time.time() - start
    return model, (monitor_cb.history if monitor_cb else []), seconds


def _check_selection(metric, data, monitor):
    retrieval = metric.startswith(("hit_rate@", "ndcg@", "recall@"))
    if retrieval and getattr(data, "holdout", "test") != "validation":
        raise ValueError(
            f"`best_metric` {metric!r} is measured on the test target of `data`; "
            "selecting on it leaks the test set. Prepare the training data with "
            "prepare_recall_data(..., holdout='validation'), or select on "
            f"'loss'. Received: best_metric={metric!r}"
        )
    if retrieval and not monitor:
        raise ValueError(
            f"`best_metric` {metric!r} is logged by the retrieval monitor; pass "
            f"monitor=True. Received: monitor={monitor!r}"
        )


def evaluate_recall(model, data, ks=KS, n_trees=50, search_k=-1):
    """Exact and Annoy metrics, with and without seen-item exclusion, plus popularity.

    Returns:
        dict with `exact`, `annoy` and `popularity` reports (see
        `keras_rec.retrieval.evaluate_retrieval`), and the built indexes under
        `indexes` (not JSON).
    """
    users, items = embed(model, data)
    exact = BruteForceItemIndex("angular").build(data.item_codes, items)
    annoy = AnnoyItemIndex("angular", n_trees=n_trees, search_k=search_k).build(
        data.item_codes, items
    )
    seen = data.eval_seen
    report = {
        "exact": evaluate_retrieval(
            exact, users, data.eval_targets, ks, seen_item_ids=seen
        ),
        "annoy": evaluate_retrieval(
            annoy,
            users,
            data.eval_targets,
            ks,
            seen_item_ids=seen,
            exact_index=exact,
        ),
        "popularity": popularity_baseline(
            data.train_item_codes, data.eval_targets, ks, seen_item_ids=seen
        ),
    }
    return report, {"exact": exact, "annoy": annoy, "items": items, "users": users}


def summary_rows(name, report, ks=KS):
    """Flat rows `(method, search, exclusion, metrics...)` for the result table."""
    rows = []
    for label, key in (("popularity", "popularity"), (name, "exact"), (name, "annoy")):
        entry = report[key]
        search = "-" if key == "popularity" else key
        for setting, metrics in entry["results"].items():
            row = {"method": label, "search": search, "seen": setting}
            for k in ks:
                row[f"HR@{k}"] = metrics[f"hit_rate@{k}"]
            row["NDCG@10"] = metrics["ndcg@10"]
            if "ann_recall@10" in metrics:
                row["ANN recall@10"] = metrics["ann_recall@10"]
            rows.append(row)
    return rows


def mean_std(values):
    values = np.asarray(values, dtype="float64")
    return float(values.mean()), float(values.std(ddof=1) if len(values) > 1 else 0.0)
