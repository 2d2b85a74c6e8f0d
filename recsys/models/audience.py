"""Audience task base: which users should a merchant target for product p? Rank users per item, batch-first.

`rank_users` is shared by every model that answers the audience question (activity models, ALS, random):
it masks the users who already interacted with the item in training (when asked) and keeps the top n.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from recsys.data.tables import TrainData
from recsys.data.vocab import Vocabulary
from recsys.models.base import Model, ProgressCallback, topk


def item_users(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Transpose a user x item matrix into item x user CSR (row i = users who interacted with item i)."""
    return sp.csr_matrix(matrix.T, dtype=np.float32)


def rank_users(scores: np.ndarray, item_idx: np.ndarray, n: int, seen_by_item: sp.csr_matrix | None,
               ) -> tuple[np.ndarray, np.ndarray]:
    """Top-n user indices per item row of `scores` (len(item_idx), n_users), best first.

    seen_by_item: item x user CSR of training interactions; those users get -inf (excluded) when given.
    Returns (users (len, n) int64 with -1 padding, scores (len, n)).
    """
    if n <= 0:
        raise ValueError(f"n must be > 0, but got n={n}")
    scores = np.array(scores, dtype=np.float64, copy=True)
    if seen_by_item is not None and len(item_idx):
        sub = seen_by_item[np.asarray(item_idx, dtype=np.int64)]
        rows = np.repeat(np.arange(len(item_idx)), np.diff(sub.indptr))
        scores[rows, sub.indices] = -np.inf
    return topk(scores, n)


class AudienceModel(Model):
    """Base of models that only answer the audience task. Subclasses implement `_fit` and `_scores`.

    After fit: `users_`, `items_` (vocabularies), `seen_by_item_` (item x user CSR of training weights),
    `known_items_` (bool per item: the model has a product-specific answer for it).
    """

    tasks: ClassVar[tuple[str, ...]] = ("audience",)

    users_: Vocabulary
    items_: Vocabulary
    seen_by_item_: sp.csr_matrix
    known_items_: np.ndarray

    def fit(self, data: TrainData, callback: ProgressCallback | None = None) -> AudienceModel:
        if data.matrix.nnz == 0:
            from recsys.errors import DataError

            raise DataError("cannot fit on an empty interaction matrix")
        self.users_, self.items_ = data.users, data.items
        self.seen_by_item_ = item_users(data.matrix)
        self.known_items_ = np.diff(self.seen_by_item_.indptr) > 0
        self._fit(data, callback)
        return self

    def _fit(self, data: TrainData, callback: ProgressCallback | None) -> None:
        raise NotImplementedError

    def _scores(self, item_idx: np.ndarray) -> np.ndarray:
        """Dense scores (len(item_idx), n_users)."""
        raise NotImplementedError

    def audience_covers(self, item_idx: np.ndarray) -> np.ndarray:
        """True where the model has a product-specific audience (else the caller uses the cold-start fallback)."""
        self._check_fitted("known_items_")
        return self.known_items_[np.asarray(item_idx, dtype=np.int64)]

    def audience(self, item_idx: np.ndarray, n: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-n user indices and scores per item index, best first: arrays of shape (len(item_idx), n).

        Example:
            >>> users, scores = model.audience(np.array([0, 5]), n=100)  # doctest: +SKIP
        """
        self._check_fitted("seen_by_item_")
        item_idx = np.asarray(item_idx, dtype=np.int64)
        n_items = self.seen_by_item_.shape[0]
        if item_idx.size and (item_idx.min() < 0 or item_idx.max() >= n_items):
            raise IndexError(f"item indices must be in [0, {n_items}), got {item_idx.min()}..{item_idx.max()}")
        return rank_users(self._scores(item_idx), item_idx, n, self.seen_by_item_ if exclude_seen else None)

    # persistence ------------------------------------------------------------------------------------------
    def _save(self, path: Path) -> None:
        self._check_fitted("seen_by_item_")
        self.users_.save(path / "users.parquet")
        self.items_.save(path / "items.parquet")
        sp.save_npz(path / "seen_by_item.npz", self.seen_by_item_)
        np.savez(path / "state.npz", known_items=self.known_items_, **self._state())  # type: ignore[arg-type]  # numpy stub: **state might set allow_pickle

    def _load(self, path: Path) -> None:
        self.users_ = Vocabulary.load(path / "users.parquet")
        self.items_ = Vocabulary.load(path / "items.parquet")
        self.seen_by_item_ = sp.load_npz(path / "seen_by_item.npz").tocsr()
        with np.load(path / "state.npz", allow_pickle=False) as npz:
            state = {k: npz[k] for k in npz.files}
        self.known_items_ = state.pop("known_items")
        self._set_state(state)

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        pass
