"""Packaging for keras_rec (distribution name ``keras-rec``)."""

import pathlib
import re

from setuptools import find_packages
from setuptools import setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "keras_rec" / "version.py").read_text()
).group(1)

setup(
    name="keras-rec",
    version=VERSION,
    description=(
        "Two-stage recommender toolkit (DSSM, YoutubeDNN, DeepFM, DIN) "
        "on Keras 3 and TensorFlow, with Annoy recall and TF Serving export."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_rec", "keras_rec.*"]),
    install_requires=[
        "tensorflow>=2.16,<3",
        "keras>=3.0,<4",
        "numpy>=1.23",
        "pandas>=1.5",
        "scikit-learn>=1.2",
        "annoy>=1.17",
        "h5py>=3.8",
        "matplotlib>=3.6",
    ],
    extras_require={
        # The optional backends are tested too, so the test extra pulls them in.
        "test": [
            "pytest>=7",
            "hypothesis>=6.80",
            "ruff>=0.5",
            "hnswlib>=0.8",
            "pyarrow>=12",
        ],
        "bench": ["hnswlib>=0.8", "psutil>=5.9", "pyarrow>=12"],
        "hnsw": ["hnswlib>=0.8"],
        "parquet": ["pyarrow>=12"],
        "serving": ["tensorflow-serving-api>=2.16"],
    },
    entry_points={"console_scripts": ["keras-rec=keras_rec.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
