"""`split_folds` on tiny hand-made frames: the expected windows, groups, errors and audits are worked out by hand.

Temporal folds walk back from the usual cutoff in windows of `width` rows; user-disjoint folds deal the evaluation
users from the seed's "folds" stream (numpy SeedSequence([seed, crc32("folds")])) into `array_split` groups.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest

from recsys.config.schema import SplitConfig
from recsys.data.split import split_folds, split_interactions
from recsys.errors import DataError

T0 = 1_600_000_000  # 2020-09-13T12:26:40Z
COLUMNS = ["user_id", "item_id", "timestamp", "weight", "row"]


def frame(timestamps, users=None, index=None) -> pd.DataFrame:
    n = len(timestamps)
    users = users if users is not None else [f"u{i % 3}" for i in range(n)]
    df = pd.DataFrame({"user_id": users, "item_id": [f"i{i}" for i in range(n)],
                       "timestamp": np.asarray(timestamps, dtype=np.int64) + T0, "weight": 1.0, "row": np.arange(n)})
    if index is not None:
        df.index = index
    return df


def rows(part: pd.DataFrame) -> list[int]:
    return sorted(part["row"].tolist())


def assert_clean(part: pd.DataFrame) -> None:
    """A fresh 0..n-1 index and no leftover `index` column from a reset that kept the old index."""
    assert list(part.columns) == COLUMNS
    assert part.index.equals(pd.RangeIndex(len(part)))


def test_temporal_windows_by_hand_down_to_one_training_row():
    # 10 distinct instants, test_size 0.3: width = 10 - floor(7) = 3; starts 7, 4, 1 -> fold 2 trains on 1 row
    df = frame(range(10), index=pd.Index(np.arange(10) * 7 + 3))  # a non-default index must not leak through
    folds, common = split_folds(df, SplitConfig(method="temporal", folds=3, test_size=0.3))
    assert [rows(f.test) for f in folds] == [[7, 8, 9], [4, 5, 6], [1, 2, 3]]
    assert [rows(f.train) for f in folds] == [list(range(7)), list(range(4)), [0]]
    assert rows(common) == [0]
    for j, f in enumerate(folds):
        assert f.method == "temporal"
        assert f.audit["fold"] == j
        assert f.audit["cutoff"] == T0 + [7, 4, 1][j]
        assert f.audit["train_rows"] == [7, 4, 1][j] and f.audit["test_rows"] == 3
        assert_clean(f.train)
        assert_clean(f.test)
    assert_clean(common)


def test_temporal_cutoff_window_includes_the_cutoff_instant():
    # cutoff at t=6, which two rows share: the window is every row at or after 6 -> width 4; fold 1 = rows 2..5
    df = frame([0, 1, 2, 3, 4, 5, 6, 6, 8, 9])
    folds, common = split_folds(df, SplitConfig(method="temporal", folds=2, cutoff=str(np.datetime64(T0 + 6, "s"))))
    assert [rows(f.test) for f in folds] == [[6, 7, 8, 9], [2, 3, 4, 5]]
    assert rows(common) == [0, 1]
    assert [f.audit["cutoff"] for f in folds] == [T0 + 6, T0 + 2]
    # cutoff at t=4: width 6, fold 1 would start before row 0
    with pytest.raises(DataError, match=r"split.folds=2 rolling windows of 6 rows each need more than 12 of the "
                                        r"10 interactions; lower split.folds or split.test_size"):
        split_folds(df, SplitConfig(method="temporal", folds=2, cutoff=str(np.datetime64(T0 + 4, "s"))))


def test_temporal_cutoff_after_the_data_is_a_clear_error():
    with pytest.raises(DataError, match=r"split.cutoff='2030-01-01' is after the last interaction "
                                        r"\(2020-09-13T12:26:49Z\), so fold 0 has no test rows; set an earlier "
                                        r"split.cutoff$"):
        split_folds(frame(range(10)), SplitConfig(method="temporal", folds=2, cutoff="2030-01-01"))


def test_a_bad_cutoff_names_the_option():
    with pytest.raises(DataError, match=r"^split.cutoff, column 'split.cutoff': 1 value\(s\) cannot be parsed as a "
                                        r"date/time \(e.g. 'not a date'\); fix the file or set split.cutoff$"):
        split_folds(frame(range(10)), SplitConfig(method="temporal", folds=2, cutoff="not a date"))


@pytest.mark.parametrize("n,test_size,n_folds,need", [(10, 0.3, 4, 12), (9, 1 / 3, 3, 9)])
def test_too_many_rolling_windows_by_hand(n, test_size, n_folds, need):
    # (10, 0.3, 4): starts 7, 4, 1, -2; (9, 1/3, 3): starts 6, 3, 0 (a window starting at row 0 leaves no train)
    width = n - int(np.floor(n * (1 - test_size)))
    with pytest.raises(DataError, match=rf"split.folds={n_folds} rolling windows of {width} rows each need more "
                                        rf"than {need} of the {n} interactions"):
        split_folds(frame(range(n)), SplitConfig(method="temporal", folds=n_folds, test_size=test_size))


def test_coarse_timestamps_are_a_clear_error():
    # width 2, starts 8, 6, 4: every start falls on t=1 -> one distinct cutoff for three windows
    df = frame([0, 1, 1, 1, 1, 1, 1, 1, 1, 2])
    with pytest.raises(DataError, match=r"split.folds=3: the timestamps are too coarse for 3 distinct windows "
                                        rf"\(cutoffs \[{T0 + 1}, {T0 + 1}, {T0 + 1}\]\); lower split.folds"):
        split_folds(df, SplitConfig(method="temporal", folds=3, test_size=0.2))


def test_a_window_with_nothing_before_it_names_the_fold():
    # width 1, starts 3, 2, 1 -> cutoffs t=7, 6, 5 are distinct, but nothing happened before t=5
    df = frame([5, 5, 6, 7])
    with pytest.raises(DataError, match=r"^split fold 2 left an empty train part; lower split.folds or change "
                                        r"split.test_size$"):
        split_folds(df, SplitConfig(method="temporal", folds=3, test_size=0.25))


def dealt(users, seed: int, n_folds: int) -> list[set]:
    """The documented dealing: a permutation of the sorted users from SeedSequence([seed, crc32('folds')])."""
    child = int(np.random.SeedSequence([seed, zlib.crc32(b"folds")]).generate_state(1)[0])
    order = np.random.default_rng(child).permutation(np.sort(np.asarray(users)))
    return [set(g.tolist()) for g in np.array_split(order, n_folds)]


def per_user_frame(n_users: int, per_user: int = 4) -> pd.DataFrame:
    users = [f"u{u:02d}" for u in range(n_users) for _ in range(per_user)]
    ts = [t for _ in range(n_users) for t in range(per_user)]
    return frame(ts, users=users, index=pd.Index(np.arange(len(users))[::-1]))


@pytest.mark.parametrize("method", ["leave_last", "random"])
def test_user_folds_deal_the_held_out_users_from_the_folds_stream(method):
    df = per_user_frame(20)
    cfg = SplitConfig(method=method, folds=3, test_size=0.25)
    folds, common = split_folds(df, cfg, random_state=5)
    base = split_interactions(df, cfg, 5)
    held = base.test["user_id"].unique()
    assert [set(f.test["user_id"]) for f in folds] == dealt(held, 5, 3)
    assert rows(common) == rows(base.train)
    for j, f in enumerate(folds):
        mine = base.test["user_id"].isin(f.test["user_id"].unique())
        assert rows(f.test) == rows(base.test[mine])
        assert rows(f.train) == sorted(rows(base.train) + rows(base.test[~mine]))  # the others' holdout trains
        assert f.method == method
        assert_clean(f.train)
        assert_clean(f.test)
        expected_keys = {"train_rows", "test_rows", "leak_share", "test_users", "test_users_unknown", "test_items",
                         "test_items_unknown", "test_rows_unknown_item", "fold",
                         *({"test_n", "test_size"} if method == "leave_last" else {"test_size"})}
        assert set(f.audit) == expected_keys
        assert f.audit["fold"] == j and f.audit["test_size"] == 0.25
        assert f.audit["test_rows"] == len(f.test) and f.audit["train_rows"] == len(f.train)


def test_user_folds_follow_the_seed_and_default_to_seed_zero():
    df = per_user_frame(30)
    cfg = SplitConfig(method="leave_last", folds=3, test_size=0.25)
    groups = {s: [set(f.test["user_id"]) for f in split_folds(df, cfg, random_state=s)[0]] for s in (0, 1, 2)}
    held = split_interactions(df, cfg, 0).test["user_id"].unique()
    for s in (0, 1, 2):
        assert groups[s] == dealt(held, s, 3)
    assert groups[0] != groups[1] != groups[2]
    assert [set(f.test["user_id"]) for f in split_folds(df, cfg)[0]] == groups[0]
    # a Generator cannot be replayed: like derive_seed, the dealing then uses seed 0
    gen = [set(f.test["user_id"]) for f in split_folds(df, cfg, random_state=np.random.default_rng(9))[0]]
    assert gen == groups[0]


def test_as_many_folds_as_users_is_allowed_and_one_more_is_an_error():
    df = per_user_frame(3)
    cfg = SplitConfig(method="leave_last", folds=3, test_size=0.25)
    folds, _ = split_folds(df, cfg)
    assert sorted(len(set(f.test["user_id"])) for f in folds) == [1, 1, 1]
    with pytest.raises(DataError, match=r"^split.folds=4 but only 3 users have held-out interactions; "
                                        r"lower split.folds$"):
        split_folds(df, SplitConfig(method="leave_last", folds=4, test_size=0.25))
