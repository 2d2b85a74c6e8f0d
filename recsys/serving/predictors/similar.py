"""Predictor of the `similar` task: item ids -> the k most similar items."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.serving.predictor import ModelPredictor, coerce_ids, predictor


@predictor("similar")
class SimilarPredictor(ModelPredictor):
    """item_id column -> the k most similar items (item_id, similar_item_id, rank, score); unknown items get none."""

    task = "similar"
    column = "item_id"

    def predict(self, frame: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        k = self.checked_k(frame, params)
        ids = frame["item_id"].to_numpy()
        idx = self.model.items_.index(coerce_ids(ids, self.model.items_))
        known = np.flatnonzero(idx >= 0)
        cols = {"item_id": [], "similar_item_id": [], "rank": [], "score": []}
        if len(known):
            items, scores = self.model.similar(idx[known], k)
            valid = (items >= 0) & np.isfinite(scores)
            rows = np.repeat(known, items.shape[1]).reshape(items.shape)[valid]
            cols = {"item_id": ids[rows].astype(str), "similar_item_id": self.model.items_.id(items[valid]).astype(str),
                    "rank": np.tile(np.arange(1, items.shape[1] + 1), (len(known), 1))[valid].astype(np.int64),
                    "score": scores[valid].astype(np.float64)}
        return pd.DataFrame(cols)
