"""Predictors: load a saved model folder (plain files) and answer DataFrame queries.

Used by the MLflow pyfunc (model-from-code) and by the HTTP service; no mlflow import here.
Each task registers a predictor class in `PREDICTORS` keyed by the `task` in the folder's pyfunc.json; the
recommend predictor lives here, the others in `recsys.serving.predictors.<task>`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.vocab import Vocabulary
from recsys.errors import RecsysError
from recsys.evaluation.ranked import ranked_cells

PREDICTORS: dict[str, Callable[[Path, dict], Predictor]] = {}


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

        # the task's model class (Recommender, ContentModel, Segmenter, ...) is known from the folder at run time
        self.model: Any = Model.load(model_dir)
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
    """user_id column -> top-k items per user (user_id, item_id, rank, score, reason).

    With an `items` column (a list of item ids per row; `user_id` then optional) each row is answered from that
    history (fold-in, reason `folded_in`): items the model does not know are ignored; a known user's training
    items are added to the given ones. Rows with no usable history get the model's list for a known user
    (`model`) or the most popular items (`cold_start`). Rows without a user_id are named by their position.
    """

    task = "recommend"
    column = "user_id"
    column_note = " (or an `items` column of item-id lists for users given by their history)"

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if "items" in frame.columns:  # rows without a user id are named by their position
            given = frame["user_id"] if "user_id" in frame.columns else pd.Series([None] * len(frame), frame.index)
            frame = frame.assign(user_id=[str(r) if pd.isna(u) else u for r, u in enumerate(given)])
        k = self.checked_k(frame, params)
        user_ids = frame["user_id"].to_numpy()
        histories = frame["items"].tolist() if "items" in frame.columns else None
        items, scores, reason, _ = self.answer(user_ids, histories, k)
        cells = ranked_cells(items, scores)
        return pd.DataFrame({
            "user_id": user_ids[cells.row].astype(str),
            "item_id": self.model.items_.id(cells.item).astype(str),
            "rank": cells.rank,
            "score": cells.score.astype(np.float64),
            "reason": reason[cells.row],
        })

    def answer(self, user_ids: Any, histories: list | None, k: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list]]:
        """(items (n, k) indices, -1 padded; scores; reason per row; unknown item ids per row) for users and
        optional histories (one list of item ids per user, None/empty for none)."""
        model = self.model
        user_ids = np.asarray(user_ids, dtype=object)
        idx = model.users_.index(coerce_ids(user_ids, model.users_)) if len(user_ids) else np.empty(0, np.int64)
        n = len(idx)
        items = np.full((n, k), -1, np.int64)
        scores = np.full((n, k), -np.inf)
        reason = np.where(idx >= 0, "model", "cold_start").astype(object)
        unknown: list[list] = [[] for _ in range(n)]
        history = None
        if histories is not None:
            history, unknown = self.history_matrix(histories, idx)
            given = np.diff(history.indptr) > np.diff(model.seen_[np.maximum(idx, 0)].indptr) * (idx >= 0)
            fold = np.flatnonzero(given & (np.diff(history.indptr) > 0))
            if len(fold):
                try:
                    i, s = model.recommend_history(history[fold], k)
                    items[fold, : i.shape[1]], scores[fold, : i.shape[1]] = i, s
                    reason[fold] = "folded_in"
                except NotImplementedError:
                    pass
        known = np.flatnonzero((idx >= 0) & (reason == "model"))
        if len(known):
            i, s = model.recommend(idx[known], k)
            items[known, : i.shape[1]], scores[known, : i.shape[1]] = i, s
        cold = np.flatnonzero(reason == "cold_start")
        if len(cold):
            i, s = model.fallback(len(cold), k)
            items[cold, : i.shape[1]], scores[cold, : i.shape[1]] = i, s
        return items, scores, reason.astype(str), unknown

    def history_matrix(self, histories: list, user_idx: np.ndarray) -> tuple[Any, list[list]]:
        """CSR (n, n_items): 1.0 per given known item, plus the training row of each known user; and the
        given ids the model does not know, per row."""
        import scipy.sparse as sp

        model = self.model
        rows, cols, unknown = [], [], []
        for r, hist in enumerate(histories):
            ids = _as_list(hist)
            idx = model.items_.index(coerce_ids(np.asarray(ids, dtype=object), model.items_)) if ids else []
            unknown.append([i for i, j in zip(ids, idx) if j < 0])
            keep = sorted({int(j) for j in idx if j >= 0})
            rows += [r] * len(keep)
            cols += keep
        n, m = len(histories), model.seen_.shape[1]
        given = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, m))
        train = model.seen_[np.maximum(user_idx, 0)].multiply((user_idx >= 0)[:, None]).tocsr()
        merged = train.maximum(given) if train.nnz else given  # a training item keeps its training weight
        return sp.csr_matrix(merged, dtype=np.float32), unknown


def _as_list(value: Any) -> list:
    """A request's history cell as a list (None, NaN and empty arrays are no history)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def load_predictor(model_dir: str | Path) -> Predictor:
    model_dir = Path(model_dir)
    meta_path = model_dir / "pyfunc.json"
    if not meta_path.exists():
        raise RecsysError(f"{model_dir} is not a recsys model folder (no pyfunc.json)")
    meta = json.loads(meta_path.read_text())
    task = meta.get("task", "recommend")
    if task not in PREDICTORS:
        import importlib

        module = f"recsys.serving.predictors.{task}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a broken import inside the predictor module surfaces as itself
                raise
    if task not in PREDICTORS:
        raise RecsysError(f"no predictor for task {task!r} (known: {sorted(PREDICTORS)})")
    return PREDICTORS[task](model_dir, meta)
