"""Leakage-aware splits: global temporal cutoff, per-user leave-last, seeded random, or predefined parts given by
the source. Each carries an audit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsys.config.schema import SplitConfig
from recsys.data.tables import Dataset, hashes_fingerprint
from recsys.data.timestamps import iso, parse_instant
from recsys.errors import DataError
from recsys.random import RandomState
from recsys.random import rng as make_rng


@dataclass
class Split:
    """train/test rows of canonical interactions plus an audit of leakage and cold-start counts."""

    train: pd.DataFrame
    test: pd.DataFrame
    method: str
    audit: dict = field(default_factory=dict)
    validation: pd.DataFrame | None = None  # predefined: the validation part the source gave (for tuning)

    def fingerprint(self) -> str:
        """Hash of which rows are train and which test, independent of row order (a split read back from files
        in another order is the same split)."""
        cols = ["user_id", "item_id", "timestamp"]
        # = frame_fingerprint of both parts (column _p: 0 train, 1 test) sorted by _p, user, item, time; the rows
        # are hashed where they are and the hashes put in that order (rows equal on every key hash equally)
        hashes = []
        for p, part in enumerate((self.train, self.test)):
            row_hash = pd.util.hash_pandas_object(part[cols].assign(_p=p), index=False).to_numpy()
            order = np.lexsort((part["timestamp"].to_numpy(), pd.factorize(part["item_id"], sort=True)[0],
                                pd.factorize(part["user_id"], sort=True)[0]))
            hashes.append(row_hash[order])
        return hashes_fingerprint([*cols, "_p"], np.concatenate(hashes))


def split_dataset(dataset: Dataset, cfg: SplitConfig, random_state: RandomState = 0) -> Split:
    """The split of `dataset` by `cfg`: the source's own parts for `predefined`, else `split_interactions`."""
    if cfg.method != "predefined":
        return split_interactions(dataset.interactions, cfg, random_state)
    if "test" not in dataset.parts:
        raise DataError(f"split.method is 'predefined' but dataset {dataset.name!r} has no test part; set "
                        "data.tabular.test (or data.sql.test_table / test_query)")
    train, test = dataset.interactions.reset_index(drop=True), dataset.parts["test"].reset_index(drop=True)
    validation = dataset.parts.get("validation")
    audit = leakage_audit(train, test)
    if validation is not None:
        audit["validation_rows"] = int(len(validation))
    return Split(train=train, test=test, method="predefined", audit=audit,
                 validation=None if validation is None else validation.reset_index(drop=True))


def split_interactions(df: pd.DataFrame, cfg: SplitConfig, random_state: RandomState = 0,
                       test_size: float | None = None) -> Split:
    """Split canonical interactions according to `cfg` (test_size overrides cfg.test_size, used for validation)."""
    size = cfg.test_size if test_size is None else test_size
    df = df.reset_index(drop=True)
    if cfg.method == "predefined":  # only reached for a validation carve-out without a given validation part
        cfg = cfg.model_copy(update={"method": "temporal", "cutoff": None})
    if cfg.method == "temporal":
        if cfg.cutoff is not None and test_size is None:
            cutoff = parse_instant(cfg.cutoff, "split.cutoff")
        else:
            ts = np.sort(df["timestamp"].to_numpy())
            cutoff = int(ts[min(len(ts) - 1, int(np.floor(len(ts) * (1 - size))))])
        is_test = df["timestamp"].to_numpy() >= cutoff
        # never put the same instant on both sides: everything at or after the cutoff is test
        train, test = _parts(df, is_test)
        extra: dict[str, Any] = {"cutoff": cutoff}
    elif cfg.method == "leave_last":
        order = df.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
        pos_from_end = order.groupby("user_id").cumcount(ascending=False).to_numpy()
        n = order.groupby("user_id")["item_id"].transform("size").to_numpy()
        if cfg.test_n is not None:  # the validation carve-out holds out the same last N of the training part
            held = np.minimum(cfg.test_n, n - 1)
        else:
            held = np.floor(n * size).astype(np.int64)
        is_test = pos_from_end < held
        # rows that share the boundary timestamp with a training row go to train too: never split a tie by id
        ts = order["timestamp"].to_numpy()
        by_user = order["user_id"].to_numpy()
        latest_train = (pd.Series(np.where(is_test, np.iinfo(np.int64).min, ts))
                        .groupby(by_user).transform("max").to_numpy())
        tied = is_test & (ts == latest_train)
        is_test &= ~tied
        train, test = order[~is_test], order[is_test]
        extra = {"test_n": cfg.test_n, "test_size": size, "boundary_tie_users": int(pd.unique(by_user[tied]).size),
                 "boundary_tie_rows": int(tied.sum())}
    else:
        r = make_rng(random_state)
        is_test = r.random(len(df)) < size
        train, test = df[~is_test], df[is_test]
        extra = {"test_size": size}
    if train.empty or test.empty:
        what, knob = (("validation", "split.validation_size") if test_size is not None
                      else ("test", "split.test_size/cutoff"))
        raise DataError(f"split {cfg.method!r} left an empty {'train' if train.empty else what} part "
                        f"({len(train)} train, {len(test)} {what} rows); change {knob}"
                        + (" or set split.test_n" if cfg.method == "leave_last" else ""))
    return Split(train=train.reset_index(drop=True), test=test.reset_index(drop=True), method=cfg.method,
                 audit={**leakage_audit(train, test), **extra})


