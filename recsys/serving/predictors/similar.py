"""Predictor of the `similar` task: item ids -> the k most similar items."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsys.evaluation.ranked import ranked_cells
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
        cols: dict[str, Any] = {"item_id": [], "similar_item_id": [], "rank": [], "score": []}
        if len(known):
            items, scores = self.model.similar(idx[known], k)
            cells = ranked_cells(items, scores, valid=(items >= 0) & np.isfinite(scores))
            cols = {"item_id": ids[known[cells.row]].astype(str),
                    "similar_item_id": self.model.items_.id(cells.item).astype(str),
                    "rank": cells.rank, "score": cells.score.astype(np.float64)}
        return pd.DataFrame(cols)
