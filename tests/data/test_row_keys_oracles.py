"""`sort_rows`, `duplicate_rows` and `keep_rows` against plain Python: a stable `sorted` over the key tuples and a
set of the key tuples seen so far, on random small frames of every key kind (ints near the int64 limits, narrow
and unsigned ints, nullable ints, floats with NaN and -0.0, text with None, datetimes with NaT, booleans,
categoricals), zero to thirty rows, and on the frames whose packed key is exactly at, or just past, one int64."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.config.schema import DataConfig
from recsys.data.validation import duplicate_rows, keep_rows, sort_rows, validate_interactions

I64 = np.iinfo(np.int64)
MISSING = object()  # every kind of missing value (None, NaN, NA, NaT) is this one value to the oracles


def _column(kind: str, n: int, r: np.random.Generator) -> pd.Series:
    def pick(values, dtype=None):
        return pd.Series([values[i] for i in r.integers(0, len(values), n)], dtype=dtype)

    if kind == "small":
        return pd.Series(r.integers(-3, 4, n), dtype=np.int64)
    if kind == "wide":  # the limits of int64: two such keys cannot pack into one int64
        return pick([I64.min, I64.min + 1, -1, 0, 1, I64.max - 1, I64.max], np.int64)
    if kind == "int8":
        return pick([-128, -127, 0, 126, 127], np.int8)
    if kind == "int32":
        return pick([-(2**31), -5, 0, 2**31 - 2, 2**31 - 1], np.int32)
    if kind == "uint64":  # beyond int64 too
        return pick([0, 1, 2**63 - 1, 2**63, 2**64 - 1], np.uint64)
    if kind == "nullable":
        return pick([-2, 0, 7, None], "Int64")
    if kind == "float":
        return pick([-1.5, -0.0, 0.0, 2.5, np.inf, np.nan], np.float64)
    if kind == "text":
        return pick(["b", "a", "ab", "", "B", "é"], "str")
    if kind == "text_missing":
        return pick(["b", "a", "ab", None], "str")
    if kind == "object_missing":
        return pick(["y", "x", None, np.nan], object)
    if kind == "datetime":
        return pick([pd.Timestamp("2021-03-01"), pd.Timestamp("1969-12-31 23:59:59"), pd.NaT,
                     pd.Timestamp("2021-03-01 00:00:01")], "datetime64[ns]")
    if kind == "bool":
        return pd.Series(r.integers(0, 2, n).astype(bool))
    if kind == "category":  # categories out of alphabetical order: they sort in category order
        return pd.Series(pd.Categorical(pick(["z", "a", "m"]).tolist(), categories=["z", "a", "m"]))
    raise AssertionError(kind)


KINDS = ["small", "wide", "int8", "int32", "uint64", "nullable", "float", "text", "text_missing", "object_missing",
         "datetime", "bool", "category"]


def random_frame(r: np.random.Generator) -> tuple[pd.DataFrame, list[str]]:
    n = int(r.choice([0, 1, 2, 3, 5, 8, 13, 30]))
    kinds = r.choice(KINDS, size=int(r.integers(1, 5)))
    df = pd.DataFrame({f"k{j}_{kind}": _column(kind, n, r) for j, kind in enumerate(kinds)})
    df["row"] = np.arange(n)  # tells rows with equal keys apart
    df.index = np.arange(n)[::-1] * 10  # not 0..n-1: the result's index is reset
    return df, [c for c in df.columns if c != "row"]


def _value(col: pd.Series, i: int):
    if isinstance(col.dtype, pd.CategoricalDtype):
        code = int(col.cat.codes.iloc[i])
        return MISSING if code < 0 else code
    v = col.iloc[i]
    return MISSING if pd.isna(v) else v.item() if isinstance(v, np.generic) else v


def sort_oracle(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Python's stable sort of the row numbers by the key tuples; missing values last, numbers before text."""
    def rank(v):
        return (2, 0) if v is MISSING else (1, v) if isinstance(v, str) else (0, v)

    rows = sorted(range(len(df)), key=lambda i: tuple(rank(_value(df[k], i)) for k in keys))
    return df.iloc[rows].reset_index(drop=True)


def duplicate_oracle(df: pd.DataFrame, key: list[str]) -> list[bool]:
    seen, out = set(), []
    for i in range(len(df)):
        t = tuple(_value(df[k], i) for k in key)
        out.append(t in seen)
        seen.add(t)
    return out


