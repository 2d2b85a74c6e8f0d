"""Predictor of the `search` task: texts -> top-k items per query."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import RecsysError
from recsys.evaluation.ranked import ranked_cells
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
        cells = ranked_cells(ids, scores)
        return pd.DataFrame({
            "query": texts[cells.row].astype(str),
            "rank": cells.rank,
            "item_id": self.model.items_.id(cells.item).astype(str),
            "title": self.model.titles_[cells.item].astype(str),
            "score": cells.score.astype(np.float64),
        })
