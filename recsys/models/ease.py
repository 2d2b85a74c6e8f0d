"""EASE (Steck 2019): a closed-form item-item linear autoencoder with L2 regularisation and a zero diagonal.

    B = I - P / diag(P),  P = (X^T X + lambda I)^-1,   score(u, .) = x_u B

The item x item matrix is dense (float32); fitting refuses, naming the item count and the memory it would need,
when it would exceed `max_memory_mb`.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from recsys.errors import DataError
from recsys.logging import get_logger
from recsys.models.base import ModelConfig, Recommender, topk
from recsys.models.catalog import register

_log = get_logger(__name__)

DENSE_COPIES = 2  # the Gram matrix and its inverse are held at the same time (float32)


def dense_memory_mb(n_items: int) -> float:
    """Peak memory of EASE's fit for `n_items` items, in MiB."""
    return DENSE_COPIES * n_items * n_items * 4 / 2**20


@register
class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder. After fit: `weights_` (n_items, n_items) float32 with a zero diagonal."""

    name = "ease"
    tasks = ("recommend", "similar")

    config: Config

    class Config(ModelConfig):
        regularization: float = Field(500.0, gt=0, description="L2 penalty lambda on the item-item weights (paper: "
                                                               "tuned around 100-1000 on MovieLens)")
        max_memory_mb: float = Field(4096.0, gt=0, description="refuse to fit when the dense item x item matrices "
                                                               "would need more memory than this (MiB)")
        num_threads: int = Field(0, ge=0, description="BLAS/LAPACK threads while fitting; 0 = library default")

    weights_: np.ndarray  # (n_active, n_active) over the items that have training interactions
    active_: np.ndarray  # item indices of the rows/columns of weights_

    def _fit(self, data, callback) -> None:
        from scipy.linalg import lapack
        from threadpoolctl import threadpool_limits

        c = self.config
        # items nobody interacted with have all-zero weights in the closed form: leave them out of the inverse
        active = np.flatnonzero(np.diff(self.seen_.tocsc().indptr) > 0)
        n = len(active)
        need = dense_memory_mb(n)
        if need > c.max_memory_mb:
            raise DataError(f"ease needs a dense {n} x {n} item matrix ({n} items with interactions): about "
                            f"{need:,.0f} MiB, more than max_memory_mb={c.max_memory_mb:,.0f}; raise `max_memory_mb`, "
                            f"filter rare items (fewer items), or use `rp3beta` / `item_knn`, which keep top-k "
                            f"neighbours only")
        x = self.seen_[:, active]
        with threadpool_limits(c.num_threads or None):
            gram = (x.T @ x).toarray().astype(np.float32)
            gram[np.diag_indices(n)] += np.float32(c.regularization)
            # P = G^-1 through Cholesky (G is symmetric positive definite): half the work of a general inverse
            chol, info = lapack.spotrf(gram, lower=True, overwrite_a=True)
            if info == 0:
                p, info = lapack.spotri(chol, lower=True, overwrite_c=True)
            if info != 0:
                raise DataError(f"ease: the regularised Gram matrix is not positive definite (LAPACK info={info}) "
                                f"with regularization={c.regularization}; raise `regularization`")
            p = np.tril(p) + np.tril(p, -1).T
            p /= -np.diag(p)[None, :]
            p[np.diag_indices(n)] = 0.0
        if not np.isfinite(p).all():
            raise DataError(f"ease produced non-finite weights with regularization={c.regularization}; raise "
                            f"`regularization`")
        self.weights_ = np.ascontiguousarray(p, dtype=np.float32)
        self.active_ = active.astype(np.int64)
        if callback is not None:
            callback(0, {"n_items": float(n), "memory_mb": need})

    def item_weights(self) -> np.ndarray:
        """Item-item weights (n_items, n_items) as sparse CSR: row i says how much having item i adds to each item's
        score (items without training interactions have none)."""
        import scipy.sparse as sp

        self._check_fitted("weights_")
        n_items = self.seen_.shape[1]
        w = sp.coo_matrix(self.weights_)
        return sp.csr_matrix((w.data, (self.active_[w.row], self.active_[w.col])), shape=(n_items, n_items))

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted("weights_")
        # items nobody interacted with in training have no weights: never recommended (-inf), as in peers that only
        # rank training items (the closed form would score them 0, above every item with a negative score)
        out = np.full((len(user_idx), self.seen_.shape[1]), -np.inf)
        out[:, self.active_] = self.seen_[user_idx][:, self.active_] @ self.weights_
        return out

    def similar(self, item_idx: np.ndarray, k: int):
        """Items whose score rises most from having item i (row i of the weights), item i itself excluded."""
        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        self._check_fitted("weights_")
        item_idx = np.asarray(item_idx, dtype=np.int64)
        scores = np.full((len(item_idx), self.seen_.shape[1]), -np.inf)
        pos = np.searchsorted(self.active_, item_idx)
        known = (pos < len(self.active_)) & (self.active_[np.minimum(pos, len(self.active_) - 1)] == item_idx)
        scores[np.ix_(np.flatnonzero(known), self.active_)] = self.weights_[pos[known]]
        scores[np.arange(len(item_idx)), item_idx] = -np.inf
        return topk(scores, k)

    def _state(self):
        return {"weights": self.weights_, "active": self.active_}

    def _set_state(self, state) -> None:
        self.weights_ = state["weights"].astype(np.float32, copy=False)
        self.active_ = state["active"].astype(np.int64)
