"""Feature columns: validation messages, derived fields, serialization."""

import json

import keras
import numpy as np
import pytest

from keras_rec.features import DenseFeat
from keras_rec.features import SparseFeat
from keras_rec.features import VarLenSparseFeat
from keras_rec.features import check_feature_columns
from keras_rec.features import get_feature_names


@pytest.mark.parametrize("name", ["", "my feature", "1st", 3, None])
def test_bad_names_are_named(name):
    with pytest.raises(ValueError, match=rf"name={name!r}".replace("(", r"\(")):
        SparseFeat(name, 10)
    with pytest.raises(ValueError, match="name="):
        DenseFeat(name)


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "10"])
def test_bad_vocabulary_size_names_feature_and_value(size):
    with pytest.raises(ValueError, match=rf"'user_id'.*vocabulary_size={size!r}"):
        SparseFeat("user_id", size)


def test_numpy_integers_are_accepted_and_stored_as_int():
    # DeepCTR scripts pass `data[feat].max() + 1`, a NumPy integer.
    column = VarLenSparseFeat(
        SparseFeat("genres", np.int64(19), embedding_dim=np.int32(4)), np.int64(6)
    )
    assert (column.vocabulary_size, column.embedding_dim, column.maxlen) == (19, 4, 6)
    assert type(column.vocabulary_size) is int and type(column.maxlen) is int
    assert type(DenseFeat("age", np.int64(2)).dimension) is int
    json.dumps(keras.saving.serialize_keras_object(column))
    with pytest.raises(ValueError, match="vocabulary_size=np.True_"):
        SparseFeat("user_id", np.bool_(True))
    with pytest.raises(ValueError, match="maxlen=np.int64.0."):
        VarLenSparseFeat(SparseFeat("genres", 19), np.int64(0))


def test_missing_vocabulary_size():
    with pytest.raises(ValueError, match="'user_id'.*vocabulary_size=None"):
        SparseFeat("user_id")


@pytest.mark.parametrize("dim", [0, -1, 1.5])
def test_bad_embedding_dim_names_feature_and_value(dim):
    with pytest.raises(
        ValueError, match=rf"embedding_dim.*'item_id'.*embedding_dim={dim}"
    ):
        SparseFeat("item_id", 10, embedding_dim=dim)


def test_bad_dtypes():
    with pytest.raises(ValueError, match="'x'.*dtype='float32'"):
        SparseFeat("x", 10, dtype="float32")
    with pytest.raises(ValueError, match="'age'.*dtype='int32'"):
        DenseFeat("age", dtype="int32")
    with pytest.raises(ValueError, match="'age'.*dimension=0"):
        DenseFeat("age", dimension=0)


def test_string_dtype_needs_vocabulary_or_hash():
    with pytest.raises(ValueError, match="'city'.*dtype='string'"):
        SparseFeat("city", 10, dtype="string")
    assert SparseFeat("city", 10, dtype="string", use_hash=True).needs_lookup


def test_vocabulary_and_hash_are_exclusive():
    with pytest.raises(ValueError, match="'city'.*use_hash=True"):
        SparseFeat("city", vocabulary=["a", "b"], use_hash=True)


def test_hash_needs_at_least_two_bins():
    with pytest.raises(ValueError, match="'city'.*vocabulary_size=1"):
        SparseFeat("city", 1, use_hash=True)


def test_duplicate_vocabulary_names_the_duplicates():
    with pytest.raises(ValueError, match=r"'city'.*duplicate.*\['b'\]"):
        SparseFeat("city", vocabulary=["a", "b", "c", "b"])
    with pytest.raises(ValueError, match=r"'item'.*duplicate.*\[3\]"):
        SparseFeat("item", vocabulary=[3, 1, 3])


