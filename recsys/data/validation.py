"""Validation of raw tables into canonical ones. Every DataError names the file, the column and the count."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from recsys.config.schema import DataConfig
from recsys.data.tables import INTERACTION_COLUMNS
from recsys.data.timestamps import to_epoch_seconds
from recsys.errors import ConfigError, DataError
from recsys.logging import get_logger

_log = get_logger(__name__)

MAX_SILENT_DROP = 0.01  # share of rows a coercion may drop with a warning; more needs data.allow_drop


def require_columns(df: pd.DataFrame, columns: list[str], where: str, hint: str = "") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {missing}; found {list(df.columns)}"
            + (f". {hint}" if hint else "")
        )


def parse_timestamps(values: pd.Series, where: str, unit: str = "auto") -> np.ndarray:
    """Int64 unix seconds of a timestamp column (see `recsys.data.timestamps.to_epoch_seconds`)."""
    return to_epoch_seconds(values, where, unit=unit, option="data.tabular.timestamp_unit")


def validate_interactions(df: pd.DataFrame, cfg: DataConfig, where: str, *, now: float | None = None,
                          timestamp_unit: str = "auto", unit_option: str = "data.tabular.timestamp_unit",
                          columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Check and convert a raw table with canonical column names into canonical Interactions.

    timestamp_unit: how the timestamp column is read (`recsys.data.timestamps.to_epoch_seconds`);
    columns: canonical -> file column names (used in messages only).

    Required: user_id, item_id, timestamp. Optional: event, rating, weight. Returns columns
    user_id, item_id, timestamp, event, weight (+ rating when present), positives only.
    """
    require_columns(df, ["user_id", "item_id", "timestamp"], where,
                    "map your columns with data.tabular.columns (e.g. {user_id: customer})")
    df = df.copy(deep=False)  # columns are replaced, never written in place (copy-on-write): no copy of the table
    for col in ("user_id", "item_id"):
        nulls = int(df[col].isna().sum())
        if nulls:
            raise DataError(f"{where}, column {col!r}: {nulls} null id(s); drop or fill those rows")
        df[col] = ids_within_int64(df[col], where, col)
    check_options(df, cfg, where, columns)
    df["timestamp"] = to_epoch_seconds(df["timestamp"], where, column=_name(columns, "timestamp"),
                                       unit=timestamp_unit, option=unit_option)
    now = time.time() if now is None else now
    future = int((df["timestamp"] > now + 86400).sum())
    if future and not cfg.allow_future:
        raise DataError(f"{where}, column 'timestamp': {future} timestamp(s) are in the future "
                        "(wrong unit or clock?); fix them or set data.allow_future: true")
    if "rating" in df.columns:
        rating = pd.to_numeric(df["rating"], errors="coerce")
        bad = int(rating.isna().sum() - df["rating"].isna().sum())
        if bad:
            raise DataError(f"{where}, column {_name(columns, 'rating')!r}: {bad} value(s) are not numbers")
        df["rating"] = rating.astype(np.float64)
        if cfg.rating_range is not None:
            lo, hi = cfg.rating_range
            out = int(((rating < lo) | (rating > hi)).sum())
            if out:
                raise DataError(f"{where}, column 'rating': {out} rating(s) outside the allowed range [{lo}, {hi}] "
                                "(data.rating_range)")
    if "event" not in df.columns:
        df["event"] = "rating" if "rating" in df.columns else "interaction"
    df["event"] = df["event"].astype(str)
    key = ["user_id", "item_id", "timestamp", "event"]
    dup = duplicate_rows(df, key)
    n_dup = int(dup.sum())
    if n_dup:
        if cfg.duplicates == "error":
            raise DataError(f"{where}: {n_dup} duplicate row(s) on {key}; set data.duplicates to 'drop' or 'keep'")
        if cfg.duplicates == "drop":
            _log.warning("%s: dropped %d duplicate row(s) on %s", where, n_dup, key)
            df = df[~dup]
    df = to_implicit(df, cfg, where, columns)
    df = apply_min_counts(df, cfg)
    if df.empty:
        raise DataError(f"{where}: no interactions left after filtering (implicit threshold, event weights, "
                        "minimum counts); loosen data.implicit or data.min_*_interactions")
    cols = INTERACTION_COLUMNS + (["rating"] if "rating" in df.columns else [])
    return sort_rows(df[cols], ["timestamp", "user_id", "item_id"])


