"""Tests of the package surface: the registry and the no-TensorFlow rule."""

import ast
import pathlib

import keras_rec.datasets as datasets
from keras_rec.datasets import DATASETS
from keras_rec.datasets import make_synthetic

PACKAGE_DIR = pathlib.Path(datasets.__file__).parent


def test_registry_names_descriptions_and_loaders():
    for name in ("synthetic", "movielens-100k", "movielens-1m", "criteo"):
        assert name in DATASETS
    for info in DATASETS.values():
        assert isinstance(info.description, str) and len(info.description) > 20
        assert callable(info.loader)
        # Attribute, key and tuple access all work.
        assert info["description"] == info.description == info[0]
        description, loader = info
        assert description is info.description and loader is info["loader"]
    assert DATASETS["synthetic"].loader is make_synthetic
    assert DATASETS["movielens-1m"].loader.keywords == {"variant": "1m"}


def test_registry_loaders_run(movielens_100k_dir, tmp_path):
    ratings, _, _ = DATASETS["movielens-100k"].loader(
        data_dir=movielens_100k_dir, cache_dir=tmp_path
    )
    assert len(ratings) == 100_000
    interactions, users, items = DATASETS["synthetic"].loader(
        n_users=20, n_items=30, n_interactions=200
    )
    assert (len(interactions), len(users), len(items)) == (200, 20, 30)


def test_public_names_are_exported():
    for name in datasets.__all__:
        assert hasattr(datasets, name), name


def test_datasets_modules_import_neither_tensorflow_nor_keras():
    # streaming.py builds tf.data pipelines: the one module that needs TF.
    for path in PACKAGE_DIR.glob("*.py"):
        if path.name == "streaming.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                assert root not in ("tensorflow", "keras"), (path.name, name)
