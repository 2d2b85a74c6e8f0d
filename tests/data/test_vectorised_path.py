"""The vectorised data path gives exactly what the straightforward pandas / per-row versions give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.config.schema import DataConfig, SplitConfig, SyntheticConfig
from recsys.data import synthetic
from recsys.data.split import _parts, split_interactions
from recsys.data.tables import frame_fingerprint
from recsys.data.validation import duplicate_rows, sort_rows, to_implicit, validate_interactions
from recsys.data.vocab import Vocabulary


def messy(seed: int, n: int = 3000, *, int_ids: bool = False, wide_items: bool = False) -> pd.DataFrame:
    """Many exact duplicates and ties on every key."""
    r = np.random.default_rng(seed)
    users = r.integers(0, 12, n)
    items = r.integers(0, 10, n)
    if wide_items:  # item ids spanning int64: the combined key cannot fit, pandas' hashing is used
        items = np.where(items % 2 == 0, items, np.iinfo(np.int64).max - items)
    return pd.DataFrame({
        "user_id": users if int_ids else pd.Series([f"u{u}" for u in users], dtype="str"),
        "item_id": items if int_ids or wide_items else pd.Series([f"i{i:03d}" for i in items], dtype="str"),
        "timestamp": 1_600_000_000 + r.integers(0, 8, n),
        "event": pd.Series(np.array(["view", "cart", "purchase"])[r.integers(0, 3, n)], dtype="str"),
    })


@pytest.mark.parametrize("kind", [{}, {"int_ids": True}, {"wide_items": True}])
@pytest.mark.parametrize("seed", [0, 1])
def test_duplicate_rows_is_pandas_duplicated(kind, seed):
    df = messy(seed, **kind)
    key = ["user_id", "item_id", "timestamp", "event"]
    want = df.duplicated(subset=key, keep="first").to_numpy()
    assert want.sum() > 100  # the case is exercised
    np.testing.assert_array_equal(duplicate_rows(df, key), want)
    np.testing.assert_array_equal(duplicate_rows(df.iloc[:1], key), [False])
    assert duplicate_rows(df.iloc[:0], key).shape == (0,)


@pytest.mark.parametrize("kind", [{}, {"int_ids": True}, {"wide_items": True}])
def test_sort_rows_is_stable_sort_values(kind):
    df = messy(3, **kind).assign(weight=np.arange(3000.0))  # weight tells tied rows apart
    df.index = np.arange(3000)[::-1]
    keys = ["timestamp", "user_id", "item_id"]
    pd.testing.assert_frame_equal(sort_rows(df, keys), df.sort_values(keys, kind="stable").reset_index(drop=True))


def test_sort_rows_falls_back_for_other_dtypes():
    df = pd.DataFrame({"timestamp": [3, 1, 2, 1], "user_id": [1.5, 0.5, np.nan, 0.5], "item_id": ["b", "a", "c", "a"],
                       "weight": [1.0, 2.0, 3.0, 4.0]})
    keys = ["timestamp", "user_id", "item_id"]
    pd.testing.assert_frame_equal(sort_rows(df, keys), df.sort_values(keys, kind="stable").reset_index(drop=True))


def test_validation_keeps_the_first_duplicate_and_sorts():
    df = messy(4)
    out = validate_interactions(df, DataConfig(), "f.csv", now=2e9, timestamp_unit="s")
    key = ["user_id", "item_id", "timestamp", "event"]
    want = df[~df.duplicated(subset=key)]
    assert len(out) == len(want)
    pd.testing.assert_frame_equal(
        out[key], want.sort_values(["timestamp", "user_id", "item_id"], kind="stable")[key].reset_index(drop=True))


def test_event_weights_per_distinct_event_match_a_per_row_map():
    df = messy(5).assign(event=lambda d: d["event"].where(d.index % 7 != 0, "share"))
    weights = {"view": 1.0, "cart": 2.5, "purchase": 4.0}
    cfg = DataConfig.model_validate({"implicit": {"event_weights": weights}, "allow_drop": True})
    out = to_implicit(df, cfg, "f.csv")
    want = df["event"].map(lambda e: weights.get(e, np.nan))
    assert len(out) == int(want.notna().sum()) < len(df)
    np.testing.assert_array_equal(out["weight"].to_numpy(), want.dropna().to_numpy())
    pd.testing.assert_index_equal(out.index, want.dropna().index)


@pytest.mark.parametrize("as_numpy", [False, True])
def test_vocabulary_index_arrow_lookup_is_get_indexer(as_numpy):
    vocab = Vocabulary(pd.Series(["c", "a", "b", "zz"], dtype="str"))
    ids = pd.Series(["a", "q", "zz", "c", "a", ""], dtype="str")
    got = vocab.index(ids.to_numpy(dtype=object) if as_numpy else ids)
    np.testing.assert_array_equal(got, [1, -1, 3, 0, 1, -1])
    assert got.dtype == np.int64
    assert vocab.index(ids.iloc[:0]).shape == (0,)


@pytest.mark.parametrize("ids", [pd.Series(["c", "a", "b", "zz"], dtype="str"), np.array([40, 7, 19, 3]),
                                 np.array(["c", "a", "b", "zz"], dtype=object)], ids=["arrow-str", "int", "object"])
def test_vocabulary_take_is_id_as_a_column(ids):
    """`take` (the result tables' id columns) gives `id`'s values and the dtype a DataFrame gives `id`'s array."""
    vocab = Vocabulary(ids)
    idx = np.array([3, 0, 0, 2, 1, 3, 3])
    got = vocab.take(idx)
    assert got.tolist() == vocab.id(idx).tolist()
    assert pd.DataFrame({"c": got})["c"].dtype == pd.DataFrame({"c": vocab.id(idx)})["c"].dtype
    assert vocab.take(idx[:0]).tolist() == []


@pytest.mark.parametrize("layout", ["suffix", "scattered", "all-train", "all-test", "prefix"])
def test_parts_are_the_masked_rows(layout):
    """`_parts` is (df[~is_test], df[is_test]) whatever the mask; only a suffix is taken as slices."""
    n = 12
    is_test = {"suffix": np.arange(n) >= 8, "scattered": np.arange(n) % 3 == 0, "all-train": np.zeros(n, bool),
               "all-test": np.ones(n, bool), "prefix": np.arange(n) < 4}[layout]
    df = pd.DataFrame({"user_id": pd.Series([f"u{i % 5}" for i in range(n)], dtype="str"),
                       "timestamp": np.arange(n, dtype=np.int64) * 10})
    train, test = _parts(df, is_test)
    pd.testing.assert_frame_equal(train, df[~is_test])
    pd.testing.assert_frame_equal(test, df[is_test])


def test_temporal_split_of_time_sorted_rows_copies_no_row():
    """Canonical rows are sorted by time: the temporal cut's train and test parts are views of the table (a copy
    of every column was the peak of the data path at 20M interactions); the values are the masked rows."""
    raw, _, _ = synthetic.generate(SyntheticConfig(n_users=300, n_items=80), 3)
    df = validate_interactions(raw, DataConfig(), "synthetic", now=float(raw["timestamp"].max()))
    split = split_interactions(df, SplitConfig(method="temporal", test_size=0.25))
    for part in (split.train, split.test):
        assert np.shares_memory(part["timestamp"].to_numpy(), df["timestamp"].to_numpy())
    is_test = df["timestamp"].to_numpy() >= split.audit["cutoff"]
    pd.testing.assert_frame_equal(split.train, df[~is_test].reset_index(drop=True))
    pd.testing.assert_frame_equal(split.test, df[is_test].reset_index(drop=True))


def old_split_fingerprint(train: pd.DataFrame, test: pd.DataFrame) -> str:
    cols = ["user_id", "item_id", "timestamp"]
    both = pd.concat([train[cols].assign(_p=0), test[cols].assign(_p=1)], ignore_index=True)
    return frame_fingerprint(both.sort_values(["_p", *cols], kind="stable").reset_index(drop=True))


@pytest.mark.parametrize("method", ["temporal", "leave_last", "random"])
def test_split_fingerprint_is_the_sorted_frame_hash(method):
    df = validate_interactions(messy(6), DataConfig.model_validate({"duplicates": "keep"}), "f.csv", now=2e9,
                               timestamp_unit="s")
    split = split_interactions(df, SplitConfig(method=method, test_size=0.3), 0)
    assert split.fingerprint() == old_split_fingerprint(split.train, split.test)
    shuffled = split.train.sample(frac=1.0, random_state=1)
    assert split.fingerprint() == old_split_fingerprint(shuffled, split.test)


def test_synthetic_categories_drawn_in_blocks_are_the_same(monkeypatch):
    cfg = SyntheticConfig(n_users=300, n_items=120, mean_interactions=8)
    whole = synthetic.generate(cfg, 3)
    monkeypatch.setattr(synthetic, "CATEGORY_CHUNK", 37)
    blocks = synthetic.generate(cfg, 3)
    pd.testing.assert_frame_equal(whole[0], blocks[0])
    pd.testing.assert_frame_equal(whole[1], blocks[1])


def test_synthetic_id_columns_are_strings_of_the_canonical_form():
    raw, items, _ = synthetic.generate(SyntheticConfig(n_users=200, n_items=50, mean_interactions=5), 0)
    assert raw["user_id"].str.fullmatch(r"u\d{6}").all()
    assert raw["item_id"].isin(items["item_id"]).all()
    assert set(raw["event"]) <= set(synthetic.EVENTS)
    assert raw.index.equals(pd.RangeIndex(len(raw)))