def check(df: pd.DataFrame, keys: list[str]) -> None:
    pd.testing.assert_frame_equal(sort_rows(df, keys), sort_oracle(df, keys))
    dup = duplicate_rows(df, keys)
    assert dup.dtype == np.bool_ and dup.shape == (len(df),)
    assert dup.tolist() == duplicate_oracle(df, keys)


@pytest.mark.parametrize("seed", range(8))
def test_random_frames_sort_and_deduplicate_like_python(seed):
    r = np.random.default_rng(seed)
    for _ in range(40):
        df, keys = random_frame(r)
        check(df, keys)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [0, 1, 2])
def test_zero_one_and_two_rows(kind, n):
    r = np.random.default_rng(n)
    df = pd.DataFrame({"k": _column(kind, n, r), "j": np.zeros(n, np.int64), "row": np.arange(n)})
    check(df, ["k"])
    check(df, ["k", "j"])
    twice = pd.concat([df.iloc[:1], df.iloc[:1]], ignore_index=True)  # two equal rows: the second is a duplicate
    assert duplicate_rows(twice, ["k", "j"]).tolist() == [False, True][:len(twice)]


def test_unsigned_ints_beyond_int64_sort_as_numbers():
    df = pd.DataFrame({"k": np.array([2**63, 1, 2**64 - 1, 0], np.uint64), "row": range(4)})
    assert sort_rows(df, ["k"])["row"].tolist() == [3, 1, 0, 2]


def test_narrow_ints_at_their_limits_do_not_wrap():
    for dtype in (np.int8, np.int16, np.int32):
        lim = np.iinfo(dtype)
        df = pd.DataFrame({"k": np.array([lim.max, lim.min, 0, lim.max - 1], dtype), "row": range(4)})
        assert sort_rows(df, ["k"])["row"].tolist() == [1, 2, 3, 0]


def test_keys_too_wide_for_one_int64_sort_by_the_first_key_first():
    big = 2**40
    df = pd.DataFrame({"a": [big, -big, big, -big, 0], "b": [-big, big, big, -big, 0], "c": [1, 2, 3, 4, 5],
                       "row": range(5)})  # spans of 2**41 each: 2**123 in all
    assert sort_rows(df, ["a", "b", "c"])["row"].tolist() == [3, 1, 4, 0, 2]
    assert sort_rows(df, ["b", "a"])["row"].tolist() == [3, 0, 4, 1, 2]
    assert sort_rows(df.assign(k=0), ["k", "a", "b"])["row"].tolist() == [3, 1, 4, 0, 2]  # a constant key first
    same = pd.DataFrame({"a": [big, -big, big], "b": [-big, big, -big], "other": [1, 2, 3]})
    assert duplicate_rows(same, ["a", "b"]).tolist() == [False, False, True]  # `other` is not part of the key


def test_constant_and_negative_keys_with_a_wide_one():
    big = 2**40
    df = pd.DataFrame({"const": [7] * 4, "a": [big, -big, big, -big], "b": [-big, -big + 3, -big + 1, -big],
                       "row": range(4)})
    check(df, ["const", "a", "b"])
    check(df, ["a", "const", "b"])
    assert sort_rows(df, ["const", "a", "b"])["row"].tolist() == [3, 1, 0, 2]


def test_many_key_columns_that_overflow_one_int64():
    r = np.random.default_rng(5)
    bits = pd.DataFrame({f"b{j}": r.integers(0, 2, 40) for j in range(70)})  # 2**70 combinations
    bits.iloc[20:30] = bits.iloc[:10].to_numpy()  # ten repeated rows
    df = bits.assign(row=np.arange(40))
    keys = list(bits.columns)
    check(df, keys)
    assert sum(duplicate_oracle(df, keys)) >= 10


def test_span_just_under_2_to_62_packs_and_constant_columns_add_nothing():
    top = 2**61  # a span of 2**61 + 1, then constant columns: still one int64
    df = pd.DataFrame({"a": [top, 0, top, 1], "c1": 5, "c2": -5, "c3": 0, "row": range(4)})
    keys = ["a", "c1", "c2", "c3"]
    assert sort_rows(df, keys)["row"].tolist() == [1, 3, 0, 2]
    assert duplicate_rows(df, keys).tolist() == [False, False, True, False]


def test_large_ints_one_apart_stay_apart():
    df = pd.DataFrame({"k": [2**60 + 1, 0, 2**60, 2**60 + 1], "row": range(4)})
    assert sort_rows(df, ["k"])["row"].tolist() == [1, 2, 0, 3]
    assert duplicate_rows(df, ["k"]).tolist() == [False, False, False, True]


