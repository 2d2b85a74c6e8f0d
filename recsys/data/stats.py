"""`describe`: the numbers that say whether collaborative filtering is feasible at all."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.split import Split


def describe(interactions: pd.DataFrame, split: Split | None = None) -> dict:
    n_users = int(interactions["user_id"].nunique())
    n_items = int(interactions["item_id"].nunique())
    n = int(len(interactions))
    per_user = interactions.groupby("user_id").size()
    q = per_user.quantile([0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
    stats = {
        "users": n_users,
        "items": n_items,
        "interactions": n,
        "density": n / max(1, n_users * n_items),
        "interactions_per_user": {f"p{int(k * 100)}": float(v) for k, v in q.items()} | {"mean": float(per_user.mean())},
        "one_time_user_share": float((per_user == 1).mean()),
        "events": {str(k): int(v) for k, v in interactions["event"].value_counts().items()},
        "period": {"start": pd.Timestamp(int(interactions["timestamp"].min()), unit="s").isoformat(),
                   "end": pd.Timestamp(int(interactions["timestamp"].max()), unit="s").isoformat()},
    }
    if split is not None:
        train_users = set(split.train["user_id"].unique())
        test_users = set(split.test["user_id"].unique())
        train_items = set(split.train["item_id"].unique())
        test_items = split.test["item_id"].unique()
        stats["split"] = {
            "method": split.method,
            "train_interactions": int(len(split.train)),
            "test_interactions": int(len(split.test)),
            # retention: share of training users who come back in the test period
            "retention_train_to_test": len(train_users & test_users) / max(1, len(train_users)),
            "test_users_seen_in_train": len(train_users & test_users) / max(1, len(test_users)),
            "test_items_unseen_in_train": float(np.mean([i not in train_items for i in test_items])) if len(test_items) else 0.0,
            "audit": split.audit,
        }
    return stats
