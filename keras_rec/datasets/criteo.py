"""Criteo display-advertising data: Kaggle's tab-separated format and DeepCTR's CSV.

Both hold one label, 13 integer features `I1..I13` and 26 hashed categorical
features `C1..C26`. The data is under Criteo's non-commercial terms: it is
never shipped with keras_rec.

References:
    - Criteo Display Advertising Challenge (Kaggle, 2014).
"""

import csv
import io
import itertools
import os

import numpy as np
import pandas as pd

from keras_rec.datasets._text import count_fields
from keras_rec.datasets._validation import check_int

INT_COLUMNS = tuple(f"I{i}" for i in range(1, 14))
CAT_COLUMNS = tuple(f"C{i}" for i in range(1, 27))
CRITEO_COLUMNS = ("label",) + INT_COLUMNS + CAT_COLUMNS


def load_criteo(path, nrows=None):
    """Reads Criteo rows into a DataFrame, detecting the file's format.

    Two formats are recognised from the first line:

    - Kaggle's `train.txt`: no header, 40 tab-separated fields
      (`label, I1..I13, C1..C26`), empty field = missing. Rows whose trailing
      empty fields were stripped (fewer than 40 fields, as in some copies)
      are padded back with missing values.
    - DeepCTR's CSV: a header line `label,I1,...,C26` (any column order),
      comma-separated, same padding rule.

    Blank lines are skipped.

    Args:
        path: str or path-like. The file.
        nrows: int or None. Read at most this many data rows (the rest of
            the file is not read). Defaults to None (all rows).

    Returns:
        A DataFrame with columns `label` (int64, 0/1), `I1..I13` (float64,
        NaN when empty) and `C1..C26` (strings in pandas' default string
        dtype: `str` in pandas 3, `object` before). An empty categorical
        cell is a missing value (`pd.isna(...)` is True), never the empty
        string.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: a row has more than 40 or fewer than 2 fields, a label is
            not 0/1, or an integer cell is not a number (the message names
            the line), a CSV header is not Criteo's, or the file holds no
            rows (unless `nrows=0`).
    """
    path = os.fspath(path)
    if nrows is not None:
        nrows = check_int("nrows", nrows, minimum=0)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Criteo file not found. Received: path={path!r}")
    with open(path, "rb") as f:
        first = f.readline()
        if first.startswith(b"\xef\xbb\xbf"):
            first = first[3:]
        is_csv = first.split(b",")[0].strip() == b"label"
        if is_csv:
            columns = _check_header(first, path)
            first_line = 2
        else:
            columns = list(CRITEO_COLUMNS)
            f.seek(0)
            first_line = 1
        if nrows is None:
            data = f.read()
        else:
            data = b"".join(itertools.islice(f, nrows))
    sep = "," if is_csv else "\t"
    if data and not data.endswith(b"\n"):
        data += b"\n"
    counts, blank = count_fields(data, sep.encode())
    rows = np.flatnonzero(~blank)  # 0-based line offsets of the data rows
    if len(rows) == 0 and nrows != 0:
        raise ValueError(
            f"{path} holds no Criteo rows (label, I1..I13, C1..C26). "
            f"Received: path={path!r} with {len(data)} bytes of data"
        )
    bad = rows[(counts[rows] > len(CRITEO_COLUMNS)) | (counts[rows] < 2)]
    if len(bad):
        line = int(bad[0])
        raise ValueError(
            f"Line {line + first_line} of {path} has {counts[line]} fields; "
            f"expected 2 to 40 ({'comma' if is_csv else 'tab'}-separated "
            f"label, I1..I13, C1..C26)."
        )

    def parse(dtypes):
        return pd.read_csv(
            io.BytesIO(data),
            sep=sep,
            header=None,
            names=columns,
            dtype=dtypes,
            keep_default_na=False,
            na_values=[""],
            quoting=csv.QUOTE_NONE,
            skip_blank_lines=True,
            engine="c",
        )

    try:
        # Fast path: the C parser converts the numbers itself.
        dtypes = {c: np.float64 for c in ("label",) + INT_COLUMNS}
        dtypes.update({c: str for c in CAT_COLUMNS})
        frame = parse(dtypes)
    except ValueError:
        frame = None
    line_of_row = rows + first_line
    if frame is None or not np.isin(frame["label"].to_numpy(), (0.0, 1.0)).all():
        _raise_bad_cell(parse(str), path, line_of_row)
    out = frame[list(CRITEO_COLUMNS)]
    return out.astype({"label": np.int64})


def _raise_bad_cell(frame, path, line_of_row):
    """Finds the first cell that is not a 0/1 label or a number; raises."""
    label = pd.to_numeric(frame["label"], errors="coerce").to_numpy()
    invalid = ~np.isin(label, (0.0, 1.0))
    if invalid.any():
        row = int(np.flatnonzero(invalid)[0])
        raise ValueError(
            f"Line {line_of_row[row]} of {path}: `label` must be 0 or 1. "
            f"Received: {frame['label'].iloc[row]!r}"
        )
    for column in INT_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce")
        invalid = values.isna().to_numpy() & frame[column].notna().to_numpy()
        if invalid.any():
            row = int(np.flatnonzero(invalid)[0])
            raise ValueError(
                f"Line {line_of_row[row]} of {path}: `{column}` must be a number "
                f"or empty. Received: {frame[column].iloc[row]!r}"
            )
    raise ValueError(f"Could not parse {path} as Criteo rows.")


def _check_header(line, path):
    names = line.decode("utf-8", errors="replace").strip().split(",")
    if sorted(names) != sorted(CRITEO_COLUMNS):
        missing = [c for c in CRITEO_COLUMNS if c not in names]
        extra = [c for c in names if c not in CRITEO_COLUMNS]
        raise ValueError(
            f"Line 1 of {path} looks like a CSV header but is not Criteo's "
            f"(label, I1..I13, C1..C26). Missing: {missing}; unexpected: {extra}."
        )
    return names


__all__ = ["load_criteo", "CRITEO_COLUMNS", "INT_COLUMNS", "CAT_COLUMNS"]
