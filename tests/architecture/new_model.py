"""A new model, complete: `recsys/models/cooccurrence.py` (the architecture test copies it into a copy of recsys)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys.models.base import ModelConfig, Recommender
from recsys.models.catalog import register


@register
class CooccurrenceRecommender(Recommender):
    """Score = the user's items times the item-item co-occurrence counts (shrunk by `shrink`)."""

    name = "cooccurrence"
    tasks = ("recommend", "similar")

    class Config(ModelConfig):
        shrink: float = Field(0.0, ge=0, description="added to the co-occurrence normaliser")

    cooc_: np.ndarray | None = None

    def _fit(self, data, callback) -> None:
        X = sp.csr_matrix(self.seen_ > 0, dtype=np.float64)
        cooc = (X.T @ X).toarray()
        np.fill_diagonal(cooc, 0.0)
        self.cooc_ = cooc / (cooc.sum(axis=1, keepdims=True) + self.config.shrink + 1e-12)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.seen_[user_idx] @ self.cooc_)

    def _state(self) -> dict[str, np.ndarray]:
        return {"cooc": self.cooc_}

    def _set_state(self, state) -> None:
        self.cooc_ = state["cooc"]
