"""The recall protocol's data: leave-last-out targets, history features, item table.

Protocol (the one `bench/retrieval_quality.py` and `keras-rec train` use):
every interaction is a positive; each user's interactions are sorted by
(timestamp, item id); the last one is the test target and the rest is
training (with `holdout="validation"`, the second-to-last is the target and
the last is dropped, so hyperparameters never see the test target). Each
training position t >= 1 is an example predicting item t from the previous up
to `maxlen` items. At evaluation the user is embedded from the last up to
`maxlen` training items.
"""

import dataclasses

import numpy as np
import pandas as pd

from keras_rec.datasets.preprocessing import build_history_sequences
from keras_rec.datasets.preprocessing import encode_ids
from keras_rec.datasets.preprocessing import example_age
from keras_rec.datasets.preprocessing import leave_last_out_split
from keras_rec.datasets.preprocessing import pad_sequences
from keras_rec.datasets.preprocessing import user_histories
from keras_rec.features.columns import DenseFeat
from keras_rec.features.columns import SparseFeat
from keras_rec.features.columns import VarLenSparseFeat

HOLDOUTS = ("test", "validation")


@dataclasses.dataclass
class RecallData:
    """Everything a recall model needs to train and be evaluated.

    Item ids inside the model are codes `1..num_items-1`; `item_vocabulary`
    maps code `i` back to the raw id `item_vocabulary[i - 1]`. `holdout` says
    which item the `eval_*` targets are: `"test"` or `"validation"`.
    """

    user_columns: list
    item_columns: list
    train_inputs: dict
    eval_user_inputs: dict
    eval_user_ids: np.ndarray
    eval_targets: np.ndarray
    eval_seen: list
    item_inputs: dict
    item_codes: np.ndarray
    item_vocabulary: np.ndarray
    item_counts: np.ndarray
    train_item_codes: np.ndarray
    num_items: int
    holdout: str = "test"

    @property
    def num_train_examples(self):
        return len(self.train_inputs["item_id"])


