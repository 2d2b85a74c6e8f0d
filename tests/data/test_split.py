"""Splits: the global cutoff leaks nothing; per-user holdouts report their leak; validation never sees test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.config.schema import DataConfig, SplitConfig, SyntheticConfig
from recsys.data import load_dataset, split_interactions, validation_split


def dataset(seed=3):
    return load_dataset(DataConfig(synthetic=SyntheticConfig(n_users=300, n_items=120, n_categories=5)), seed)


def test_temporal_split_leaks_nothing():
    ds = dataset()
    split = split_interactions(ds.interactions, SplitConfig(method="temporal", test_size=0.25))
    assert split.test["timestamp"].min() >= split.train["timestamp"].max()
    assert split.audit["leak_share"] == 0.0
    assert len(split.train) + len(split.test) == len(ds.interactions)


def test_leave_last_reports_its_leak_share():
    ds = dataset()
    split = split_interactions(ds.interactions, SplitConfig(method="leave_last", test_size=0.2))
    latest = split.train["timestamp"].max()
    expected = float((split.test["timestamp"] < latest).mean())
    assert split.audit["leak_share"] == expected > 0
    # per user, every test interaction is at or after the user's last training interaction
    last_train = split.train.groupby("user_id")["timestamp"].max()
    first_test = split.test.groupby("user_id")["timestamp"].min()
    common = first_test.index.intersection(last_train.index)
    assert (first_test[common] >= last_train[common]).all()


def test_leave_last_n():
    ds = dataset()
    split = split_interactions(ds.interactions, SplitConfig(method="leave_last", test_n=2))
    per_user = split.test.groupby("user_id").size()
    assert per_user.max() == 2
    counts = ds.interactions.groupby("user_id").size()
    assert not split.test["user_id"].isin(counts[counts == 1].index).any()  # one-interaction users stay in train


def test_random_split_seeded_and_unknown_counts():
    ds = dataset()
    a = split_interactions(ds.interactions, SplitConfig(method="random"), random_state=5)
    b = split_interactions(ds.interactions, SplitConfig(method="random"), random_state=5)
    pd.testing.assert_frame_equal(a.test, b.test)
    unknown = set(a.test["user_id"]) - set(a.train["user_id"])
    assert a.audit["test_users_unknown"] == len(unknown)


def test_validation_is_carved_from_train_only():
    ds = dataset()
    cfg = SplitConfig(method="temporal", test_size=0.2, validation_size=0.2)
    split = split_interactions(ds.interactions, cfg)
    val = validation_split(split, cfg)
    key = ["user_id", "item_id", "timestamp"]
    inner = pd.concat([val.train, val.test])[key]
    assert len(inner.merge(split.test[key])) == 0
    assert val.test["timestamp"].max() <= split.train["timestamp"].max()
    assert np.isclose(len(val.test) / len(split.train), 0.2, atol=0.05)


def test_leave_last_n_validation_uses_n_and_names_the_right_knob():
    from recsys.errors import DataError

    rows = [(f"u{u}", f"i{i}", 1_600_000_000 + 10 * i + u) for u in range(3) for i in range(6)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).assign(event="view", weight=1.0)
    cfg = SplitConfig(method="leave_last", test_n=1)
    split = split_interactions(df, cfg)
    val = validation_split(split, cfg)
    assert val.test.groupby("user_id").size().tolist() == [1, 1, 1]
    small = SplitConfig(method="leave_last", test_size=0.1, validation_size=0.1)
    with pytest.raises(DataError, match=r"empty validation part.*split.validation_size"):
        validation_split(split_interactions(df, SplitConfig(method="leave_last", test_n=1)), small)
