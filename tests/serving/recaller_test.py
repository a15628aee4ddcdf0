"""`Recaller`: exported user tower + saved item index, as served."""

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from keras_rec.export import export_towers
from keras_rec.features import DenseFeat
from keras_rec.features import SparseFeat
from keras_rec.features import VarLenSparseFeat
from keras_rec.models import DSSM
from keras_rec.retrieval import AnnoyItemIndex
from keras_rec.retrieval import BruteForceItemIndex
from keras_rec.retrieval import HnswItemIndex
from keras_rec.serving import Recaller
from keras_rec.serving import UserFeatureStore
from keras_rec.serving import save_seen_items
from keras_rec.serving import save_user_features
from tests.export.conftest import spread_weights

NUM_ITEMS = 500
NUM_USERS = 120
MAXLEN = 6
DIM = 16
K = 10


def _columns():
    user = [
        SparseFeat(
            "user_id",
            vocabulary=tuple(f"user{i}" for i in range(NUM_USERS)),
            embedding_dim=DIM,
        ),
        VarLenSparseFeat(
            SparseFeat("hist_item_id", NUM_ITEMS + 1, DIM, embedding_name="item_id"),
            maxlen=MAXLEN,
            length_name="hist_len",
        ),
        DenseFeat("age", 1),
    ]
    item = [SparseFeat("item_id", NUM_ITEMS + 1, DIM), SparseFeat("category", 8, 4)]
    return user, item


