"""`TwoTowerModel`: user tower, item tower, cosine similarity, and a recall objective."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_rec.api_export import keras_rec_export
from keras_rec.distribute import is_multi_worker
from keras_rec.distribute import restore_compile
from keras_rec.layers.cosine_similarity import CosinSimilarity
from keras_rec.layers.cosine_similarity import check_temperature
from keras_rec.layers.frequency_estimator import StreamingFrequencyEstimator
from keras_rec.layers.in_batch_softmax import InBatchSoftmax
from keras_rec.layers.item_feature_table import ItemFeatureTable
from keras_rec.layers.sampled_softmax import CandidateSampler
from keras_rec.layers.sampled_softmax import SampledSoftmax
from keras_rec.models.input_fixes import InputFixes
from keras_rec.models.input_fixes import restore_step_ranks

LOSS_TYPES = ("softmax", "sampled_softmax", "binary")
USER_EMBEDDING = "user_embedding"
ITEM_EMBEDDING = "item_embedding"


@keras_rec_export
class TwoTowerModel(InputFixes, keras.Model):
    """A trained pair of towers whose L2-normalised outputs are compared by cosine.

    `DSSM` and `YoutubeDNN` return this model; a user can also wrap towers of
    their own. `towers` is a functional model from all features to
    `{"user_embedding": (batch, d), "item_embedding": (batch, d)}`; the
    `user_model` and `item_model` properties are views of it that share its
    weights, and are rebuilt from it after `keras.models.load_model`.

    `model(x)` returns the score of each (user, item) row: `cos / temperature`
    (or its sigmoid for `loss_type="binary"`). `fit` trains with the chosen
    objective; compile with an optimizer only (`model.compile("adam")`).

    Args:
        towers: functional `keras.Model` with the two named outputs.
        user_feature_names: list of str. Inputs of the user tower.
        item_feature_names: list of str. Inputs of the item tower.
        item_id_feature: str. The item-id input, used for accidental hits,
            log-Q correction and negative sampling.
        temperature: float > 0. Defaults to 0.05.
        loss_type: str. `"softmax"` (in-batch softmax, plus `num_sampled`
            shared uniform negatives if > 0: mixed negatives),
            `"sampled_softmax"` (softmax over the positive and `num_sampled`
            items drawn from the whole vocabulary) or `"binary"` (point-wise
            logistic loss on labelled pairs, negatives from the data
            pipeline). Defaults to `"softmax"`.
        num_items: int. Item vocabulary size (including id 0). Needed for
            sampling and for known-count log-Q correction.
        num_sampled: int. Sampled negatives per batch. Defaults to 0.
        sampler: str. `"uniform"` or `"unigram"` (counts ** 0.75). Defaults to
            `"uniform"`.
        item_counts: list of float, length `num_items`: known item
            frequencies, for the unigram sampler and for the log-Q correction
            (instead of the streaming estimate).
        logq_correction: bool. Correct in-batch logits by the items' sampling
            probability. Defaults to `True`.
        remove_accidental_hits: bool. Defaults to `True`.
        frequency_estimator: dict. Arguments of the
            `StreamingFrequencyEstimator` used when `item_counts` is not given.
        item_feature_table: `ItemFeatureTable` or dict name -> array
            `(num_items, ...)`: side features of sampled items.
        seed: int. Sampler seed.
        **kwargs: base `Model` arguments.
    """

    def __init__(
        self,
        towers,
        user_feature_names,
        item_feature_names,
        item_id_feature,
        temperature=0.05,
        loss_type="softmax",
        num_items=None,
        num_sampled=0,
        sampler="uniform",
        item_counts=None,
        logq_correction=True,
        remove_accidental_hits=True,
        frequency_estimator=None,
        item_feature_table=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss_type not in LOSS_TYPES:
            raise ValueError(
                f"`loss_type` must be one of {LOSS_TYPES}. Received: loss_type={loss_type!r}"
            )
        self.temperature = check_temperature(temperature)
        self.towers = towers
        self.user_feature_names = list(user_feature_names)
        self.item_feature_names = list(item_feature_names)
        self.item_id_feature = item_id_feature
        self.loss_type = loss_type
        self.num_items = num_items
        self.num_sampled = int(num_sampled)
        self.sampler_name = sampler
        self.logq_correction = logq_correction
        self.remove_accidental_hits = remove_accidental_hits
        self.seed = seed
        self._check_towers()
        # With a vocabulary or hashing on the item id, the objective works on
        # the codes the towers' own lookup layer produces.
        self._item_lookup = _find_lookup(self.towers, item_id_feature)
        if self._item_lookup is not None and (
            loss_type == "sampled_softmax" or int(num_sampled) > 0
        ):
            raise ValueError(
                "Sampled negatives are drawn as integer codes, so the item id "
                f"feature '{item_id_feature}' must be integer-encoded (no "
                "`vocabulary` / `use_hash`). Use loss_type='softmax' with "
                "num_sampled=0 for raw item ids."
            )
        if item_id_feature not in self.item_feature_names:
            raise ValueError(
                f"`item_id_feature` must be one of the item features "
                f"{self.item_feature_names}. Received: item_id_feature={item_id_feature!r}"
            )
        needs_vocab = loss_type == "sampled_softmax" or self.num_sampled > 0
        if needs_vocab and not num_items:
            raise ValueError(
                f"`num_items` is required with loss_type={loss_type!r} and "
                f"num_sampled={num_sampled}. Received: num_items={num_items!r}"
            )
        if loss_type == "sampled_softmax" and self.num_sampled < 1:
            raise ValueError(
                "`num_sampled` must be >= 1 for loss_type='sampled_softmax'. "
                f"Received: num_sampled={num_sampled}"
            )
        self.similarity = CosinSimilarity(
            temperature, normalize=False, name="similarity"
        )
        if loss_type == "sampled_softmax":
            self.objective = SampledSoftmax(temperature, remove_accidental_hits)
        elif loss_type == "softmax":
            self.objective = InBatchSoftmax(temperature, remove_accidental_hits)
        else:
            self.objective = None
        self.sampler = None
        if self.num_sampled and loss_type != "binary":
            self.sampler = CandidateSampler(
                num_items,
                self.num_sampled,
                distribution=sampler,
                item_counts=item_counts if sampler == "unigram" else None,
                seed=seed,
                name="candidate_sampler",
            )
        self.frequency_estimator = None
        self.item_probability = None
        self.frequency_estimator_config = frequency_estimator
        if loss_type == "softmax" and logq_correction:
            if item_counts is not None:
                counts = np.asarray(item_counts, dtype="float64")
                if num_items is not None and len(counts) != num_items:
                    raise ValueError(
                        f"`item_counts` must have num_items={num_items} entries. "
                        f"Received: {len(counts)}"
                    )
                self.item_probability = self.add_weight(
                    name="item_probability",
                    shape=(len(counts),),
                    initializer=keras.initializers.Constant(
                        counts / max(counts.sum(), 1.0)
                    ),
                    trainable=False,
                )
            else:
                self.frequency_estimator = StreamingFrequencyEstimator(
                    **(frequency_estimator or {}), name="frequency_estimator"
                )
        if isinstance(item_feature_table, dict) and "class_name" in item_feature_table:
            item_feature_table = keras.saving.deserialize_keras_object(
                item_feature_table
            )
        elif isinstance(item_feature_table, dict):
            item_feature_table = ItemFeatureTable.from_arrays(
                item_feature_table, name="item_feature_table"
            )
        self.item_feature_table = item_feature_table
        self.loss_tracker = keras.metrics.Mean(name="loss")
        # Everything with weights is built already (the towers are functional).
        self.built = True
        # Views of `towers`; stored outside Keras's attribute tracking so their
        # (shared) weights are saved once, under `towers`.
        object.__setattr__(self, "_user_model", self._sub_model("user"))
        object.__setattr__(self, "_item_model", self._sub_model("item"))

    # ------------------------------------------------------------- structure
    def _check_towers(self):
        if not isinstance(self.towers, keras.Model) or not hasattr(
            self.towers, "get_layer"
        ):
            raise TypeError(
                f"`towers` must be a functional keras.Model. Received: {self.towers!r}"
            )
        outputs = self.towers.output
        if not isinstance(outputs, dict) or set(outputs) != {
            USER_EMBEDDING,
            ITEM_EMBEDDING,
        }:
            raise ValueError(
                "`towers` must output a dict with keys 'user_embedding' and "
                f"'item_embedding'. Received: {outputs!r}"
            )
        user_dim = outputs[USER_EMBEDDING].shape[-1]
        item_dim = outputs[ITEM_EMBEDDING].shape[-1]
        if user_dim != item_dim:
            raise ValueError(
                "The user and item towers must output embeddings of the same "
                f"dimension. Received: user tower {user_dim}, item tower {item_dim}"
            )
        names = {t.name for t in self.towers.inputs}
        for side, wanted in (
            ("user", self.user_feature_names),
            ("item", self.item_feature_names),
        ):
            missing = [n for n in wanted if n not in names]
            if missing:
                raise ValueError(
                    f"{side} features {missing} are not inputs of `towers` "
                    f"({sorted(names)})"
                )

    def _sub_model(self, side):
        names = self.user_feature_names if side == "user" else self.item_feature_names
        inputs = [t for t in self.towers.inputs if t.name in names]
        output_name = USER_EMBEDDING if side == "user" else ITEM_EMBEDDING
        return keras.Model(
            inputs, self.towers.output[output_name], name=f"{side}_model"
        )

    @property
    def user_model(self):
        """`keras.Model` from user features to the normalised user embedding."""
        return self._user_model

    @property
    def item_model(self):
        """`keras.Model` from item features to the normalised item embedding."""
        return self._item_model

    # DeepMatch's names, so that its scripts' `Model(inputs=model.user_input,
    # outputs=model.user_embedding)` builds the user tower as they expect.
    @property
    def user_input(self):
        """The user tower's `keras.Input` tensors (DeepMatch's name)."""
        return self._user_model.inputs

    @property
    def user_embedding(self):
        """The user tower's normalised output tensor (DeepMatch's name)."""
        return self._user_model.output

    @property
    def item_input(self):
        """The item tower's `keras.Input` tensors (DeepMatch's name)."""
        return self._item_model.inputs

    @property
    def item_embedding(self):
        """The item tower's normalised output tensor (DeepMatch's name)."""
        return self._item_model.output

    @property
    def embedding_dim(self):
        return self.towers.output[USER_EMBEDDING].shape[-1]

    # ------------------------------------------------------------- inference
    def call(self, inputs, training=None):
        out = self.towers(inputs, training=training)
        score = self.similarity([out[USER_EMBEDDING], out[ITEM_EMBEDDING]])
        return ops.sigmoid(score) if self.loss_type == "binary" else score

    # -------------------------------------------------------------- training
    def embed_items(self, ids, training=False):
        """Item-tower embeddings of arbitrary item ids (e.g. sampled negatives)."""
        features = {self.item_id_feature: ids}
        if self.item_feature_table is not None:
            features.update(self.item_feature_table(ids))
        missing = [n for n in self.item_feature_names if n not in features]
        if missing:
            raise ValueError(
                f"Sampled negatives need the item side features {missing}: pass "
                "`item_feature_table` (one row per item id) to the model."
            )
        return self.item_model(features, training=training)

    def _item_codes(self, x):
        """Integer codes of the batch's items (raw ids go through the lookup)."""
        ids = ops.reshape(x[self.item_id_feature], (-1,))
        if self._item_lookup is not None:
            ids = self._item_lookup(ids)
        return ids

    def _objective_loss(self, x, y, training):
        out = self.towers(x, training=training)
        query, candidates = out[USER_EMBEDDING], out[ITEM_EMBEDDING]
        if self.loss_type == "binary":
            if y is None:
                raise ValueError("loss_type='binary' needs labels `y` in `fit`.")
            logits = self.similarity([query, candidates])
            labels = ops.reshape(ops.cast(y, logits.dtype), ops.shape(logits))
            return keras.losses.binary_crossentropy(labels, logits, from_logits=True)
        item_ids = self._item_codes(x)
        if self.loss_type == "sampled_softmax":
            sampled_ids, true_count, sampled_count = self.sampler(item_ids)
            sampled = self.embed_items(sampled_ids, training=training)
            return self.objective(
                query,
                candidates,
                sampled,
                positive_ids=item_ids,
                sampled_ids=sampled_ids,
                true_expected_count=true_count,
                sampled_expected_count=sampled_count,
            )
        # Under a distribution strategy every replica scores its queries
        # against the candidates of the whole global batch.
        positive_ids = item_ids
        candidates, item_ids, label_offset = _gather_across_replicas(
            candidates, item_ids
        )
        probability = None
        if self.item_probability is not None:
            probability = ops.take(self.item_probability, item_ids, axis=0)
        elif self.frequency_estimator is not None:
            probability = self.frequency_estimator(item_ids)
            if training:
                self.frequency_estimator.update(item_ids)
        extra = {}
        if self.sampler is not None:
            sampled_ids, _, sampled_count = self.sampler(item_ids)
            extra = dict(
                extra_candidates=self.embed_items(sampled_ids, training=training),
                extra_ids=sampled_ids,
                # Expected count among the sampled items, the same scale as
                # the in-batch probability (expected count within a batch).
                extra_sampling_probability=(
                    sampled_count if self.logq_correction else None
                ),
            )
        return self.objective(
            query,
            candidates,
            candidate_ids=item_ids,
            candidate_sampling_probability=probability,
            label_offset=label_offset,
            positive_ids=positive_ids,
            **extra,
        )

    def _weighted_mean(self, per_example, sample_weight):
        if sample_weight is None:
            return ops.mean(per_example)
        weight = ops.reshape(ops.cast(sample_weight, per_example.dtype), (-1,))
        return ops.sum(per_example * weight) / ops.cast(
            ops.shape(per_example)[0], per_example.dtype
        )

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
            restore_step_ranks(data, self.towers.inputs)
        )
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss = self._weighted_mean(
                self._objective_loss(x, y, training=True), sample_weight
            )
            total = loss + ops.sum(self.losses) if self.losses else loss
            # Gradients of all replicas are summed; scale so they average.
            scaled = total / replicas
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        self.loss_tracker.update_state(loss)
        return self._logs()

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
            restore_step_ranks(data, self.towers.inputs)
        )
        loss = self._weighted_mean(
            self._objective_loss(x, y, training=False), sample_weight
        )
        self.loss_tracker.update_state(loss)
        return self._logs()

    def predict_step(self, data):
        # A feature fed as a vector in one call and a column in the next.
        return super().predict_step(restore_step_ranks(data, self.towers.inputs))

    def _logs(self):
        result = self.loss_tracker.result()
        if is_multi_worker(self.distribute_strategy):
            # Keras averages logs across workers along axis 0, which a scalar
            # does not have (Keras 3 with MultiWorkerMirroredStrategy).
            result = ops.reshape(result, (1,))
        return {"loss": result}

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # The towers are built at construction, so Keras's symbolic build has
        # only the optimizer left to do. Its generic version also averages a
        # batch across replicas first, which fails for dict inputs under
        # MultiWorkerMirroredStrategy; build the optimizer directly instead.
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def compile(self, optimizer="adam", jit_compile="auto", **kwargs):
        """Like `keras.Model.compile`; the loss is the model's own objective.

        `jit_compile` keeps Keras's meaning (`"auto"`: off on CPU-only
        machines). With Keras's `Adam`, `jit_compile=True` trains 1.3-1.5x
        faster on CPU; with `LazyAdam` (fused dense updates) the plain step
        is as fast (BENCHMARKS.md). It is not the default: on MovieLens 100K
        DSSM's final HR@50 came out lower under XLA on 8 of 10 seeds. With
        sampled negatives (`num_sampled > 0`) `"auto"` is always off:
        TensorFlow's candidate samplers have no XLA kernel.
        """
        if kwargs.get("loss") is not None:
            raise ValueError(
                "TwoTowerModel trains with its own objective (loss_type="
                f"{self.loss_type!r}); do not pass `loss`. Received: "
                f"loss={kwargs['loss']!r}"
            )
        if jit_compile == "auto" and self.sampler is not None:
            jit_compile = False
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def compile_from_config(self, config):
        # Keras skips (with a warning) restoring the compile state of models
        # that override `compile`; ours only rejects a loss, so restore it.
        restore_compile(self, config, drop=("loss",))

    # ---------------------------------------------------------- serialization
    def get_config(self):
        config = {
            "towers": keras.saving.serialize_keras_object(self.towers),
            "user_feature_names": self.user_feature_names,
            "item_feature_names": self.item_feature_names,
            "item_id_feature": self.item_id_feature,
            "temperature": self.temperature,
            "loss_type": self.loss_type,
            "num_items": self.num_items,
            "num_sampled": self.num_sampled,
            "sampler": self.sampler_name,
            "item_counts": (
                self.sampler.item_counts
                if self.sampler is not None and self.sampler_name == "unigram"
                else None
            ),
            "logq_correction": self.logq_correction,
            "remove_accidental_hits": self.remove_accidental_hits,
            "frequency_estimator": self.frequency_estimator_config,
            "item_feature_table": (
                keras.saving.serialize_keras_object(self.item_feature_table)
                if self.item_feature_table is not None
                else None
            ),
            "seed": self.seed,
        }
        if self.item_probability is not None and config["item_counts"] is None:
            # The known probabilities are restored with the weights; any
            # positive placeholder of the right length rebuilds the variable.
            config["item_counts"] = [1.0] * int(self.item_probability.shape[0])
        return {"name": self.name, "trainable": self.trainable, **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["towers"] = keras.saving.deserialize_keras_object(config["towers"])
        return cls(**config)


def _gather_across_replicas(candidates, ids):
    """All replicas' candidates and ids, and this replica's label offset.

    Outside a strategy (or with one replica) returns the inputs and offset 0.
    `all_gather` has a gradient, so each replica's loss trains the other
    replicas' item-tower outputs too, as in single-device training on the
    global batch.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return candidates, ids, 0
    local = ops.shape(candidates)[0]
    offset = ops.cast(context.replica_id_in_sync_group, "int32") * local
    return (
        context.all_gather(candidates, axis=0),
        context.all_gather(ids, axis=0),
        offset,
    )


def _find_lookup(towers, feature_name):
    """The lookup layer applied directly to `feature_name`'s input, if any."""
    for layer in towers.layers:
        if not layer.name.startswith("lookup_"):
            continue
        for node in layer._inbound_nodes:
            if any(t.name == feature_name for t in node.input_tensors):
                return layer
    return None
