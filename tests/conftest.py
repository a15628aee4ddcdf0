"""Shared test fixtures.

Real data sets are never copied into the repository. Tests that need them read
`$KERAS_REC_DATA_DIR` (default: `../shared/data` beside the repository) and
skip with a clear reason when it is absent.
"""

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def shared_data_dir():
    """The directory holding the real data sets, or None when absent."""
    path = pathlib.Path(
        os.environ.get("KERAS_REC_DATA_DIR", REPO_ROOT.parent / "shared" / "data")
    )
    return path if path.is_dir() else None


@pytest.fixture
def real_data_dir():
    """`../shared/data` (or `$KERAS_REC_DATA_DIR`); skips the test when absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip(
            "real data not found: set KERAS_REC_DATA_DIR or place the data sets "
            "in ../shared/data (their licences forbid copying them into the repo)"
        )
    return path


@pytest.fixture
def movielens_100k_dir(real_data_dir):
    path = real_data_dir / "movielens-100k"
    if not (path / "u.data").is_file():
        pytest.skip(f"MovieLens 100K not found at {path}")
    return path


@pytest.fixture
def criteo_sample_path(real_data_dir):
    path = real_data_dir / "criteo-sample" / "kaggle_train_head1000.tsv"
    if not path.is_file():
        pytest.skip(f"Criteo sample not found at {path}")
    return path
