"""One conversion of a timestamp column to int64 unix seconds (UTC), used by every source.

Handles ISO strings with and without a time zone (naive times are UTC), ``datetime64`` of any resolution
(s/ms/us/ns, from CSV parsing or Parquet), tz-aware columns, and numbers in s/ms/us/ns. With ``unit="auto"``
the unit of a numeric column is inferred from its magnitude (and logged). The result is checked: a range
that starts before 1990, or more than 1,000 rows that span under one second, is a `DataError` naming the
column, the range found and the unit used.

    >>> to_epoch_seconds(pd.Series(["2021-03-04T05:06:07Z"]), "f.csv").tolist()
    [1614834367]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from recsys.errors import DataError
from recsys.logging import get_logger

_log = get_logger(__name__)

TimestampUnit = Literal["auto", "s", "ms", "us", "ns", "datetime"]
TICKS_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
PLAUSIBLE_FROM = 631_152_000  # 1990-01-01T00:00:00Z
PLAUSIBLE_UNTIL = 4_102_444_800  # 2100-01-01T00:00:00Z: only used to infer the unit of numbers
MIN_ROWS_FOR_SPAN_CHECK = 1000
INT64_MAX = 2**63 - 1


def iso(seconds: int) -> str:
    """Unix seconds -> 'YYYY-MM-DDTHH:MM:SSZ' (UTC), whatever the local time zone."""
    return f"{np.datetime64(int(seconds), 's')}Z"


def to_epoch_seconds(values: pd.Series, where: str, *, column: str = "timestamp", unit: str = "auto",
                     option: str | None = None, check: bool = True) -> np.ndarray:
    """Convert a timestamp column to int64 unix seconds (floored); every problem is a DataError.

    values: the column (any dtype). where: the file (for messages). column: its name in the file.
    unit: auto | s | ms | us | ns | datetime. option: the config key that sets `unit` (named in errors).
    check: refuse implausible ranges (before 1990; > 1,000 rows within one second).
    """
    values = pd.Series(values).reset_index(drop=True)
    knob = option or "the timestamp unit"
    label = f"{where}, column {column!r}"
    nulls = int(values.isna().sum())
    if nulls:
        raise DataError(f"{label}: {nulls} null timestamp(s); drop or fill those rows")
    if unit not in ("auto", "datetime", *TICKS_PER_SECOND):
        raise DataError(f"{label}: unknown timestamp unit {unit!r} ({knob}); use auto, s, ms, us, ns or datetime")
    if pd.api.types.is_datetime64_any_dtype(values):
        if unit in TICKS_PER_SECOND:
            raise DataError(f"{label} holds date/times ({values.dtype}), so {knob}={unit!r} cannot apply; "
                            "set it to auto or datetime")
        seconds, used = _datetimes_to_seconds(values), f"datetime ({values.dtype})"
    elif pd.api.types.is_bool_dtype(values):
        raise DataError(f"{label} holds booleans, not timestamps; map the right column")
    elif pd.api.types.is_numeric_dtype(values):
        if unit == "datetime":
            raise DataError(f"{label} holds numbers, so {knob}='datetime' cannot apply; "
                            "set it to auto or to the unit of the numbers (s, ms, us, ns)")
        seconds, used = _numbers_to_seconds(values, unit, label, knob)
    else:
        numeric = pd.to_numeric(values, errors="coerce") if unit != "datetime" else None
        if numeric is not None and numeric.notna().all():
            seconds, used = _numbers_to_seconds(numeric, unit, label, knob)
        elif unit in TICKS_PER_SECOND:
            assert numeric is not None
            bad = values[numeric.isna()]
            raise DataError(f"{label}: {len(bad)} value(s) are not numbers (e.g. {bad.iloc[0]!r}) although "
                            f"{knob}={unit!r}; set it to auto or datetime for date strings")
        else:
            seconds, used = _strings_to_seconds(values, label, knob), "datetime (parsed strings)"
    if check:
        check_plausible(seconds, label, used, knob)
    return seconds


def parse_instant(text: str, option: str) -> int:
    """One ISO date/time (naive = UTC) -> unix seconds; the error names `option`."""
    return int(to_epoch_seconds(pd.Series([str(text)]), option, column=option, unit="datetime", option=option,
                                check=False)[0])


def check_plausible(seconds: np.ndarray, label: str, unit: str, knob: str) -> None:
    if not len(seconds):
        return
    lo, hi = int(seconds.min()), int(seconds.max())
    found = f"the values run from {iso(lo)} to {iso(hi)} with unit {unit}"
    early = int((seconds < PLAUSIBLE_FROM).sum())
    if early:
        raise DataError(f"{label}: {early} timestamp(s) before 1990 are implausible ({found}); "
                        f"check the unit ({knob}) or fix those rows")
    if len(seconds) > MIN_ROWS_FOR_SPAN_CHECK and hi - lo < 1:
        raise DataError(f"{label}: {len(seconds)} rows span under one second ({found}); "
                        f"the unit is probably wrong: set {knob}")


def _datetimes_to_seconds(values: pd.Series) -> np.ndarray:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    arr = values.to_numpy()
    name, count = np.datetime_data(arr.dtype)
    if name in TICKS_PER_SECOND and count == 1:
        return arr.view(np.int64) // TICKS_PER_SECOND[name]  # floor division: exact for every resolution
    return arr.astype("datetime64[s]").view(np.int64).copy()


def _strings_to_seconds(values: pd.Series, label: str, knob: str) -> np.ndarray:
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna()
    if bad.any():
        raise DataError(f"{label}: {int(bad.sum())} value(s) cannot be parsed as a date/time "
                        f"(e.g. {values[bad].iloc[0]!r}); fix the file or set {knob}")
    return _datetimes_to_seconds(parsed)


def infer_unit(x: np.ndarray, label: str, knob: str) -> str:
    """The unit (s/ms/us/ns) that puts the median of `x` between 1990 and 2100."""
    median = float(np.median(np.abs(x.astype(np.float64))))
    for unit, per_second in TICKS_PER_SECOND.items():
        if PLAUSIBLE_FROM <= median / per_second < PLAUSIBLE_UNTIL:
            return unit
    raise DataError(f"{label}: numbers from {x.min()} to {x.max()} (median {median:.0f}) are unix time in none of "
                    f"s, ms, us, ns between 1990 and 2100; set {knob} or fix the column")


def _numbers_to_seconds(values: pd.Series, unit: str, label: str, knob: str) -> tuple[np.ndarray, str]:
    if pd.api.types.is_unsigned_integer_dtype(values) and len(values) and int(values.max()) > INT64_MAX:
        # uint64 past int64 would wrap to negative numbers (and read as "before 1990")
        huge = values[values.astype(np.uint64) > np.uint64(INT64_MAX)]
        raise DataError(f"{label}: {len(huge)} timestamp(s) at or above 2**63 (e.g. {int(huge.iloc[0])}), past any "
                        f"unix time in any unit ({knob}); fix those rows")
    x = values.to_numpy(np.int64 if pd.api.types.is_integer_dtype(values) else np.float64)
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{label}: {int((~np.isfinite(x)).sum())} non-finite timestamp(s)")
    if unit == "auto":
        unit = infer_unit(x, label, knob)
        _log.info("%s: numeric timestamps read as unix %s (inferred from their magnitude; set %s to override)",
                  label, unit, knob)
    per_second = TICKS_PER_SECOND[unit]
    if x.dtype.kind == "i" or (np.all(x == np.floor(x)) and np.abs(x).max() < 2.0**63):  # exact integer path
        seconds = x.astype(np.int64) // per_second
    else:
        floored = np.floor(x / per_second)
        out_of_range = np.abs(floored) >= 2.0**63  # astype(int64) would wrap these
        if out_of_range.any():
            raise DataError(f"{label}: {int(out_of_range.sum())} timestamp(s) past any unix time in {unit} (e.g. "
                            f"{x[out_of_range][0]:g}); check the unit ({knob}) or fix those rows")
        seconds = floored.astype(np.int64)
    return seconds, unit
