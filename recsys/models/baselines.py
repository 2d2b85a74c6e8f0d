"""Non-personalised baselines: `random` and `popularity`."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys.models.base import ModelConfig, Recommender
from recsys.models.catalog import register


@register
class RandomRecommender(Recommender):
    """A uniformly random ranking per user, deterministic per (random_state, user), in O(users x K)
    (see `recsys.models.ranking.random_ranking`)."""

    name = "random"
    tasks = ("recommend", "audience")

    config: Config

    class Config(ModelConfig):
        random_state: int = Field(0, description="seed; the same seed gives the same lists")

    def _fit(self, data, callback) -> None:
        pass

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        """Dense scores whose top-k is `recommend`'s list: 1 / (1 + first draw) per item, 0 if never drawn."""
        from recsys.models.ranking import random_ranking

        n_items = self.seen_.shape[1]
        idx, val = random_ranking(self.config.random_state, user_idx, n_items, n_items)
        out = np.zeros((len(user_idx), n_items))
        rows = np.repeat(np.arange(len(user_idx)), n_items).reshape(idx.shape)
        out[rows[idx >= 0], idx[idx >= 0]] = val[idx >= 0]
        return out

    def recommend(self, user_idx: np.ndarray, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """k random unseen items per user, best first: O(users x k), no dense score matrix."""
        from recsys.models.ranking import random_ranking

        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        self._check_fitted("seen_")
        user_idx = np.asarray(user_idx, dtype=np.int64)
        n_users, n_items = self.seen_.shape
        if user_idx.size and (user_idx.min() < 0 or user_idx.max() >= n_users):
            raise IndexError(f"user indices must be in [0, {n_users}), got {user_idx.min()}..{user_idx.max()}")
        exclude = self.seen_[user_idx] if exclude_seen else None
        return random_ranking(self.config.random_state, user_idx, k, n_items, exclude)

    def audience_covers(self, item_idx: np.ndarray) -> np.ndarray:
        """A random audience needs no history: every product is answered."""
        return np.ones(len(item_idx), dtype=bool)

    def audience(self, item_idx: np.ndarray, n: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """n users drawn uniformly (without replacement) per item; deterministic per (random_state, item)."""
        from recsys.models.audience import item_users, rank_users

        self._check_fitted("seen_")
        n_users = self.seen_.shape[0]
        scores = np.stack([np.random.default_rng([self.config.random_state, 1, int(i)]).random(n_users)
                           for i in item_idx]) if len(item_idx) else np.empty((0, n_users))
        return rank_users(scores, item_idx, n, item_users(self.seen_) if exclude_seen else None)


@register
class PopularityRecommender(Recommender):
    """Items ranked by training popularity (distinct users, or summed interaction weight)."""

    name = "popularity"
    tasks = ("recommend", "similar")

    config: Config

    class Config(ModelConfig):
        measure: Literal["users", "weight"] = Field("users", description="count distinct users or sum weights")

    scores_: np.ndarray

    def _fit(self, data, callback) -> None:
        if self.config.measure == "users":
            self.scores_ = self.popularity_.copy()
        else:
            self.scores_ = np.asarray(self.seen_.sum(axis=0)).ravel().astype(np.float64)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.scores_, (len(user_idx), len(self.scores_))).copy()

    def _order(self) -> np.ndarray:
        """Items by (score desc, index asc), computed once per fitted/loaded `scores_`."""
        from recsys.models.ranking import static_order

        cached = getattr(self, "_order_cache", None)
        if cached is None or cached[0] is not self.scores_:
            cached = (self.scores_, static_order(self.scores_))
            self._order_cache = cached
        return cached[1]

    def recommend(self, user_idx: np.ndarray, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The popularity ranking minus each user's training items: O(users x k), no dense score matrix."""
        from recsys.models.ranking import topk_static

        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        self._check_fitted("scores_")
        user_idx = np.asarray(user_idx, dtype=np.int64)
        if user_idx.size and (user_idx.min() < 0 or user_idx.max() >= self.seen_.shape[0]):
            raise IndexError(f"user indices must be in [0, {self.seen_.shape[0]}), "
                             f"got {user_idx.min()}..{user_idx.max()}")
        exclude = self.seen_[user_idx] if exclude_seen else sp.csr_matrix((len(user_idx), len(self.scores_)))
        return topk_static(self._order(), self.scores_, k, exclude)

    def recommend_history(self, history, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        from recsys.models.ranking import topk_static

        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        history = self.check_history(history)
        exclude = history if exclude_seen else sp.csr_matrix(history.shape)
        return topk_static(self._order(), self.scores_, k, exclude)

    def score_history(self, history) -> np.ndarray:
        """The popularity ranking for anyone (the history only removes items already had)."""
        return self._score(np.zeros(history.shape[0], np.int64))

    def similar(self, item_idx: np.ndarray, k: int):
        from recsys.models.base import topk

        scores = np.broadcast_to(self.scores_, (len(item_idx), len(self.scores_))).copy()
        scores[np.arange(len(item_idx)), item_idx] = -np.inf
        return topk(scores, k)

    def _state(self) -> dict[str, np.ndarray]:
        return {"scores": self.scores_}

    def _set_state(self, state) -> None:
        self.scores_ = state["scores"]
