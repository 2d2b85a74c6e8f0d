"""MovieLens: read a local copy (original archive layout) or download the official archive into a cache."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.errors import DataError
from recsys.logging import get_logger, progress_enabled

_log = get_logger(__name__)

BASE_URL = "https://files.grouplens.org/datasets/movielens/"


@dataclass(frozen=True)
class Archive:
    name: str
    sha256: str | None  # SHA-256 of the official zip
    md5: str | None  # GroupLens publishes MD5 sums; checked too when known
    ratings: str
    movies: str


ARCHIVES = {
    "ml-latest-small": Archive("ml-latest-small", None, None, "ratings.csv", "movies.csv"),
    "ml-100k": Archive("ml-100k", None, "0e33842e24a9c977be4e0107933c0723", "u.data", "u.item"),
    "ml-1m": Archive("ml-1m", None, "c4d9eecfca2ab87c1945afe126590906", "ratings.dat", "movies.dat"),
    "ml-20m": Archive("ml-20m", None, "cd245b17a1ae2cc31bb14903e1204af3", "ratings.csv", "movies.csv"),
    "ml-25m": Archive("ml-25m", None, "6b51fb2759a8657d3bfcbfc42b592ada", "ratings.csv", "movies.csv"),
}


def data_home() -> Path:
    return Path(os.environ.get("RECSYS_DATA_HOME", Path.home() / ".cache" / "recsys" / "data")).expanduser()


def locate(name: str, path: str | None = None, download: bool = True) -> Path:
    """Folder holding the extracted archive: explicit path, $RECSYS_DATA_HOME/<name>, or a fresh download."""
    archive = ARCHIVES[name]
    candidates = [Path(path)] if path else []
    candidates += [data_home() / name, Path.home() / ".cache" / "recsys" / "data" / name]
    for folder in candidates:
        if (folder / archive.ratings).exists():
            return folder
        if (folder / name / archive.ratings).exists():
            return folder / name
    if path:
        raise DataError(f"MovieLens {name}: {path!r} has no {archive.ratings}; point data.movielens.path at the "
                        f"extracted '{name}' folder")
    if not download:
        raise DataError(f"MovieLens {name}: no local copy in {data_home()} and data.movielens.download is false; "
                        f"set RECSYS_DATA_HOME to a folder holding '{name}/'")
    return fetch(name, data_home())


def fetch(name: str, cache: Path) -> Path:
    """Download the official archive with a progress bar, verify its checksum, extract it into `cache`."""
    archive = ARCHIVES[name]
    cache.mkdir(parents=True, exist_ok=True)
    zpath = cache / f"{name}.zip"
    url = f"{BASE_URL}{name}.zip"
    if not zpath.exists():
        _log.info("downloading %s into %s", url, zpath)
        tmp = zpath.with_suffix(".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
                total = int(resp.headers.get("Content-Length", 0)) or None
                from tqdm.auto import tqdm

                with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress_enabled()) as bar:
                    while chunk := resp.read(1 << 20):
                        out.write(chunk)
                        bar.update(len(chunk))
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise DataError(f"MovieLens {name}: download from {url} failed ({exc}); download it by hand and set "
                            f"RECSYS_DATA_HOME to the folder holding '{name}/'") from None
        tmp.rename(zpath)
    verify(zpath, archive)
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(cache)
    return cache / name


def verify(zpath: Path, archive: Archive) -> None:
    """Check the archive's SHA-256 (pinned, or recorded on first download next to the zip) and GroupLens' MD5."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(zpath, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
    pin = zpath.with_name(zpath.name + ".sha256")
    want_sha = archive.sha256 or (pin.read_text().strip() if pin.exists() else None)
    for kind, want, got in (("sha256", want_sha, sha.hexdigest()), ("md5", archive.md5, md5.hexdigest())):
        if want and want != got:
            bad = zpath.with_suffix(".corrupt")
            shutil.move(zpath, bad)
            raise DataError(f"MovieLens {archive.name}: {kind} of {zpath.name} is {got}, expected {want}; "
                            f"the file was moved to {bad}; download again")
    if not want_sha:
        pin.write_text(sha.hexdigest() + "\n")
        _log.warning("MovieLens %s: no SHA-256 pinned for this archive; recorded %s in %s (checked from now on)",
                     archive.name, sha.hexdigest(), pin)


def read(name: str, folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Return (ratings with user_id,item_id,rating,timestamp; items; files read)."""
    archive = ARCHIVES[name]
    rpath, mpath = folder / archive.ratings, folder / archive.movies
    if name == "ml-100k":
        ratings = pd.read_csv(rpath, sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"])
        movies = pd.read_csv(mpath, sep="|", header=None, encoding="latin-1")
        genre_names = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                       "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
                       "Sci-Fi", "Thriller", "War", "Western"]
        flags = movies.iloc[:, 5:24].to_numpy(dtype=bool)
        genres = ["|".join(g for g, f in zip(genre_names, row) if f) for row in flags]
        movies = pd.DataFrame({"movieId": movies[0], "title": movies[1], "genres": genres})
    elif name == "ml-1m":
        ratings = pd.read_csv(rpath, sep="::", header=None, engine="python",
                              names=["user_id", "item_id", "rating", "timestamp"])
        movies = pd.read_csv(mpath, sep="::", header=None, engine="python", encoding="latin-1",
                             names=["movieId", "title", "genres"])
    else:
        ratings = pd.read_csv(rpath).rename(columns={"userId": "user_id", "movieId": "item_id"})
        movies = pd.read_csv(mpath)
    missing = [c for c in ("user_id", "item_id", "rating", "timestamp") if c not in ratings.columns]
    if missing:
        raise DataError(f"{rpath}: missing column(s) {missing}; is this an original MovieLens {name} file?")
    genres = movies["genres"].fillna("").astype(str)
    items = pd.DataFrame({
        "item_id": movies["movieId"].astype(np.int64),
        "title": movies["title"].astype(str),
        "text": genres.str.replace("|", ", ", regex=False),
        "category": genres.str.split("|").str[0].replace("", "unknown"),
    })
    return ratings, items, [str(rpath), str(mpath)]


def read_tags(folder: Path) -> pd.DataFrame | None:
    path = folder / "tags.csv"
    if not path.exists():
        return None
    return pd.read_csv(path).rename(columns={"userId": "user_id", "movieId": "item_id"})