def test_vocabulary_content_errors():
    with pytest.raises(ValueError, match="'city'.*vocabulary=\\[\\]"):
        SparseFeat("city", vocabulary=[])
    with pytest.raises(TypeError, match="'city'.*only strings or only integers"):
        SparseFeat("city", vocabulary=["a", 1])
    with pytest.raises(TypeError, match="'city'"):
        SparseFeat("city", vocabulary=[[1], [2]])
    with pytest.raises(TypeError, match="'flag'"):
        SparseFeat("flag", vocabulary=[True, False])
    with pytest.raises(ValueError, match="'city'.*= 3.*vocabulary_size=5"):
        SparseFeat("city", 5, vocabulary=["a", "b"])


def test_dtype_must_match_the_vocabulary():
    with pytest.raises(ValueError, match="'city'.*strings.*dtype='int64'"):
        SparseFeat("city", vocabulary=["a", "b"], dtype="int64")
    with pytest.raises(ValueError, match="'item'.*integers.*dtype='string'"):
        SparseFeat("item", vocabulary=[1, 2], dtype="string")
    with pytest.raises(ValueError, match="'item'.*int32 range.*dtype='int32'"):
        SparseFeat("item", vocabulary=[1, 2**40])
    assert SparseFeat("item", vocabulary=[1, 2**40], dtype="int64").dtype == "int64"


def test_derived_fields():
    city = SparseFeat("city", vocabulary=["paris", "rome", "oslo"])
    assert city.vocabulary_size == 4
    assert city.dtype == "string"
    assert city.vocabulary == ("paris", "rome", "oslo")
    assert city.embedding_name == "city"
    assert city.needs_lookup
    item = SparseFeat("item", vocabulary=[10, 20], dtype="int64")
    assert (item.vocabulary_size, item.dtype) == (3, "int64")
    assert SparseFeat("item", vocabulary=[10, 20]).dtype == "int32"
    plain = SparseFeat("user", 100)
    assert not plain.needs_lookup and plain.embedding_dim == 8


def test_varlen_validation_and_accessors():
    item = SparseFeat("hist", 50, 4, embedding_name="item")
    seq = VarLenSparseFeat(item, maxlen=5, combiner="sum", length_name="hist_len")
    assert (seq.name, seq.vocabulary_size, seq.embedding_dim) == ("hist", 50, 4)
    assert (seq.embedding_name, seq.dtype, seq.group_name) == (
        "item",
        "int32",
        "default_group",
    )
    with pytest.raises(ValueError, match="'hist'.*combiner='avg'"):
        VarLenSparseFeat(item, maxlen=5, combiner="avg")
    with pytest.raises(ValueError, match="'hist'.*maxlen=0"):
        VarLenSparseFeat(item, maxlen=0)
    with pytest.raises(TypeError, match="sparsefeat=DenseFeat"):
        VarLenSparseFeat(DenseFeat("x"), maxlen=3)
    with pytest.raises(ValueError, match="'hist'.*length_name='hist'"):
        VarLenSparseFeat(item, maxlen=3, length_name="hist")
    with pytest.raises(ValueError, match="weight_name='bad name'"):
        VarLenSparseFeat(item, maxlen=3, weight_name="bad name")
    with pytest.raises(ValueError, match="'hist'.*'n'"):
        VarLenSparseFeat(item, maxlen=3, length_name="n", weight_name="n")


def test_sequence_vocabulary_must_not_hold_the_padding_value():
    with pytest.raises(ValueError, match="'hist'.*padding value ''"):
        VarLenSparseFeat(SparseFeat("hist", vocabulary=["", "a"]), maxlen=3)
    with pytest.raises(ValueError, match="'hist'.*padding value 0"):
        VarLenSparseFeat(SparseFeat("hist", vocabulary=[0, 7]), maxlen=3)


