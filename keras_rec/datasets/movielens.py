"""MovieLens 100K and 1M: the publisher's files, read strictly.

The files are read from a folder you already have, or fetched once from
GroupLens into a local cache with `download=True`. Nothing touches the
network at import time. The data is under GroupLens' research-only licence:
it is never shipped with keras_rec.

References:
    - F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets:
      History and Context. ACM TiiS 5(4): 19.
"""

import hashlib
import os
import pathlib
import posixpath
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import numpy as np
import pandas as pd

from keras_rec.datasets._text import read_delimited
from keras_rec.datasets._validation import check_choice
from keras_rec.io_utils import atomic_directory
from keras_rec.io_utils import atomic_write

# Where `download=True` fetches each variant from, and the md5 the publisher
# posts for the zip (GroupLens publishes md5, not sha256). Module-level so
# tests (and mirrors) can point them elsewhere.
MOVIELENS_URLS = {
    "100k": "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
    "1m": "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
}
MOVIELENS_MD5 = {
    "100k": "0e33842e24a9c977be4e0107933c0723",
    "1m": "c4d9eecfca2ab87c1945afe126590906",
}
_FOLDERS = {"100k": "ml-100k", "1m": "ml-1m"}
_RATINGS_FILE = {"100k": "u.data", "1m": "ratings.dat"}

# u.genre's names, used when u.genre is absent (same order as the flags).
GENRES_100K = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
# ml-1m's README: users.dat stores occupations as these codes.
OCCUPATIONS_1M = (
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)

_CHUNK = 1 << 20


def default_cache_dir():
    """`$KERAS_REC_CACHE` if set, else `~/.keras_rec/datasets`."""
    env = os.environ.get("KERAS_REC_CACHE")
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path("~/.keras_rec/datasets").expanduser()


def load_movielens(variant="100k", data_dir=None, download=False, cache_dir=None):
    """Loads MovieLens 100K or 1M as three DataFrames.

    The files are looked for in `data_dir` (the folder holding them, or its
    parent containing `ml-100k/` / `ml-1m/`), then in `cache_dir/ml-<variant>`.
    When absent and `download=True`, the publisher's zip is fetched into
    `cache_dir`, its md5 checked and extracted atomically.

    Args:
        variant: str. `"100k"` or `"1m"`. Defaults to `"100k"`.
        data_dir: str, path-like or None. Folder holding the files (`u.data`,
            `u.item`, `u.user`, `u.genre` for 100k; `ratings.dat`,
            `movies.dat`, `users.dat` for 1m) or its parent. Defaults to None.
        download: bool. Fetch the data into `cache_dir` when it is not found.
            Defaults to False.
        cache_dir: str, path-like or None. Download cache. Defaults to
            `$KERAS_REC_CACHE`, else `~/.keras_rec/datasets`.

    Returns:
        Tuple `(ratings, users, items)` of DataFrames:
        - `ratings`: `user_id, item_id, rating, timestamp`, all int64, in the
          file's order.
        - `users`: `user_id` (int64), `age` (int64; for 1m the age group's
          lower bound: 1, 18, 25, 35, 45, 50 or 56), `gender` ("M"/"F"),
          `occupation` (name; 1m's codes are mapped to the README's names),
          `zip` (str).
        - `items`: `item_id` (int64), `title` (str), `genres` (list of genre
          names per movie) and, for 100k, `release_date` (datetime64, NaT
          when unknown).

    Raises:
        FileNotFoundError: the files are absent and `download` is False, or
            one of the files is missing.
        ValueError: a file has the wrong format (the message names the file,
            the line and what was expected), or the download's checksum does
            not match.

    Example:

    >>> ratings, users, items = load_movielens("100k", data_dir="data/ml-100k")
    >>> len(ratings), len(users), len(items)
    (100000, 943, 1682)
    """
    check_choice("variant", variant, set(_FOLDERS))
    folder = _find_folder(variant, data_dir, download, cache_dir)
    if variant == "100k":
        return _load_100k(folder)
    return _load_1m(folder)


def _find_folder(variant, data_dir, download, cache_dir):
    marker = _RATINGS_FILE[variant]
    cache = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    candidates = []
    if data_dir is not None:
        data_dir = pathlib.Path(data_dir)
        candidates += [data_dir, data_dir / _FOLDERS[variant]]
    candidates.append(cache / _FOLDERS[variant])
    for candidate in candidates:
        if (candidate / marker).is_file():
            return candidate
    url = MOVIELENS_URLS[variant]
    if download:
        return download_and_extract(
            url, cache, md5=MOVIELENS_MD5[variant], folder=_FOLDERS[variant]
        )
    looked = ", ".join(str(c / marker) for c in candidates)
    raise FileNotFoundError(
        f"MovieLens {variant} not found: looked for {looked}. Pass `data_dir` "
        f"pointing at the folder holding the files, or `download=True` to "
        f"fetch {url} into {cache}."
    )


def _require(folder, name):
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(
            f"MovieLens file {name!r} not found in {folder} (expected {path})."
        )
    return path


