"""`FeatureEncoder`: keras.Input layers and shared embedding tables for any model."""

import itertools

import keras

from keras_rec.features.columns import DenseFeat
from keras_rec.features.columns import SparseFeat
from keras_rec.features.columns import VarLenSparseFeat
from keras_rec.features.columns import check_feature_columns
from keras_rec.layers.fused_embedding import FusedEmbedding
from keras_rec.layers.linear import Linear
from keras_rec.layers.masking import PaddingMask
from keras_rec.layers.sequence_pooling import SequencePoolingLayer


def _with_seed(identifier, seed):
    initializer = keras.initializers.get(identifier)
    config = initializer.get_config()
    if "seed" in config and seed is not None:
        initializer = initializer.__class__.from_config({**config, "seed": seed})
    return initializer


class FeatureEncoder:
    """Builds the inputs and the shared embedding tables of a model.

    One `keras.Input` per feature (named after it; scalar sparse features have
    shape `()`, sequences `(maxlen,)`, dense features `(dimension,)`), plus
    one int input per `length_name` and one float input per `weight_name`.
    Exactly one embedding table per `embedding_name`, and one lookup layer
    (`StringLookup` / `IntegerLookup` / `Hashing`) per table whose columns
    carry a vocabulary or hashing. Every method may be called several times
    and on any subset of the columns: layers are created once and reused, so
    features and towers share weights.

    Args:
        feature_columns: list of `SparseFeat`, `DenseFeat`, `VarLenSparseFeat`.
        l2_reg_embedding: float. L2 penalty on the embedding tables.
            Defaults to 0.
        seed: int. Seed of the table initializers. Defaults to 1024.
        fuse_tables: bool. Store the tables of the scalar `SparseFeat`s that
            share an `embedding_dim` (and `trainable`) in one `FusedEmbedding`
            layer (`emb_fused_d<dim>`), and their linear weights likewise
            (`linear_fused_d1`), so a batch makes one gather, one sparse
            gradient and one optimizer update per group instead of one per
            table. Tables that need a lookup layer or that a
            `VarLenSparseFeat` reads stay separate, as does a group of one.
            The values (initial, looked up, regularised) are those of the
            separate tables; only the variables' layout changes, and with it
            `tables` / `linear_tables`, which then hold the separate tables
            only (`fused_tables` / `fused_linear_tables` hold the rest).
            Defaults to `False`.

    Example:

    >>> encoder = FeatureEncoder([SparseFeat("user_id", 100, 8), DenseFeat("age")])
    >>> x = encoder.dnn_input()  # (batch, 9)
    >>> model = keras.Model(encoder.input_list, keras.layers.Dense(1)(x))
    """

    def __init__(
        self, feature_columns, l2_reg_embedding=0.0, seed=1024, fuse_tables=False
    ):
        self.feature_columns = check_feature_columns(feature_columns)
        if l2_reg_embedding < 0:
            raise ValueError(
                "`l2_reg_embedding` must be >= 0. "
                f"Received: l2_reg_embedding={l2_reg_embedding}"
            )
        self.l2_reg_embedding = l2_reg_embedding
        self.seed = seed
        self.columns = {c.name: c for c in self.feature_columns}
        self.inputs = {}
        for column in self.feature_columns:
            self.inputs[column.name] = keras.Input(
                shape=self._input_shape(column),
                dtype=column.dtype,
                name=column.name,
            )
            if isinstance(column, VarLenSparseFeat):
                if column.length_name and column.length_name not in self.inputs:
                    self.inputs[column.length_name] = keras.Input(
                        shape=(), dtype="int32", name=column.length_name
                    )
                if column.weight_name and column.weight_name not in self.inputs:
                    self.inputs[column.weight_name] = keras.Input(
                        shape=(column.maxlen,),
                        dtype="float32",
                        name=column.weight_name,
                    )
        self.fuse_tables = bool(fuse_tables)
        self.tables = {}
        self.lookups = {}
        self.linear_tables = {}
        self.fused_tables = {}
        self.fused_linear_tables = {}
        # embedding_name -> (FusedEmbedding, table index) of a fused table.
        self._slots = {}
        self._linear_slots = {}
        members = []
        for i, column in enumerate(self.sparse_columns(self.feature_columns)):
            sparse = _as_sparse(column)
            if sparse.needs_lookup and sparse.embedding_name not in self.lookups:
                self.lookups[sparse.embedding_name] = _lookup_layer(sparse)
            initializer = _with_seed(
                sparse.embeddings_initializer, None if seed is None else seed + i
            )
            members.append((column, initializer))
        self._add_tables(
            members,
            "emb",
            self.tables,
            self.fused_tables,
            self._slots,
            l2_reg_embedding,
        )
        self._ids = {}
        self._embedded = {}
        self._pooled = {}
        self._dense = {}
        self._linear_terms = {}
        self._linear = {}
        self._fused_lookups = {}

    # ---------------------------------------------------------------- tables
    def _fusable(self, column):
        """Whether a column's table (and linear weights) may join a fused table."""
        if not (self.fuse_tables and isinstance(column, SparseFeat)):
            return False
        return not column.needs_lookup and not any(
            c.embedding_name == column.embedding_name
            for c in self.varlen_columns(self.feature_columns)
        )

    def _add_tables(self, members, prefix, tables, fused, slots, l2_reg, width=None):
        """Creates the tables of `members` [(column, initializer)], in place.

        Tables already created and repeated embedding_names are skipped. A
        fusable table joins the `FusedEmbedding` `<prefix>_fused_d<width>` of
        its width and `trainable` if it has company there; any other gets its
        own `Embedding` `<prefix>_<embedding_name>`. `width` defaults to the
        column's `embedding_dim`.
        """
        regularizer = keras.regularizers.L2(l2_reg) if l2_reg else None
        groups = {}
        for column, initializer in members:
            sparse = _as_sparse(column)
            name = sparse.embedding_name
            if name in tables or name in slots:
                continue
            # Linear weights (`width` given) are trained whatever the column says.
            trainable = sparse.trainable if width is None else True
            key = (width or sparse.embedding_dim, trainable)
            group = groups.setdefault(key if self._fusable(column) else name, {})
            group.setdefault(name, (sparse, initializer, trainable))
        for key, group in groups.items():
            if len(group) == 1:
                ((name, (sparse, initializer, trainable)),) = group.items()
                tables[name] = keras.layers.Embedding(
                    sparse.vocabulary_size,
                    width or sparse.embedding_dim,
                    embeddings_initializer=initializer,
                    embeddings_regularizer=regularizer,
                    trainable=trainable,
                    name=f"{prefix}_{name}",
                )
                continue
            dim, trainable = key
            name = f"{prefix}_fused_d{dim}" + ("" if trainable else "_frozen")
            name += f"_{len(fused)}" if name in fused else ""
            layer = FusedEmbedding(
                [sparse.vocabulary_size for sparse, _, _ in group.values()],
                dim,
                [initializer for _, initializer, _ in group.values()],
                regularizer,
                trainable=trainable,
                name=name,
            )
            fused[name] = layer
            slots.update({n: (layer, k) for k, n in enumerate(group)})

    def _blocks(self, columns, slots, separate):
        """The sparse columns' lookups, in column order, one block per run.

        A run of consecutive columns of one fused table is one gather,
        `(batch, k, width)`; the other runs give `separate(run)`.
        """
        blocks = []
        runs = itertools.groupby(
            self.sparse_columns(columns),
            key=lambda c: slots.get(c.embedding_name, (None,))[0],
        )
        for layer, run in runs:
            run = list(run)
            if layer is None:
                blocks += separate(run)
            else:
                blocks.append(self._fused_lookup(run, slots))
        return blocks

    def _fused_lookup(self, columns, slots):
        """`(batch, k, width)`: one gather of k columns from their fused table."""
        layer = slots[columns[0].embedding_name][0]
        key = (layer.name, tuple(c.name for c in columns))
        if key not in self._fused_lookups:
            self._fused_lookups[key] = layer(
                [self.ids(c) for c in columns],
                tables=tuple(slots[c.embedding_name][1] for c in columns),
            )
        return self._fused_lookups[key]

    # ------------------------------------------------------------------ inputs
    @property
    def input_list(self):
        """The inputs as a list, in column order (length/weight inputs after)."""
        return list(self.inputs.values())

    def inputs_for(self, columns):
        """The inputs a subset of columns needs, as a list (for sub-models)."""
        names = []
        for column in self._resolve(columns):
            names.append(column.name)
            if isinstance(column, VarLenSparseFeat):
                names += [n for n in (column.length_name, column.weight_name) if n]
        return [self.inputs[n] for n in dict.fromkeys(names)]

    # ------------------------------------------------------- column selection
    def _resolve(self, columns):
        if columns is None:
            return list(self.feature_columns)
        resolved = []
        for column in check_feature_columns(columns, "columns"):
            if column.name not in self.columns:
                raise ValueError(
                    f"Feature '{column.name}' is not one of this encoder's columns: "
                    f"{sorted(self.columns)}"
                )
            resolved.append(self.columns[column.name])
        return resolved

    @staticmethod
    def sparse_columns(columns):
        return [c for c in columns if isinstance(c, (SparseFeat, VarLenSparseFeat))]

    @staticmethod
    def scalar_sparse_columns(columns):
        return [c for c in columns if isinstance(c, SparseFeat)]

    @staticmethod
    def varlen_columns(columns):
        return [c for c in columns if isinstance(c, VarLenSparseFeat)]

    @staticmethod
    def dense_columns(columns):
        return [c for c in columns if isinstance(c, DenseFeat)]

    # ---------------------------------------------------------------- lookups
    def ids(self, column):
        """Integer ids of a sparse column (after the in-model lookup, if any)."""
        column = self._resolve([column])[0]
        if column.name not in self._ids:
            x = self.inputs[column.name]
            lookup = self.lookups.get(column.embedding_name)
            if lookup is not None:
                x = lookup(x)
            self._ids[column.name] = x
        return self._ids[column.name]

    def embeddings(self, columns=None):
        """Per-feature embeddings of the sparse columns, by name.

        Returns:
            Dict name -> tensor: `(batch, d)` for `SparseFeat`, `(batch, T, d)`
            with a padding mask attached for `VarLenSparseFeat`.
        """
        out = {}
        for column in self.sparse_columns(self._resolve(columns)):
            if (
                column.name not in self._embedded
                and column.embedding_name in self._slots
            ):
                x = self._fused_lookup([column], self._slots)
                x = keras.layers.Reshape(x.shape[-1:])(x)
                self._embedded[column.name] = x
            if column.name not in self._embedded:
                table = self.tables[column.embedding_name]
                ids = self.ids(column)
                x = table(ids)
                if isinstance(column, VarLenSparseFeat):
                    if column.length_name:
                        key, mode = self.inputs[column.length_name], "length"
                    else:
                        key, mode = ids, "ids"
                    x = PaddingMask(mode=mode, name=f"mask_{column.name}")([x, key])
                self._embedded[column.name] = x
            out[column.name] = self._embedded[column.name]
        return out

    def pooled_embeddings(self, columns=None):
        """Pooled `(batch, d)` embeddings of the variable-length columns, by name."""
        out = {}
        for column in self.varlen_columns(self._resolve(columns)):
            if column.name not in self._pooled:
                sequence = self.embeddings([column])[column.name]
                pool = SequencePoolingLayer(column.combiner, name=f"pool_{column.name}")
                if column.weight_name:
                    pooled = pool(sequence, weights=self.inputs[column.weight_name])
                else:
                    pooled = pool(sequence)
                self._pooled[column.name] = pooled
            out[column.name] = self._pooled[column.name]
        return out

    def sparse_embedding_list(self, columns=None):
        """One `(batch, d)` vector per sparse column: scalars, then pooled sequences."""
        columns = self._resolve(columns)
        scalars = self.embeddings(self.scalar_sparse_columns(columns))
        pooled = self.pooled_embeddings(self.varlen_columns(columns))
        return [
            scalars[c.name] if isinstance(c, SparseFeat) else pooled[c.name]
            for c in self.sparse_columns(columns)
        ]

    def stacked_embeddings(self, columns=None):
        """`(batch, fields, d)`: the sparse fields stacked, for FM and attention.

        All fields must share one embedding dimension.
        """
        blocks = self._embedding_blocks(columns)
        if not blocks:
            raise ValueError("`stacked_embeddings` needs at least one sparse column.")
        dims = {v.shape[-1] for v in blocks}
        if len(dims) != 1:
            raise ValueError(
                "Stacking embeddings (e.g. for FM) needs one embedding_dim for all "
                f"sparse features. Received dims: {sorted(dims)}"
            )
        dim = dims.pop()
        blocks = [
            v if len(v.shape) == 3 else keras.layers.Reshape((1, dim))(v)
            for v in blocks
        ]
        return (
            blocks[0] if len(blocks) == 1 else keras.layers.Concatenate(axis=1)(blocks)
        )

    def _embedding_blocks(self, columns):
        """The sparse columns' embeddings: `(batch, k, d)` per fused run,
        `(batch, d)` per other column (pooled if a sequence)."""
        return self._blocks(
            self._resolve(columns), self._slots, self.sparse_embedding_list
        )

    def dense_values(self, columns=None):
        """`(batch, total_dim)` concatenation of the dense columns, or None."""
        dense = self.dense_columns(self._resolve(columns))
        if not dense:
            return None
        key = tuple(c.name for c in dense)
        if key not in self._dense:
            # Keras layers autocast floating inputs to their float32 compute
            # dtype, so float64 / float16 inputs need no explicit cast here.
            values = [self.inputs[c.name] for c in dense]
            self._dense[key] = (
                values[0]
                if len(values) == 1
                else keras.layers.Concatenate(axis=-1)(values)
            )
        return self._dense[key]

    def dnn_input(self, columns=None):
        """Flattened concatenation of sparse embeddings and dense values."""
        parts = [
            keras.layers.Reshape((v.shape[1] * v.shape[2],))(v)
            if len(v.shape) == 3
            else v
            for v in self._embedding_blocks(columns)
        ]
        dense = self.dense_values(columns)
        if dense is not None:
            parts.append(dense)
        if not parts:
            raise ValueError("`dnn_input` needs at least one feature column.")
        return parts[0] if len(parts) == 1 else keras.layers.Concatenate()(parts)

    # ------------------------------------------------------------ linear part
    def linear_logit(self, columns=None, l2_reg=0.0, seed=None):
        """First-order logit `(batch, 1)` over the given columns.

        Each sparse table gets a 1-dimensional twin (`linear_<embedding_name>`)
        holding one weight per id; sequences are pooled with their combiner
        (and their `weight_name` weights). Calling it again with the same
        columns returns the same tensor; `l2_reg` and `seed` are read when a
        table or the `Linear` layer is first created.
        """
        columns = self._resolve(columns)
        key = tuple(c.name for c in columns)
        if key in self._linear:
            return self._linear[key]
        sparse_columns = self.sparse_columns(columns)
        self._add_tables(
            [
                (
                    column,
                    _with_seed("random_normal", None if seed is None else seed + i),
                )
                for i, column in enumerate(sparse_columns)
            ],
            "linear",
            self.linear_tables,
            self.fused_linear_tables,
            self._linear_slots,
            l2_reg,
            width=1,
        )
        sparse_terms = [
            keras.layers.Reshape(v.shape[1:2])(v) if len(v.shape) == 3 else v
            for v in self._blocks(
                sparse_columns,
                self._linear_slots,
                lambda run: [self._linear_term(c) for c in run],
            )
        ]
        dense = self.dense_values(columns)
        sparse = None
        if sparse_terms:
            sparse = (
                sparse_terms[0]
                if len(sparse_terms) == 1
                else keras.layers.Concatenate()(sparse_terms)
            )
        # One `Linear` layer per column subset; names stay unique in a model.
        name = "linear" if not self._linear else f"linear_{len(self._linear)}"
        if sparse is not None and dense is not None:
            logit = Linear("both", l2_reg=l2_reg, name=name)([sparse, dense])
        elif sparse is not None:
            logit = Linear("sparse", name=name)(sparse)
        elif dense is not None:
            logit = Linear("dense", l2_reg=l2_reg, name=name)(dense)
        else:
            raise ValueError("`linear_logit` needs at least one feature column.")
        self._linear[key] = logit
        return logit

    def _linear_term(self, column):
        """`(batch, 1)`: the linear weight of a sparse column (pooled if a sequence)."""
        if column.name in self._linear_terms:
            return self._linear_terms[column.name]
        term = self.linear_tables[column.embedding_name](self.ids(column))
        if isinstance(column, VarLenSparseFeat):
            key, mode = (
                (self.inputs[column.length_name], "length")
                if column.length_name
                else (self.ids(column), "ids")
            )
            term = PaddingMask(mode=mode, name=f"linear_mask_{column.name}")(
                [term, key]
            )
            pool = SequencePoolingLayer(
                column.combiner, name=f"linear_pool_{column.name}"
            )
            if column.weight_name:
                term = pool(term, weights=self.inputs[column.weight_name])
            else:
                term = pool(term)
        self._linear_terms[column.name] = term
        return term

    @staticmethod
    def _input_shape(column):
        if isinstance(column, SparseFeat):
            return ()
        if isinstance(column, VarLenSparseFeat):
            return (column.maxlen,)
        return (column.dimension,)


def _as_sparse(column):
    return column.sparsefeat if isinstance(column, VarLenSparseFeat) else column


def _lookup_layer(sparse):
    name = f"lookup_{sparse.embedding_name}"
    if sparse.use_hash:
        mask_value = "" if sparse.dtype == "string" else 0
        return keras.layers.Hashing(
            num_bins=sparse.vocabulary_size, mask_value=mask_value, name=name
        )
    if sparse.dtype == "string":
        return keras.layers.StringLookup(
            vocabulary=list(sparse.vocabulary),
            num_oov_indices=1,
            mask_token=None,
            name=name,
        )
    return keras.layers.IntegerLookup(
        vocabulary=list(sparse.vocabulary),
        num_oov_indices=1,
        mask_token=None,
        vocabulary_dtype="int64",
        name=name,
    )
