"""The one adapter for the `implicit` library: every implicit-backed model shares it.

A concrete model supplies its `Config` and `_construct()`, and says how to score from the fitted estimator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys.logging import get_logger, progress_enabled
from recsys.models.base import ProgressCallback, Recommender, topk

_log = get_logger(__name__)


class ImplicitRecommender(Recommender):
    """Fits `self._construct()` (an implicit estimator) on the user x item matrix."""

    estimator_ = None

    def _construct(self):
        raise NotImplementedError

    def _fit(self, data, callback: ProgressCallback | None) -> None:
        import warnings

        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # implicit's BLAS-threads and CSR-conversion notices
            est = self._construct()
        kwargs: dict[str, Any] = {"show_progress": progress_enabled()}
        if callback is not None and self._supports_callback():
            # ALS calls back (epoch, elapsed[, loss]); BPR (epoch, elapsed, correct, skipped)
            kwargs["callback"] = lambda it, elapsed, *extra: callback(
                it, {"elapsed": elapsed, "loss": extra[0] if extra else None, **self._progress_info(est)})
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(self._train_matrix(), **kwargs)
        self.estimator_ = est
        self._after_fit(est)

    def _train_matrix(self):
        """The user x item matrix the estimator is fitted on (default: the summed interaction weights)."""
        return self.seen_

    def _supports_callback(self) -> bool:
        return False

    def _progress_info(self, est) -> dict:
        """Extra entries for the progress callback's `info` (e.g. a scorer of the partially fitted model)."""
        return {}

    def _after_fit(self, est) -> None:
        pass


class FactorRecommender(ImplicitRecommender):
    """An implicit model whose score is user_factors_ @ item_factors_.T (ALS, BPR).

    `recommend` ranks without the dense float64 product (`ranking.factor_topk`: float32 candidates, then the
    exact formula on them, `ranking.exact_dots`); `score` gives every item's float64 product rounded to float32
    (`ranking.factor_scores`, one dgemm), which equals that formula except, rarely, in the last float32 bit.
    """

    user_factors_: np.ndarray
    item_factors_: np.ndarray

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        from recsys.models.ranking import factor_scores

        return factor_scores(self.user_factors_[user_idx], self.item_factors_)

    def recommend(self, user_idx: np.ndarray, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        from recsys.models.ranking import factor_topk, thread_limit

        user_idx = self._check_users(user_idx)
        self._check_fitted("item_factors_")
        exclude = self.seen_[user_idx] if exclude_seen else None
        with thread_limit(self.num_threads):
            return factor_topk(self.user_factors_[user_idx], self.item_factors_, k, exclude=exclude,
                               num_threads=self.num_threads)


def cosine_similar(vectors: np.ndarray, item_idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = 1.0
    q = vectors[item_idx] / norms[item_idx, None]
    scores = q @ (vectors / norms[:, None]).T
    scores[np.arange(len(item_idx)), item_idx] = -np.inf
    return topk(scores.astype(np.float64), k)
