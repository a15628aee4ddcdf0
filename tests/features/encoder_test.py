"""`FeatureEncoder`: inputs, shared tables, lookups, masks and the linear logit."""

import keras
import numpy as np
import pytest

from keras_rec.features import DenseFeat
from keras_rec.features import FeatureEncoder
from keras_rec.features import SparseFeat
from keras_rec.features import VarLenSparseFeat
from tests.layers.checks import assert_saved_model_round_trip

D = 4
USER = SparseFeat("user_id", 10, D)
CITY = SparseFeat("city", vocabulary=["a", "b", "c"], embedding_dim=D)
ITEM = SparseFeat("item_id", vocabulary=[10, 20, 30], embedding_dim=D)
HIST = VarLenSparseFeat(
    SparseFeat(
        "hist", vocabulary=[10, 20, 30], embedding_dim=D, embedding_name="item_id"
    ),
    maxlen=4,
)
TAGS = VarLenSparseFeat(
    SparseFeat("tags", 6, D),
    maxlen=3,
    combiner="sum",
    length_name="tags_len",
    weight_name="tags_w",
)
DEVICE = SparseFeat("device", 8, D, dtype="string", use_hash=True)
RAW_ID = SparseFeat("raw_id", 8, D, dtype="int64", use_hash=True)
PRICE = DenseFeat("price", 2)
# A string sequence sharing the table (and the StringLookup) of `city`.
GENRES = VarLenSparseFeat(
    SparseFeat(
        "genres", vocabulary=["a", "b", "c"], embedding_dim=D, embedding_name="city"
    ),
    maxlen=3,
    combiner="max",
)
COLUMNS = [USER, CITY, ITEM, HIST, TAGS, DEVICE, RAW_ID, GENRES, PRICE]
SPARSE = [USER, CITY, ITEM, HIST, TAGS, DEVICE, RAW_ID, GENRES]

DATA = {
    "user_id": np.array([1, 9, 0], "int32"),
    "city": np.array(["a", "c", "zz"], dtype=object),
    "item_id": np.array([20, 99, 0], "int32"),
    "hist": np.array([[10, 30, 0, 0], [99, 20, 20, 0], [0, 0, 0, 0]], "int32"),
    "tags": np.array([[1, 2, 3], [4, 0, 0], [5, 5, 5]], "int32"),
    "tags_len": np.array([2, 1, 0], "int32"),
    "tags_w": np.array([[0.5, 2.0, 9.0], [3.0, 9.0, 9.0], [1.0, 1.0, 1.0]], "float32"),
    "device": np.array(["ios", "", "android"], dtype=object),
    "raw_id": np.array([123456789012, 0, 7], "int64"),
    # Keras's array adapter takes only 1-D object arrays of str, so a padded
    # string sequence goes in as a tensor.
    "genres": keras.ops.convert_to_tensor(
        np.array([["b", "", ""], ["zz", "c", "a"], ["", "", ""]], dtype=object),
        dtype="string",
    ),
    "price": np.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]], "float32"),
}
# Expected indices after the in-model lookups (0 = padding / unknown).
CITY_IDS = np.array([1, 3, 0])
ITEM_IDS = np.array([2, 0, 0])
HIST_IDS = np.array([[1, 3, 0, 0], [0, 2, 2, 0], [0, 0, 0, 0]])
GENRE_IDS = np.array([[2, 0, 0], [0, 3, 1], [0, 0, 0]])


def table(layer):
    return keras.ops.convert_to_numpy(layer.embeddings).astype("float64")


def np_pool(rows, mask, combiner, weights=None):
    """rows (batch, T, d), mask (batch, T) -> (batch, d)."""
    if weights is not None:
        rows = rows * weights[..., None]
    out = np.zeros((rows.shape[0], rows.shape[2]))
    for i in range(len(rows)):
        valid = rows[i][mask[i]]
        if len(valid):
            out[i] = {"sum": np.sum, "mean": np.mean, "max": np.max}[combiner](valid, 0)
    return out


