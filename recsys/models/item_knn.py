"""Item-KNN on implicit's item-item nearest neighbours: top-K neighbours per item only (sparse, never N x N)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys.models._implicit import ImplicitRecommender
from recsys.models.base import ModelConfig, topk
from recsys.models.catalog import register


@register
class ItemKNN(ImplicitRecommender):
    """score(u, i) = sum over items j the user has of weight(u, j) * sim(j, i), sim kept for top-K neighbours.

    `binary: true` uses 1 per (user, item) with any interaction, both for the similarities and for the user's row,
    instead of the summed interaction weights (LensKit's `feedback="implicit"` item-KNN is defined that way).
    """

    name = "item_knn"
    tasks = ("recommend", "similar")

    config: Config

    class Config(ModelConfig):
        k_neighbors: int = Field(100, ge=1, le=5000, description="neighbours kept per item")
        similarity: Literal["cosine", "bm25", "tfidf"] = Field("cosine", description="item-item similarity")
        bm25_k1: float = Field(1.2, gt=0, description="BM25 k1 (similarity=bm25)")
        bm25_b: float = Field(0.75, ge=0, le=1, description="BM25 b (similarity=bm25)")
        binary: bool = Field(False, description="1 per (user, item) with any interaction instead of the summed "
                                                "interaction weights (similarities and scoring)")
        num_threads: int = Field(0, ge=0, description="0 = all cores")

    similarity_: sp.csr_matrix

    def _construct(self):
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

        c = self.config
        if c.similarity == "cosine":
            return CosineRecommender(K=c.k_neighbors, num_threads=c.num_threads)
        if c.similarity == "bm25":
            return BM25Recommender(K=c.k_neighbors, K1=c.bm25_k1, B=c.bm25_b, num_threads=c.num_threads)
        return TFIDFRecommender(K=c.k_neighbors, num_threads=c.num_threads)

    def _train_matrix(self):
        return _binary(self.seen_) if self.config.binary else self.seen_

    def _after_fit(self, est) -> None:
        # implicit stores similarity[i, j] for j among the top-K neighbours of i; score = user_row @ sim
        self.similarity_ = est.similarity.tocsr().astype(np.float64)
        self.estimator_ = None

    def item_weights(self) -> sp.csr_matrix:
        self._check_fitted("similarity_")
        return self.similarity_

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.score_history(self.seen_[user_idx])

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return super().score_history(_binary(history) if self.config.binary else history)

    def similar(self, item_idx: np.ndarray, k: int):
        self._check_fitted("similarity_")
        scores = self.similarity_[np.asarray(item_idx)].toarray()
        scores[scores == 0] = -np.inf
        scores[np.arange(len(item_idx)), item_idx] = -np.inf
        return topk(scores, k)

    def _state(self):
        s = self.similarity_.tocsr()
        return {"sim_data": s.data, "sim_indices": s.indices, "sim_indptr": s.indptr, "sim_shape": np.array(s.shape)}

    def _set_state(self, state) -> None:
        self.similarity_ = sp.csr_matrix(
            (state["sim_data"], state["sim_indices"], state["sim_indptr"]), shape=tuple(state["sim_shape"]))


def _binary(matrix: sp.spmatrix) -> sp.csr_matrix:
    """1.0 where a (user, item) has a positive weight; explicit zeros dropped."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data = (out.data > 0).astype(np.float32)
    out.eliminate_zeros()
    return out
