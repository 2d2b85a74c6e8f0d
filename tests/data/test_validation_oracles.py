"""Data validation on tiny tables whose result is worked out by hand: implicit weights, the k-core of minimum
counts, boundaries (one day of clock skew, exactly 1% dropped), the output order, and every option that cannot
apply, with its whole message (the file's column names, the fix)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from recsys.config.schema import DataConfig
from recsys.data.validation import apply_min_counts, report_drop, validate_interactions, validate_items
from recsys.errors import ConfigError, DataError

T0 = 1_600_000_000  # 2020-09-13T12:26:40Z


def table(n: int = 3, **cols) -> pd.DataFrame:
    base = {"user_id": [f"u{i}" for i in range(n)], "item_id": [f"i{i}" for i in range(n)],
            "timestamp": [T0 + 10 * i for i in range(n)]}
    base.update(cols)
    return pd.DataFrame(base)


# --- implicit weights -------------------------------------------------------------------------------------------
def test_ratings_become_binary_or_rating_weights():
    df = table(rating=[4.0, 2.0, 5.0])
    binary = validate_interactions(df, DataConfig(), "f.csv")
    assert binary["weight"].tolist() == [1.0, 1.0, 1.0]  # rating_weight: binary (the default), no threshold
    assert binary["event"].tolist() == ["rating"] * 3 and binary["rating"].tolist() == [4.0, 2.0, 5.0]
    graded = validate_interactions(df, DataConfig(implicit={"rating_weight": "rating"}), "f.csv")
    assert graded["weight"].tolist() == [4.0, 2.0, 5.0]
    kept = validate_interactions(df, DataConfig(implicit={"rating_threshold": 4.0}), "f.csv")
    assert kept["item_id"].tolist() == ["i0", "i2"] and kept["weight"].tolist() == [1.0, 1.0]  # >= threshold


def test_event_weights_and_nonpositive_weights():
    df = table(4, event=["view", "purchase", "interaction", "skip"])
    cfg = DataConfig(implicit={"event_weights": {"view": 0.5, "purchase": 5.0, "skip": 0.0}})
    out = validate_interactions(df, cfg, "f.csv")
    # interaction without a weight counts 1; a weight of 0 is not a positive
    assert dict(zip(out["event"], out["weight"])) == {"view": 0.5, "purchase": 5.0, "interaction": 1.0}
    no_event = validate_interactions(table(), DataConfig(), "f.csv")
    assert no_event["event"].tolist() == ["interaction"] * 3 and no_event["weight"].tolist() == [1.0] * 3
    weights = validate_interactions(table(weight=["2", "-1", "0.5"]), DataConfig(), "f.csv")
    assert weights["weight"].tolist() == [2.0, 0.5]


def test_mixed_events_with_rating_weight_is_a_config_error():
    df = table(4, rating=[5.0, 4.0, 3.0, 2.0], event=["rating", "view", "rating", "view"])
    with pytest.raises(ConfigError, match=r"^data.implicit.rating_weight='rating' cannot apply: f.csv mixes events "
                                          r"\['rating', 'view'\] and no rating_threshold is set, so the event weights "
                                          r"decide; set data.implicit.rating_threshold or use rating_weight: binary$"):
        validate_interactions(df, DataConfig(implicit={"rating_weight": "rating"}), "f.csv")


# --- minimum counts -----------------------------------------------------------------------------------------------
def test_min_counts_iterate_to_the_two_core():
    # a-x, a-y, b-x, b-y form a 2-core; c-x, c-z hang off it: dropping z (1 user) leaves c with 1 item, then c goes
    # and x keeps a and b. One pass would keep c-x (c had 2 rows, x had 3 users).
    rows = [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "x"), ("c", "z")]
    df = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(timestamp=T0, weight=1.0)
    out = apply_min_counts(df, DataConfig(min_user_interactions=2, min_item_interactions=2))
    assert sorted(zip(out["user_id"], out["item_id"])) == rows[:4]
    only_users = apply_min_counts(df, DataConfig(min_user_interactions=2))
    assert len(only_users) == 6  # every user has 2 rows; items are not filtered
    only_items = apply_min_counts(df, DataConfig(min_item_interactions=3))
    assert sorted(zip(only_items["user_id"], only_items["item_id"])) == [("a", "x"), ("b", "x"), ("c", "x")]
    assert apply_min_counts(df, DataConfig()) is df


def test_min_counts_apply_in_validation():
    df = table(4, user_id=["a", "a", "b", "c"], item_id=["x", "y", "x", "x"])
    out = validate_interactions(df, DataConfig(min_user_interactions=2), "f.csv")
    assert out["user_id"].tolist() == ["a", "a"]


# --- boundaries and output ------------------------------------------------------------------------------------------
def test_one_day_of_clock_skew_is_not_the_future():
    now = float(T0 + 100)
    at_limit = table(timestamp=[T0, T0 + 10, T0 + 100 + 86400])
    assert len(validate_interactions(at_limit, DataConfig(), "f.csv", now=now)) == 3
    past = table(timestamp=[T0, T0 + 10, T0 + 100 + 86401])
    with pytest.raises(DataError, match=r"^f.csv, column 'timestamp': 1 timestamp\(s\) are in the future \(wrong unit "
                                        r"or clock\?\); fix them or set data.allow_future: true$"):
        validate_interactions(past, DataConfig(), "f.csv", now=now)


def test_output_columns_order_and_duplicate_key():
    df = pd.DataFrame({"user_id": ["b", "a", "a", "a"], "item_id": ["x", "y", "x", "x"],
                       "timestamp": [T0 + 5, T0, T0, T0], "event": ["view", "view", "view", "cart"],
                       "extra": 1}, index=[10, 11, 12, 13])
    out = validate_interactions(df, DataConfig(), "f.csv")
    assert out.columns.tolist() == ["user_id", "item_id", "timestamp", "event", "weight"]
    # the same instant with another event is not a duplicate; sorted by (timestamp, user, item), stable
    assert list(zip(out["user_id"], out["item_id"], out["event"])) == [
        ("a", "x", "view"), ("a", "x", "cart"), ("a", "y", "view"), ("b", "x", "view")]
    assert out.index.equals(pd.RangeIndex(4))
    assert df.columns.tolist() == ["user_id", "item_id", "timestamp", "event", "extra"]  # the input is not changed
    kept = validate_interactions(pd.concat([df, df.iloc[[0]]]), DataConfig(duplicates="keep"), "f.csv")
    assert len(kept) == 5


def test_exactly_one_percent_dropped_is_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="recsys"):
        report_drop(2, 200, "f.csv", "w", "are not finite numbers", DataConfig())
    assert [r.getMessage() for r in caplog.records] == [
        "f.csv, column 'w': 2 of 200 row(s) (1.00%) are not finite numbers; they are dropped"]
    with pytest.raises(DataError, match=r"^f.csv, column 'w': 3 of 200 row\(s\) \(1.50%\) are not finite numbers; "
                                        r"more than 1% would be dropped: fix the column or set data.allow_drop: true$"):
        report_drop(3, 200, "f.csv", "w", "are not finite numbers", DataConfig())
    with pytest.raises(DataError, match=r"^f.csv, column 'w': 5 of 5 row\(s\) \(100.00%\) are not finite numbers: "
                                        r"every row would be dropped; fix the column or its mapping$"):
        report_drop(5, 5, "f.csv", "w", "are not finite numbers", DataConfig(allow_drop=True))
    report_drop(0, 0, "f.csv", "w", "x", DataConfig())  # nothing dropped: nothing to say


def test_whole_messages_of_the_row_checks():
    with pytest.raises(DataError, match=r"^f.csv: missing column\(s\) \['timestamp'\]; found \['user_id', "
                                        r"'item_id'\]\. map your columns with data.tabular.columns "
                                        r"\(e.g. \{user_id: customer\}\)$"):
        validate_interactions(table().drop(columns="timestamp"), DataConfig(), "f.csv")
    with pytest.raises(DataError, match=r"^f.csv, column 'item_id': 1 null id\(s\); drop or fill those rows$"):
        validate_interactions(table(item_id=["a", None, "c"]), DataConfig(), "f.csv")
    with pytest.raises(DataError, match=r"^f.csv, column 'stars': 1 value\(s\) are not numbers$"):
        validate_interactions(table(rating=["4", "x", "3"]), DataConfig(), "f.csv", columns={"rating": "stars"})
    with pytest.raises(DataError, match=r"^f.csv, column 'rating': 1 rating\(s\) outside the allowed range "
                                        r"\[1.0, 5.0\] \(data.rating_range\)$"):
        validate_interactions(table(rating=[1.0, 5.0, 5.5]), DataConfig(rating_range=(1, 5)), "f.csv")
    with pytest.raises(DataError, match=r"^f.csv: 1 duplicate row\(s\) on \['user_id', 'item_id', 'timestamp', "
                                        r"'event'\]; set data.duplicates to 'drop' or 'keep'$"):
        validate_interactions(pd.concat([table(), table().iloc[[2]]]), DataConfig(duplicates="error"), "f.csv")
    with pytest.raises(DataError, match=r"^f.csv: no interactions left after filtering \(implicit threshold, event "
                                        r"weights, minimum counts\); loosen data.implicit or "
                                        r"data.min_\*_interactions$"):
        validate_interactions(table(rating=[1.0, 2.0, 3.0]), DataConfig(implicit={"rating_threshold": 4}), "f.csv")


# --- options that cannot apply: the whole message, with the file's column names ----------------------------------
HINT = "map one with data.tabular.columns"
OPTION_CASES = {
    "threshold": (table(), {"implicit": {"rating_threshold": 4}}, None,
                  ("data.implicit.rating_threshold=4.0 cannot apply: f.csv has no rating column "
                   f"({HINT}.rating, or remove the threshold)")),
    "rating weight": (table(), {"implicit": {"rating_weight": "rating"}}, None,
                      ("data.implicit.rating_weight='rating' cannot apply: f.csv has no rating column "
                       f"({HINT}.rating, or use rating_weight: binary)")),
    "rating weight and weight": (table(rating=[1.0, 2, 3], weight=1.0), {"implicit": {"rating_weight": "rating"}},
                                 {"weight": "w"}, ("data.implicit.rating_weight='rating' cannot apply: the weight "
                                                   "column 'w' of f.csv gives the weights; remove one of the two")),
    "event weights": (table(), {"implicit": {"event_weights": {"view": 1.0}}}, None,
                      ("data.implicit.event_weights cannot apply: f.csv has no event column "
                       f"({HINT}.event, or remove event_weights)")),
    "event weights and weight": (table(event="view", weight=1.0), {"implicit": {"event_weights": {"view": 1.0}}},
                                 {"weight": "w"}, ("data.implicit.event_weights cannot apply: the weight column "
                                                   "'w' of f.csv gives the weights; remove one of the two")),
    "rating range": (table(), {"rating_range": [1, 5]}, None,
                     ("data.rating_range=[1.0, 5.0] cannot apply: f.csv has no rating column "
                      f"({HINT}.rating, or remove rating_range)")),
}


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_option_that_cannot_apply_names_option_file_and_fix(case):
    df, data, columns, message = OPTION_CASES[case]
    with pytest.raises(ConfigError) as err:
        validate_interactions(df, DataConfig(**data), "f.csv", columns=columns)
    assert str(err.value) == message


def test_options_that_do_apply_pass():
    df = table(rating=[4.0, 5.0, 3.0], event="rating")
    out = validate_interactions(df, DataConfig(rating_range=(1, 5), implicit={"rating_threshold": 3.0,
                                                                              "rating_weight": "rating"}), "f.csv")
    assert out["weight"].tolist() == [4.0, 5.0, 3.0]
    ev = validate_interactions(table(event=["view", "cart", "view"]),
                               DataConfig(implicit={"event_weights": {"view": 1.0, "cart": 2.0}}), "f.csv")
    assert ev["weight"].tolist() == [1.0, 2.0, 1.0]


# --- items --------------------------------------------------------------------------------------------------------
def test_items_defaults_and_errors():
    items = pd.DataFrame({"item_id": ["b", "a"], "text": ["red", None], "brand": "z"}, index=[5, 6])
    out = validate_items(items, "items.csv")
    assert out.to_dict("list") == {"item_id": ["b", "a"], "title": ["b", "a"], "text": ["red", ""],
                                   "category": ["unknown", "unknown"]}
    assert out.index.equals(pd.RangeIndex(2))
    named = validate_items(pd.DataFrame({"item_id": [1], "title": [None], "category": [None]}), "items.csv")
    assert named.to_dict("list") == {"item_id": [1], "title": [""], "text": [""], "category": ["unknown"]}
    with pytest.raises(DataError, match=r"^items.csv: missing column\(s\) \['item_id'\]; found \['sku'\]\. map your "
                                        r"columns with data.tabular.item_columns$"):
        validate_items(pd.DataFrame({"sku": ["a"]}), "items.csv")
    with pytest.raises(DataError, match=r"^items.csv, column 'item_id': 1 null id\(s\)$"):
        validate_items(pd.DataFrame({"item_id": ["a", None]}), "items.csv")
    with pytest.raises(DataError, match=r"^items.csv, column 'item_id': 1 duplicated item id\(s\); items must be one "
                                        r"row per item$"):
        validate_items(pd.DataFrame({"item_id": ["a", "b", "a"]}), "items.csv")


def test_weights_that_are_not_finite_are_dropped_and_reported():
    df = table(200, weight=np.where(np.arange(200) == 3, "inf", "1.5"))
    out = validate_interactions(df, DataConfig(), "f.csv", columns={"weight": "score"})
    assert len(out) == 199 and "i3" not in set(out["item_id"])
    with pytest.raises(DataError, match=r"^f.csv, column 'score': 200 of 200 row\(s\)"):
        validate_interactions(table(200, weight="n/a"), DataConfig(allow_drop=True), "f.csv",
                              columns={"weight": "score"})


def test_min_counts_reach_the_fixed_point_however_long_the_chain():
    # a ladder u0-i0, u0-i1, u1-i1, u1-i2, ...: with minimum 2 per user and per item, each pass peels only the two
    # ends, so the 2-core (empty) is reached only after about n/2 passes (more than any fixed number of rounds)
    n = 30
    rows = [(f"u{k}", f"i{k + d}") for k in range(n) for d in (0, 1)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(timestamp=T0, weight=1.0)
    out = apply_min_counts(df, DataConfig(min_user_interactions=2, min_item_interactions=2))
    assert out.empty
    # closing the ladder into a ring makes every count 2: nothing is removed
    ring = pd.concat([df, pd.DataFrame({"user_id": ["u0"], "item_id": [f"i{n}"], "timestamp": T0, "weight": 1.0})])
    ring = ring[~((ring["user_id"] == "u0") & (ring["item_id"] == "i0"))]
    assert len(apply_min_counts(ring, DataConfig(min_user_interactions=2, min_item_interactions=2))) == len(ring)


def test_min_item_count_alone_keeps_single_row_users():
    rows = [("a", "x"), ("a", "y"), ("b", "x"), ("c", "z")]
    df = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(timestamp=T0, weight=1.0)
    out = apply_min_counts(df, DataConfig(min_item_interactions=2))
    assert sorted(zip(out["user_id"], out["item_id"])) == [("a", "x"), ("b", "x")]


def test_threshold_and_nonpositive_rows_are_logged(caplog):
    df = table(4, rating=[5.0, 1.0, 4.0, 3.0], weight=[2.0, 1.0, 0.0, 1.0])
    with caplog.at_level(logging.INFO, logger="recsys"):
        out = validate_interactions(df, DataConfig(implicit={"rating_threshold": 4.0}), "f.csv")
    assert out["item_id"].tolist() == ["i0"]
    messages = [r.getMessage() for r in caplog.records if r.name == "recsys.data.validation"]
    assert messages == ["f.csv: 2 of 4 row(s) have a rating >= 4.0 (data.implicit.rating_threshold)",
                        "f.csv: 1 row(s) with weight <= 0 are not positives and are left out"]


def test_nullable_weights_with_missing_values_are_dropped_and_reported(caplog):
    weight = pd.array([2.0 if i != 5 else None for i in range(200)], dtype="Float64")  # a Parquet nullable column
    with caplog.at_level(logging.WARNING, logger="recsys"):
        out = validate_interactions(table(200, weight=weight), DataConfig(), "f.csv")
    assert len(out) == 199 and "i5" not in set(out["item_id"]) and set(out["weight"]) == {2.0}
    assert out["weight"].dtype == np.float64
    assert any("1 of 200 row(s) (0.50%) are not finite numbers" in r.getMessage() for r in caplog.records)


def test_mixed_events_message_lists_the_first_five():
    events = ["rating", "a", "b", "c", "d", "e"]
    df = table(6, rating=[5.0] * 6, event=events)
    with pytest.raises(ConfigError, match=r"mixes events \['a', 'b', 'c', 'd', 'e'\] and no rating_threshold"):
        validate_interactions(df, DataConfig(implicit={"rating_weight": "rating"}), "f.csv")


def test_item_text_columns_are_strings():
    out = validate_items(pd.DataFrame({"item_id": ["a", "b"], "category": [3, 4], "title": [7, 8]}), "items.csv")
    assert out.to_dict("list") == {"item_id": ["a", "b"], "title": ["7", "8"], "text": ["", ""],
                                   "category": ["3", "4"]}


def test_require_columns_without_a_hint_and_parse_timestamps_names_the_tabular_option():
    from recsys.data.validation import parse_timestamps, require_columns

    with pytest.raises(DataError, match=r"^f.csv: missing column\(s\) \['a'\]; found \['b'\]$"):
        require_columns(pd.DataFrame({"b": [1]}), ["a"], "f.csv")
    assert parse_timestamps(pd.Series([1_614_834_367_000]), "f.csv").tolist() == [1_614_834_367]  # auto: ms
    with pytest.raises(DataError, match=r"set data.tabular.timestamp_unit or fix the column$"):
        parse_timestamps(pd.Series([5, 6, 7]), "f.csv")
    with pytest.raises(DataError, match=r"set data.tabular.timestamp_unit or fix the column$"):
        validate_interactions(table(timestamp=[5, 6, 7]), DataConfig(), "f.csv")


def test_duplicates_are_judged_on_the_key_and_logged(caplog):
    # same user, item, instant and event with another rating: a duplicate (the first row is kept)
    df = table(3, rating=[4.0, 3.0, 5.0], user_id=["a", "a", "b"], item_id=["x", "x", "y"],
               timestamp=[T0, T0, T0 + 1])
    with caplog.at_level(logging.WARNING, logger="recsys"):
        out = validate_interactions(df, DataConfig(implicit={"rating_weight": "rating"}), "f.csv")
    assert out["weight"].tolist() == [4.0, 5.0]
    assert [r.getMessage() for r in caplog.records if "duplicate" in r.getMessage()] == [
        "f.csv: dropped 1 duplicate row(s) on ['user_id', 'item_id', 'timestamp', 'event']"]


def test_missing_ratings_are_not_counted_as_unparseable():
    out = validate_interactions(table(rating=[4.0, None, 3.0]), DataConfig(), "f.csv")
    assert len(out) == 3  # binary weights; the missing rating is not "not a number"