def _user_features(rng, n, ids=None):
    lengths = rng.integers(0, MAXLEN + 1, size=n).astype("int32")
    hist = rng.integers(1, NUM_ITEMS + 1, size=(n, MAXLEN)).astype("int32")
    hist[np.arange(MAXLEN)[None, :] >= lengths[:, None]] = 0
    if ids is None:
        ids = np.asarray([f"user{i}" for i in rng.integers(0, NUM_USERS, size=n)])
    return {
        "user_id": ids,
        "hist_item_id": hist,
        "hist_len": lengths,
        "age": rng.normal(size=(n, 1)).astype("float32"),
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory as the main job writes it, plus the in-process model."""
    directory = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    user, item = _columns()
    model = DSSM(user, item, user_dnn_hidden_units=(DIM,), item_dnn_hidden_units=(DIM,))
    spread_weights(model.towers)
    item_ids = np.arange(1, NUM_ITEMS + 1)
    item_features = {
        "item_id": tf.constant(item_ids, dtype="int32"),
        "category": tf.constant(item_ids % 8, dtype="int32"),
    }
    item_embeddings = np.asarray(model.item_model(item_features))
    AnnoyItemIndex(n_trees=100, seed=0).build(item_ids, item_embeddings).save(
        directory / "index"
    )
    export_towers(model, directory)

    user_ids = np.asarray([f"user{i}" for i in range(NUM_USERS)])
    store = _user_features(rng, NUM_USERS, ids=user_ids)
    save_user_features(directory, user_ids, store)
    users = rng.integers(0, NUM_USERS, size=2000)
    seen_users, seen_items = user_ids[users], rng.integers(1, NUM_ITEMS + 1, size=2000)
    save_seen_items(directory, seen_users, seen_items)
    seen = {u: set(seen_items[seen_users == u].tolist()) for u in user_ids}
    exact = BruteForceItemIndex().build(item_ids, item_embeddings)
    return {
        "directory": directory,
        "model": model,
        "exact": exact,
        "store": store,
        "user_ids": user_ids,
        "seen": seen,
        "item_embeddings": item_embeddings,
    }


def _keras_embeddings(model, features):
    tensors = {k: tf.constant(v) for k, v in features.items()}
    return np.asarray(model.user_model(tensors))


def _overlap(a, b):
    return np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b)])


def test_recommend_matches_in_process_exact_search(run):
    recaller = Recaller.load(run["directory"])
    assert isinstance(recaller.index, AnnoyItemIndex)
    assert recaller.tower_path == str(run["directory"] / "user_tower" / "1")
    features = _user_features(np.random.default_rng(1), 64)
    ids, scores = recaller.recommend(features, k=K)
    assert ids.shape == scores.shape == (64, K)
    embeddings = _keras_embeddings(run["model"], features)
    np.testing.assert_allclose(recaller.embed(features), embeddings, atol=1e-5)
    exact_ids, exact_scores = run["exact"].query(embeddings, K)
    assert _overlap(ids, exact_ids) >= 0.95
    # Where the ids agree, the scores are the same cosine similarities.
    for row in range(64):
        common = np.intersect1d(ids[row], exact_ids[row])
        a = scores[row][np.isin(ids[row], common)]
        b = exact_scores[row][np.isin(exact_ids[row], common)]
        np.testing.assert_allclose(np.sort(a), np.sort(b), atol=1e-4)


def test_recommend_for_users_excludes_seen_items(run):
    recaller = Recaller.load(run["directory"])
    users = run["user_ids"][:40]
    ids, _ = recaller.recommend_for_users(users, k=K)
    assert ids.shape == (40, K)
    for user, row in zip(users, ids):
        assert not set(row.tolist()) & run["seen"][user]
    rows = np.arange(40)
    features = {k: v[rows] for k, v in run["store"].items()}
    embeddings = _keras_embeddings(run["model"], features)
    exclude = [sorted(run["seen"][u]) for u in users]
    exact_ids, _ = run["exact"].query(embeddings, K, exclude=exclude)
    assert _overlap(ids, exact_ids) >= 0.95
    # Without exclusion: the same as recommending from the stored features.
    unfiltered, _ = recaller.recommend_for_users(users, k=K, exclude_seen=False)
    np.testing.assert_array_equal(unfiltered, recaller.recommend(features, k=K)[0])
    # One id in, a batch of one out.
    single, _ = recaller.recommend_for_users(users[3], k=K)
    np.testing.assert_array_equal(single, ids[3:4])


def test_one_user_as_scalars_and_a_dataframe(run):
    recaller = Recaller.load(run["directory"])
    features = _user_features(np.random.default_rng(2), 5)
    batch_ids, batch_scores = recaller.recommend(features, k=K)
    one = {
        "user_id": str(features["user_id"][2]),
        "hist_item_id": features["hist_item_id"][2].tolist(),
        "hist_len": int(features["hist_len"][2]),
        "age": float(features["age"][2, 0]),  # a bare number for a (None, 1) input
        "ignored_extra": "x",
    }
    ids, scores = recaller.recommend(one, k=K)
    assert ids.shape == (1, K)
    np.testing.assert_array_equal(ids[0], batch_ids[2])
    np.testing.assert_allclose(scores[0], batch_scores[2], atol=1e-6)
    # A flat exclude list applies to the one user.
    excluded, _ = recaller.recommend(one, k=K, exclude=batch_ids[2][:3].tolist())
    assert not set(excluded[0]) & set(batch_ids[2][:3])
    np.testing.assert_array_equal(excluded[0][: K - 3], batch_ids[2][3:])
    frame = pd.DataFrame(
        {
            "user_id": features["user_id"],
            "hist_item_id": list(features["hist_item_id"]),
            "hist_len": features["hist_len"],
            "age": features["age"][:, 0],
        }
    )
    frame_ids, _ = recaller.recommend(frame, k=K)
    np.testing.assert_array_equal(frame_ids, batch_ids)


def test_unknown_raw_user_id_in_features_is_oov_not_an_error(run):
    recaller = Recaller.load(run["directory"])
    features = _user_features(np.random.default_rng(3), 2)
    features["user_id"] = np.asarray(["never-seen-user", "another-new-user"])
    ids, scores = recaller.recommend(features, k=K)
    assert np.isfinite(scores).all() and (ids > 0).all()


def test_highest_version_and_other_index_backends(run, tmp_path):
    directory = tmp_path / "run"
    shutil.copytree(run["directory"], directory)
    shutil.copytree(directory / "user_tower" / "1", directory / "user_tower" / "3")
    os.makedirs(directory / "user_tower" / "10")  # incomplete: no saved_model.pb
    shutil.rmtree(directory / "index")
    item_ids = np.arange(1, NUM_ITEMS + 1)
    HnswItemIndex(seed=0).build(item_ids, run["item_embeddings"]).save(
        directory / "index"
    )
    recaller = Recaller.load(directory)
    assert recaller.tower_path == str(directory / "user_tower" / "3")
    assert isinstance(recaller.index, HnswItemIndex)
    ids, _ = recaller.recommend_for_users(run["user_ids"][:10], k=K)
    reference, _ = Recaller.load(run["directory"]).recommend_for_users(
        run["user_ids"][:10], k=K
    )
    assert _overlap(ids, reference) >= 0.95


# ----------------------------------------------------------------------
# Errors.


def test_missing_pieces_are_named(run, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        Recaller.load(tmp_path / "nowhere")
    directory = tmp_path / "run"
    shutil.copytree(run["directory"], directory)

    shutil.move(directory / "user_tower", tmp_path / "tower_aside")
    with pytest.raises(FileNotFoundError, match=str(directory / "user_tower")):
        Recaller.load(directory)
    shutil.move(tmp_path / "tower_aside", directory / "user_tower")

    shutil.move(directory / "index", tmp_path / "index_aside")
    with pytest.raises(FileNotFoundError, match=str(directory / "index")):
        Recaller.load(directory)
    shutil.move(tmp_path / "index_aside", directory / "index")

    ann = directory / "index" / "index.ann"
    with open(ann, "r+b") as f:
        f.truncate(os.path.getsize(ann) // 2)
    with pytest.raises(ValueError, match="index.ann.*truncated"):
        Recaller.load(directory)
    os.remove(ann)
    with pytest.raises(FileNotFoundError, match="index.ann"):
        Recaller.load(directory)


def test_index_dimension_must_match_the_tower(run, tmp_path):
    directory = tmp_path / "run"
    shutil.copytree(run["directory"], directory, ignore=shutil.ignore_patterns("index"))
    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype("float32")
    BruteForceItemIndex().build(np.arange(50), vectors).save(directory / "index")
    with pytest.raises(
        ValueError,
        match=r"index'? has dimension 8.*user_tower/1'? "
        r"outputs embeddings of dimension 16",
    ):
        Recaller.load(directory)
    # The constructor checks the same, for pieces loaded by hand.
    recaller = Recaller.load(run["directory"])
    small = BruteForceItemIndex().build(np.arange(50), vectors)
    with pytest.raises(ValueError, match="dimension 8.*dimension 16"):
        Recaller(recaller._tower, small)


def test_unknown_user_and_bad_features(run, tmp_path):
    recaller = Recaller.load(run["directory"])
    with pytest.raises(KeyError, match="'nobody'"):
        recaller.recommend_for_users(["user1", "nobody"])
    with pytest.raises(KeyError, match="strings"):
        recaller.recommend_for_users([1, 2])
    features = _user_features(np.random.default_rng(4), 3)
    with pytest.raises(ValueError, match=r"lacks the user tower inputs \['hist_len'\]"):
        recaller.recommend({k: v for k, v in features.items() if k != "hist_len"})
    with pytest.raises(ValueError, match="'hist_item_id' must have shape"):
        recaller.recommend(
            {**features, "hist_item_id": features["hist_item_id"][:, :2]}
        )
    with pytest.raises(TypeError, match="'hist_len' takes integer ids"):
        recaller.recommend({**features, "hist_len": features["hist_len"] + 0.5})
    with pytest.raises(TypeError, match="signature"):
        Recaller(lambda **x: x, recaller.index)

    directory = tmp_path / "run"
    shutil.copytree(run["directory"], directory)
    os.remove(directory / "user_ids.npy")
    with pytest.raises(FileNotFoundError, match="user_ids.npy"):
        Recaller.load(directory)
    no_store = tmp_path / "no_store"
    shutil.copytree(
        run["directory"],
        no_store,
        ignore=shutil.ignore_patterns("user_ids.npy", "user_features.npz"),
    )
    with pytest.raises(ValueError, match="save_user_features"):
        Recaller.load(no_store).recommend_for_users(["user1"])


def test_save_user_features_keeps_the_latest_row_without_pickle(tmp_path):
    ids = np.asarray([5, 9, 5, 2])
    features = {
        "age": np.asarray([[1.0], [2.0], [3.0], [4.0]], dtype="float32"),
        "city": np.asarray(["a", "b", "c", "d"]),
    }
    ids_path, features_path = save_user_features(tmp_path, ids, features)
    stored_ids = np.load(ids_path, allow_pickle=False)
    assert stored_ids.dtype == np.int64 and sorted(stored_ids.tolist()) == [2, 5, 9]
    with np.load(features_path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["age", "city"]
    store = UserFeatureStore.load(tmp_path)
    rows = store.lookup(np.asarray([5, 2, 9]))
    np.testing.assert_array_equal(rows["age"][:, 0], [3.0, 4.0, 2.0])  # latest for 5
    np.testing.assert_array_equal(rows["city"], ["c", "d", "b"])
    assert sorted(os.listdir(tmp_path)) == ["user_features.npz", "user_ids.npy"]
    with pytest.raises(TypeError, match="object"):
        save_user_features(tmp_path, [1, 2], {"x": np.asarray([{}, {}], dtype=object)})
    with pytest.raises(ValueError, match="'age' has 4 rows"):
        save_user_features(tmp_path, [1, 2], {"age": features["age"]})
