"""Leakage-aware splits: global temporal cutoff, per-user leave-last, seeded random. Each carries an audit."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.config.schema import SplitConfig
from recsys.data.tables import frame_fingerprint
from recsys.data.timestamps import parse_instant
from recsys.errors import DataError
from recsys.random import RandomState, rng as make_rng


@dataclass
class Split:
    """train/test rows of canonical interactions plus an audit of leakage and cold-start counts."""

    train: pd.DataFrame
    test: pd.DataFrame
    method: str
    audit: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        cols = ["user_id", "item_id", "timestamp"]
        return frame_fingerprint(pd.concat([self.train[cols].assign(_p=0), self.test[cols].assign(_p=1)]))


def split_interactions(df: pd.DataFrame, cfg: SplitConfig, random_state: RandomState = 0,
                       test_size: float | None = None) -> Split:
    """Split canonical interactions according to `cfg` (test_size overrides cfg.test_size, used for validation)."""
    size = cfg.test_size if test_size is None else test_size
    df = df.reset_index(drop=True)
    if cfg.method == "temporal":
        if cfg.cutoff is not None and test_size is None:
            cutoff = parse_instant(cfg.cutoff, "split.cutoff")
        else:
            ts = np.sort(df["timestamp"].to_numpy())
            cutoff = int(ts[min(len(ts) - 1, int(np.floor(len(ts) * (1 - size))))])
        is_test = df["timestamp"].to_numpy() >= cutoff
        # never put the same instant on both sides: everything at or after the cutoff is test
        train, test = df[~is_test], df[is_test]
        extra = {"cutoff": cutoff}
    elif cfg.method == "leave_last":
        order = df.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
        pos_from_end = order.groupby("user_id").cumcount(ascending=False).to_numpy()
        n = order.groupby("user_id")["item_id"].transform("size").to_numpy()
        if cfg.test_n is not None:  # the validation carve-out holds out the same last N of the training part
            held = np.minimum(cfg.test_n, n - 1)
        else:
            held = np.floor(n * size).astype(np.int64)
        is_test = pos_from_end < held
        train, test = order[~is_test], order[is_test]
        extra = {"test_n": cfg.test_n, "test_size": size}
    else:
        r = make_rng(random_state)
        is_test = r.random(len(df)) < size
        train, test = df[~is_test], df[is_test]
        extra = {"test_size": size}
    if train.empty or test.empty:
        what, knob = ("validation", "split.validation_size") if test_size is not None else ("test", "split.test_size/cutoff")
        raise DataError(f"split {cfg.method!r} left an empty {'train' if train.empty else what} part "
                        f"({len(train)} train, {len(test)} {what} rows); change {knob}"
                        + (" or set split.test_n" if cfg.method == "leave_last" else ""))
    return Split(train=train.reset_index(drop=True), test=test.reset_index(drop=True), method=cfg.method,
                 audit={**leakage_audit(train, test), **extra})


def leakage_audit(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    """Share of test interactions that happened before the latest training interaction, and cold-start counts."""
    latest_train = int(train["timestamp"].max())
    leak = float((test["timestamp"].to_numpy() < latest_train).mean()) if len(test) else 0.0
    train_users, train_items = set(train["user_id"].unique()), set(train["item_id"].unique())
    test_users = test["user_id"].unique()
    test_items = test["item_id"].unique()
    unknown_users = int(sum(u not in train_users for u in test_users))
    unknown_items = int(sum(i not in train_items for i in test_items))
    return {
        "train_rows": int(len(train)),
        "test_rows": int(len(test)),
        "leak_share": leak,
        "test_users": int(len(test_users)),
        "test_users_unknown": unknown_users,
        "test_items": int(len(test_items)),
        "test_items_unknown": unknown_items,
        "test_rows_unknown_item": int((~test["item_id"].isin(train_items)).sum()),
    }


def validation_split(split: Split, cfg: SplitConfig, random_state: RandomState = 0) -> Split:
    """Carve a validation part from the training part only (same method); the test part is never touched."""
    return split_interactions(split.train, cfg, random_state, test_size=cfg.validation_size)