def prepare_recall_data(
    interactions,
    users=None,
    user_attributes=(),
    maxlen=50,
    recent=10,
    last_item=False,
    embedding_dim=32,
    example_age_feature=False,
    holdout="test",
):
    """Builds the recall protocol's inputs from an interaction log.

    Args:
        interactions: DataFrame with `user_id, item_id, timestamp`.
        users: DataFrame with `user_id` and the columns in
            `user_attributes`, or None.
        user_attributes: sequence of str. Categorical user columns used as
            user-tower features (encoded here to 1..n).
        maxlen: int. Longest history (`hist_item_id`, mean-pooled).
            Defaults to 50.
        recent: int. Length of the `recent_item_id` feature (the last items
            of the history, mean-pooled on their own so the tower can weigh
            recency); 0 disables it. Defaults to 10.
        last_item: bool. Add `last_item_id`, the most recent history item on
            its own (a window of one, the Markov signal of next-item
            prediction). Defaults to False.
        embedding_dim: int. Width of every embedding. Defaults to 32.
        example_age_feature: bool. Add YouTube's `example_age` dense feature
            (log days between the event and the end of training; for an
            evaluated user, the age of their last training event; 0 when
            serving "now").
        holdout: str. `"test"` (last item per user) or `"validation"`
            (second-to-last, last dropped). Defaults to `"test"`.

    Returns:
        A `RecallData`.
    """
    if holdout not in HOLDOUTS:
        raise ValueError(f"`holdout` must be one of {HOLDOUTS}. Received: {holdout!r}")
    missing = {"user_id", "item_id", "timestamp"} - set(interactions.columns)
    if missing:
        raise ValueError(
            f"`interactions` lacks column(s) {sorted(missing)}. "
            f"Received columns: {list(interactions.columns)}"
        )
    if len(interactions) == 0:
        raise ValueError(
            "`interactions` is empty. Received: 0 rows with columns "
            f"{list(interactions.columns)}"
        )
    events = interactions[["user_id", "item_id", "timestamp"]].copy()
    codes, item_vocabulary = encode_ids(events["item_id"].to_numpy())
    events["item_id"] = codes
    num_items = len(item_vocabulary) + 1
    if holdout == "validation":
        events, _ = leave_last_out_split(events)
    train, test = leave_last_out_split(events)
    if len(test) == 0:
        raise ValueError("No user has two or more interactions: nothing to evaluate.")

    examples = build_history_sequences(train, maxlen=maxlen)
    history = user_histories(train, maxlen=maxlen).set_index("user_id")
    history = history.loc[test["user_id"].to_numpy()]

    item_table = SparseFeat("item_id", num_items, embedding_dim)
    user_columns = [
        VarLenSparseFeat(
            SparseFeat(
                "hist_item_id", num_items, embedding_dim, embedding_name="item_id"
            ),
            maxlen=maxlen,
        )
    ]
    train_inputs = {"hist_item_id": pad_sequences(examples["hist_item_id"], maxlen)}
    eval_inputs = {"hist_item_id": pad_sequences(history["hist_item_id"], maxlen)}
    if recent:
        user_columns.append(
            VarLenSparseFeat(
                SparseFeat(
                    "recent_item_id", num_items, embedding_dim, embedding_name="item_id"
                ),
                maxlen=recent,
            )
        )
        train_inputs["recent_item_id"] = pad_sequences(examples["hist_item_id"], recent)
        eval_inputs["recent_item_id"] = pad_sequences(history["hist_item_id"], recent)
    if last_item:
        user_columns.append(
            VarLenSparseFeat(
                SparseFeat(
                    "last_item_id", num_items, embedding_dim, embedding_name="item_id"
                ),
                maxlen=1,
            )
        )
        train_inputs["last_item_id"] = pad_sequences(examples["hist_item_id"], 1)
        eval_inputs["last_item_id"] = pad_sequences(history["hist_item_id"], 1)
    if user_attributes:
        if users is None:
            raise ValueError(
                f"`user_attributes` {list(user_attributes)} need the `users` table."
            )
        table = users.set_index("user_id")
        for name in user_attributes:
            if name not in table.columns:
                raise ValueError(
                    f"User attribute '{name}' is not a column of `users` "
                    f"({list(table.columns)})"
                )
            attribute_codes, vocabulary = encode_ids(table[name].to_numpy())
            lookup = pd.Series(attribute_codes, index=table.index)
            user_columns.append(SparseFeat(name, len(vocabulary) + 1, embedding_dim))
            train_inputs[name] = _lookup(lookup, examples["user_id"])
            eval_inputs[name] = _lookup(lookup, test["user_id"])
    if example_age_feature:
        user_columns.append(DenseFeat("example_age"))
        reference = train["timestamp"].max()
        train_inputs["example_age"] = example_age(
            examples["timestamp"].to_numpy(), reference_time=reference
        ).reshape(-1, 1)
        # Offline, each evaluated user acts at their own time, not at the end
        # of the log: their age is that of their last training event (known
        # before the target). In serving the feature is 0: "now".
        last_time = train.groupby("user_id")["timestamp"].max()
        eval_inputs["example_age"] = example_age(
            last_time.loc[test["user_id"].to_numpy()].to_numpy(),
            reference_time=reference,
        ).reshape(-1, 1)
    train_inputs["item_id"] = examples["item_id"].to_numpy().astype("int32")

    seen = train.groupby("user_id")["item_id"].apply(lambda s: s.to_numpy())
    item_counts = np.bincount(train["item_id"].to_numpy(), minlength=num_items)
    item_codes = np.arange(1, num_items, dtype="int32")
    return RecallData(
        user_columns=user_columns,
        item_columns=[item_table],
        train_inputs=train_inputs,
        eval_user_inputs=eval_inputs,
        eval_user_ids=test["user_id"].to_numpy(),
        eval_targets=test["item_id"].to_numpy(),
        eval_seen=[seen.loc[u] for u in test["user_id"].to_numpy()],
        item_inputs={"item_id": item_codes},
        item_codes=item_codes,
        item_vocabulary=np.asarray(item_vocabulary),
        item_counts=item_counts.astype("float64"),
        train_item_codes=train["item_id"].to_numpy(),
        num_items=num_items,
        holdout=holdout,
    )


def _lookup(series, keys):
    values = series.reindex(np.asarray(keys)).fillna(0).to_numpy()
    return values.astype("int32")
