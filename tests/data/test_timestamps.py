"""Every timestamp representation a user's file may hold is read as the exact unix second.

The expected values are computed by hand, not by the code under test:

A = 2021-03-04 05:06:07 UTC. Days 1970-01-01 .. 2021-01-01: 51 * 365 + 13 leap days (1972..2020) = 18628;
    + 31 (Jan) + 28 (Feb 2021) + 3 = 18690 days -> 18690 * 86400 = 1_614_816_000; + 5*3600 + 6*60 + 7 = 18_367
    -> 1_614_834_367.
B = 2000-02-29 23:59:59.999 UTC (a leap day, and a fraction that must be floored). Days to 2000-01-01:
    30 * 365 + 7 leap days (1972..1996) = 10957; + 31 + 28 = 11016 days -> 951_782_400; + 86_399 -> 951_868_799.
DAY_A = 2021-03-04 00:00:00 UTC = 1_614_816_000; DAY_B = 2000-02-29 00:00:00 UTC = 951_782_400.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from recsys.config.schema import DataConfig, SplitConfig, TabularConfig
from recsys.data.sessions import HitsFileConfig, load_hits_file
from recsys.data.sources import load_tabular
from recsys.data.split import split_interactions
from recsys.data.timestamps import to_epoch_seconds
from recsys.data.validation import validate_interactions
from recsys.errors import DataError

A, B = 1_614_834_367, 951_868_799
DAY_A, DAY_B = 1_614_816_000, 951_782_400


def _dt(unit: str, tz: str | None = None) -> pd.Series:
    b = "2000-02-29 23:59:59" if unit == "s" else "2000-02-29 23:59:59.999"  # a seconds column has no .999
    s = pd.Series([pd.Timestamp("2021-03-04 05:06:07"), pd.Timestamp(b)]).dt.as_unit(unit)
    return s.dt.tz_localize("UTC").dt.tz_convert(tz) if tz else s


# (name, column values, file format, expected seconds)
CASES = [
    ("iso naive (UTC)", ["2021-03-04 05:06:07", "2000-02-29 23:59:59.999"], "csv", [A, B]),
    ("iso T with Z", ["2021-03-04T05:06:07Z", "2000-02-29T23:59:59.999Z"], "csv", [A, B]),
    ("iso +02:00", ["2021-03-04T07:06:07+02:00", "2000-03-01T01:59:59.999+02:00"], "csv", [A, B]),
    ("iso -05:00", ["2021-03-04T00:06:07-05:00", "2000-02-29T18:59:59.999-05:00"], "csv", [A, B]),
    ("iso mixed offsets", ["2021-03-04T05:06:07Z", "2000-03-01T08:59:59.999+09:00"], "csv", [A, B]),
    ("date only", ["2021-03-04", "2000-02-29"], "csv", [DAY_A, DAY_B]),
    ("datetime64[s] parquet", _dt("s"), "parquet", [A, B]),
    ("datetime64[ms] parquet", _dt("ms"), "parquet", [A, B]),
    ("datetime64[us] parquet", _dt("us"), "parquet", [A, B]),
    ("datetime64[ns] parquet", _dt("ns"), "parquet", [A, B]),
    ("datetime64[us, Europe/Berlin] parquet", _dt("us", "Europe/Berlin"), "parquet", [A, B]),
    ("datetime64[ns, America/New_York] parquet", _dt("ns", "America/New_York"), "parquet", [A, B]),
    ("datetime64[ms, Asia/Tokyo] parquet", _dt("ms", "Asia/Tokyo"), "parquet", [A, B]),
    ("int seconds", [1_614_834_367, 951_868_799], "csv", [A, B]),
    ("int milliseconds", [1_614_834_367_000, 951_868_799_999], "csv", [A, B]),
    ("int microseconds", [1_614_834_367_000_000, 951_868_799_999_999], "csv", [A, B]),
    ("int nanoseconds", [1_614_834_367_000_000_000, 951_868_799_999_999_999], "csv", [A, B]),
    ("int seconds parquet", np.array([1_614_834_367, 951_868_799], dtype=np.int64), "parquet", [A, B]),
    ("int ms parquet", np.array([1_614_834_367_123, 951_868_799_999], dtype=np.int64), "parquet", [A, B]),
    ("float seconds with fraction", [1_614_834_367.25, 951_868_799.999], "csv", [A, B]),
    ("numeric strings", ["1614834367", "951868799"], "parquet", [A, B]),
]


def _write(tmp_path, values, fmt: str, columns: dict[str, object]) -> str:
    df = pd.DataFrame(columns)
    df["when"] = pd.Series(values).reset_index(drop=True)
    path = tmp_path / f"events.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return str(path)


@pytest.mark.parametrize("name,values,fmt,expected", CASES, ids=[c[0] for c in CASES])
def test_interactions_path_reads_exact_epoch_seconds(tmp_path, name, values, fmt, expected):
    path = _write(tmp_path, values, fmt, {"customer": ["u1", "u2"], "sku": ["a", "b"]})
    cfg = DataConfig(source="tabular", tabular=TabularConfig(
        interactions=path, columns={"user_id": "customer", "item_id": "sku", "timestamp": "when"}))
    inter = load_tabular(cfg).interactions
    assert inter["timestamp"].dtype == np.int64
    assert dict(zip(inter["item_id"], inter["timestamp"].tolist())) == {"a": expected[0], "b": expected[1]}


@pytest.mark.parametrize("name,values,fmt,expected", CASES, ids=[c[0] for c in CASES])
def test_sessions_path_reads_exact_epoch_seconds(tmp_path, name, values, fmt, expected):
    path = _write(tmp_path, values, fmt, {"visit": ["s1", "s2"], "n": [1, 1]})
    table = load_hits_file(HitsFileConfig(path=path, columns={"session_id": "visit", "hit_number": "n",
                                                              "timestamp": "when"}))
    got = dict(zip(table.sessions["session_id"], table.sessions["timestamp"].tolist()))
    assert got == {"s1": expected[0], "s2": expected[1]}


def test_in_memory_datetime_columns_of_every_resolution():
    for unit in ("s", "ms", "us", "ns"):
        assert to_epoch_seconds(_dt(unit), "mem").tolist() == [A, B], unit
        assert to_epoch_seconds(_dt(unit, "Pacific/Chatham"), "mem").tolist() == [A, B], unit


def test_explicit_units_divide_by_the_right_power():
    ts = pd.Series([1_614_834_367_999, 951_868_799_000])
    assert to_epoch_seconds(ts, "f.csv", unit="ms").tolist() == [A, B]
    assert to_epoch_seconds(ts * 1000, "f.csv", unit="us").tolist() == [A, B]
    assert to_epoch_seconds(ts * 1_000_000, "f.csv", unit="ns").tolist() == [A, B]
    assert to_epoch_seconds(pd.Series([A, B]), "f.csv", unit="s").tolist() == [A, B]
    assert to_epoch_seconds(pd.Series(["2021-03-04T05:06:07Z", "2000-02-29"]), "f.csv",
                            unit="datetime").tolist() == [A, DAY_B]


def test_local_time_zone_does_not_matter(time_zone):
    """Naive strings are UTC on every machine (the suite also runs under TZ=Asia/Tokyo)."""
    for tz in ("Asia/Tokyo", "America/Los_Angeles"):
        time_zone(tz)
        assert to_epoch_seconds(pd.Series(["2021-03-04 05:06:07"]), "f.csv").tolist() == [A]
        assert split_interactions(_frame([A - 1, A, A + 1]), SplitConfig(cutoff="2021-03-04 05:06:07")).audit[
            "cutoff"] == A


def test_auto_logs_the_unit_it_inferred(caplog):
    with caplog.at_level(logging.INFO, logger="recsys"):
        to_epoch_seconds(pd.Series([1_614_834_367_000_000]), "f.csv", column="when")
    assert any("'when'" in r.getMessage() and "unix us" in r.getMessage() for r in caplog.records)


def _frame(ts):
    return pd.DataFrame({"user_id": [f"u{i}" for i in range(len(ts))], "item_id": [f"i{i}" for i in range(len(ts))],
                         "timestamp": ts, "event": "view"})


def test_split_cutoff_with_time_zone_is_the_same_instant():
    df = validate_interactions(_frame([A - 3600, A - 1, A, A + 60]),
                               DataConfig(implicit={"event_weights": {"view": 1}}),
                               "f.csv")
    for cutoff in ("2021-03-04T05:06:07Z", "2021-03-04T14:06:07+09:00", "2021-03-04 05:06:07"):
        split = split_interactions(df, SplitConfig(cutoff=cutoff))
        assert split.audit["cutoff"] == A
        assert sorted(split.test["timestamp"]) == [A, A + 60]


@pytest.mark.parametrize("values,unit,needle", [
    ([1_614_834_367, 951_868_799], "ms",
     r"column 'when': 2 timestamp\(s\) before 1990 .*1970-01-19T16:33:54Z.*unit ms"),
    ([1_614_834_367_000, 951_868_799_000], "s", r"timestamp\(s\) are in the future"),
    (["2021-03-04", "2000-02-29"], "s", r"'when': 2 value\(s\) are not numbers .* data.tabular.timestamp_unit='s'"),
    ([1_614_834_367, 951_868_799], "datetime", r"'when' holds numbers, so data.tabular.timestamp_unit='datetime'"),
    ([17, 18], "auto", r"'when': numbers from 17 to 18 .* none of s, ms, us, ns"),
    (["2021-03-04", "next tuesday"], "auto", r"'when': 1 value\(s\) cannot be parsed .*'next tuesday'"),
])
def test_units_that_cannot_apply_are_errors_naming_column_and_option(tmp_path, values, unit, needle):
    path = _write(tmp_path, values, "csv", {"customer": ["u1", "u2"], "sku": ["a", "b"]})
    cfg = DataConfig(source="tabular", tabular=TabularConfig(
        interactions=path, timestamp_unit=unit, columns={"user_id": "customer", "item_id": "sku", "timestamp": "when"}))
    with pytest.raises(DataError, match=needle):
        load_tabular(cfg)


def test_datetime_column_with_integer_unit_is_an_error(tmp_path):
    path = _write(tmp_path, _dt("us"), "parquet", {"customer": ["u1", "u2"], "sku": ["a", "b"]})
    cfg = DataConfig(source="tabular", tabular=TabularConfig(
        interactions=path, timestamp_unit="ms", columns={"user_id": "customer", "item_id": "sku", "timestamp": "when"}))
    with pytest.raises(DataError, match=r"'when' holds date/times .*timestamp_unit='ms' cannot apply"):
        load_tabular(cfg)


def test_many_rows_within_one_second_is_an_error():
    strings = pd.Series([f"2021-03-04T05:06:07.{i:04d}Z" for i in range(1001)])
    with pytest.raises(DataError, match=r"1001 rows span under one second .*2021-03-04T05:06:07Z"):
        to_epoch_seconds(strings, "f.csv")
    assert set(to_epoch_seconds(strings[:1000], "f.csv").tolist()) == {A}  # 1,000 rows are allowed to


@pytest.mark.slow
def test_run_over_iso_dated_csv_logs_the_true_period(tmp_path, mlflow_uri):
    import mlflow

    from recsys.config import config_from_dict
    from recsys.experiment import run_experiment
    from recsys.tracking import MlflowTracker

    r = np.random.default_rng(3)
    n = 400
    start = pd.Timestamp("2021-03-04T05:06:07+01:00")  # 04:06:07 UTC
    when = [start + pd.Timedelta(minutes=int(m)) for m in np.sort(r.integers(0, 60 * 24 * 30, n))]
    when[0], when[-1] = start, pd.Timestamp("2021-04-04T23:59:59+01:00")
    df = pd.DataFrame({"customer": r.integers(0, 40, n), "sku": r.integers(0, 25, n),
                       "when": [w.isoformat() for w in when]})
    df.to_csv(tmp_path / "events.csv", index=False)
    cfg = config_from_dict({"name": "iso", "data": {"source": "tabular", "tabular": {
        "interactions": "events.csv", "columns": {"user_id": "customer", "item_id": "sku", "timestamp": "when"}}},
        "models": [{"name": "popularity"}], "registry": {"enabled": False}})
    result = run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
    path = mlflow.artifacts.download_artifacts(run_id=result.parent_run_id, artifact_path="data_statistics.json",
                                               dst_path=str(tmp_path / "dl"))
    with open(path) as fh:
        stats = json.load(fh)
    assert stats["period"] == {"start": "2021-03-04T04:06:07", "end": "2021-04-04T22:59:59"}
