"""Content-based model: item text embeddings (MiniLM) in a FAISS index answer `recommend`, `similar` and `search`.

Every catalog item is embedded, including items nobody has interacted with yet (`TrainData.build` appends them to
the item vocabulary), so new items can be recommended and found from day one.

    >>> model = ContentModel(index="hnsw", ef_search=128).fit(train)  # doctest: +SKIP
    >>> items, scores = model.recommend(np.array([0, 1]), k=10)  # doctest: +SKIP
    >>> items, scores = model.search(["space adventure with robots"], k=10)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

if TYPE_CHECKING:
    import pandas as pd

from recsys.data.tables import TrainData
from recsys.models import embeddings as E
from recsys.models import faiss_index as F
from recsys.models.base import ProgressCallback, Recommender, topk
from recsys.models.catalog import register

USERS_PER_SEARCH = 256  # users searched together; grouped by history length so light users do not pay for heavy ones


@register
class ContentModel(Recommender):
    """recommend: user profile = weighted mean of the embeddings of the user's training items, searched in FAISS,
    seen items removed; similar: nearest items by embedding; search: nearest items to an encoded text query.

    After fit: `item_vectors_` (n_items, d) unit rows aligned to the item vocabulary, `index_` (FAISS),
    `titles_`, and the costs of fitting in `fit_info_` (embeddings_encoded, embeddings_cached, ...).
    """

    name = "content"
    tasks = ("recommend", "similar", "search")

    config: Config

    class Config(F.IndexConfig):
        embedding_model: str = Field(E.DEFAULT_MODEL, description="sentence-transformers model (packaged MiniLM or a "
                                                                  "local folder)")
        batch_size: int = Field(64, ge=1, le=4096, description="texts per encoder batch")
        profile: Literal["weighted", "uniform"] = Field(
            "weighted", description="user profile: mean of item embeddings weighted by interaction weight, or not")

    item_vectors_: np.ndarray
    index_: Any = None
    titles_: np.ndarray
    fit_info_: dict[str, float]

    # fit --------------------------------------------------------------------------------------------------
    def _fit(self, data: TrainData, callback: ProgressCallback | None) -> None:
        c = self.config
        texts = E.item_texts(data.item_table)
        vectors, stats = E.encode(texts, c.embedding_model, c.batch_size, desc="items")
        t0 = time.perf_counter()
        self.index_ = F.build_index(vectors, c)
        build_s = time.perf_counter() - t0
        self.item_vectors_ = vectors
        self.titles_ = data.item_table["title"].astype(str).to_numpy()
        self.fit_info_ = {"embeddings_encoded": float(stats.encoded), "embeddings_cached": float(stats.cached),
                          "embedding_seconds": stats.seconds, "index_build_seconds": build_s,
                          "index_memory_mb": F.memory_bytes(self.index_) / 2**20}
        if callback is not None:
            callback(0, dict(self.fit_info_))

    # recommend ----------------------------------------------------------------------------------------------
    def profiles(self, user_idx: np.ndarray) -> np.ndarray:
        """Unit-norm profile vectors (n, d) of known users: (weighted) mean of their training items' embeddings."""
        self._check_fitted("item_vectors_")
        return self.history_profiles(self.seen_[np.asarray(user_idx, dtype=np.int64)])

    def history_profiles(self, rows: sp.csr_matrix) -> np.ndarray:
        """Unit-norm profiles (n, d) of histories (rows of item weights): how every user, new or known, is seen."""
        self._check_fitted("item_vectors_")
        if self.config.profile == "uniform":
            rows = rows.copy()
            rows.data[:] = 1.0
        return E.normalize(np.asarray(rows @ self.item_vectors_))

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        """Exact dense scores (brute force), for callers that need every item's score."""
        return self.profiles(user_idx).astype(np.float64) @ self.item_vectors_.T.astype(np.float64)

    def recommend(self, user_idx: np.ndarray, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores per user from the FAISS index, training items removed: (n, k) arrays."""
        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        self._check_fitted("index_")
        user_idx = np.asarray(user_idx, dtype=np.int64)
        if len(user_idx) and (user_idx.min() < 0 or user_idx.max() >= self.seen_.shape[0]):
            raise IndexError(f"user indices must be in [0, {self.seen_.shape[0]}), "
                             f"got {user_idx.min()}..{user_idx.max()}")
        return self.recommend_history(self.seen_[user_idx], k, exclude_seen)

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return self.history_profiles(history).astype(np.float64) @ self.item_vectors_.T.astype(np.float64)

    def recommend_history(self, history: sp.csr_matrix, k: int,
                          exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-k per history from the FAISS index (the profile of the given items), those items removed."""
        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        self._check_fitted("index_")
        history = self.check_history(history)
        n, n_items = history.shape[0], self.item_vectors_.shape[0]
        out_idx = np.full((n, min(k, n_items)), -1, np.int64)
        out_val = np.full(out_idx.shape, -np.inf)
        n_seen = np.diff(history.indptr) if exclude_seen else np.zeros(n, np.int64)
        order = np.argsort(n_seen, kind="stable")
        for start in range(0, n, USERS_PER_SEARCH):
            rows = order[start:start + USERS_PER_SEARCH]
            kk = min(n_items, k + int(n_seen[rows].max()))
            ids, scores = F.search(self.index_, self.history_profiles(history[rows]), kk, self.config.num_threads)
            if exclude_seen:
                ids = np.where(is_member(ids, history[rows]), -1, ids)
            out_idx[rows], out_val[rows] = first_valid(ids, scores, out_idx.shape[1])
        return out_idx, out_val

    # similar / search ---------------------------------------------------------------------------------------
    def similar(self, item_idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Nearest other items by embedding: (n, k) indices and cosine scores, best first."""
        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        self._check_fitted("index_")
        item_idx = np.asarray(item_idx, dtype=np.int64)
        ids, scores = F.search(self.index_, self.item_vectors_[item_idx], k + 1, self.config.num_threads)
        ids = np.where(ids == item_idx[:, None], -1, ids)
        return first_valid(ids, scores, min(k, self.item_vectors_.shape[0] - 1))

    def encode_queries(self, texts: Sequence[str]) -> tuple[np.ndarray, E.EncodeStats]:
        """Unit-norm query vectors (n, d) with the item encoder (cached like items)."""
        return E.encode(list(texts), self.config.embedding_model, self.config.batch_size, desc="queries")

    def search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted("index_")
        return F.search(self.index_, queries, k, self.config.num_threads)

    def search(self, texts: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores (n, k) per text query, best first (-1 pads)."""
        vectors, _ = self.encode_queries(texts)
        return self.search_vectors(vectors, k)

    def exact_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Brute-force top-k by inner product (the reference an approximate index is judged against)."""
        self._check_fitted("item_vectors_")
        return topk(queries.astype(np.float64) @ self.item_vectors_.T.astype(np.float64), k)

    def add_items(self, items: pd.DataFrame) -> np.ndarray:
        """Embed catalog items that arrived after fit (item_id, title, text, category) and make them recommendable
        and searchable; ids already known are skipped. Returns the new items' indices."""
        import pandas as pd

        from recsys.data.tables import align_items
        from recsys.data.vocab import Vocabulary

        self._check_fitted("index_")
        new = items.loc[~self.items_.contains(items["item_id"].to_numpy())].drop_duplicates("item_id")
        if not len(new):
            return np.empty(0, np.int64)
        vocab = Vocabulary(np.concatenate([self.items_.ids, new["item_id"].to_numpy().astype(self.items_.ids.dtype)]))
        table = align_items(pd.DataFrame(new), Vocabulary(new["item_id"].to_numpy()))
        vectors, _ = E.encode(E.item_texts(table), self.config.embedding_model, self.config.batch_size, desc="items")
        n_old = len(self.items_)
        self.item_vectors_ = np.vstack([self.item_vectors_, vectors.astype(self.item_vectors_.dtype)])
        self.index_ = F.build_index(self.item_vectors_, self.config)
        self.titles_ = np.concatenate([self.titles_.astype(str), table["title"].astype(str).to_numpy()])
        self.items_ = vocab
        self.seen_ = sp.hstack([self.seen_, sp.csr_matrix((self.seen_.shape[0], len(new)), dtype=self.seen_.dtype)],
                               format="csr")
        self.popularity_ = np.concatenate([self.popularity_, np.zeros(len(new))])
        return np.arange(n_old, n_old + len(new), dtype=np.int64)

    # persistence ------------------------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {"item_vectors": self.item_vectors_, "titles": self.titles_.astype(str)}

    def _save(self, path: Path) -> None:
        super()._save(path)
        F.save_index(self.index_, path / "index.faiss")

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.item_vectors_ = state["item_vectors"].astype(np.float32)
        self.titles_ = state["titles"]

    def _load(self, path: Path) -> None:
        super()._load(path)
        self.index_ = F.load_index(path / "index.faiss", self.config)


def is_member(ids: np.ndarray, sets: sp.csr_matrix) -> np.ndarray:
    """mask[r, j] = ids[r, j] is a column of row r of `sets` (ids: (n, m) int, -1 never a member)."""
    n, n_cols = sets.shape
    s = sets.tocsr()
    s.sort_indices()
    set_keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(s.indptr)) * n_cols + s.indices.astype(np.int64)
    if not len(set_keys):
        return np.zeros(ids.shape, bool)
    keys = np.arange(n, dtype=np.int64)[:, None] * n_cols + ids
    pos = np.minimum(np.searchsorted(set_keys, keys), len(set_keys) - 1)
    return (set_keys[pos] == keys) & (ids >= 0)


def first_valid(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the first k entries with id >= 0 (order kept); rows with fewer are padded with -1 / -inf."""
    valid = ids >= 0
    order = np.argsort(~valid, axis=1, kind="stable")[:, :k]
    out_ids = np.take_along_axis(ids, order, axis=1)
    out_val = np.take_along_axis(scores.astype(np.float64), order, axis=1)
    keep = np.take_along_axis(valid, order, axis=1)
    pad = k - out_ids.shape[1]
    out_ids, out_val = np.where(keep, out_ids, -1), np.where(keep, out_val, -np.inf)
    if pad > 0:
        out_ids = np.pad(out_ids, ((0, 0), (0, pad)), constant_values=-1)
        out_val = np.pad(out_val, ((0, 0), (0, pad)), constant_values=-np.inf)
    return out_ids, out_val