def test_span_past_2_to_63_by_float_rounding_is_not_packed():
    # 89547301328687144 * 103 = 2**63 + 24, but the float product of the spans rounds to just below 2**63
    a = 89547301328687144
    df = pd.DataFrame({"a": [a - 1, 0], "b": [102, 0], "row": [0, 1]})
    assert sort_rows(df, ["a", "b"])["row"].tolist() == [1, 0]


def test_sorting_is_stable_among_many_ties():
    r = np.random.default_rng(2)
    for values in (r.integers(0, 3, 300), r.integers(0, 3, 300) / 2.0, np.where(r.random(300) < 0.2, np.nan, 1.0)):
        df = pd.DataFrame({"k": values, "row": np.arange(300)})
        df.index = np.arange(300)[::-1]
        check(df, ["k"])


def test_every_missing_value_is_one_value_to_duplicate_rows():
    k = pd.Series(["x", None, np.nan, "x", None, pd.NA, pd.NaT], dtype=object)
    want = [False, False, True, True, True, True, True]
    assert duplicate_rows(pd.DataFrame({"k": k}), ["k"]).tolist() == want
    assert duplicate_rows(pd.DataFrame({"k": k, "j": 0}), ["k", "j"]).tolist() == want
    many = pd.Series([f"v{i}" for i in range(200)] + [None, np.nan, None], dtype=object)  # a wide code span
    assert duplicate_rows(pd.DataFrame({"k": many}), ["k"]).tolist() == [False] * 201 + [True, True]


def test_duplicate_rows_compares_values_it_could_not_order():
    k = pd.Series([1 + 2j, 3j, 1 + 2j, b"x", 1, b"x", 1], dtype=object)  # complex and bytes have no order with ints
    assert duplicate_rows(pd.DataFrame({"k": k}), ["k"]).tolist() == [False, False, True, False, False, True, True]
    assert duplicate_rows(pd.DataFrame({"k": k, "j": 0}), ["k", "j"]).tolist() == duplicate_oracle(
        pd.DataFrame({"k": k, "j": 0}), ["k", "j"])


def test_ids_mixing_numbers_and_text_are_labels_numbers_first():
    mixed = pd.Series([10, "b", 2, "a", 2], dtype=object)
    df = pd.DataFrame({"t": [1, 1, 1, 1, 0], "id": mixed, "row": range(5)})
    assert sort_rows(df, ["t", "id"])["row"].tolist() == [4, 2, 0, 3, 1]
    raw = pd.DataFrame({"user_id": mixed, "item_id": [5, 6, 5, 6, 7], "timestamp": 1_600_000_000})
    out = validate_interactions(raw, DataConfig(), "f.csv", now=2e9, timestamp_unit="s")
    assert out["user_id"].tolist() == [2, 2, 10, "a", "b"] and out["item_id"].tolist() == [5, 7, 5, 6, 6]


def test_a_key_mixing_numbers_and_text_is_ordered_alone_as_among_several():
    # numbers first, then text, missing values last: pandas' order with several keys (sort_values refuses one key)
    for values, want in (([10, "b", 2, "a", 2.5], [2, 4, 0, 3, 1]), ([10, "b", None, 2], [3, 0, 1, 2])):
        df = pd.DataFrame({"id": pd.Series(values, dtype=object), "row": range(len(values))})
        assert sort_rows(df, ["id"])["row"].tolist() == want
        assert sort_rows(df.assign(c=0), ["c", "id"])["row"].tolist() == want
        assert df.assign(c=0).sort_values(["c", "id"], kind="stable")["row"].tolist() == want


def test_keys_near_2_to_62_pack_without_wrapping():
    base = 2**62  # offsets from the smallest value, never the values themselves, are packed
    df = pd.DataFrame({"k": [base + 5, base - 5, base, base + 5], "row": range(4)})
    assert sort_rows(df, ["k"])["row"].tolist() == [1, 2, 0, 3]
    top = pd.DataFrame({"k": [I64.max, I64.max - 9, I64.max - 3], "j": [1, 0, 0], "row": range(3)})
    assert sort_rows(top, ["k", "j"])["row"].tolist() == [1, 2, 0]


def test_keep_rows_is_the_frame_itself_when_every_row_is_kept():
    df = pd.DataFrame({"a": [3, 1, 2]}, index=[7, 8, 9])
    assert keep_rows(df, np.array([True, True, True])) is df
    part = keep_rows(df, np.array([True, False, True]))
    assert part["a"].tolist() == [3, 2] and part.index.tolist() == [7, 9]
