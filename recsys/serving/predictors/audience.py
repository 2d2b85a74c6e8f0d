"""Predictor of the `audience` task: product ids -> the top-n users, answered from the precomputed cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.vocab import Vocabulary
from recsys.errors import RecsysError
from recsys.serving.predictor import Predictor, coerce_ids, predictor
from recsys.tasks.audience import CACHE_FILE, FALLBACK_FILE


@predictor("audience")
class AudiencePredictor(Predictor):
    """item_id (or product_id) column -> top-n users per product (item_id, user_id, rank, score, reason), answered
    from the precomputed cache; products not in it get the most engaged users with reason `cold_start`."""

    task = "audience"

    def __init__(self, model_dir: Path, meta: dict) -> None:
        cache = pd.read_parquet(Path(model_dir) / CACHE_FILE)
        fallback = pd.read_parquet(Path(model_dir) / FALLBACK_FILE)
        item_codes, item_ids = pd.factorize(cache["item_id"])
        order = np.lexsort((cache["rank"].to_numpy(), item_codes))
        self.items = Vocabulary(np.asarray(item_ids))
        counts = np.bincount(item_codes, minlength=len(item_ids))
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.counts = counts.astype(np.int64)
        self.users = cache["user_id"].to_numpy()[order]
        self.scores = cache["score"].to_numpy(dtype=np.float64)[order]
        self.fb_users = fallback["user_id"].to_numpy()
        self.fb_scores = fallback["score"].to_numpy(dtype=np.float64)
        self.depth = int(meta.get("cache_n", max(1, int(counts.max()) if len(counts) else len(self.fb_users))))
        self.default_n = int(meta.get("n", 10))

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        col = next((c for c in ("item_id", "product_id") if c in frame.columns), None)
        if col is None:
            raise RecsysError(f"input must have an `item_id` (or `product_id`) column, got columns "
                              f"{list(frame.columns)}")
        n = int((params or {}).get("n") or self.default_n)
        if not 0 < n <= self.depth:
            raise RecsysError(f"n must be in [1, {self.depth}] (the precomputed audience depth, task_params.cache_n), "
                              f"but got n={n}")
        ids = frame[col].to_numpy()
        idx = self.items.index(coerce_ids(ids, self.items)) if len(self.items) else np.full(len(ids), -1)
        known = idx >= 0
        lengths = np.full(len(ids), min(n, len(self.fb_users)), dtype=np.int64)
        lengths[known] = np.minimum(self.counts[idx[known]], n)
        query = np.repeat(np.arange(len(ids)), lengths)
        offset = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        hit = known[query]
        users = np.empty(len(query), dtype=object)
        scores = np.empty(len(query), dtype=np.float64)
        h, c = np.flatnonzero(hit), np.flatnonzero(~hit)
        pos = self.starts[idx[query[h]]] + offset[h]
        users[h], scores[h] = self.users[pos], self.scores[pos]
        users[c], scores[c] = self.fb_users[offset[c]], self.fb_scores[offset[c]]
        return pd.DataFrame({
            "item_id": ids[query].astype(str),
            "user_id": users.astype(str),
            "rank": (offset + 1).astype(np.int64),
            "score": scores.astype(np.float64),
            "reason": np.where(hit, "model", "cold_start"),
        })
