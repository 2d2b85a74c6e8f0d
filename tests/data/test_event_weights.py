"""Implicit weights from events, on tables small enough to work out by hand: events are matched to
data.implicit.event_weights as text whatever the column's type, events without a weight are named in the error
(the first ten, sorted), rows whose weight is not positive are counted in the log, an empty table has nothing to
look up, and a timestamp error names the file and the file's column."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from recsys.config.schema import DataConfig
from recsys.data.validation import to_implicit, validate_interactions
from recsys.errors import DataError

T0 = 1_600_000_000  # 2020-09-13T12:26:40Z


def table(n: int, **cols) -> pd.DataFrame:
    base = {"user_id": [f"u{i}" for i in range(n)], "item_id": [f"i{i}" for i in range(n)],
            "timestamp": [T0 + 10 * i for i in range(n)]}
    return pd.DataFrame({**base, **cols})


def test_integer_events_are_matched_to_the_weights_as_text():
    df = table(4, event=[1, 2, 1, 3])  # e.g. event codes read from a Parquet int column
    out = validate_interactions(df, DataConfig(implicit={"event_weights": {"1": 2.0, "2": 0.5, "3": 1.0}}), "f.csv")
    assert out["event"].tolist() == ["1", "2", "1", "3"]
    assert out["weight"].tolist() == [2.0, 0.5, 2.0, 1.0]


def test_events_without_a_weight_are_named_first_ten_sorted_with_file_and_column():
    events = ["view"] + [f"e{j:02d}" for j in range(11, -1, -1)]  # 12 unknown events, listed in reverse
    cfg = DataConfig(implicit={"event_weights": {"view": 1.0}})
    with pytest.raises(DataError) as e:
        validate_interactions(table(13, event=events), cfg, "f.csv", columns={"event": "action"})
    assert str(e.value) == (
        "f.csv, column 'action': 12 of 13 row(s) (92.31%) have events ['e00', 'e01', 'e02', 'e03', 'e04', 'e05', "
        "'e06', 'e07', 'e08', 'e09'] without a weight in data.implicit.event_weights; more than 1% would be "
        "dropped: fix the column or set data.allow_drop: true")


def test_rows_with_a_weight_not_above_zero_are_counted_in_the_log(caplog):
    df = table(6, weight=[2.0, 1.0, 0.5, 0.0, -1.0, 1.5])
    with caplog.at_level(logging.INFO, logger="recsys"):
        out = validate_interactions(df, DataConfig(), "f.csv")
    assert out["weight"].tolist() == [2.0, 1.0, 0.5, 1.5]  # 1.0 and 0.5 are positives, 0 and -1 are not
    assert [r.getMessage() for r in caplog.records if r.name == "recsys.data.validation"] == [
        "f.csv: 2 row(s) with weight <= 0 are not positives and are left out"]


def test_an_empty_table_has_no_event_weights_to_look_up():
    empty = table(0, event=pd.Series([], dtype="str"))
    out = to_implicit(empty, DataConfig(implicit={"event_weights": {"view": 2.0}}), "f.csv")
    assert len(out) == 0 and "weight" in out.columns and out["weight"].dtype == np.float64


def test_a_timestamp_error_names_the_file_and_the_files_column():
    df = table(3).assign(timestamp=["2020-09-13", "next tuesday", "2020-09-14"])
    with pytest.raises(DataError) as e:
        validate_interactions(df, DataConfig(), "f.csv", columns={"timestamp": "when"})
    assert str(e.value) == ("f.csv, column 'when': 1 value(s) cannot be parsed as a date/time (e.g. 'next tuesday'); "
                            "fix the file or set data.tabular.timestamp_unit")