def _sortable(col: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(col.dtype) or pd.api.types.is_string_dtype(col.dtype)


def _codes(col: pd.Series, sort: bool) -> np.ndarray:
    """Integer codes of a column's values (in value order with `sort`); signed integers are their own codes
    (unsigned ones are factorized: a uint64 beyond int64 would wrap to a negative code)."""
    if pd.api.types.is_signed_integer_dtype(col.dtype) and not col.hasnans:
        return col.to_numpy(np.int64)
    return pd.factorize(col, sort=sort, use_na_sentinel=False)[0]


def sort_rows(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`df.sort_values(keys, kind="stable").reset_index(drop=True)` by one stable argsort of the keys' codes packed
    into one int64 (numpy's radix/timsort; pandas factorizes the integer keys too, with a hash table as large as
    the column), or `np.lexsort` over the codes where they do not fit one int64. Missing values come last, as in
    sort_values; an object key mixing numbers and text is ordered numbers first, alone as among several keys
    (sort_values orders it so only among several)."""
    if not all(_sortable(df[k]) for k in keys):
        return df.sort_values(keys, kind="stable").reset_index(drop=True)
    codes = [_codes(df[k], sort=True) for k in keys]
    packed = _pack(codes)
    order = np.argsort(packed, kind="stable") if packed is not None else np.lexsort(codes[::-1])
    del codes, packed
    return df.take(order).reset_index(drop=True)


def duplicate_rows(df: pd.DataFrame, key: list[str]) -> np.ndarray:
    """`df.duplicated(subset=key, keep="first")` as a bool array: rows equal on `key` to an earlier row. One stable
    argsort of the codes packed into one int64 (pandas' hashing where they do not fit)."""
    if len(df) < 2:
        return np.zeros(len(df), dtype=bool)
    packed = _pack([_codes(df[k], sort=False) for k in key])
    if packed is None:
        return df.duplicated(subset=key, keep="first").to_numpy()
    order = np.argsort(packed, kind="stable")  # stable: the first of equal rows comes first
    packed = packed[order]
    dup = np.zeros(len(df), dtype=bool)
    dup[order[1:][packed[1:] == packed[:-1]]] = True
    return dup


def _pack(codes: list[np.ndarray]) -> np.ndarray | None:
    """One int64 per row ordering like the tuple of `codes` (first most significant); None if it cannot fit."""
    bounds = [(int(c.min()), int(c.max())) if len(c) else (0, 0) for c in codes]
    span = 1.0
    for lo, hi in bounds:
        span *= hi - lo + 1
    if span >= 2.0**62:
        return None
    packed = np.zeros(len(codes[0]), dtype=np.int64)
    for c, (lo, hi) in zip(codes, bounds):
        packed *= hi - lo + 1
        packed += c - lo
    return packed


def _name(columns: dict[str, str] | None, canonical: str) -> str:
    """The file's name of a canonical column (messages name what the user sees)."""
    return (columns or {}).get(canonical, canonical)


def check_options(df: pd.DataFrame, cfg: DataConfig, where: str, columns: dict[str, str] | None = None) -> None:
    """Options that cannot apply to this table are errors naming the option (never silently ignored)."""
    imp = cfg.implicit
    has = {c: c in df.columns for c in ("rating", "event", "weight")}
    hint = {c: f"map one with data.tabular.columns.{c}" for c in has}
    if imp.rating_threshold is not None and not has["rating"]:
        raise ConfigError(f"data.implicit.rating_threshold={imp.rating_threshold} cannot apply: {where} has no "
                          f"rating column ({hint['rating']}, or remove the threshold)")
    if imp.rating_weight == "rating" and not has["rating"]:
        raise ConfigError(f"data.implicit.rating_weight='rating' cannot apply: {where} has no rating column "
                          f"({hint['rating']}, or use rating_weight: binary)")
    if imp.rating_weight == "rating" and has["weight"]:
        raise ConfigError(f"data.implicit.rating_weight='rating' cannot apply: the weight column "
                          f"{_name(columns, 'weight')!r} of {where} gives the weights; remove one of the two")
    if "event_weights" in imp.model_fields_set and not has["event"]:
        raise ConfigError(f"data.implicit.event_weights cannot apply: {where} has no event column "
                          f"({hint['event']}, or remove event_weights)")
    if "event_weights" in imp.model_fields_set and has["weight"]:
        raise ConfigError(f"data.implicit.event_weights cannot apply: the weight column {_name(columns, 'weight')!r} "
                          f"of {where} gives the weights; remove one of the two")
    if cfg.rating_range is not None and not has["rating"]:
        raise ConfigError(f"data.rating_range={list(cfg.rating_range)} cannot apply: {where} has no rating column "
                          f"({hint['rating']}, or remove rating_range)")


def report_drop(n_dropped: int, n_total: int, where: str, column: str, why: str, cfg: DataConfig) -> None:
    """Warn about rows a coercion drops (count and column); > 1% is an error unless data.allow_drop is true."""
    if not n_dropped:
        return
    share = n_dropped / max(1, n_total)
    msg = f"{where}, column {column!r}: {n_dropped} of {n_total} row(s) ({share:.2%}) {why}"
    if n_dropped >= n_total:
        raise DataError(f"{msg}: every row would be dropped; fix the column or its mapping")
    if share > MAX_SILENT_DROP and not cfg.allow_drop:
        raise DataError(f"{msg}; more than {MAX_SILENT_DROP:.0%} would be dropped: fix the column or set "
                        "data.allow_drop: true")
    _log.warning("%s; they are dropped", msg)


def to_implicit(df: pd.DataFrame, cfg: DataConfig, where: str, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Raw feedback -> positive weighted interactions (`check_options` has refused options that cannot apply).

    weight column: its numbers (non-numeric rows are dropped and reported); else ratings (>= rating_threshold,
    weight 1 or the rating); else event weights (events without a weight are dropped and reported).
    """
    imp = cfg.implicit
    if imp.rating_threshold is not None:
        before = len(df)
        df = keep_rows(df, (df["rating"] >= imp.rating_threshold).to_numpy())
        _log.info("%s: %d of %d row(s) have a rating >= %s (data.implicit.rating_threshold)", where, len(df), before,
                  imp.rating_threshold)
    if "weight" in df.columns:
        weight = pd.to_numeric(df["weight"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
        bad = ~np.isfinite(weight)
        report_drop(int(bad.sum()), len(df), where, _name(columns, "weight"), "are not finite numbers", cfg)
        df = keep_rows(df.assign(weight=weight), ~bad)
    elif "rating" in df.columns and (imp.rating_threshold is not None or set(df["event"].unique()) <= {"rating"}):
        df = df.assign(weight=1.0 if imp.rating_weight == "binary" else df["rating"].astype(np.float64))
    else:
        if imp.rating_weight == "rating":
            raise ConfigError(f"data.implicit.rating_weight='rating' cannot apply: {where} mixes events "
                              f"{sorted(df['event'].unique())[:5]} and no rating_threshold is set, so the event "
                              "weights decide; set data.implicit.rating_threshold or use rating_weight: binary")
        weights = imp.event_weights
        codes, kinds = pd.factorize(df["event"])  # one weight per distinct event, gathered (no per-row Python)
        per_kind = np.array([weights.get(e, 1.0 if e == "interaction" else np.nan) for e in kinds], np.float64)
        w = pd.Series(per_kind[codes] if len(kinds) else np.empty(len(df)), index=df.index)
        unknown = sorted(df.loc[w.isna(), "event"].unique())
        report_drop(int(w.isna().sum()), len(df), where, _name(columns, "event"),
                    f"have events {unknown[:10]} without a weight in data.implicit.event_weights", cfg)
        df = keep_rows(df.assign(weight=w), w.notna().to_numpy())
    nonpositive = int((df["weight"] <= 0).sum())
    if nonpositive:
        _log.info("%s: %d row(s) with weight <= 0 are not positives and are left out", where, nonpositive)
    return keep_rows(df, (df["weight"] > 0).to_numpy())


def keep_rows(df: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """df[mask], but the frame itself when every row is kept: filtering gathers every column (strings too)."""
    return df if bool(mask.all()) else df[mask]


def apply_min_counts(df: pd.DataFrame, cfg: DataConfig) -> pd.DataFrame:
    if cfg.min_user_interactions <= 1 and cfg.min_item_interactions <= 1:
        return df
    while True:  # iterate to the fixed point (the k-core): each pass can leave a user or an item below its minimum
        before = len(df)
        uc = df.groupby("user_id")["item_id"].transform("size")
        ic = df.groupby("item_id")["user_id"].transform("size")
        df = df[(uc >= cfg.min_user_interactions) & (ic >= cfg.min_item_interactions)]
        if len(df) == before:
            return df


INT64_MAX = int(np.iinfo(np.int64).max)


def ids_within_int64(ids: pd.Series, where: str, column: str) -> pd.Series:
    """Integer ids beyond int64 (read as uint64, or as Python ints) become strings, with a warning: an id is a
    label, and int64 is what the vocabularies, Parquet artifacts and the registry's signatures hold."""
    too_big = False
    if pd.api.types.is_unsigned_integer_dtype(ids.dtype):  # numpy uint64, nullable UInt64, Arrow uint64
        too_big = len(ids) > 0 and int(ids.max()) > INT64_MAX
    elif ids.dtype == object and len(ids):
        sample = ids.iloc[0]
        too_big = isinstance(sample, int) and any(isinstance(v, int) and abs(v) > INT64_MAX for v in ids)
    if too_big:
        _log.warning("%s, column %r: ids larger than int64 (max %d); they are used as strings (exact, but "
                     "string ids take more memory)", where, column, INT64_MAX)
        return ids.astype(str)
    return ids


def align_item_ids(items: pd.DataFrame, interactions: pd.DataFrame, where_items: str,
                   where_interactions: str) -> pd.DataFrame:
    """The items table's ids in the interactions' id type (ints read as text, or text digits as ints).

    Without this an items table of `"42"` strings and interactions of int 42 share no item: every item would be
    unknown. A lossless conversion is made with a warning; ids that cannot be converted are an error.
    """
    left, right = interactions["item_id"], items["item_id"]
    if len(right) == 0 or _id_kind(left) == _id_kind(right):
        return items
    out = items.copy()
    try:
        if _id_kind(left) == "text":
            converted = right.astype(str)
        else:
            numeric = pd.to_numeric(right.astype(str).str.strip(), errors="raise")
            if not np.all(np.mod(numeric, 1) == 0):
                raise ValueError("not whole numbers")
            converted = numeric.astype(left.dtype)
    except (ValueError, TypeError, OverflowError):
        raise DataError(f"{where_items}, column 'item_id' holds {right.dtype} ids but {where_interactions} holds "
                        f"{left.dtype} ids, and they cannot be converted (e.g. {right.iloc[0]!r}); give both tables "
                        "the same kind of item id") from None
    _log.warning("%s: item ids are %s but the interactions' are %s; converted to %s to match", where_items,
                 right.dtype, left.dtype, converted.dtype)
    out["item_id"] = converted
    return out


def _id_kind(ids: pd.Series) -> str:
    return "number" if pd.api.types.is_numeric_dtype(ids) and not pd.api.types.is_bool_dtype(ids) else "text"


def validate_items(items: pd.DataFrame, where: str) -> pd.DataFrame:
    require_columns(items, ["item_id"], where, "map your columns with data.tabular.item_columns")
    nulls = int(items["item_id"].isna().sum())
    if nulls:
        raise DataError(f"{where}, column 'item_id': {nulls} null id(s)")
    dup = int(items["item_id"].duplicated().sum())
    if dup:
        raise DataError(f"{where}, column 'item_id': {dup} duplicated item id(s); items must be one row per item")
    out = items.copy()
    for col, default in (("title", None), ("text", ""), ("category", "unknown")):
        if col not in out.columns:
            out[col] = out["item_id"].astype(str) if default is None else default
        out[col] = out[col].fillna("" if col != "category" else "unknown").astype(str)
    return out[["item_id", "title", "text", "category"]].reset_index(drop=True)
