"""Base classes. Models are pure numpy/scipy: fit on `TrainData`, answer batch-first, save without pickle."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from recsys.data.tables import TrainData, item_user_counts
from recsys.data.vocab import Vocabulary
from recsys.errors import NotFittedError

# fit progress callback: (epoch, info) -> None; raising stops training (tuning turns it into trial.report)
ProgressCallback = Callable[[int, dict], None]


class ModelConfig(BaseModel):
    """Base of every model's config: strict (unknown params are errors)."""

    model_config = ConfigDict(extra="forbid")


def topk(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None,
         num_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Top-k per row of a dense score matrix, best first; ties broken by lower column index (exactly).

    See `recsys.models.ranking.topk` (the multithreaded kernel this delegates to).
    """
    from recsys.models.ranking import topk as _topk

    return _topk(scores, k, exclude=exclude, num_threads=num_threads)


class Model:
    """Common base: config handling, persistence layout, registry metadata."""

    name: ClassVar[str] = "base"
    tasks: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, **params: Any) -> None:
        self.config = self.Config(**params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    @property
    def params(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    def _check_fitted(self, attr: str) -> None:
        if getattr(self, attr, None) is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load() first")

    # persistence ------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "model.json").write_text(json.dumps({"name": self.name, "params": self.params}, indent=2))
        self._save(path)
        return path

    def _save(self, path: Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | Path) -> Model:
        path = Path(path)
        meta = json.loads((path / "model.json").read_text())
        if cls is Model or meta["name"] != cls.name:
            from recsys.models.catalog import get_model_class

            return get_model_class(meta["name"]).load(path)
        model = cls(**meta["params"])
        model._load(path)
        return model

    def _load(self, path: Path) -> None:
        raise NotImplementedError


class Recommender(Model):
    """Recommend task base. Subclasses implement `_fit` and `_score` (dense scores for a batch of users).

    After fit: `users_`, `items_` (vocabularies), `seen_` (train user x item CSR), `popularity_` (per item).
    """

    tasks: ClassVar[tuple[str, ...]] = ("recommend",)

    users_: Vocabulary
    items_: Vocabulary
    seen_: sp.csr_matrix
    popularity_: np.ndarray

    def fit(self, data: TrainData, callback: ProgressCallback | None = None) -> Recommender:
        if data.matrix.nnz == 0:
            from recsys.errors import DataError

            raise DataError("cannot fit on an empty interaction matrix")
        self.users_, self.items_ = data.users, data.items
        self.seen_ = data.matrix.tocsr().astype(np.float32)
        self.popularity_ = item_user_counts(self.seen_).astype(np.float64)
        self._fit(data, callback)
        return self

    def _fit(self, data: TrainData, callback: ProgressCallback | None) -> None:
        raise NotImplementedError

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def num_threads(self) -> int:
        """Threads for scoring and ranking: the config's `num_threads` where the model has one (0 = all cores)."""
        return int(getattr(self.config, "num_threads", 0) or 0)

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        """Dense scores (len(user_idx), n_items) for known user indices: float32 where the model scores in
        float32 (factor models), float64 otherwise."""
        user_idx = self._check_users(user_idx)
        out = np.asarray(self._score(user_idx))
        return out if out.dtype in (np.float32, np.float64) else out.astype(np.float64)

    def _check_users(self, user_idx: np.ndarray) -> np.ndarray:
        """`user_idx` as int64 after checking the model is fitted and every index is a known user."""
        self._check_fitted("seen_")
        user_idx = np.asarray(user_idx)
        if user_idx.size and not np.issubdtype(user_idx.dtype, np.integer):  # 2.7 would silently become user 2
            raise TypeError(f"user indices must be integers, got dtype {user_idx.dtype}: map user ids to "
                            f"indices with TrainData.users.index(...)")
        user_idx = user_idx.astype(np.int64)
        if user_idx.size and (user_idx.min() < 0 or user_idx.max() >= self.seen_.shape[0]):
            raise IndexError(f"user indices must be in [0, {self.seen_.shape[0]}), "
                             f"got {user_idx.min()}..{user_idx.max()}")
        return user_idx

    def recommend(self, user_idx: np.ndarray, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores per user index, best first: arrays of shape (n, k).

        Example:
            >>> items, scores = model.recommend(np.array([0, 1]), k=10)  # doctest: +SKIP
        """
        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        from recsys.models.ranking import thread_limit

        with thread_limit(self.num_threads):
            scores = self.score(user_idx)
            exclude = self.seen_[np.asarray(user_idx, dtype=np.int64)] if exclude_seen else None
            return topk(scores, k, exclude=exclude, num_threads=self.num_threads)

    # fold-in: users the model never saw, described by the items they had ----------------------------------
    def item_weights(self) -> sp.spmatrix | np.ndarray | None:
        """(n_items, n_items) W with scores = history @ W, for models of that form (item-KNN, RP3beta, EASE).

        A subclass that returns its W gets fold-in (`score_history`, `recommend_history`) for free; models of
        another form (factorisation, embeddings) override `score_history` or `recommend_history`. None: no W.
        """
        return None

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Dense scores (n, n_items) for users given only by their histories (fold-in).

        history: (n, n_items) CSR of interaction weights over this model's item indices (1.0 per item when the
        caller has no weights). Default: history @ item_weights(); NotImplementedError when the model has
        no way to fold a history in (the caller then falls back to popular items).
        """
        weights = self.item_weights()
        if weights is None:
            raise NotImplementedError(f"model {self.name!r} cannot fold in a history (no item-item weights)")
        out = history.astype(np.float64) @ weights
        return out.toarray() if sp.issparse(out) else np.asarray(out, dtype=np.float64)

    def recommend_history(self, history: sp.csr_matrix, k: int,
                          exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores (n, k) for users given by histories; the history's items excluded."""
        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        history = self.check_history(history)
        scores = self.score_history(history)
        if exclude_seen:
            mask_seen(scores, history, np.arange(history.shape[0]))
        return topk(scores, k)

    def check_history(self, history: sp.spmatrix) -> sp.csr_matrix:
        self._check_fitted("seen_")
        history = sp.csr_matrix(history, dtype=np.float32)
        if history.shape[1] != self.seen_.shape[1]:
            raise ValueError(f"a history must have one column per item ({self.seen_.shape[1]}), "
                             f"got {history.shape[1]}")
        return history

    def fallback(self, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Most popular items for users unknown to training (cold start)."""
        self._check_fitted("popularity_")
        from recsys.models.ranking import static_order, topk_static

        pop = self.popularity_.astype(np.float64)
        idx, val = topk_static(static_order(pop), pop, k)
        return np.repeat(idx, n, axis=0), np.repeat(val, n, axis=0)

    def similar(self, item_idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"model {self.name!r} does not answer the `similar` task")

    # persistence ------------------------------------------------------------------------------------------
    def _save(self, path: Path) -> None:
        self._check_fitted("seen_")
        self.users_.save(path / "users.parquet")
        self.items_.save(path / "items.parquet")
        sp.save_npz(path / "seen.npz", self.seen_)
        np.savez(path / "state.npz", **self._state())  # type: ignore[arg-type]  # numpy stub: **state might set allow_pickle

    def _load(self, path: Path) -> None:
        self.users_ = Vocabulary.load(path / "users.parquet")
        self.items_ = Vocabulary.load(path / "items.parquet")
        self.seen_ = sp.load_npz(path / "seen.npz").tocsr()
        self.popularity_ = item_user_counts(self.seen_).astype(np.float64)
        with np.load(path / "state.npz", allow_pickle=False) as npz:
            self._set_state({k: npz[k] for k in npz.files})

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        pass


def mask_seen(scores: np.ndarray, seen: sp.csr_matrix, user_idx: np.ndarray) -> None:
    """Set scores of items the user interacted with in training to -inf (in place)."""
    sub = seen[user_idx]
    rows = np.repeat(np.arange(len(user_idx)), np.diff(sub.indptr))
    scores[rows, sub.indices] = -np.inf
