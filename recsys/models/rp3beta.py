"""RP3beta (Paudel et al. 2017; as benchmarked by Dacrema et al. 2019): a 3-step random walk user -> item -> user
-> item with transition probabilities raised to `alpha`, and the arrival item's popularity penalised by `beta`.

    W[i, j] = sum_u P(u | i)^alpha * P(j | u)^alpha / pop(j)^beta,   top-`k_neighbors` kept per row i
    score(u, j) = sum_i x_ui W[i, j]

W is built in blocks of rows and pruned to the top-k per row as it is built: never an N x N dense matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys.logging import progress_enabled
from recsys.models.base import ModelConfig, Recommender, topk
from recsys.models.catalog import register

BLOCK_BYTES = 64 * 2**20  # dense rows of W computed at a time (float32): at most this much memory


def row_normalize(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to sum 1 (empty rows stay empty)."""
    s = np.asarray(m.sum(axis=1)).ravel()
    s[s == 0] = 1.0
    return sp.diags(1.0 / s) @ m


def top_k_rows(block: np.ndarray, k: int, row_offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of the k largest positive entries of each row of a dense block (diagonal excluded)."""
    b, n = block.shape
    block[np.arange(b), row_offset + np.arange(b)] = 0.0
    k = min(k, n)
    cols = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (b, 1))
    vals = np.take_along_axis(block, cols, axis=1)
    keep = vals > 0
    rows = np.repeat(np.arange(b)[:, None] + row_offset, cols.shape[1], axis=1)
    return rows[keep], cols[keep], vals[keep]


@register
class RP3beta(Recommender):
    """Graph-based item-item model. After fit: `similarity_` (n_items, n_items) sparse CSR, <= k_neighbors per row."""

    name = "rp3beta"
    tasks = ("recommend", "similar")

    config: Config

    class Config(ModelConfig):
        alpha: float = Field(1.0, ge=0, le=5, description="exponent on the transition probabilities")
        beta: float = Field(0.6, ge=0, le=5, description="popularity penalty: divide by pop(j)^beta")
        k_neighbors: int = Field(100, ge=1, le=5000, description="neighbours kept per item")
        normalize_similarity: bool = Field(False, description="rescale each row of W to sum 1 after pruning")
        num_threads: int = Field(0, ge=0, description="BLAS threads while fitting; 0 = library default")

    similarity_: sp.csr_matrix

    def _fit(self, data, callback) -> None:
        from threadpoolctl import threadpool_limits
        from tqdm.auto import tqdm

        c = self.config
        x = self.seen_.astype(np.float32)
        n_items = x.shape[1]
        pui = row_normalize(x).astype(np.float32).tocsr()
        xb = x.T.tocsr().copy()
        xb.data[:] = 1.0
        pop = np.asarray(xb.sum(axis=1)).ravel()
        degree = np.zeros(n_items, np.float32)
        degree[pop > 0] = np.power(pop[pop > 0], -c.beta)
        piu = row_normalize(xb).astype(np.float32).tocsr()
        if c.alpha != 1.0:
            pui, piu = pui.power(c.alpha), piu.power(c.alpha)
        # dense rows of W per block, so peak memory stays BLOCK_BYTES whatever the catalog size
        rows_per_block = max(1, BLOCK_BYTES // (4 * max(n_items, 1)))
        parts = []
        starts = range(0, n_items, rows_per_block)
        with threadpool_limits(c.num_threads or None):
            for start in tqdm(starts, desc="rp3beta", disable=not progress_enabled(), leave=False):
                block = np.asarray((piu[start:start + rows_per_block] @ pui).toarray(), dtype=np.float32)
                block *= degree[None, :]
                parts.append(top_k_rows(block, c.k_neighbors, start))
        rows = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
        cols = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
        vals = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, np.float32)
        w = sp.csr_matrix((vals.astype(np.float64), (rows, cols)), shape=(n_items, n_items))
        if c.normalize_similarity:
            w = row_normalize(w).tocsr()
        w.sort_indices()
        self.similarity_ = w
        if callback is not None:
            callback(0, {"similarity_nnz": float(w.nnz)})

    def item_weights(self) -> sp.csr_matrix:
        """Item-item weights (sparse): row i says how much having item i adds to each item's score."""
        self._check_fitted("similarity_")
        return self.similarity_

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return (self.seen_[user_idx].astype(np.float64) @ self.similarity_).toarray()

    def similar(self, item_idx: np.ndarray, k: int):
        if k <= 0:
            raise ValueError(f"k must be > 0, but got k={k}")
        self._check_fitted("similarity_")
        item_idx = np.asarray(item_idx, dtype=np.int64)
        scores = self.similarity_[item_idx].toarray()
        scores[scores == 0] = -np.inf
        scores[np.arange(len(item_idx)), item_idx] = -np.inf
        return topk(scores, k)

    def _state(self):
        s = self.similarity_.tocsr()
        return {"sim_data": s.data, "sim_indices": s.indices, "sim_indptr": s.indptr, "sim_shape": np.array(s.shape)}

    def _set_state(self, state) -> None:
        self.similarity_ = sp.csr_matrix(
            (state["sim_data"], state["sim_indices"], state["sim_indptr"]), shape=tuple(state["sim_shape"]))