def _load_100k(folder):
    ratings = read_delimited(
        _require(folder, "u.data"),
        "\t",
        ["user_id", "item_id", "rating", "timestamp"],
        numeric=["user_id", "item_id", "rating", "timestamp"],
    )
    users = read_delimited(
        _require(folder, "u.user"),
        "|",
        ["user_id", "age", "gender", "occupation", "zip"],
        numeric=["user_id", "age"],
    )
    genre_path = folder / "u.genre"
    if genre_path.is_file():
        genre_table = read_delimited(
            genre_path, "|", ["name", "index"], numeric=["index"]
        )
        genre_names = genre_table.sort_values("index")["name"].tolist()
    else:
        genre_names = list(GENRES_100K)
    flag_names = [f"g{i}" for i in range(len(genre_names))]
    items = read_delimited(
        _require(folder, "u.item"),
        "|",
        ["item_id", "title", "release_date", "video_release_date", "imdb_url"]
        + flag_names,
        numeric=["item_id"] + flag_names,
    )
    flags = items[flag_names].to_numpy() != 0
    names = np.array(genre_names, dtype=object)
    items = pd.DataFrame(
        {
            "item_id": items["item_id"],
            "title": items["title"],
            "genres": [names[row].tolist() for row in flags],
            "release_date": pd.to_datetime(
                items["release_date"], format="%d-%b-%Y", errors="coerce"
            ),
        }
    )
    return ratings, users, items


def _load_1m(folder):
    ratings = read_delimited(
        _require(folder, "ratings.dat"),
        "::",
        ["user_id", "item_id", "rating", "timestamp"],
        numeric=["user_id", "item_id", "rating", "timestamp"],
    )
    users = read_delimited(
        _require(folder, "users.dat"),
        "::",
        ["user_id", "gender", "age", "occupation", "zip"],
        numeric=["user_id", "age", "occupation"],
    )
    codes = users["occupation"].to_numpy()
    if codes.min() < 0 or codes.max() >= len(OCCUPATIONS_1M):
        row = int(np.flatnonzero((codes < 0) | (codes >= len(OCCUPATIONS_1M)))[0])
        raise ValueError(
            f"users.dat in {folder}: occupation codes must be in [0, "
            f"{len(OCCUPATIONS_1M) - 1}]. Received: {codes[row]} for user "
            f"{users['user_id'].iloc[row]}"
        )
    users["occupation"] = np.array(OCCUPATIONS_1M, dtype=object)[codes]
    users = users[["user_id", "age", "gender", "occupation", "zip"]]
    users = users.astype({"occupation": str})
    movies = read_delimited(
        _require(folder, "movies.dat"),
        "::",
        ["item_id", "title", "genres"],
        numeric=["item_id"],
    )
    movies["genres"] = [g.split("|") if g else [] for g in movies["genres"]]
    return ratings, users, movies


def _file_md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_and_extract(url, cache_dir, md5=None, folder=None, timeout=60):
    """Downloads a zip into `cache_dir`, checks its md5 and extracts it atomically.

    The zip is streamed to a temporary file beside its destination and only
    renamed into place when its md5 matches; a mismatch removes it and
    raises. It is then extracted into a temporary folder that is renamed to
    `cache_dir/folder`, and removed. A folder already in place is returned
    without any network access.

    Args:
        url: str. Where to fetch the zip from (http, https or file URL).
        cache_dir: str or path-like. Where the extracted folder goes.
        md5: str or None. Expected md5 hex digest of the zip; None skips the
            check. Defaults to None.
        folder: str or None. Name of the extracted folder. Defaults to the
            zip's file name without `.zip` (`ml-100k`). If every member of the
            zip sits under `folder/`, that prefix is stripped.
        timeout: float. Seconds before a stalled connection is an error.
            Defaults to 60.

    Returns:
        `pathlib.Path` of the extracted folder.

    Raises:
        ValueError: the md5 does not match, or the zip holds unsafe paths.
        OSError: the download failed.
    """
    cache_dir = pathlib.Path(cache_dir)
    archive_name = posixpath.basename(urllib.parse.urlparse(url).path) or "data.zip"
    if folder is None:
        folder = archive_name[:-4] if archive_name.endswith(".zip") else archive_name
    target = cache_dir / folder
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    archive = cache_dir / archive_name
    if not (archive.is_file() and (md5 is None or _file_md5(archive) == md5)):
        _download(url, archive, md5, timeout)
    try:
        _extract(archive, target, folder, url)
    except zipfile.BadZipFile as e:
        archive.unlink(missing_ok=True)
        raise ValueError(f"The file downloaded from {url} is not a zip: {e}") from e
    except BaseException:
        archive.unlink(missing_ok=True)  # unusable: do not keep it cached
        raise
    archive.unlink()
    return target


def _extract(archive, target, folder, url):
    """Extracts `archive` into `target` atomically, refusing unsafe paths."""
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        prefix = f"{folder}/"
        strip = bool(members) and all(m.filename.startswith(prefix) for m in members)
        with atomic_directory(target) as tmp:
            for member in members:
                name = member.filename[len(prefix) :] if strip else member.filename
                parts = pathlib.PurePosixPath(name).parts
                if name.startswith("/") or ".." in parts or not parts:
                    raise ValueError(
                        f"Refusing to extract an unsafe path from {url}. "
                        f"Received: {member.filename!r}"
                    )
                dest = pathlib.Path(tmp, *parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(dest, "wb") as out:
                    for block in iter(lambda src=src: src.read(_CHUNK), b""):
                        out.write(block)


def _download(url, archive, md5, timeout):
    digest = hashlib.md5()
    try:
        with atomic_write(archive, "wb") as out:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(block)
                    out.write(block)
            # Raising here discards the temporary file: nothing is cached.
            if md5 is not None and digest.hexdigest() != md5.lower():
                raise ValueError(
                    f"Checksum mismatch for {url}: expected md5 {md5}, "
                    f"received md5 {digest.hexdigest()}. The download was "
                    f"discarded."
                )
    except urllib.error.URLError as e:
        raise OSError(f"Could not download {url}: {e.reason}") from e


__all__ = ["load_movielens"]
