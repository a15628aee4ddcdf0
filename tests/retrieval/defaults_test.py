"""The defaults the docstrings state are the defaults the code uses."""

import ast
import inspect
import re

import pytest

from keras_rec.retrieval import AnnoyItemIndex
from keras_rec.retrieval import BruteForceItemIndex
from keras_rec.retrieval import HnswItemIndex
from keras_rec.retrieval import ItemIndex

# Documented functions: `(owner of the Args section, function)`. A class
# documents its constructor's arguments; a method its own.
DOCUMENTED = [
    (AnnoyItemIndex, AnnoyItemIndex.__init__),
    (AnnoyItemIndex.query, AnnoyItemIndex.query),
    (BruteForceItemIndex, BruteForceItemIndex.__init__),
    (HnswItemIndex, HnswItemIndex.__init__),
    (HnswItemIndex.query, HnswItemIndex.query),
    (ItemIndex.query, ItemIndex.query),
]


def _documented_defaults(doc):
    """`{argument: default}` from the `Args:` section of a Keras-style docstring."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Args:") + 1
    block = []
    for line in lines[start:]:
        if not line.strip():
            break
        block.append(line)
    indent = min(len(line) - len(line.lstrip()) for line in block)
    entries = []
    for line in block:
        if len(line) - len(line.lstrip()) == indent:
            entries.append(line.strip())
        else:
            entries[-1] += " " + line.strip()
    defaults = {}
    for entry in entries:
        name = entry.split(":", 1)[0]
        found = re.search(r"Defaults to (.+?)\.$", entry)
        if found:
            defaults[name] = ast.literal_eval(found.group(1).strip("`"))
    return defaults


@pytest.mark.parametrize(
    "owner, function", DOCUMENTED, ids=lambda x: getattr(x, "__qualname__", "")
)
def test_documented_defaults_match_the_signature(owner, function):
    documented = _documented_defaults(inspect.getdoc(owner))
    parameters = inspect.signature(function).parameters
    actual = {
        name: p.default
        for name, p in parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    assert documented == actual


def test_defaults_are_the_benchmarked_ones():
    # Chosen from bench/retrieval_speed.py; the class docstrings report
    # their measured recall. Changing them means re-running the benchmark.
    annoy = AnnoyItemIndex()
    assert (annoy.n_trees, annoy.search_k) == (50, -1)
    hnsw = HnswItemIndex()
    assert (hnsw.M, hnsw.ef_construction, hnsw.ef) == (16, 200, 200)


def test_notes_state_the_measured_recall():
    # evaluate_retrieval prints these notes under its table.
    annoy = AnnoyItemIndex().approximation_note
    assert "61% on 1M" in annoy and "HnswItemIndex" in annoy
    assert "n_trees=50, search_k=-1" in annoy
    hnsw = HnswItemIndex().approximation_note
    assert "M=16, ef_construction=200, ef=200" in hnsw and "96-97%" in hnsw
    assert BruteForceItemIndex().approximation_note.endswith("exact search.")
