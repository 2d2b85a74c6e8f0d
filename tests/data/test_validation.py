"""One test per DataError case: each names the file, the column and the offending count."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.config.schema import DataConfig, TabularConfig
from recsys.data.sources import load_tabular
from recsys.data.validation import validate_interactions
from recsys.errors import DataError


def frame(**cols):
    base = {"user_id": ["a", "b", "c"], "item_id": ["x", "y", "z"],
            "timestamp": [1_600_000_000, 1_600_000_100, 1_600_000_200], "event": ["view", "cart", "purchase"]}
    base.update(cols)
    return pd.DataFrame(base)


def test_missing_columns():
    with pytest.raises(DataError, match=r"f.csv: missing column\(s\) \['timestamp'\]"):
        validate_interactions(frame().drop(columns="timestamp"), DataConfig(), "f.csv")


def test_null_ids_counted():
    with pytest.raises(DataError, match=r"f.csv, column 'user_id': 2 null id"):
        validate_interactions(frame(user_id=["a", None, None]), DataConfig(), "f.csv")


def test_unparseable_timestamps_counted():
    with pytest.raises(DataError, match=r"column 'timestamp': 1 value\(s\) cannot be parsed.*'yesterday'"):
        validate_interactions(frame(timestamp=["2020-01-01", "yesterday", "2020-01-03"]), DataConfig(), "f.csv")


def test_unparseable_ratings_counted():
    with pytest.raises(DataError, match=r"column 'rating': 1 value\(s\) are not numbers"):
        validate_interactions(frame(rating=["4", "five", "3"]).drop(columns="event"), DataConfig(), "f.csv")


def test_ratings_out_of_range():
    cfg = DataConfig(rating_range=(0.5, 5.0))
    with pytest.raises(DataError, match=r"column 'rating': 2 rating\(s\) outside the allowed range \[0.5, 5.0\]"):
        validate_interactions(frame(rating=[4.0, 7.0, 0.0]).drop(columns="event"), cfg, "f.csv")


def test_future_timestamps():
    with pytest.raises(DataError, match=r"1 timestamp\(s\) are in the future"):
        validate_interactions(frame(timestamp=[1_600_000_000, 1_600_000_100, 4_000_000_000]), DataConfig(), "f.csv")
    ok = validate_interactions(frame(timestamp=[1_600_000_000, 1_600_000_100, 4_000_000_000]),
                               DataConfig(allow_future=True), "f.csv")
    assert len(ok) == 3


def test_timestamps_before_1990_are_implausible():
    with pytest.raises(DataError, match=r"column 'timestamp': 1 timestamp\(s\) before 1990 .*1969-12-31T23:59:55Z"):
        validate_interactions(frame(timestamp=[1_600_000_000, -5, 1_600_000_200]), DataConfig(), "f.csv")


@pytest.mark.parametrize("policy,expected", [("keep", 4), ("drop", 3)])
def test_duplicates_keep_or_drop(policy, expected):
    df = pd.concat([frame(), frame().iloc[[0]]])
    out = validate_interactions(df, DataConfig(duplicates=policy), "f.csv")
    assert len(out) == expected


def test_duplicates_error():
    df = pd.concat([frame(), frame().iloc[[0, 1]]])
    with pytest.raises(DataError, match=r"f.csv: 2 duplicate row\(s\)"):
        validate_interactions(df, DataConfig(duplicates="error"), "f.csv")


def test_empty_after_filtering():
    cfg = DataConfig(implicit={"rating_threshold": 4.5})
    with pytest.raises(DataError, match="no interactions left after filtering"):
        validate_interactions(frame(rating=[1.0, 2.0, 3.0]).drop(columns="event"), cfg, "f.csv")


def test_rating_threshold_and_event_weights():
    cfg = DataConfig(implicit={"rating_threshold": 3.5, "rating_weight": "rating"})
    out = validate_interactions(frame(rating=[4.0, 3.0, 5.0]).drop(columns="event"), cfg, "f.csv")
    assert sorted(out["weight"]) == [4.0, 5.0]
    weights = {"event_weights": {"view": 1.0, "purchase": 4.0}}
    with pytest.raises(DataError, match=r"column 'event': 1 of 3 row\(s\) \(33.33%\) have events \['cart'\] without a "
                                        r"weight .*data.allow_drop: true"):
        validate_interactions(frame(), DataConfig(implicit=weights), "f.csv")
    out = validate_interactions(frame(), DataConfig(implicit=weights, allow_drop=True), "f.csv")
    assert dict(zip(out["event"], out["weight"])) == {"view": 1.0, "purchase": 4.0}  # 'cart' dropped


def test_tabular_source_mapping_and_missing_mapped_column(tmp_path):
    path = tmp_path / "events.csv"
    frame().rename(columns={"user_id": "customer", "timestamp": "ts"}).to_csv(path, index=False)
    cfg = DataConfig(source="tabular", tabular=TabularConfig(interactions=str(path),
                                                             columns={"user_id": "customer", "timestamp": "ts"},
                                                             timestamp_unit="s"))
    ds = load_tabular(cfg)
    assert set(ds.interactions["user_id"]) == {"a", "b", "c"}
    bad = DataConfig(source="tabular", tabular=TabularConfig(interactions=str(path), columns={"user_id": "client"}))
    with pytest.raises(DataError, match=r"events.csv: missing column\(s\) \['client'\]"):
        load_tabular(bad)
    missing = DataConfig(source="tabular", tabular=TabularConfig(interactions=str(tmp_path / "nope.csv")))
    with pytest.raises(DataError, match="nope.csv: file does not exist"):
        load_tabular(missing)
