"""Predictor of the new `reorder` task (`recsys/serving/predictors/reorder.py` in the copy)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsys.serving.predictor import ModelPredictor, coerce_ids, predictor


@predictor("reorder")
class ReorderPredictor(ModelPredictor):
    """user_id -> the user's own past items, most likely re-bought first (user_id, item_id, rank)."""

    task = "reorder"
    column = "user_id"

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        k = self.checked_k(frame, params)
        ids = frame["user_id"].to_numpy()
        idx = self.model.users_.index(coerce_ids(ids, self.model.users_))
        rows = []
        for uid, u in zip(ids, idx):
            if u < 0:
                continue
            seen = self.model.seen_[u].indices
            order = seen[np.argsort(-self.model.score(np.array([u]))[0][seen], kind="stable")][:k]
            rows += [(str(uid), str(self.model.items_.id(np.array([i]))[0]), r + 1) for r, i in enumerate(order)]
        return pd.DataFrame(rows, columns=["user_id", "item_id", "rank"])
