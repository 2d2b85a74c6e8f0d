"""Timestamp conversion at its edges, against values computed by hand: fractional and pre-1970 numbers are
floored (not truncated), floats at 2**63 ns, the 1990 / 2100 bounds of unit inference, non-finite values, and
the messages and log lines that name the option to set."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest

from recsys.data.timestamps import parse_instant, to_epoch_seconds
from recsys.errors import DataError

KNOB = "data.tabular.timestamp_unit"


def test_fractional_numbers_are_floored_in_every_unit():
    # 1_600_000_000_123.5 ms = 1_600_000_000.1235 s -> 1_600_000_000; 999.9 ms later still the same second
    ms = pd.Series([1_600_000_000_123.5, 1_600_000_000_999.9, 1_600_000_001_000.0])
    assert to_epoch_seconds(ms, "f.csv", unit="ms").tolist() == [1_600_000_000, 1_600_000_000, 1_600_000_001]
    assert to_epoch_seconds(pd.Series([1_600_000_000.7]), "f.csv", unit="s").tolist() == [1_600_000_000]
    # before 1970 the floor is the earlier second: -1.5 s -> -2, not -1 (unchecked conversion)
    assert to_epoch_seconds(pd.Series([-1.5, 2.5]), "f.csv", unit="s", check=False).tolist() == [-2, 2]
    assert to_epoch_seconds(pd.Series([-1500.0]), "f.csv", unit="ms", check=False).tolist() == [-2]


def test_a_float_at_two_to_the_63_nanoseconds_does_not_overflow():
    # 2**63 ns = 9_223_372_036.854... s (the year 2262): past int64, so it takes the float path
    assert to_epoch_seconds(pd.Series([2.0**63]), "f.csv", unit="ns", check=False).tolist() == [9_223_372_036]


def test_non_finite_numbers_are_counted():
    values = pd.Series([1.6e9, np.inf, np.nan, 1.6e9]).fillna(-np.inf)
    with pytest.raises(DataError, match=r"^f.csv, column 'when': 2 non-finite timestamp\(s\)$"):
        to_epoch_seconds(values, "f.csv", column="when", option=KNOB)


def test_inference_bounds_are_1990_inclusive_and_2100_exclusive():
    at_1990 = pd.Series([631_152_000] * 3)  # 1990-01-01T00:00:00Z in seconds
    assert to_epoch_seconds(at_1990, "f.csv").tolist() == [631_152_000] * 3
    with pytest.raises(DataError, match=r"^f.csv, column 'timestamp': numbers from 4102444800 to 4102444800 \(median "
                                        r"4102444800\) are unix time in none of s, ms, us, ns between 1990 and 2100; "
                                        rf"set {KNOB} or fix the column$"):
        to_epoch_seconds(pd.Series([4_102_444_800] * 3), "f.csv", option=KNOB)  # 2100-01-01 exactly


def test_inferred_unit_is_logged_with_the_option_to_set(caplog):
    with caplog.at_level(logging.INFO, logger="recsys"):
        to_epoch_seconds(pd.Series([1_614_834_367_000]), "f.csv", column="when", option=KNOB)
    assert [r.getMessage() for r in caplog.records if "inferred" in r.getMessage()] == [
        f"f.csv, column 'when': numeric timestamps read as unix ms (inferred from their magnitude; set {KNOB} to "
        "override)"]


def test_parse_instant_is_a_date_unchecked_and_names_the_option():
    assert parse_instant("1980-01-01", "split.cutoff") == 315_532_800  # before 1990 is fine for a cutoff
    assert parse_instant("2021-03-04T05:06:07+09:00", "split.cutoff") == 1_614_801_967
    for text in ("not a date", "1600000000"):  # a cutoff is a date, not a number of unknown unit
        with pytest.raises(DataError, match=rf"^split.cutoff, column 'split.cutoff': 1 value\(s\) cannot be parsed as "
                                            rf"a date/time \(e.g. '{text}'\); fix the file or set split.cutoff$"):
            parse_instant(text, "split.cutoff")


def test_uint64_at_or_above_two_to_the_63_is_refused_not_wrapped():
    # np.uint64(2**63).astype(int64) wraps to -2**63: it used to read as "before 1990", naming the wrong problem
    values = pd.Series(np.array([2**63 - 1, 2**63, 2**64 - 1], dtype=np.uint64))  # int64's max is not counted
    for unit in ("s", "ns", "auto"):
        with pytest.raises(DataError, match=r"^f.csv, column 'when': 2 timestamp\(s\) at or above 2\*\*63 \(e.g. "
                                            r"9223372036854775808\), past any unix time in any unit "
                                            r"\(data.tabular.timestamp_unit\); fix those rows$"):
            to_epoch_seconds(values, "f.csv", column="when", unit=unit, option=KNOB)


def test_uint64_up_to_int64_max_converts_exactly():
    below = pd.Series(np.array([2**63 - 1, 1_600_000_000_999_999_999], dtype=np.uint64))
    assert to_epoch_seconds(below, "f.csv", unit="ns", check=False).tolist() == [9_223_372_036, 1_600_000_000]
    plain = pd.Series(np.array([1_600_000_000, 1_700_000_000], dtype=np.uint64))
    assert to_epoch_seconds(plain, "f.csv", unit="auto").tolist() == [1_600_000_000, 1_700_000_000]


def test_floats_past_int64_seconds_are_refused_not_wrapped():
    # 1.5 sends the column down the float path; 2**63 s floors to 2**63, one past int64
    for values, count, example in (([2.0**63, 1.5], 1, "9.22337e+18"), ([-1e30, 1.5, 1e30], 2, "-1e+30")):
        with pytest.raises(DataError, match=rf"^f.csv, column 'when': {count} timestamp\(s\) past any unix time in s "
                                            rf"\(e.g. {re.escape(example)}\); check the unit "
                                            r"\(data.tabular.timestamp_unit\) or fix those rows$"):
            to_epoch_seconds(pd.Series(values), "f.csv", column="when", unit="s", option=KNOB, check=False)
    # the largest float below 2**63 still converts, floored like any other
    assert to_epoch_seconds(pd.Series([2.0**63 - 1024, 1.5]), "f.csv", unit="s", check=False).tolist() == [
        2**63 - 1024, 1]
    # in ns, 1e30 is 1e21 s: past int64 too
    with pytest.raises(DataError, match=r"1 timestamp\(s\) past any unix time in ns"):
        to_epoch_seconds(pd.Series([1e30, 1.5]), "f.csv", column="when", unit="ns", option=KNOB, check=False)
