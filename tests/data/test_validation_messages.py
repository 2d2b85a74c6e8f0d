"""Id conversions and the messages of data validation, pinned word for word.

A message is the user's only guide: each names the file, the column, the count and the fix, so a test compares
the whole text (not a fragment a mangled message would still contain). The id rules are checked on the boundary
values: int64's largest id stays a number, one more becomes text.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from recsys.config.schema import DataConfig
from recsys.data.timestamps import to_epoch_seconds
from recsys.data.validation import align_item_ids, ids_within_int64, parse_timestamps, validate_interactions
from recsys.errors import DataError

INT64_MAX = 2**63 - 1
BIG_WARNING = ("f.csv, column 'user_id': ids larger than int64 (max 9223372036854775807); they are used as strings "
               "(exact, but string ids take more memory)")


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("values", [[2**63], [7, 2**63 + 5], [2**64 - 1, 3, 3]])
@pytest.mark.parametrize("dtype", [np.uint64, "UInt64", "uint64[pyarrow]", object])
def test_ids_beyond_int64_become_their_exact_decimal_text_with_one_warning(caplog, values, dtype):
    ids = pd.Series(values, dtype=dtype)
    with caplog.at_level(logging.WARNING, logger="recsys"):
        out = ids_within_int64(ids, "f.csv", "user_id")
    assert out.tolist() == [str(v) for v in values]  # exact: no float rounding of 2**63 + 5
    assert warnings_of(caplog) == [BIG_WARNING]


@pytest.mark.parametrize("values, dtype", [
    *[(v, d) for v in ([], [INT64_MAX], [0, INT64_MAX, 5]) for d in (np.uint64, "UInt64", "uint64[pyarrow]")],
    *[(v, object) for v in ([], [INT64_MAX], [0, INT64_MAX, 5], [-INT64_MAX, 1])],
    ([3, INT64_MAX], "int64[pyarrow]"),  # Arrow hands out Python ints too
])
def test_ids_that_fit_int64_are_returned_untouched_without_a_warning(caplog, values, dtype):
    ids = pd.Series(values, dtype=dtype)
    with caplog.at_level(logging.WARNING, logger="recsys"):
        out = ids_within_int64(ids, "f.csv", "user_id")
    assert out is ids
    assert warnings_of(caplog) == []


def test_text_ids_are_left_as_they_are_even_beside_a_huge_number(caplog):
    """Only a column of Python ints is checked (its first id says which): text ids, or text first, stay as given."""
    for values in (["a", "b"], ["a", 2**63]):
        ids = pd.Series(values, dtype=object)
        with caplog.at_level(logging.WARNING, logger="recsys"):
            assert ids_within_int64(ids, "f.csv", "user_id") is ids
    assert warnings_of(caplog) == []


def test_validation_converts_huge_ids_and_names_the_file_in_the_warning(caplog):
    raw = pd.DataFrame({"user_id": pd.Series([2**63, 2**63 + 1, 2**63], dtype=np.uint64), "item_id": [1, 2, 3],
                        "timestamp": [1_600_000_000, 1_600_000_100, 1_600_000_200]})
    with caplog.at_level(logging.WARNING, logger="recsys"):
        out = validate_interactions(raw, DataConfig(), "f.csv")
    assert out["user_id"].tolist() == [str(2**63), str(2**63 + 1), str(2**63)]
    assert out["item_id"].tolist() == [1, 2, 3]
    assert warnings_of(caplog) == [BIG_WARNING]


def test_ratings_given_as_text_become_float64_numbers():
    raw = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["x", "y", "z"],
                        "timestamp": [1_600_000_000, 1_600_000_100, 1_600_000_200], "rating": ["4", "2.5", "5"]})
    out = validate_interactions(raw, DataConfig(), "f.csv")
    assert out["rating"].dtype == np.float64 and out["rating"].tolist() == [4.0, 2.5, 5.0]


def test_integer_weights_become_float64_weights():
    raw = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["x", "y", "z"],
                        "timestamp": [1_600_000_000, 1_600_000_100, 1_600_000_200], "weight": [3, 1, 2]})
    out = validate_interactions(raw, DataConfig(), "f.csv")
    assert out["weight"].dtype == np.float64 and out["weight"].tolist() == [3.0, 1.0, 2.0]


def test_parse_timestamps_uses_the_unit_given_and_names_the_file():
    ms = pd.Series([1_600_000_000_123, 1_600_000_100_999])
    assert parse_timestamps(ms, "f.csv", unit="ms").tolist() == [1_600_000_000, 1_600_000_100]
    seconds = pd.Series([1_600_000_000, 1_600_000_100])
    assert parse_timestamps(seconds, "f.csv", unit="s").tolist() == [1_600_000_000, 1_600_000_100]
    with pytest.raises(DataError) as err:
        parse_timestamps(pd.Series([1_600_000_000, None]), "f.csv")
    assert str(err.value) == "f.csv, column 'timestamp': 1 null timestamp(s); drop or fill those rows"
    with pytest.raises(DataError) as err:
        parse_timestamps(pd.Series(["1600000000", "later"]), "f.csv", unit="s")
    assert str(err.value) == ("f.csv, column 'timestamp': 1 value(s) are not numbers (e.g. 'later') although "
                              "data.tabular.timestamp_unit='s'; set it to auto or datetime for date strings")


def test_non_finite_timestamps_are_counted():
    with pytest.raises(DataError) as err:
        to_epoch_seconds(pd.Series([1.6e9, np.inf, -np.inf, 1.6e9 + 5]), "f.csv")
    assert str(err.value) == "f.csv, column 'timestamp': 2 non-finite timestamp(s)"


# --- align_item_ids: an items table whose ids are of another kind than the interactions' ----------------------------
def _items(ids) -> pd.DataFrame:
    return pd.DataFrame({"item_id": ids, "title": [f"t{i}" for i in range(len(ids))]})


def test_text_item_ids_of_whole_numbers_become_the_interactions_integers(caplog):
    inter = pd.DataFrame({"item_id": np.array([7, 1, 42], dtype=np.int64)})
    items = _items(pd.Series(["007", " 1", "42"], dtype=object))
    with caplog.at_level(logging.WARNING, logger="recsys"):
        out = align_item_ids(items, inter, "items.csv", "events.csv")
    assert out["item_id"].dtype == np.int64 and out["item_id"].tolist() == [7, 1, 42]
    assert out["title"].tolist() == ["t0", "t1", "t2"]
    assert items["item_id"].tolist() == ["007", " 1", "42"]  # the caller's table is not modified
    assert warnings_of(caplog) == ["items.csv: item ids are object but the interactions' are int64; converted to "
                                   "int64 to match"]


def test_integer_item_ids_become_text_when_the_interactions_ids_are_text(caplog):
    inter = pd.DataFrame({"item_id": pd.Series(["5", "12"], dtype=object)})
    items = _items(np.array([5, 12, 13], dtype=np.int64))
    with caplog.at_level(logging.WARNING, logger="recsys"):
        out = align_item_ids(items, inter, "items.csv", "events.csv")
    assert out["item_id"].tolist() == ["5", "12", "13"]
    assert warnings_of(caplog) == ["items.csv: item ids are int64 but the interactions' are object; converted to "
                                   "str to match"]


@pytest.mark.parametrize("left, right", [
    (np.array([1, 2], dtype=np.int64), np.array([3, 4, 5], dtype=np.int64)),
    (pd.Series(["a"], dtype=object), pd.Series(["b", "c"], dtype=object)),
    (np.array([1.5, 2.0]), np.array([3, 4], dtype=np.int64)),  # both numbers
    (np.array([1, 2], dtype=np.int64), np.array([], dtype=object)),  # an empty items table
])
def test_ids_of_the_same_kind_are_left_alone_without_a_warning(caplog, left, right):
    items = _items(right)
    with caplog.at_level(logging.WARNING, logger="recsys"):
        out = align_item_ids(items, pd.DataFrame({"item_id": left}), "items.csv", "events.csv")
    assert out is items and warnings_of(caplog) == []


def test_boolean_item_ids_are_not_numbers():
    """True/False are not the ids 1/0 of integer interactions: a refusal, not a silent match."""
    inter = pd.DataFrame({"item_id": np.array([1, 0], dtype=np.int64)})
    with pytest.raises(DataError, match=r"^items.csv, column 'item_id' holds bool ids but events.csv holds int64 "):
        align_item_ids(_items(np.array([True, False])), inter, "items.csv", "events.csv")


@pytest.mark.parametrize("ids, example", [(["sku-a", "2"], "'sku-a'"), (["2.5", "3"], "'2.5'"),
                                          (["1", "99999999999999999999"], "'1'")])
def test_item_ids_that_cannot_be_converted_are_one_error_naming_both_files(ids, example):
    inter = pd.DataFrame({"item_id": np.array([1, 2], dtype=np.int64)})
    with pytest.raises(DataError) as err:
        align_item_ids(_items(pd.Series(ids, dtype=object)), inter, "items.csv", "events.csv")
    assert str(err.value) == (f"items.csv, column 'item_id' holds object ids but events.csv holds int64 ids, and "
                              f"they cannot be converted (e.g. {example}); give both tables the same kind of item id")


def test_integer_nanoseconds_are_floored_exactly_not_through_floats():
    """1,700,000,000.999999999 s: a float division would round it up to the next second."""
    ns = pd.Series([1_700_000_000_999_999_999, 1_700_000_001_000_000_000, 1_699_999_999_000_000_001])
    assert to_epoch_seconds(ns, "f.csv", unit="ns").tolist() == [1_700_000_000, 1_700_000_001, 1_699_999_999]
