"""Timestamp conversion against the standard library and Python's exact integers.

The expected seconds come from `datetime(..., tzinfo=UTC).timestamp()` and `int // 10**k` on Python ints (never
from the code under test): for every datetime64 resolution pandas 3 may hand over (s, ms, us, ns), naive and
tz-aware, ISO strings, and numbers in s/ms/us/ns; also the arithmetic edges (int64's largest value, float32
columns, integer-valued floats beyond 2**53), the one-second span rule at its bound, and the whole text of each
message (a mangled message that still contains a fragment is caught)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from recsys.data.timestamps import to_epoch_seconds
from recsys.errors import DataError

KNOB = "data.tabular.timestamp_unit"
WHEN = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
LEAP = datetime(2016, 2, 29, 23, 59, 59, 999_000, tzinfo=UTC)  # a leap day, with a fraction that must be floored
EXPECTED = [int(WHEN.timestamp()), int(LEAP.timestamp())]  # whole seconds: the fraction floored (both after 1970)
TICKS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def _ticks(d: datetime, unit: str) -> int:
    """Exact ticks since 1970 in `unit` (Python ints: no float on the way)."""
    delta = d - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 10**6 + delta.microseconds
    return micros * TICKS[unit] // 10**6  # floored in the coarser units


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Kolkata", "America/St_Johns"])  # +05:30, -03:30 / -02:30
def test_datetime64_of_every_resolution_naive_or_aware_is_the_stdlib_second(unit, tz):
    naive = pd.Series([pd.Timestamp(d.replace(tzinfo=None)) for d in (WHEN, LEAP)]).dt.as_unit(unit)
    values = naive if tz is None else naive.dt.tz_localize("UTC").dt.tz_convert(tz)
    assert str(values.dtype).startswith(f"datetime64[{unit}")
    got = to_epoch_seconds(values, "f.parquet")
    assert got.dtype == np.int64
    # a seconds column cannot hold the .999: it is floored on the way in, so the leap-day second is the same
    assert got.tolist() == EXPECTED


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_datetimes_before_1970_are_floored_to_the_earlier_second(unit):
    half = datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)  # -0.5 s: floor -1 (truncation would give 0)
    values = pd.Series(np.array([_ticks(half, unit), _ticks(LEAP, unit)], dtype=f"datetime64[{unit}]"))
    assert to_epoch_seconds(values, "f.parquet", check=False).tolist() == [math.floor(half.timestamp()), EXPECTED[1]]
    assert math.floor(half.timestamp()) == -1


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(hours=9), timedelta(hours=-5, minutes=-30)])
def test_iso_strings_with_any_offset_are_the_stdlib_second(offset):
    zone = timezone(offset)
    texts = [d.astimezone(zone).isoformat() for d in (WHEN, LEAP)]
    assert to_epoch_seconds(pd.Series(texts), "f.csv").tolist() == EXPECTED
    naive = [d.replace(tzinfo=None).isoformat(sep=" ") for d in (WHEN, LEAP)]  # naive text is UTC
    assert to_epoch_seconds(pd.Series(naive), "f.csv").tolist() == EXPECTED


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("as_text", [False, True])
def test_integers_in_every_unit_explicit_or_inferred_are_the_stdlib_second(unit, as_text):
    ticks = [_ticks(d, unit) for d in (WHEN, LEAP)]
    values = pd.Series([str(t) for t in ticks]) if as_text else pd.Series(ticks, dtype=np.int64)
    assert to_epoch_seconds(values, "f.csv", unit=unit).tolist() == EXPECTED
    assert to_epoch_seconds(values, "f.csv").tolist() == EXPECTED  # auto: inferred from the magnitude


def test_int64_columns_are_divided_exactly_up_to_int64_max():
    top = 2**63 - 1  # 9_223_372_036_854_775_807; as a float it would be 2**63 (and ms / 1000 would round up)
    assert to_epoch_seconds(pd.Series([top]), "f.csv", unit="s").tolist() == [top]
    assert to_epoch_seconds(pd.Series([top]), "f.csv", unit="ms").tolist() == [9_223_372_036_854_775]
    assert to_epoch_seconds(pd.Series([top, 1_577_934_245_999]), "f.csv", unit="ms").tolist() == [
        9_223_372_036_854_775, 1_577_934_245]


def test_integer_valued_floats_are_divided_as_integers():
    # a float64 column of nanoseconds near the end of int64 (the year 2262): the float is exactly the integer
    # 9_223_371_998_999_999_488, 512 ns before a whole second; float division would round it up to that second
    x = 9_223_371_998_999_999_488.0
    assert int(x) == 9_223_371_998_999_999_488 and x < 2.0**63
    assert to_epoch_seconds(pd.Series([x]), "f.csv", unit="ns").tolist() == [9_223_371_998_999_999_488 // 10**9]
    assert to_epoch_seconds(pd.Series([x]), "f.csv", unit="ns").tolist() == [9_223_371_998]


def test_float32_columns_are_computed_in_float64():
    # 2**63 ns is exact in float32; 2**63 // 10**9 = 9_223_372_036, while float32 division gives 9_223_371_776
    values = pd.Series([2.0**63], dtype=np.float32)
    assert to_epoch_seconds(values, "f.parquet", unit="ns").tolist() == [2**63 // 10**9]
    seconds = pd.Series([1_577_934_208.0, 1_456_790_400.0], dtype=np.float32)  # whole seconds a float32 holds
    assert to_epoch_seconds(seconds, "f.parquet").tolist() == [1_577_934_208, 1_456_790_400]


def test_more_than_1000_rows_spanning_exactly_one_second_are_accepted():
    t = EXPECTED[0]
    values = pd.Series([t] * 600 + [t + 1] * 401)  # 1,001 rows, hi - lo = 1: not "under one second"
    assert to_epoch_seconds(values, "f.csv", unit="s").tolist() == [t] * 600 + [t + 1] * 401
    with pytest.raises(DataError, match=r"^f.csv, column 'timestamp': 1001 rows span under one second"):
        to_epoch_seconds(pd.Series([t] * 1001), "f.csv", unit="s")


def _message(values: pd.Series, **kw) -> str:
    with pytest.raises(DataError) as e:
        to_epoch_seconds(values, "f.csv", **kw)
    return str(e.value)


def test_an_unknown_unit_names_the_default_knob_when_no_option_is_given():
    assert _message(pd.Series([EXPECTED[0]]), unit="h") == (
        "f.csv, column 'timestamp': unknown timestamp unit 'h' (the timestamp unit); "
        "use auto, s, ms, us, ns or datetime")
    assert _message(pd.Series([EXPECTED[0]]), unit="h", option=KNOB) == (
        f"f.csv, column 'timestamp': unknown timestamp unit 'h' ({KNOB}); use auto, s, ms, us, ns or datetime")


def test_whole_messages_of_the_units_that_cannot_apply():
    dates = pd.Series([pd.Timestamp("2020-01-02 03:04:05")]).dt.as_unit("us")
    assert _message(dates, column="when", unit="ms", option=KNOB) == (
        f"f.csv, column 'when' holds date/times (datetime64[us]), so {KNOB}='ms' cannot apply; "
        "set it to auto or datetime")
    assert _message(pd.Series([EXPECTED[0]]), column="when", unit="datetime", option=KNOB) == (
        f"f.csv, column 'when' holds numbers, so {KNOB}='datetime' cannot apply; "
        "set it to auto or to the unit of the numbers (s, ms, us, ns)")


@pytest.mark.parametrize("unit", ["auto", "s"])
def test_booleans_are_refused_as_booleans(unit):
    assert _message(pd.Series([True, False]), column="when", unit=unit) == (
        "f.csv, column 'when' holds booleans, not timestamps; map the right column")


def test_numeric_text_of_no_unit_names_the_column_and_the_option():
    assert _message(pd.Series(["17", "19"]), column="when", option=KNOB) == (
        "f.csv, column 'when': numbers from 17 to 19 (median 18) are unix time in none of s, ms, us, ns between "
        f"1990 and 2100; set {KNOB} or fix the column")


def test_parsed_dates_before_1990_name_the_unit_used_and_the_option():
    assert _message(pd.Series(["1980-01-01", "2020-01-02T03:04:05Z"]), column="when", option=KNOB) == (
        "f.csv, column 'when': 1 timestamp(s) before 1990 are implausible (the values run from 1980-01-01T00:00:00Z "
        f"to 2020-01-02T03:04:05Z with unit datetime (parsed strings)); check the unit ({KNOB}) or fix those rows")


def test_non_finite_numbers_are_counted_not_the_finite_ones():
    values = pd.Series([1.6e9, np.inf, 1.6e9, -np.inf, 1.6e9])  # 2 non-finite among 5 (3 finite)
    assert _message(values, column="when") == "f.csv, column 'when': 2 non-finite timestamp(s)"
