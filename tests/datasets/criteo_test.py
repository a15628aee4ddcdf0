"""Tests of the Criteo reader on the real samples and on malformed files."""

import numpy as np
import pandas as pd
import pytest

from keras_rec.datasets import load_criteo
from keras_rec.datasets.criteo import CAT_COLUMNS
from keras_rec.datasets.criteo import CRITEO_COLUMNS
from keras_rec.datasets.criteo import INT_COLUMNS


def test_kaggle_sample_counts(criteo_sample_path):
    frame = load_criteo(criteo_sample_path)
    assert list(frame.columns) == list(CRITEO_COLUMNS)
    assert frame.shape == (1000, 40)
    assert frame["label"].dtype == np.int64
    assert frame["label"].sum() == 205
    # Published for this file: 2,753 empty integer and 3,127 empty
    # categorical cells.
    assert frame[list(INT_COLUMNS)].isna().sum().sum() == 2753
    assert frame[list(CAT_COLUMNS)].isna().sum().sum() == 3127
    assert all(frame[c].dtype == np.float64 for c in INT_COLUMNS)
    # Missing categoricals are missing values, never empty strings.
    assert not (frame[list(CAT_COLUMNS)] == "").any().any()
    first = frame.iloc[0]
    assert first["I1"] == 1.0 and first["I2"] == 1.0 and np.isnan(first["I12"])
    assert first["C1"] == "68fd1e64" and first["C26"] == "9727dd16"


def test_stripped_trailing_fields_give_the_same_frame(criteo_sample_path):
    stripped = criteo_sample_path.parent / (
        "kaggle_train_head1000_trailing_tabs_stripped.txt"
    )
    pd.testing.assert_frame_equal(
        load_criteo(stripped), load_criteo(criteo_sample_path)
    )


def test_nrows_and_the_independent_witness(criteo_sample_path):
    head = load_criteo(criteo_sample_path, nrows=400)
    witness = load_criteo(criteo_sample_path.parent / "kaggle_train_head400.txt")
    pd.testing.assert_frame_equal(head, witness)
    assert len(load_criteo(criteo_sample_path, nrows=0)) == 0


def test_deepctr_csv_is_detected(criteo_sample_path):
    frame = load_criteo(criteo_sample_path.parent / "deepctr_criteo_sample.txt")
    assert list(frame.columns) == list(CRITEO_COLUMNS)
    assert frame.shape == (200, 40)
    assert frame["label"].sum() == 49
    first = frame.iloc[0]
    assert np.isnan(first["I1"]) and first["I2"] == 3.0 and first["I3"] == 260.0
    assert first["C1"] == "05db9164" and pd.isna(first["C26"])


def test_criteo_1tb_slice(criteo_sample_path):
    frame = load_criteo(criteo_sample_path.parent / "criteo_tab_1000.tsv")
    assert frame.shape == (1000, 40) and frame["label"].sum() == 21


def _row(n_fields, label="1"):
    fields = [label] + ["5"] * 13 + ["ab"] * 26
    return "\t".join(fields[:n_fields])


def _write(tmp_path, lines, name="train.txt"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_short_rows_are_padded_and_blank_lines_skipped(tmp_path):
    path = _write(tmp_path, [_row(40), "", "0\t7", _row(40, "0")])
    frame = load_criteo(path)
    assert frame["label"].tolist() == [1, 0, 0]
    assert frame.loc[1, "I1"] == 7.0
    assert frame.loc[1, list(INT_COLUMNS[1:])].isna().all()
    assert frame.loc[1, list(CAT_COLUMNS)].isna().all()
    assert frame.loc[0, "C26"] == "ab"


@pytest.mark.parametrize(
    "bad_line, message",
    [
        (_row(40) + "\textra", "Line 2 of .* has 41 fields; expected 2 to 40"),
        ("1", "Line 2 of .* has 1 fields; expected 2 to 40"),
        ("2\t5", "Line 2 of .*: `label` must be 0 or 1. Received: '2'"),
        ("1\tfive", "Line 2 of .*: `I1` must be a number or empty. Received: 'five'"),
    ],
)
def test_malformed_rows_name_the_line(tmp_path, bad_line, message):
    path = _write(tmp_path, [_row(40), bad_line, _row(40)])
    with pytest.raises(ValueError, match=message):
        load_criteo(path)


def test_csv_header_errors_and_missing_file(tmp_path):
    header = ",".join(CRITEO_COLUMNS)
    path = _write(tmp_path, [header, "1,3"], name="ok.csv")
    assert load_criteo(path)["I1"].tolist() == [3.0]
    path = _write(tmp_path, [header, "1,3", "0" + ",1" * 40], name="long.csv")
    with pytest.raises(ValueError, match="Line 3 of .* has 41 fields"):
        load_criteo(path)
    path = _write(tmp_path, ["label,I1,X9", "1,2,3"], name="bad.csv")
    with pytest.raises(ValueError, match="not Criteo's .* unexpected: \\['X9'\\]"):
        load_criteo(path)
    with pytest.raises(FileNotFoundError, match="Received: path="):
        load_criteo(tmp_path / "absent.txt")
    with pytest.raises(ValueError, match="`nrows` must be >= 0. Received: nrows=-1"):
        load_criteo(path, nrows=-1)