def _parts(df: pd.DataFrame, is_test: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(df[~is_test], df[is_test]): two zero-copy row slices when the test rows are the last ones (canonical rows
    are sorted by time, so a temporal cut is a suffix), instead of two gathers of every column: at 20M interactions
    the gathers were a second copy of the table, the peak of the data path."""
    k = len(is_test) - int(np.count_nonzero(is_test))
    if not is_test[:k].any():  # then the last len - k rows are exactly the test rows
        return df.iloc[:k], df.iloc[k:]
    return df[~is_test], df[is_test]


def leakage_audit(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    """Share of test interactions that happened before the latest training interaction, and cold-start counts."""
    latest_train = int(train["timestamp"].max())
    leak = float((test["timestamp"].to_numpy() < latest_train).mean()) if len(test) else 0.0
    train_items = train["item_id"].unique()
    test_users = test["user_id"].unique()
    test_items = test["item_id"].unique()
    unknown_users = int((~pd.Index(test_users).isin(train["user_id"].unique())).sum())
    unknown_items = int((~pd.Index(test_items).isin(train_items)).sum())
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
    """Carve a validation part from the training part only (same method); the test part is never touched.

    predefined: the source's validation part when it gave one, else a global temporal cut of the training part."""
    if split.method == "predefined" and split.validation is not None:
        return Split(train=split.train, test=split.validation, method="predefined",
                     audit=leakage_audit(split.train, split.validation))
    return split_interactions(split.train, cfg, random_state, test_size=cfg.validation_size)


def split_folds(df: pd.DataFrame, cfg: SplitConfig, random_state: RandomState = 0) -> tuple[list[Split], pd.DataFrame]:
    """`cfg.folds` repeated splits and the training part common to all of them (what tuning may use).

    temporal: rolling origins walking back in time; fold 0 is the usual split, fold j's test window is the
    `test_size` share (or the share at or after `cutoff`) just before fold j-1's, its train everything earlier.
    leave_last / random: one per-user holdout, its evaluation users dealt into `folds` user-disjoint groups; fold j
    tests group j's held-out rows and trains on everything else (the other users' held-out rows included).
    No test row belongs to two folds.
    """
    n_folds = cfg.folds
    df = df.reset_index(drop=True)
    if cfg.method == "temporal":
        ts = np.sort(df["timestamp"].to_numpy())
        n = len(ts)
        if cfg.cutoff is not None:
            pos0 = int(np.searchsorted(ts, parse_instant(cfg.cutoff, "split.cutoff"), side="left"))
            width = n - pos0
            if width == 0:
                raise DataError(f"split.cutoff={cfg.cutoff!r} is after the last interaction ({iso(int(ts[-1]))}), "
                                "so fold 0 has no test rows; set an earlier split.cutoff")
        else:
            width = n - int(np.floor(n * (1 - cfg.test_size)))
            pos0 = n - width
        starts = [pos0 - j * width for j in range(n_folds)]
        if starts[-1] <= 0:
            raise DataError(f"split.folds={n_folds} rolling windows of {width} rows each need more than "
                            f"{n_folds * width} of the {n} interactions; lower split.folds or split.test_size")
        cutoffs = [int(ts[s]) for s in starts]
        if len(set(cutoffs)) < n_folds:
            raise DataError(f"split.folds={n_folds}: the timestamps are too coarse for {n_folds} distinct windows "
                            f"(cutoffs {cutoffs}); lower split.folds or raise split.test_size")
        t = df["timestamp"].to_numpy()
        folds = []
        upper = np.iinfo(np.int64).max
        for j, cutoff in enumerate(cutoffs):
            is_test = (t >= cutoff) & (t < upper)
            train, test = df[t < cutoff], df[is_test]
            if train.empty or test.empty:
                raise DataError(f"split fold {j} left an empty {'train' if train.empty else 'test'} part; "
                                "lower split.folds or change split.test_size")
            folds.append(Split(train=train.reset_index(drop=True), test=test.reset_index(drop=True),
                               method=cfg.method, audit={**leakage_audit(train, test), "cutoff": cutoff, "fold": j}))
            upper = cutoff
        common = df[t < cutoffs[-1]].reset_index(drop=True)
        return folds, common
    base = split_interactions(df, cfg, random_state)
    users = np.sort(base.test["user_id"].unique())
    if len(users) < n_folds:
        raise DataError(f"split.folds={n_folds} but only {len(users)} users have held-out interactions; "
                        "lower split.folds")
    from recsys.random import derive_seed

    order = make_rng(derive_seed(random_state if isinstance(random_state, int) else 0, "folds")).permutation(users)
    groups = np.array_split(order, n_folds)
    folds = []
    for j, group in enumerate(groups):
        mine = base.test["user_id"].isin(group).to_numpy()
        test = base.test[mine]
        train = pd.concat([base.train, base.test[~mine]], ignore_index=True)
        folds.append(Split(train=train, test=test.reset_index(drop=True), method=cfg.method,
                           audit={**leakage_audit(train, test), **{k: v for k, v in base.audit.items()
                                                                    if k in ("test_n", "test_size")}, "fold": j}))
    return folds, base.train