@pytest.fixture(scope="module")
def encoded():
    """One encoder and one model exposing every method's output."""
    keras.utils.set_random_seed(0)
    encoder = FeatureEncoder(COLUMNS, seed=7)
    outputs = {f"ids_{c.name}": encoder.ids(c) for c in SPARSE}
    outputs.update({f"emb_{k}": v for k, v in encoder.embeddings().items()})
    outputs.update({f"pool_{k}": v for k, v in encoder.pooled_embeddings().items()})
    outputs["dnn"] = encoder.dnn_input()
    outputs["stacked"] = encoder.stacked_embeddings()
    outputs["linear"] = encoder.linear_logit(seed=3)
    model = keras.Model(encoder.inputs, outputs)
    return encoder, model, model.predict(DATA, verbose=0)


def test_one_input_per_feature_with_name_shape_dtype(encoded):
    encoder, _, _ = encoded
    expected = {
        "user_id": ((None,), "int32"),
        "city": ((None,), "string"),
        "item_id": ((None,), "int32"),
        "hist": ((None, 4), "int32"),
        "tags": ((None, 3), "int32"),
        "tags_len": ((None,), "int32"),
        "tags_w": ((None, 3), "float32"),
        "device": ((None,), "string"),
        "raw_id": ((None,), "int64"),
        "genres": ((None, 3), "string"),
        "price": ((None, 2), "float32"),
    }
    assert list(encoder.inputs) == list(expected)
    for name, (shape, dtype) in expected.items():
        tensor = encoder.inputs[name]
        assert tensor.name == name
        assert tuple(tensor.shape) == shape, name
        assert tensor.dtype == dtype, name
    assert encoder.input_list == list(encoder.inputs.values())
    assert [t.name for t in encoder.inputs_for([TAGS, USER])] == [
        "tags",
        "tags_len",
        "tags_w",
        "user_id",
    ]


def test_one_table_per_embedding_name_and_sharing_shares_the_variable(encoded):
    encoder, model, out = encoded
    assert sorted(encoder.tables) == sorted(
        ["user_id", "city", "item_id", "tags", "device", "raw_id"]
    )
    shared = encoder.tables["item_id"]
    assert model.get_layer("emb_item_id") is shared
    assert [w for w in model.weights if w is shared.embeddings] == [shared.embeddings]
    assert len(model.get_layer("emb_item_id").weights) == 1
    embedding_layers = [
        layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)
    ]
    assert len(embedding_layers) == 6 + 6  # One table and one linear twin each.
    # Both features read the same rows: item 20 == hist item 20.
    np.testing.assert_array_equal(out["emb_item_id"][0], out["emb_hist"][1, 1])
    np.testing.assert_allclose(out["emb_item_id"][0], table(shared)[2], rtol=1e-6)
    assert len(encoder.lookups) == 4  # city, item_id (shared), device, raw_id


def test_vocabulary_lookups_map_unknown_and_padding_to_zero(encoded):
    _, _, out = encoded
    np.testing.assert_array_equal(out["ids_city"], CITY_IDS)
    np.testing.assert_array_equal(out["ids_item_id"], ITEM_IDS)
    np.testing.assert_array_equal(out["ids_hist"], HIST_IDS)
    np.testing.assert_array_equal(out["ids_genres"], GENRE_IDS)
    np.testing.assert_array_equal(out["ids_user_id"], DATA["user_id"])


def test_hashed_features_take_raw_values(encoded):
    _, _, out = encoded
    for name, mask_value in [("device", ""), ("raw_id", 0)]:
        reference = keras.layers.Hashing(num_bins=8, mask_value=mask_value)
        expected = keras.ops.convert_to_numpy(reference(DATA[name]))
        np.testing.assert_array_equal(out[f"ids_{name}"], expected)
    assert out["ids_device"][1] == 0  # "" is padding.
    assert out["ids_raw_id"][1] == 0  # 0 is padding.
    assert np.all((out["ids_device"][[0, 2]] >= 1) & (out["ids_device"][[0, 2]] < 8))


