"""DSSM / YoutubeDNN: towers, persistence, errors, and learning on synthetic data."""

import keras
import numpy as np
import pytest

import keras_rec as kr
from keras_rec.models import DSSM
from keras_rec.models import YoutubeDNN

NUM_ITEMS = 60
DIM = 8


def _columns(side_features=False):
    hist = kr.VarLenSparseFeat(
        kr.SparseFeat("hist_item_id", NUM_ITEMS, DIM, embedding_name="item_id"), 5
    )
    user = [hist, kr.SparseFeat("gender", 3, DIM), kr.DenseFeat("age")]
    item = [kr.SparseFeat("item_id", NUM_ITEMS, DIM)]
    if side_features:
        item.append(kr.SparseFeat("category", 6, DIM))
    return user, item


def _inputs(n=64, seed=0, side_features=False):
    rng = np.random.default_rng(seed)
    x = {
        "hist_item_id": rng.integers(0, NUM_ITEMS, size=(n, 5)).astype("int32"),
        "gender": rng.integers(1, 3, size=n).astype("int32"),
        "age": rng.random((n, 1)).astype("float32"),
        "item_id": rng.integers(1, NUM_ITEMS, size=n).astype("int32"),
    }
    if side_features:
        x["category"] = (x["item_id"] % 5 + 1).astype("int32")
    return x


def _builders():
    user, item = _columns()
    return {
        "dssm": lambda: DSSM(user, item, (16, DIM), (16, DIM)),
        "dssm_binary": lambda: DSSM(
            user, item, (16, DIM), (16, DIM), loss_type="binary"
        ),
        "youtubednn": lambda: YoutubeDNN(user, item, (16, DIM), num_sampled=10),
    }


@pytest.mark.parametrize("name", ["dssm", "dssm_binary", "youtubednn"])
def test_towers_match_full_model_and_survive_save_load(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = _builders()[name]()
    model.compile(keras.optimizers.Adam(1e-2))
    x = _inputs()
    y = np.random.default_rng(1).integers(0, 2, size=len(x["item_id"]))
    model.fit(
        x, y if name == "dssm_binary" else None, batch_size=16, epochs=1, verbose=0
    )

    users = model.user_model.predict(x, verbose=0)
    items = model.item_model.predict({"item_id": x["item_id"]}, verbose=0)
    np.testing.assert_allclose(np.linalg.norm(users, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, atol=1e-5)
    score = model.predict(x, verbose=0)[:, 0]
    cosine = (users * items).sum(axis=1) / model.temperature
    expected = 1 / (1 + np.exp(-cosine)) if name == "dssm_binary" else cosine
    np.testing.assert_allclose(score, expected, rtol=1e-4, atol=1e-4)

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        loaded.user_model.predict(x, verbose=0), users, atol=1e-6
    )
    np.testing.assert_allclose(
        loaded.item_model.predict({"item_id": x["item_id"]}, verbose=0),
        items,
        atol=1e-6,
    )
    np.testing.assert_allclose(loaded.predict(x, verbose=0)[:, 0], score, atol=1e-5)
    # Loaded towers still share the item table with the history feature.
    assert loaded.towers.get_layer("emb_item_id") is not None


def test_towers_share_weights_with_the_trained_model():
    model = _builders()["dssm"]()
    table = model.towers.get_layer("emb_item_id")
    user_tables = [x for x in model.user_model.layers if x.name == "emb_item_id"]
    item_tables = [x for x in model.item_model.layers if x.name == "emb_item_id"]
    assert user_tables[0] is table and item_tables[0] is table


def test_youtubednn_with_item_side_features_samples_their_features():
    user, item = _columns(side_features=True)
    categories = np.arange(NUM_ITEMS) % 5 + 1
    categories[0] = 0
    model = YoutubeDNN(
        user,
        item,
        (16, DIM),
        num_sampled=10,
        item_feature_table={"category": categories},
    )
    model.compile(keras.optimizers.Adam(1e-2))
    history = model.fit(_inputs(side_features=True), batch_size=16, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_mixed_negatives_train():
    user, item = _columns()
    model = DSSM(user, item, (16, DIM), (16, DIM), num_sampled=8)
    model.compile(keras.optimizers.Adam(1e-2))
    history = model.fit(_inputs(), batch_size=16, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_bad_arguments_name_the_argument():
    user, item = _columns()
    with pytest.raises(ValueError, match="temperature"):
        DSSM(user, item, temperature=0)
    with pytest.raises(ValueError, match="same width"):
        DSSM(user, item, (16, 8), (16, 4))
    with pytest.raises(ValueError, match="loss_type"):
        DSSM(user, item, loss_type="hinge")
    with pytest.raises(ValueError, match="embedding_dim"):
        YoutubeDNN(user, item, (16, DIM + 1))
    with pytest.raises(ValueError, match="item_id_feature"):
        DSSM(user, item, item_id_feature="nope")
    model = DSSM(user, item, (16, DIM), (16, DIM))
    with pytest.raises(ValueError, match="loss"):
        model.compile("adam", loss="mse")


def test_tower_dropout_masks_do_not_leak_the_pairing():
    # Users and items drawn independently: nothing to learn beyond a flat
    # popularity, so the in-batch loss must stay near log(batch). When both
    # towers shared one dropout seed, a row's user and item got the same
    # mask, and the model matched pairs by it: the loss fell far below.
    rng = np.random.default_rng(0)
    n, batch = 4096, 64
    x = {
        "hist_item_id": rng.integers(0, NUM_ITEMS, size=(n, 5)).astype("int32"),
        "gender": rng.integers(1, 3, size=n).astype("int32"),
        "age": rng.random((n, 1)).astype("float32"),
        "item_id": rng.integers(1, NUM_ITEMS, size=n).astype("int32"),
    }
    user, item = _columns()
    keras.utils.set_random_seed(0)
    model = DSSM(user, item, (32, DIM), (32, DIM), dnn_dropout=0.5, temperature=0.05)
    model.compile(keras.optimizers.Adam(1e-2))
    history = model.fit(x, batch_size=batch, epochs=3, verbose=0)
    # Accidental hits are removed, so the floor is a little under log(64).
    assert history.history["loss"][-1] > 0.8 * np.log(batch)


def test_deepmatch_style_tower_models_share_the_towers():
    # DeepMatch scripts build the towers from the model's tensors.
    keras.utils.set_random_seed(0)
    model = _builders()["dssm"]()
    model.compile("adagrad")
    x = _inputs()
    # DeepMatch's scripts pass dummy labels; the in-batch softmax ignores them.
    model.fit(x, np.ones(len(x["item_id"])), batch_size=16, verbose=0)
    user_embedding_model = keras.Model(
        inputs=model.user_input, outputs=model.user_embedding
    )
    item_embedding_model = keras.Model(
        inputs=model.item_input, outputs=model.item_embedding
    )
    user_x = {k: x[k] for k in ("hist_item_id", "gender", "age")}
    np.testing.assert_allclose(
        user_embedding_model.predict(user_x, verbose=0),
        model.user_model.predict(user_x, verbose=0),
        atol=1e-6,
    )
    items = {"item_id": np.arange(1, NUM_ITEMS, dtype="int32")}
    item_vectors = item_embedding_model.predict(items, verbose=0)
    np.testing.assert_allclose(
        item_vectors, model.item_model.predict(items, verbose=0), atol=1e-6
    )
    np.testing.assert_allclose(np.linalg.norm(item_vectors, axis=1), 1.0, atol=1e-5)
