"""Predictor of the `search` task: texts -> top-k items per query."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import RecsysError
from recsys.serving.predictor import ModelPredictor, predictor


@predictor("search")
class SearchPredictor(ModelPredictor):
    """`query` column of texts -> top-k items per query (query, rank, item_id, title, score)."""

    task = "search"
    column = "query"
    column_note = " of texts"

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        k = self.checked_k(frame, params)
        texts = frame["query"]
        if texts.isna().any():
            raise RecsysError(f"`query` must hold texts, but {int(texts.isna().sum())} row(s) are missing")
        texts = texts.astype(str).to_numpy()
        ids, scores = self.model.search(list(texts), k)
        n, kk = ids.shape
        valid = ids >= 0
        rows = np.repeat(np.arange(n), kk).reshape(n, kk)[valid]
        items = ids[valid]
        return pd.DataFrame({
            "query": texts[rows].astype(str),
            "rank": np.tile(np.arange(1, kk + 1), (n, 1))[valid].astype(np.int64),
            "item_id": self.model.items_.id(items).astype(str),
            "title": self.model.titles_[items].astype(str),
            "score": scores[valid].astype(np.float64),
        })
