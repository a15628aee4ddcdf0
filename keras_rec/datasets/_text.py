"""Strict readers for delimited text: wrong rows are errors naming the line."""

import csv
import io

import numpy as np
import pandas as pd

# Stands in for multi-character separators ("::") so pandas' fast C parser,
# which needs a single character, can read the text.
_UNIT_SEPARATOR = "\x1f"


def count_fields(data, sep):
    """Fields per line of `data`, vectorised.

    Args:
        data: bytes. The text, ending with a newline.
        sep: bytes. A one-byte separator.

    Returns:
        Tuple `(counts, blank)` of (n_lines,) arrays: the number of fields on
        each line (separators + 1) and whether the line is empty (or only
        `\\r`).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == ord("\n"))
    starts = np.concatenate([[0], newlines[:-1] + 1])
    seps = np.flatnonzero(buf == sep[0])
    line_of_sep = np.searchsorted(newlines, seps)
    counts = np.bincount(line_of_sep, minlength=len(newlines)) + 1
    length = newlines - starts
    blank = (length == 0) | (
        (length == 1) & (buf[np.maximum(newlines - 1, 0)] == ord("\r"))
    )
    return counts, blank


def read_delimited(path, sep, names, encoding="latin-1", numeric=()):
    """Reads a header-less delimited file with exactly `len(names)` fields a line.

    Blank lines are skipped. Any other line with a different number of fields,
    or a non-integer value in a `numeric` column, is a `ValueError` naming
    the file, the 1-based line number and what was expected and received;
    so is a file without any row.

    Args:
        path: str. The file.
        sep: str. Field separator, one character or `"::"`.
        names: list of str. Column names, one per field.
        encoding: str. Text encoding. Defaults to `"latin-1"` (MovieLens).
        numeric: iterable of str. Columns converted to int64.

    Returns:
        A DataFrame with the `numeric` columns as int64 and the others as str.
    """
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode(encoding)
    if len(sep) > 1:
        if _UNIT_SEPARATOR in text:
            raise ValueError(
                f"Unexpected control character \\x1f in {path}; "
                f"expected {sep!r}-separated text."
            )
        text = text.replace(sep, _UNIT_SEPARATOR)
        sep = _UNIT_SEPARATOR
    if text and not text.endswith("\n"):
        text += "\n"
    data = text.encode("utf-8")
    counts, blank = count_fields(data, sep.encode("utf-8"))
    lines = np.flatnonzero(~blank)  # 0-based line numbers of the rows
    if len(lines) == 0:
        raise ValueError(
            f"{path} holds no rows; expected {len(names)} fields a line "
            f"({', '.join(names)}) separated by {_display_sep(sep)}. "
            f"Received: a file of {len(raw)} bytes"
        )
    bad = lines[counts[lines] != len(names)]
    if len(bad):
        line = int(bad[0])
        raise ValueError(
            f"Line {line + 1} of {path} has {counts[line]} fields; expected "
            f"{len(names)} ({', '.join(names)}) separated by "
            f"{_display_sep(sep)}."
        )
    numeric = list(numeric)

    def parse(dtypes):
        return pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            names=list(names),
            dtype=dtypes,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE,
            skip_blank_lines=True,
            engine="c",
        )

    try:
        # Fast path: the C parser converts the numeric columns itself.
        return parse({n: (np.int64 if n in numeric else str) for n in names})
    except (ValueError, OverflowError):
        pass
    # Slow path, only to locate the offending cell for the error message.
    frame = parse(str)
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce")
        invalid = values.isna().to_numpy() | (values.to_numpy() % 1 != 0)
        if invalid.any():
            row = int(np.flatnonzero(invalid)[0])
            raise ValueError(
                f"Line {lines[row] + 1} of {path}: column `{column}` must be an "
                f"integer. Received: {frame[column].iloc[row]!r}"
            )
    raise ValueError(f"Could not parse {path} as {sep!r}-separated integers.")


def _display_sep(sep):
    return {"\t": "tabs", _UNIT_SEPARATOR: "'::'"}.get(sep, repr(sep))