def test_scalar_embeddings_equal_table_rows(encoded):
    encoder, _, out = encoded
    np.testing.assert_allclose(
        out["emb_city"], table(encoder.tables["city"])[CITY_IDS], rtol=1e-6
    )
    np.testing.assert_allclose(
        out["emb_device"], table(encoder.tables["device"])[out["ids_device"]], rtol=1e-6
    )


def test_padding_is_masked_in_pooled_sequences(encoded):
    encoder, _, out = encoded
    rows = table(encoder.tables["item_id"])[HIST_IDS]
    # Unknown item 99 maps to index 0 and is masked like padding.
    expected = np_pool(rows, HIST_IDS != 0, "mean")
    np.testing.assert_allclose(out["pool_hist"], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(out["pool_hist"][2], 0.0)
    # Strings: "" (padding) and unknown "zz" map to 0 and are masked; max
    # pooling over the valid rows only.
    rows = table(encoder.tables["city"])[GENRE_IDS]
    expected = np_pool(rows, GENRE_IDS != 0, "max")
    np.testing.assert_allclose(out["pool_genres"], expected, rtol=1e-6)
    np.testing.assert_array_equal(out["pool_genres"][2], 0.0)


def test_length_name_masks_positions_from_length_on_and_weights_apply(encoded):
    encoder, _, out = encoded
    rows = table(encoder.tables["tags"])[DATA["tags"]]
    mask = np.arange(3)[None] < DATA["tags_len"][:, None]
    expected = np_pool(rows, mask, "sum", DATA["tags_w"])
    np.testing.assert_allclose(out["pool_tags"], expected, rtol=1e-5, atol=1e-7)
    # Row 0: 0.5 * e1 + 2.0 * e2; positions beyond the length (weight 9) ignored.
    tags = table(encoder.tables["tags"])
    np.testing.assert_allclose(
        out["pool_tags"][0], 0.5 * tags[1] + 2.0 * tags[2], rtol=1e-5
    )
    np.testing.assert_array_equal(out["pool_tags"][2], 0.0)


def test_dnn_input_concatenates_embeddings_then_dense(encoded):
    _, _, out = encoded
    assert out["dnn"].shape == (3, D * len(SPARSE) + 2)
    expected = np.concatenate(
        [
            out[f"pool_{c.name}"]
            if isinstance(c, VarLenSparseFeat)
            else out[f"emb_{c.name}"]
            for c in SPARSE
        ]
        + [DATA["price"]],
        axis=1,
    )
    np.testing.assert_allclose(out["dnn"], expected, rtol=1e-6)


def test_stacked_embeddings_shape_and_values(encoded):
    _, _, out = encoded
    assert out["stacked"].shape == (3, len(SPARSE), D)
    for f, column in enumerate(SPARSE):
        key = (
            f"pool_{column.name}"
            if isinstance(column, VarLenSparseFeat)
            else f"emb_{column.name}"
        )
        np.testing.assert_allclose(out["stacked"][:, f], out[key], rtol=1e-6)


def test_stacked_embeddings_needs_one_dimension():
    encoder = FeatureEncoder([SparseFeat("a", 5, 4), SparseFeat("b", 5, 3)])
    with pytest.raises(ValueError, match=r"\[3, 4\]"):
        encoder.stacked_embeddings()
    with pytest.raises(ValueError, match="at least one sparse"):
        FeatureEncoder([DenseFeat("x")]).stacked_embeddings()


def test_linear_logit_matches_numpy(encoded):
    encoder, model, out = encoded
    ids = {
        "user_id": DATA["user_id"],
        "city": CITY_IDS,
        "item_id": ITEM_IDS,
        "device": out["ids_device"],
        "raw_id": out["ids_raw_id"],
    }
    terms = []
    for column in SPARSE:
        weights = table(encoder.linear_tables[column.embedding_name])[..., 0]
        if column is HIST:
            terms.append(np_pool(weights[HIST_IDS][..., None], HIST_IDS != 0, "mean"))
        elif column is GENRES:
            terms.append(np_pool(weights[GENRE_IDS][..., None], GENRE_IDS != 0, "max"))
        elif column is TAGS:
            mask = np.arange(3)[None] < DATA["tags_len"][:, None]
            terms.append(
                np_pool(weights[DATA["tags"]][..., None], mask, "sum", DATA["tags_w"])
            )
        else:
            terms.append(weights[ids[column.name]][:, None])
    linear = model.get_layer("linear")
    kernel = keras.ops.convert_to_numpy(linear.kernel)
    bias = keras.ops.convert_to_numpy(linear.bias)
    expected = np.sum(terms, axis=0) + DATA["price"] @ kernel + bias
    assert sorted(encoder.linear_tables) == sorted(encoder.tables)
    assert all(t.output_dim == 1 for t in encoder.linear_tables.values())
    np.testing.assert_allclose(out["linear"], expected, rtol=1e-5, atol=1e-6)


def test_calling_methods_twice_reuses_layers():
    keras.utils.set_random_seed(0)
    encoder = FeatureEncoder(COLUMNS)
    first = [
        encoder.ids(HIST),
        encoder.embeddings()["city"],
        encoder.pooled_embeddings()["tags"],
        encoder.dense_values(),
        encoder.linear_logit(),
    ]
    model = keras.Model(
        encoder.inputs, [encoder.dnn_input(), encoder.stacked_embeddings(), first[-1]]
    )
    n_weights = len(model.weights)
    second = [
        encoder.ids(HIST),
        encoder.embeddings()["city"],
        encoder.pooled_embeddings()["tags"],
        encoder.dense_values(),
        encoder.linear_logit(),
    ]
    assert all(a is b for a, b in zip(first, second))
    # A second tower over a subset reuses the same tables; both logits fit
    # in one model (layer names stay unique).
    sub = encoder.linear_logit([USER, PRICE])
    model = keras.Model(
        encoder.inputs,
        [
            encoder.dnn_input(),
            encoder.stacked_embeddings(),
            first[-1],
            sub,
            encoder.dnn_input([USER]),
        ],
    )
    # The only new weights: the kernel and bias of the subset's Linear layer.
    assert len(model.weights) == n_weights + 2
    assert len({id(w) for w in model.weights}) == len(model.weights)


def test_resolve_and_argument_errors():
    encoder = FeatureEncoder([USER])
    with pytest.raises(ValueError, match="'city' is not one of this encoder's columns"):
        encoder.embeddings([CITY])
    with pytest.raises(ValueError, match="l2_reg_embedding=-1"):
        FeatureEncoder([USER], l2_reg_embedding=-1)
    with pytest.raises(ValueError, match="'item_id' and 'hist'"):
        FeatureEncoder(
            [
                ITEM,
                VarLenSparseFeat(SparseFeat("hist", 9, D, embedding_name="item_id"), 3),
            ]
        )


def test_l2_reg_embedding_adds_a_loss_per_table():
    encoder = FeatureEncoder([USER, CITY], l2_reg_embedding=0.01)
    model = keras.Model(encoder.inputs, encoder.dnn_input())
    model.predict(
        {"user_id": np.array([1]), "city": np.array(["a"], dtype=object)}, verbose=0
    )
    expected = sum(0.01 * np.sum(table(t) ** 2) for t in encoder.tables.values())
    assert sum(
        float(keras.ops.convert_to_numpy(v)) for v in model.losses
    ) == pytest.approx(expected, rel=1e-4)


def test_seed_makes_tables_reproducible():
    a, b = FeatureEncoder([USER, CITY], seed=11), FeatureEncoder([USER, CITY], seed=11)
    for name in a.tables:
        a.tables[name].build((None,))
        b.tables[name].build((None,))
        np.testing.assert_array_equal(table(a.tables[name]), table(b.tables[name]))


def test_encoder_model_saved_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    encoder = FeatureEncoder(COLUMNS)
    outputs = [encoder.dnn_input(), encoder.linear_logit(), encoder.ids(DEVICE)]
    model = keras.Model(encoder.inputs, outputs)
    assert_saved_model_round_trip(model, DATA, tmp_path)
