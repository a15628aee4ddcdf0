"""Tests of the MovieLens loader: real counts, strict parsing and the download path."""

import functools
import hashlib
import http.server
import os
import threading
import zipfile

import numpy as np
import pandas as pd
import pytest

from keras_rec.datasets import load_movielens
from keras_rec.datasets import movielens

ML100K_FILES = ("u.data", "u.item", "u.user", "u.genre")


def test_movielens_100k_published_counts(movielens_100k_dir, tmp_path):
    ratings, users, items = load_movielens(
        "100k", data_dir=movielens_100k_dir, cache_dir=tmp_path
    )
    assert list(ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert all(dt == np.int64 for dt in ratings.dtypes)
    assert len(ratings) == 100_000
    assert ratings["user_id"].nunique() == 943
    assert ratings["item_id"].nunique() == 1682
    assert ratings["rating"].value_counts().sort_index().to_dict() == {
        1: 6110,
        2: 11370,
        3: 27145,
        4: 34174,
        5: 21201,
    }
    assert ratings.iloc[0].tolist() == [196, 242, 3, 881250949]

    assert list(users.columns) == ["user_id", "age", "gender", "occupation", "zip"]
    assert len(users) == 943
    assert users.iloc[0].tolist() == [1, 24, "M", "technician", "85711"]
    assert users["gender"].value_counts().to_dict() == {"M": 670, "F": 273}

    assert list(items.columns) == ["item_id", "title", "genres", "release_date"]
    assert len(items) == 1682
    assert items.loc[0, "title"] == "Toy Story (1995)"
    assert items.loc[0, "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc[0, "release_date"] == pd.Timestamp("1995-01-01")
    assert items["release_date"].isna().sum() == 1  # item 267, "unknown"
    # u.item is latin-1: accented titles decode.
    assert items["title"].str.contains("é").any()
    n_genres = items["genres"].map(len)
    assert n_genres.min() == 1 and n_genres.max() == 6
    assert sum(g == ["unknown"] for g in items["genres"]) == 2


def _link_100k(source, target):
    target.mkdir(parents=True)
    for name in ML100K_FILES:
        os.symlink(source / name, target / name)


def test_data_dir_may_be_the_parent(movielens_100k_dir, tmp_path):
    _link_100k(movielens_100k_dir, tmp_path / "data" / "ml-100k")
    ratings, _, _ = load_movielens(data_dir=tmp_path / "data", cache_dir=tmp_path)
    assert len(ratings) == 100_000


def test_missing_files_are_named(movielens_100k_dir, tmp_path):
    os.symlink(movielens_100k_dir / "u.data", tmp_path / "u.data")
    with pytest.raises(FileNotFoundError, match="'u.user' not found"):
        load_movielens(data_dir=tmp_path, cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_movielens(data_dir=tmp_path / "nothing", cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="Received: variant='10m'"):
        load_movielens("10m", data_dir=tmp_path)


def _write_100k(folder, data_lines):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("\n".join(data_lines) + "\n")
    (folder / "u.user").write_text("1|24|M|technician|85711\n")
    flags = "|".join(["0"] * 18 + ["1"])
    (folder / "u.item").write_text(f"1|A (1995)|01-Jan-1995||http://x|{flags}\n")


@pytest.mark.parametrize(
    "lines, message",
    [
        (
            ["1\t1\t5\t100", "1\t2\t4\t200", "1\t3\t4"],
            "Line 3 of .*u.data has 3 fields; expected 4 "
            "\\(user_id, item_id, rating, timestamp\\) separated by tabs",
        ),
        (
            ["1\t1\t5\t100", "1\t2\tfour\t200"],
            "Line 2 of .*u.data: column `rating` must be an integer. Received: 'four'",
        ),
    ],
)
def test_wrong_format_names_file_and_line(tmp_path, lines, message):
    _write_100k(tmp_path, lines)
    with pytest.raises(ValueError, match=message):
        load_movielens(data_dir=tmp_path, cache_dir=tmp_path / "cache")


def test_small_100k_without_genre_file(tmp_path):
    _write_100k(tmp_path, ["1\t1\t5\t100", "", "1\t1\t3\t50"])
    ratings, users, items = load_movielens(data_dir=tmp_path, cache_dir=tmp_path)
    assert ratings["rating"].tolist() == [5, 3]  # blank line skipped
    assert items.loc[0, "genres"] == ["Western"]  # built-in genre names


def test_movielens_1m_format(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n2::661::3::978302109\n")
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    (folder / "movies.dat").write_bytes(
        "1193::One Flew (1975)::Drama\n661::Cité: a test (1996)::Animation|Musical\n".encode(
            "latin-1"
        )
    )
    ratings, users, items = load_movielens("1m", data_dir=tmp_path, cache_dir=tmp_path)
    assert ratings.values.tolist() == [[1, 1193, 5, 978300760], [2, 661, 3, 978302109]]
    assert list(users.columns) == ["user_id", "age", "gender", "occupation", "zip"]
    assert users["occupation"].tolist() == ["K-12 student", "self-employed"]
    assert users["age"].tolist() == [1, 56]
    assert items["title"].tolist() == ["One Flew (1975)", "Cité: a test (1996)"]
    assert items["genres"].tolist() == [["Drama"], ["Animation", "Musical"]]
    (folder / "users.dat").write_text("1::F::1::10\n")
    with pytest.raises(ValueError, match="Line 1 of .*users.dat has 4 fields"):
        load_movielens("1m", data_dir=folder, cache_dir=tmp_path)


# ---------------------------------------------------------------- download path


@pytest.fixture
def served_zip(movielens_100k_dir, tmp_path):
    """The 100k files zipped as `ml-100k/...`, served over HTTP on 127.0.0.1."""
    site = tmp_path / "site"
    site.mkdir()
    archive = site / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ML100K_FILES:
            zf.write(movielens_100k_dir / name, f"ml-100k/{name}")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        requests = 0

        def log_message(self, *args):
            pass

        def do_GET(self):
            type(self).requests += 1
            super().do_GET()

    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/ml-100k.zip"
    try:
        yield url, md5, QuietHandler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_fetches_checks_and_extracts(served_zip, tmp_path, monkeypatch):
    url, md5, handler = served_zip
    monkeypatch.setitem(movielens.MOVIELENS_URLS, "100k", url)
    monkeypatch.setitem(movielens.MOVIELENS_MD5, "100k", md5)
    cache = tmp_path / "cache"
    ratings, users, items = load_movielens(download=True, cache_dir=cache)
    assert (len(ratings), len(users), len(items)) == (100_000, 943, 1682)
    assert handler.requests == 1
    # Only the extracted folder is left: no zip, no temporary files.
    assert sorted(os.listdir(cache)) == ["ml-100k"]
    assert sorted(os.listdir(cache / "ml-100k")) == sorted(ML100K_FILES)
    # A second call reads the cache without touching the network.
    again, _, _ = load_movielens(download=True, cache_dir=cache)
    assert handler.requests == 1
    pd.testing.assert_frame_equal(again, ratings)


def test_download_uses_the_cache_env(served_zip, tmp_path, monkeypatch):
    url, md5, _ = served_zip
    monkeypatch.setenv("KERAS_REC_CACHE", str(tmp_path / "env-cache"))
    assert movielens.default_cache_dir() == tmp_path / "env-cache"
    folder = movielens.download_and_extract(url, movielens.default_cache_dir(), md5=md5)
    assert folder == tmp_path / "env-cache" / "ml-100k"
    assert (folder / "u.data").is_file()


def test_wrong_checksum_fails_and_leaves_no_partial_cache(
    served_zip, tmp_path, monkeypatch
):
    url, md5, _ = served_zip
    monkeypatch.setitem(movielens.MOVIELENS_URLS, "100k", url)
    monkeypatch.setitem(movielens.MOVIELENS_MD5, "100k", "0" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError) as info:
        load_movielens(download=True, cache_dir=cache)
    message = str(info.value)
    assert "Checksum mismatch" in message and url in message
    assert "expected md5 " + "0" * 32 in message and md5 in message
    assert os.listdir(cache) == []


def test_unreachable_server_is_an_os_error(tmp_path):
    with pytest.raises(OSError, match="Could not download"):
        movielens.download_and_extract(
            "http://127.0.0.1:9/ml-100k.zip", tmp_path, md5=None, timeout=5
        )
    assert os.listdir(tmp_path) == []


def test_unsafe_zip_members_are_refused(tmp_path):
    archive = tmp_path / "site" / "evil.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.txt", "x")
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="unsafe path"):
        movielens.download_and_extract(archive.as_uri(), cache)
    assert not (tmp_path / "outside.txt").exists()
    assert os.listdir(cache) == []  # neither the zip nor a partial folder
    not_a_zip = archive.parent / "junk.zip"
    not_a_zip.write_text("<html>not found</html>")
    with pytest.raises(ValueError, match="is not a zip"):
        movielens.download_and_extract(not_a_zip.as_uri(), cache)
    assert os.listdir(cache) == []
