"""MovieLens: local copies in the original layout, checksum verification of downloaded archives."""

from __future__ import annotations

import hashlib
import zipfile

import pytest
from conftest import shared_data

from recsys.config.schema import DataConfig, MovieLensConfig
from recsys.data import load_dataset, movielens
from recsys.errors import DataError


@pytest.mark.realdata
def test_reads_ml_latest_small_local_copy(monkeypatch):
    home = shared_data("ml-latest-small").parent
    monkeypatch.setenv("RECSYS_DATA_HOME", str(home))
    ds = load_dataset(DataConfig(source="movielens", implicit={"rating_threshold": 4.0}))
    assert ds.name == "ml-latest-small"
    assert ds.interactions["rating"].min() >= 4.0
    assert ds.interactions["user_id"].nunique() <= 610
    assert len(ds.items) == 9742 and set(ds.items.columns) == {"item_id", "title", "text", "category"}
    toy = ds.items.set_index("item_id").loc[1]
    assert toy["title"].startswith("Toy Story") and "Animation" in toy["text"]


@pytest.mark.realdata
def test_reads_ml_100k_local_copy(monkeypatch):
    home = shared_data("ml-100k").parent
    monkeypatch.setenv("RECSYS_DATA_HOME", str(home))
    ds = load_dataset(DataConfig(source="movielens", movielens=MovieLensConfig(name="ml-100k")))
    assert len(ds.interactions) == 100_000 and len(ds.items) == 1682
    assert ds.items["title"].str.contains("Misérables").any()  # latin-1 titles decoded


def test_missing_local_copy_without_download_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataError, match="no local copy.*download is false"):
        movielens.locate("ml-100k", download=False)
    with pytest.raises(DataError, match="has no ratings.csv"):
        movielens.locate("ml-latest-small", path=str(tmp_path))


def make_zip(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-latest-small/ratings.csv", payload)


def test_checksum_mismatch_quarantines_the_archive(tmp_path):
    z = tmp_path / "ml-100k.zip"
    make_zip(z, b"userId,movieId,rating,timestamp\n")
    with pytest.raises(DataError, match="md5 of ml-100k.zip is .* expected 0e33842e"):
        movielens.verify(z, movielens.ARCHIVES["ml-100k"])
    assert not z.exists() and (tmp_path / "ml-100k.corrupt").exists()


def test_sha256_recorded_on_first_download_then_enforced(tmp_path):
    z = tmp_path / "ml-latest-small.zip"
    make_zip(z, b"a")
    archive = movielens.ARCHIVES["ml-latest-small"]
    movielens.verify(z, archive)
    pin = tmp_path / "ml-latest-small.zip.sha256"
    assert pin.read_text().strip() == hashlib.sha256(z.read_bytes()).hexdigest()
    movielens.verify(z, archive)  # same bytes: fine
    make_zip(z, b"tampered")
    with pytest.raises(DataError, match="sha256 of ml-latest-small.zip"):
        movielens.verify(z, archive)
