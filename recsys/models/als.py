"""ALS (implicit's AlternatingLeastSquares, CPU), with a per-epoch progress callback for pruning."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys.models._implicit import FactorRecommender, cosine_similar
from recsys.models.base import ModelConfig
from recsys.models.catalog import register


@register
class ALS(FactorRecommender):
    """Weighted matrix factorisation for implicit feedback (Hu, Koren, Volinsky 2008)."""

    name = "als"
    tasks = ("recommend", "similar", "audience")

    config: Config

    class Config(ModelConfig):
        factors: int = Field(64, ge=1, le=1024, description="latent dimensions")
        regularization: float = Field(0.01, ge=0, description="L2 penalty")
        alpha: float = Field(1.0, gt=0, description="confidence scaling of interaction weights")
        iterations: int = Field(15, ge=1, le=500, description="ALS sweeps")
        random_state: int = Field(42, description="seed of the factor initialisation")
        num_threads: int = Field(0, ge=0, description="0 = all cores")

    user_factors_: np.ndarray
    item_factors_: np.ndarray
    _fold_in_ = None  # implicit estimator over the fixed item factors, built on first fold-in

    def _construct(self):
        from implicit.cpu.als import AlternatingLeastSquares

        c = self.config
        return AlternatingLeastSquares(factors=c.factors, regularization=c.regularization, alpha=c.alpha,
                                       iterations=c.iterations, random_state=c.random_state,
                                       num_threads=c.num_threads, calculate_training_loss=False)

    def _supports_callback(self) -> bool:
        return True

    def _progress_info(self, est) -> dict:
        """`partial_model()` gives this model scoring with the factors after the epoch just run (for pruning)."""

        def partial_model() -> ALS:
            self.user_factors_ = np.array(est.user_factors, dtype=np.float32)
            self.item_factors_ = np.array(est.item_factors, dtype=np.float32)
            return self

        return {"partial_model": partial_model}

    def _after_fit(self, est) -> None:
        self._fold_in_ = None
        self.user_factors_ = np.asarray(est.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(est.item_factors, dtype=np.float32)
        self.estimator_ = None

    def fold_in_factors(self, history: sp.csr_matrix) -> np.ndarray:
        """User factors (n, factors) of unseen users from their histories: implicit's `recalculate_user`
        (one exact least-squares step against the fixed item factors, same alpha and regularization)."""
        self._check_fitted("item_factors_")
        if self._fold_in_ is None:
            from implicit.cpu.als import AlternatingLeastSquares

            c = self.config
            est = AlternatingLeastSquares(factors=self.item_factors_.shape[1], regularization=c.regularization,
                                          alpha=c.alpha, random_state=c.random_state, num_threads=1)
            est.item_factors = np.ascontiguousarray(self.item_factors_, dtype=np.float32)
            self._fold_in_ = est
        history = self.check_history(history)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            return np.asarray(self._fold_in_.recalculate_user(np.arange(history.shape[0]), history),
                              dtype=np.float32)

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        factors = self.fold_in_factors(history)
        return factors.astype(np.float64) @ self.item_factors_.T.astype(np.float64)

    def audience(self, item_idx: np.ndarray, n: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-n users per item index by user·item score, best first (users who had the item excluded)."""
        from recsys.models.audience import item_users, rank_users

        self._check_fitted("item_factors_")
        item_idx = np.asarray(item_idx, dtype=np.int64)
        scores = self.item_factors_[item_idx].astype(np.float64) @ self.user_factors_.T.astype(np.float64)
        return rank_users(scores, item_idx, n, item_users(self.seen_) if exclude_seen else None)

    def similar(self, item_idx: np.ndarray, k: int):
        self._check_fitted("item_factors_")
        return cosine_similar(self.item_factors_.astype(np.float64), np.asarray(item_idx), k)

    def _state(self):
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _set_state(self, state) -> None:
        self.user_factors_, self.item_factors_ = state["user_factors"], state["item_factors"]
        self._fold_in_ = None
