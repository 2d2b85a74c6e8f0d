"""Splits on small hand-made tables whose right answer is worked out by hand: which side of the cutoff each row
falls on (a row exactly at the cutoff is test), the explicit cutoff, per-user holdouts with ties, the audit counts
and the errors for an empty part."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.config.schema import SplitConfig
from recsys.data import split_interactions, validation_split
from recsys.errors import DataError

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def table(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).assign(event="view", weight=1.0)


def stamps(df: pd.DataFrame) -> list[int]:
    return sorted((df["timestamp"] - T0).tolist())


def test_temporal_share_puts_every_row_at_or_after_the_cutoff_in_test() -> None:
    # 10 rows, test_size 0.3: the cutoff is the 8th smallest stamp (index floor(10 * 0.7) = 7), i.e. 6; the
    # three rows at 6 all go to test, so the test part is 5 rows, not 3
    offsets = [3, 1, 6, 2, 9, 6, 4, 10, 5, 6]
    df = table([(f"u{i % 3}", f"i{i}", T0 + o) for i, o in enumerate(offsets)])
    split = split_interactions(df, SplitConfig(method="temporal", test_size=0.3))
    assert stamps(split.test) == [6, 6, 6, 9, 10]
    assert stamps(split.train) == [1, 2, 3, 4, 5]
    assert split.audit["cutoff"] == T0 + 6
    assert split.audit["leak_share"] == 0.0
    assert (split.audit["train_rows"], split.audit["test_rows"]) == (5, 5)


def test_explicit_cutoff_wins_over_the_share_and_is_read_as_utc() -> None:
    df = table([("u1", f"i{o}", T0 + o) for o in range(10)])
    # 2023-11-14T22:13:24Z = T0 + 4 (and the same instant written in Tokyo time)
    for cutoff in ("2023-11-14T22:13:24Z", "2023-11-14 22:13:24", "2023-11-15T07:13:24+09:00"):
        split = split_interactions(df, SplitConfig(method="temporal", test_size=0.5, cutoff=cutoff))
        assert stamps(split.test) == [4, 5, 6, 7, 8, 9], cutoff
        assert split.audit["cutoff"] == T0 + 4
    # the validation carve-out uses its own share of the training part, not the test cutoff
    cfg = SplitConfig(method="temporal", test_size=0.5, cutoff="2023-11-14T22:13:24Z", validation_size=0.5)
    val = validation_split(split_interactions(df, cfg), cfg)
    assert stamps(val.train) == [0, 1] and stamps(val.test) == [2, 3]


def test_cutoff_after_every_row_is_an_error_naming_the_knobs() -> None:
    df = table([("u1", f"i{o}", T0 + o) for o in range(5)])
    with pytest.raises(DataError, match=r"empty test part \(5 train, 0 test rows\); change split.test_size/cutoff"):
        split_interactions(df, SplitConfig(method="temporal", cutoff="2030-01-01"))
    with pytest.raises(DataError, match=r"empty train part \(0 train, 5 test rows\)"):
        split_interactions(df, SplitConfig(method="temporal", cutoff="2000-01-01"))


def test_leave_last_share_holds_out_each_users_latest_with_ties_by_item() -> None:
    rows = [("a", "i1", T0 + 1), ("a", "i2", T0 + 2), ("a", "i4", T0 + 5), ("a", "i3", T0 + 5), ("a", "i0", T0 + 3),
            ("b", "i1", T0 + 7), ("b", "i2", T0 + 8), ("c", "i9", T0 + 1)]
    split = split_interactions(table(rows), SplitConfig(method="leave_last", test_size=0.4))
    held = split.test.groupby("user_id")["item_id"].agg(sorted).to_dict()
    # a: floor(5 * 0.4) = 2 latest, both at +5 (i3, i4); b: floor(2 * 0.4) = 0; c: floor(0.4) = 0
    assert held == {"a": ["i3", "i4"]}
    assert sorted(split.train["item_id"][split.train["user_id"] == "a"]) == ["i0", "i1", "i2"]
    # two of the two test rows are before b's latest training row (+8): the audit counts them as leaked
    assert split.audit["leak_share"] == 1.0
    assert split.audit["test_n"] is None and split.audit["test_size"] == 0.4


def test_leave_last_n_never_empties_a_users_training_history() -> None:
    rows = [("a", f"i{j}", T0 + j) for j in range(5)] + [("b", "i1", T0 + 1), ("b", "i2", T0 + 2),
                                                         ("c", "i9", T0 + 1)]
    split = split_interactions(table(rows), SplitConfig(method="leave_last", test_n=3))
    held = split.test.groupby("user_id")["item_id"].agg(sorted).to_dict()
    assert held == {"a": ["i2", "i3", "i4"], "b": ["i2"]}  # b keeps 1 of 2, c (one row) keeps its only row
    assert split.audit["test_n"] == 3


def test_random_split_is_seeded_and_takes_about_the_share() -> None:
    df = table([(f"u{j % 50}", f"i{j % 37}", T0 + j) for j in range(4000)])
    cfg = SplitConfig(method="random", test_size=0.25)
    a, b, c = (split_interactions(df, cfg, random_state=s) for s in (1, 1, 2))
    pd.testing.assert_frame_equal(a.test, b.test)
    assert not a.test.equals(c.test)
    assert abs(len(a.test) / len(df) - 0.25) < 0.03  # binomial sd 0.007
    assert len(a.train) + len(a.test) == len(df)


def test_audit_counts_unknown_users_items_and_rows() -> None:
    train_rows = [("a", "x", T0 + 1), ("b", "y", T0 + 2), ("a", "y", T0 + 3)]
    test_rows = [("a", "z", T0 + 10), ("c", "x", T0 + 11), ("c", "z", T0 + 12), ("d", "w", T0 + 13)]
    split = split_interactions(table(train_rows + test_rows),
                               SplitConfig(method="temporal", cutoff="2023-11-14T22:13:30Z"))
    assert split.audit == {"train_rows": 3, "test_rows": 4, "leak_share": 0.0, "test_users": 3,
                           "test_users_unknown": 2, "test_items": 3, "test_items_unknown": 2,
                           "test_rows_unknown_item": 3, "cutoff": T0 + 10}


def test_rolling_folds_read_the_cutoff_like_the_single_split() -> None:
    from recsys.data.split import split_folds

    df = table([(f"u{o % 3}", f"i{o}", T0 + o) for o in range(12)])
    for cutoff in ("2023-11-14T22:13:28Z", "2023-11-15T07:13:28+09:00"):  # T0 + 8, twice
        folds, common = split_folds(df, SplitConfig(method="temporal", cutoff=cutoff, folds=2))
        # fold 0 tests [8, 12), fold 1 the 4 rows just before: [4, 8); tuning may use [0, 4)
        assert [stamps(f.test) for f in folds] == [[8, 9, 10, 11], [4, 5, 6, 7]], cutoff
        assert stamps(common) == [0, 1, 2, 3]


def test_split_parts_are_clean_frames_with_the_method_and_audit_keys() -> None:
    df = table([(f"u{o % 4}", f"i{o}", T0 + o) for o in range(40)]).set_axis(range(100, 140))  # odd index
    for cfg, keys in ((SplitConfig(method="temporal"), {"cutoff"}),
                      (SplitConfig(method="leave_last", test_size=0.3), {"test_n", "test_size", "boundary_tie_users",
                                                                         "boundary_tie_rows"}),
                      (SplitConfig(method="random", test_size=0.3), {"test_size"})):
        split = split_interactions(df, cfg)
        assert split.method == cfg.method
        for part in (split.train, split.test):
            assert list(part.columns) == list(df.columns) and part.index.equals(pd.RangeIndex(len(part)))
        assert keys <= set(split.audit), cfg.method
    # the default seed is 0, for the split and for the validation carve-out
    cfg = SplitConfig(method="random", test_size=0.3)
    pd.testing.assert_frame_equal(split_interactions(df, cfg).test, split_interactions(df, cfg, random_state=0).test)
    s0 = split_interactions(df, cfg)
    pd.testing.assert_frame_equal(validation_split(s0, cfg).test, validation_split(s0, cfg, random_state=0).test)
    assert not validation_split(s0, cfg).test.equals(validation_split(s0, cfg, random_state=1).test)


def test_tiny_test_share_takes_the_last_row_and_same_instant_is_not_a_leak() -> None:
    df = table([(f"u{o}", f"i{o}", T0 + o) for o in range(10)])
    split = split_interactions(df, SplitConfig(method="temporal", test_size=0.05))  # floor(9.5) = 9: the last row
    assert stamps(split.test) == [9]
    from recsys.data.split import leakage_audit

    train = table([("a", "x", T0 + 5)])
    same = table([("b", "y", T0 + 5), ("c", "z", T0 + 6)])
    assert leakage_audit(train, same)["leak_share"] == 0.0  # at the same instant is not before
    assert leakage_audit(train, table([("b", "y", T0 + 4), ("c", "z", T0 + 6)]))["leak_share"] == 0.5
    assert leakage_audit(train, same.iloc[:0])["leak_share"] == 0.0


def test_empty_part_errors_name_the_knob_of_each_method() -> None:
    one_each = table([(f"u{u}", "i1", T0 + u) for u in range(5)])
    with pytest.raises(DataError, match=r"empty test part.*split.test_size/cutoff or set split.test_n$"):
        split_interactions(one_each, SplitConfig(method="leave_last", test_size=0.5))
    with pytest.raises(DataError, match=r"empty test part.*change split.test_size/cutoff$"):
        split_interactions(one_each, SplitConfig(method="temporal", cutoff="2030-01-01"))
    with pytest.raises(DataError, match="split.cutoff"):
        split_interactions(one_each, SplitConfig(method="temporal", cutoff="not a date"))
    # training rows all at one instant: the validation cutoff takes them all, leaving no training part
    rows = [(f"u{o}", f"i{o}", T0) for o in range(4)] + [("u9", "i9", T0 + 9)]
    base = split_interactions(table(rows), SplitConfig(method="temporal", cutoff="2023-11-14T22:13:25Z"))
    with pytest.raises(DataError,
                       match=r"empty train part \(0 train, 4 validation rows\); change split.validation_size$"):
        validation_split(base, SplitConfig(method="temporal", validation_size=0.5))


def test_test_size_argument_overrides_the_configured_share_for_every_method() -> None:
    # the validation carve-out passes its own share: cfg.test_size (0.2) must not be used
    df = table([(f"u{o % 2}", f"i{o}", T0 + o) for o in range(10)])
    temporal = split_interactions(df, SplitConfig(method="temporal", test_size=0.2), test_size=0.5)
    assert stamps(temporal.test) == [5, 6, 7, 8, 9]  # cutoff index floor(10 * 0.5) = 5
    last = split_interactions(df, SplitConfig(method="leave_last", test_size=0.2), test_size=0.5)
    assert stamps(last.test) == [6, 7, 8, 9]  # floor(5 * 0.5) = 2 latest of each user (u0: 6, 8; u1: 7, 9)
    assert last.audit["test_size"] == 0.5
    big = table([(f"u{j % 7}", f"i{j}", T0 + j) for j in range(2000)])
    rand = split_interactions(big, SplitConfig(method="random", test_size=0.2), test_size=0.6)
    assert abs(len(rand.test) / 2000 - 0.6) < 0.05 and rand.audit["test_size"] == 0.6  # binomial sd 0.011


def test_a_share_too_small_for_one_row_still_holds_out_the_latest_instant() -> None:
    # 1 - 1e-17 == 1.0 in floating point: the cutoff index floor(10 * 1.0) = 10 is past the end, clamped to 9
    df = table([(f"u{o}", f"i{o}", T0 + o) for o in range(10)])
    split = split_interactions(df, SplitConfig(method="temporal", test_size=1e-17))
    assert stamps(split.test) == [9] and split.audit["cutoff"] == T0 + 9


def test_a_cutoff_that_is_not_a_date_is_an_error_naming_split_cutoff() -> None:
    df = table([(f"u{o}", f"i{o}", T0 + o) for o in range(5)])
    with pytest.raises(DataError) as e:
        split_interactions(df, SplitConfig(method="temporal", cutoff="not a date"))
    assert str(e.value) == ("split.cutoff, column 'split.cutoff': 1 value(s) cannot be parsed as a date/time "
                            "(e.g. 'not a date'); fix the file or set split.cutoff")


def test_fingerprint_is_of_which_rows_are_train_and_which_test_not_their_order() -> None:
    from recsys.data.split import Split

    rows = [("a", "x", T0 + 1), ("a", "y", T0 + 2), ("b", "x", T0 + 3), ("b", "z", T0 + 4), ("c", "y", T0 + 5)]
    train, test = table(rows[:3]), table(rows[3:])

    def fp(tr: pd.DataFrame, te: pd.DataFrame) -> str:
        return Split(train=tr, test=te, method="temporal").fingerprint()

    base = fp(train, test)
    assert fp(train.iloc[::-1], test.iloc[::-1]) == base  # row order within a part does not matter
    assert fp(train.set_axis([7, 8, 9]), test) == base  # nor the index
    assert fp(test, train) != base  # which side a row is on does
    assert fp(table(rows[:2]), table(rows[2:])) != base  # one row moved from train to test
    assert fp(table(rows[:4]), table(rows[4:])) != base  # one row moved from test to train
    assert fp(pd.concat([train, train.iloc[:1]]), test) != base  # a duplicated row
    assert fp(train.assign(timestamp=train["timestamp"] + 1), test) != base  # another instant
    assert fp(train.assign(weight=5.0, event="buy"), test) == base  # only user, item and time are hashed


def test_a_predefined_split_tunes_on_its_given_validation_part_untouched() -> None:
    from recsys.data.split import Split, leakage_audit

    train = table([("a", "x", T0 + 1), ("b", "y", T0 + 2), ("a", "y", T0 + 6)])
    given = table([("a", "z", T0 + 5), ("c", "x", T0 + 7)])  # one row before a's latest training row, one new user
    test = table([("b", "x", T0 + 9)])
    split = Split(train=train, test=test, method="predefined", validation=given)
    val = validation_split(split, SplitConfig(method="predefined", validation_size=0.5))
    assert val.method == "predefined" and val.validation is None
    pd.testing.assert_frame_equal(val.train, train)
    pd.testing.assert_frame_equal(val.test, given)
    assert val.audit == leakage_audit(train, given)
    assert val.audit == {"train_rows": 3, "test_rows": 2, "leak_share": 0.5, "test_users": 2, "test_users_unknown": 1,
                         "test_items": 2, "test_items_unknown": 1, "test_rows_unknown_item": 1}


def test_a_predefined_split_without_a_validation_part_is_cut_in_time_by_the_share() -> None:
    from recsys.data.split import Split

    train = table([(f"u{o % 3}", f"i{o}", T0 + o) for o in range(10)])
    split = Split(train=train, test=table([("u0", "i0", T0 + 20)]), method="predefined")
    val = validation_split(split, SplitConfig(method="predefined", validation_size=0.3))
    # a global temporal cut, whatever the seed: cutoff index floor(10 * 0.7) = 7
    assert val.method == "temporal" and val.audit["cutoff"] == T0 + 7
    assert stamps(val.test) == [7, 8, 9] and stamps(val.train) == list(range(7))
    for seed in (1, 2):
        assert stamps(validation_split(split, SplitConfig(method="predefined", validation_size=0.3), seed).test) == [
            7, 8, 9]


def test_only_a_predefined_split_brings_its_own_validation_part() -> None:
    from recsys.data.split import Split

    train = table([(f"u{o % 2}", f"i{o}", T0 + o) for o in range(10)])
    stray = table([("zz", "zz", T0 + 3)])  # not a part a temporal split has: the carve-out ignores it
    split = Split(train=train, test=table([("u0", "i0", T0 + 20)]), method="temporal", validation=stray)
    val = validation_split(split, SplitConfig(method="temporal", validation_size=0.2))
    assert val.method == "temporal" and stamps(val.test) == [8, 9] and "zz" not in set(val.test["user_id"])
