"""BPR (Rendle et al. 2009) through implicit's `BayesianPersonalizedRanking`, with a per-epoch progress callback."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from recsys.models._implicit import FactorRecommender, cosine_similar
from recsys.models.base import ModelConfig
from recsys.models.catalog import register


@register
class BPR(FactorRecommender):
    """Matrix factorisation trained on sampled (user, seen item, unseen item) triples with the BPR pairwise loss.

    After fit: `user_factors_`, `item_factors_` (implicit appends a bias column: one in user factors, the item
    bias in item factors, so score = user_factors_ @ item_factors_.T includes the item bias).
    """

    name = "bpr"
    tasks = ("recommend", "similar")

    config: Config

    class Config(ModelConfig):
        factors: int = Field(64, ge=1, le=1024, description="latent dimensions")
        learning_rate: float = Field(0.01, gt=0, le=1.0, description="SGD step size")
        regularization: float = Field(0.01, ge=0, description="L2 penalty")
        iterations: int = Field(100, ge=1, le=2000, description="epochs over the interactions")
        random_state: int = Field(42, description="seed of the factor initialisation and sampling")
        num_threads: int = Field(0, ge=0, description="0 = all cores (more than one thread is not bit-reproducible)")

    user_factors_: np.ndarray
    item_factors_: np.ndarray

    def _construct(self):
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        c = self.config
        return BayesianPersonalizedRanking(factors=c.factors, learning_rate=c.learning_rate,
                                           regularization=c.regularization, iterations=c.iterations,
                                           random_state=c.random_state, num_threads=c.num_threads)

    def _supports_callback(self) -> bool:
        return True

    def _progress_info(self, est) -> dict:
        def partial_model() -> BPR:
            self._after_fit(est, keep=True)
            return self

        return {"partial_model": partial_model}

    def _after_fit(self, est, keep: bool = False) -> None:
        self.user_factors_ = np.array(est.user_factors, dtype=np.float32)
        self.item_factors_ = np.array(est.item_factors, dtype=np.float32)
        if not (np.isfinite(self.user_factors_).all() and np.isfinite(self.item_factors_).all()):
            from recsys.errors import DataError

            raise DataError(f"bpr diverged (non-finite factors) with learning_rate={self.config.learning_rate}; "
                            f"lower `learning_rate` or raise `regularization`")
        if not keep:
            self.estimator_ = None

    def similar(self, item_idx: np.ndarray, k: int):
        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        self._check_fitted("item_factors_")
        return cosine_similar(self.item_factors_[:, :-1].astype(np.float64), np.asarray(item_idx), k)

    def _state(self):
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _set_state(self, state) -> None:
        self.user_factors_, self.item_factors_ = state["user_factors"], state["item_factors"]
