"""Atomic file and directory writes: nothing half-written is ever left behind.

Every artifact keras_rec writes (indexes, exports, metrics, plots) goes through
these helpers: the content is written next to its destination under a
temporary name, flushed, and renamed into place. `os.replace` is atomic on
POSIX file systems, so a reader sees either the old file or the new one.
"""

import contextlib
import json
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """Opens a temporary file beside `path`; renames it over `path` on success.

    Args:
        path: str or path-like. Final destination.
        mode: str. `"w"` (text) or `"wb"` (binary). Defaults to `"w"`.
        encoding: str. Text encoding when `mode` is `"w"`.

    Yields:
        An open file object. If the block raises, the temporary file is
        removed and `path` is untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"`mode` must be 'w' or 'wb'. Received: mode={mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
    )
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_json_atomic(path, obj):
    """Writes `obj` as indented JSON to `path`, atomically."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=_json_default)
        f.write("\n")


def _json_default(value):
    # NumPy scalars and arrays appear in metrics; JSON has no such types.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Builds a directory under a temporary name; renames it to `path` on success.

    Args:
        path: str or path-like. Final directory.
        overwrite: bool. Replace an existing `path`. The old directory is
            moved aside first and deleted only after the new one is in place.
            Defaults to `False`, in which case an existing `path` is an error.

    Yields:
        The temporary directory's path, to be filled by the caller.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"Refusing to overwrite an existing directory. Received: path={path!r}"
        )
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", dir=parent)
    try:
        yield tmp
        if not overwrite:
            # A plain rename fails if `path` appeared meanwhile (another
            # writer took the same name) instead of replacing it.
            if os.path.exists(path):
                raise FileExistsError(
                    f"Refusing to overwrite a directory created meanwhile: {path!r}"
                )
            os.rename(tmp, path)
            return
        old = None
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old.", dir=parent)
            os.replace(path, os.path.join(old, "x"))
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