COLUMNS = [
    SparseFeat("user_id", 100, 4, group_name="user"),
    SparseFeat(
        "city",
        vocabulary=["a", "b"],
        embeddings_initializer={
            "class_name": "RandomNormal",
            "config": {"stddev": 0.01},
        },
    ),
    SparseFeat("device", 16, 4, dtype="int64", use_hash=True, trainable=False),
    DenseFeat("price", 3, dtype="float64"),
    VarLenSparseFeat(
        SparseFeat("hist", vocabulary=[5, 6, 7], embedding_name="item"),
        maxlen=4,
        combiner="max",
        length_name="hist_len",
        weight_name="hist_w",
    ),
]


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: c.name)
def test_config_round_trip(column):
    config = column.get_config()
    json.dumps(config)
    clone = column.__class__.from_config(json.loads(json.dumps(config)))
    assert clone == column
    assert clone.get_config() == config


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: c.name)
def test_keras_serialization_round_trip(column):
    serialized = keras.saving.serialize_keras_object(column)
    assert serialized["registered_name"] == f"keras_rec>{type(column).__name__}"
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert restored == column
    assert type(restored) is type(column)


def test_varlen_config_nests_a_serialized_sparsefeat():
    config = COLUMNS[-1].get_config()
    assert config["sparsefeat"]["registered_name"] == "keras_rec>SparseFeat"
    assert isinstance(VarLenSparseFeat.from_config(config).sparsefeat, SparseFeat)


def test_check_feature_columns_shared_table_mismatch_names_both_features():
    item = SparseFeat("item_id", 100, 8)
    with pytest.raises(
        ValueError,
        match="'item_id' and 'hist_item'.*'item_id'.*vocabulary_size.*100.*99",
    ):
        check_feature_columns(
            [
                item,
                VarLenSparseFeat(
                    SparseFeat("hist_item", 99, 8, embedding_name="item_id"), 5
                ),
            ]
        )
    with pytest.raises(ValueError, match="'item_id' and 'other'.*embedding_dim.*8.*4"):
        check_feature_columns(
            [item, SparseFeat("other", 100, 4, embedding_name="item_id")]
        )
    with pytest.raises(ValueError, match="'a' and 'b'.*dtype.*'string'.*'int64'"):
        check_feature_columns(
            [
                SparseFeat("a", 10, dtype="string", use_hash=True, embedding_name="t"),
                SparseFeat("b", 10, dtype="int64", use_hash=True, embedding_name="t"),
            ]
        )


def test_check_feature_columns_accepts_consistent_sharing_and_dedups():
    item = SparseFeat("item_id", 100, 8)
    hist = VarLenSparseFeat(SparseFeat("hist", 100, 8, embedding_name="item_id"), 5)
    assert check_feature_columns([item, hist, item]) == [item, hist]
    assert check_feature_columns(item) == [item]


def test_check_feature_columns_errors():
    with pytest.raises(ValueError, match="Two different feature columns are named 'x'"):
        check_feature_columns([SparseFeat("x", 10), SparseFeat("x", 11)])
    with pytest.raises(TypeError, match="Received an element: 'x'"):
        check_feature_columns(["x"])
    with pytest.raises(TypeError, match="cols="):
        check_feature_columns("x", argument="cols")
    seq = VarLenSparseFeat(SparseFeat("hist", 10), 3, length_name="age")
    with pytest.raises(ValueError, match="clash.*'age'"):
        check_feature_columns([seq, DenseFeat("age")])


def test_get_feature_names_lists_every_model_input_once_deepctr_style():
    from keras_rec.models import DIN

    hist = VarLenSparseFeat(
        SparseFeat("hist_item_id", 20, 4, embedding_name="item_id"),
        maxlen=5,
        length_name="hist_len",
        weight_name="hist_weight",
    )
    item = SparseFeat("item_id", 20, 4)
    columns = [SparseFeat("user_id", 10, 4), item, DenseFeat("price"), hist]
    # The linear and DNN lists of a DeepCTR script overlap; each name once.
    names = get_feature_names(columns + [item])
    assert names == [
        "user_id",
        "item_id",
        "price",
        "hist_item_id",
        "hist_len",
        "hist_weight",
    ]
    model = DIN(columns, ["item_id"], dnn_hidden_units=(4,), att_hidden_units=(4,))
    assert sorted(names) == sorted(t.name for t in model.inputs)
    with pytest.raises(TypeError, match="feature columns"):
        get_feature_names("user_id")
