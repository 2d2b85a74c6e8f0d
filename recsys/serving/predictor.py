"""Predictors: load a saved model folder (plain files) and answer DataFrame queries.

Used by the MLflow pyfunc (model-from-code) and by the HTTP service; no mlflow import here.
Each task registers a predictor class in `PREDICTORS` keyed by the `task` in the folder's pyfunc.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from recsys.data.vocab import Vocabulary
from recsys.errors import RecsysError

PREDICTORS: dict[str, Callable[[Path, dict], "Predictor"]] = {}


def predictor(task: str):
    def deco(cls):
        PREDICTORS[task] = cls
        return cls
    return deco


class Predictor:
    task = "base"

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        raise NotImplementedError


def coerce_ids(values: Any, vocab: Vocabulary) -> np.ndarray:
    """Match the dtype of incoming ids (often strings from JSON) to the vocabulary's ids."""
    arr = np.asarray(values)
    ids = vocab.ids
    if len(ids) and np.issubdtype(np.asarray(ids).dtype, np.integer) and not np.issubdtype(arr.dtype, np.integer):
        out = pd.to_numeric(pd.Series(arr), errors="coerce")
        return out.fillna(-(2**62)).astype(np.int64).to_numpy()
    if len(ids) and not np.issubdtype(np.asarray(ids).dtype, np.integer) and np.issubdtype(arr.dtype, np.integer):
        return arr.astype(str)
    return arr


class ModelPredictor(Predictor):
    """A predictor over one saved model answering top-k queries keyed by an input column."""

    column = ""
    column_note = ""

    def __init__(self, model_dir: Path, meta: dict) -> None:
        from recsys.models.base import Model

        self.model = Model.load(model_dir)
        self.default_k = int(meta.get("k", 10))

    def checked_k(self, frame: pd.DataFrame, params: dict[str, Any] | None) -> int:
        """Check the input column and return k (params, else the model's default), which must be > 0."""
        if self.column not in frame.columns:
            raise RecsysError(f"input must have a `{self.column}` column{self.column_note}, "
                              f"got columns {list(frame.columns)}")
        k = int((params or {}).get("k") or self.default_k)
        if k <= 0:
            raise RecsysError(f"k must be > 0, but got k={k}")
        return k


@predictor("recommend")
class RecommendPredictor(ModelPredictor):
    """user_id column -> top-k items per user (user_id, item_id, rank, score, reason)."""

    task = "recommend"
    column = "user_id"

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        k = self.checked_k(frame, params)
        user_ids = frame["user_id"].to_numpy()
        idx = self.model.users_.index(coerce_ids(user_ids, self.model.users_))
        n = len(idx)
        items = np.full((n, k), -1, np.int64)
        scores = np.full((n, k), -np.inf)
        known = np.flatnonzero(idx >= 0)
        if len(known):
            i, s = self.model.recommend(idx[known], k)
            items[known, : i.shape[1]], scores[known, : i.shape[1]] = i, s
        cold = np.flatnonzero(idx < 0)
        if len(cold):
            i, s = self.model.fallback(len(cold), k)
            items[cold, : i.shape[1]], scores[cold, : i.shape[1]] = i, s
        valid = items >= 0
        rows = np.repeat(np.arange(n), k).reshape(n, k)[valid]
        reason = np.where(idx >= 0, "model", "cold_start")
        return pd.DataFrame({
            "user_id": user_ids[rows].astype(str),
            "item_id": self.model.items_.id(items[valid]).astype(str),
            "rank": np.tile(np.arange(1, k + 1), (n, 1))[valid].astype(np.int64),
            "score": scores[valid].astype(np.float64),
            "reason": reason[rows],
        })


def load_predictor(model_dir: str | Path) -> Predictor:
    model_dir = Path(model_dir)
    meta_path = model_dir / "pyfunc.json"
    if not meta_path.exists():
        raise RecsysError(f"{model_dir} is not a recsys model folder (no pyfunc.json)")
    meta = json.loads(meta_path.read_text())
    task = meta.get("task", "recommend")
    if task not in PREDICTORS:
        import importlib

        try:
            importlib.import_module(f"recsys.tasks.{task}")
        except ModuleNotFoundError:
            pass
    if task not in PREDICTORS:
        raise RecsysError(f"no predictor for task {task!r} (known: {sorted(PREDICTORS)})")
    return PREDICTORS[task](model_dir, meta)
