"""Evaluator of the new `reorder` task (`recsys/evaluation/reorder.py` in the copy): among the items a user had in
training, does the model rank first the ones the user buys again in the test period?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.tables import TrainData


@dataclass
class ReorderTarget:
    user_idx: np.ndarray  # (n,) evaluated users
    user_ids: np.ndarray
    again: list[set[int]]  # per user: training items bought again in the test period


def metric_names(ks: list[int]) -> list[str]:
    return sorted(f"reorder_hit_rate_at_{k}" for k in ks)


def build_reorder_target(data: TrainData, test: pd.DataFrame, min_history: int = 1) -> ReorderTarget:
    u = data.users.index(test["user_id"].to_numpy())
    i = data.items.index(test["item_id"].to_numpy())
    keep = (u >= 0) & (i >= 0)
    seen = data.matrix
    again: dict[int, set[int]] = {}
    for user, item in zip(u[keep], i[keep]):
        if seen[user, item] > 0 and seen[user].nnz >= min_history:
            again.setdefault(int(user), set()).add(int(item))
    users = np.array(sorted(again), dtype=np.int64)
    return ReorderTarget(users, data.users.id(users), [again[int(x)] for x in users])


def evaluate_reorder(model: Any, target: ReorderTarget, ks: list[int]) -> tuple[dict[str, float], pd.DataFrame]:
    """Rank each user's training items by the model's scores; hit rate of a re-bought item in the top k."""
    scores = model.score(target.user_idx)
    seen = model.seen_[target.user_idx].toarray() > 0
    ranked = np.argsort(-np.where(seen, scores, -np.inf), axis=1, kind="stable")
    per = {}
    for k in ks:
        per[f"reorder_hit_rate_at_{k}"] = np.array(
            [float(bool(set(row[:k].tolist()) & want)) for row, want in zip(ranked, target.again)])
    metrics = {name: float(v.mean()) if len(v) else 0.0 for name, v in per.items()}
    return metrics, pd.DataFrame({"user_id": target.user_ids, **per})
