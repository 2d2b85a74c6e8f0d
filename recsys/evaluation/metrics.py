"""Vectorised ranking metrics on index arrays. No per-user Python loops.

Conventions (binary relevance, K = cut-off):
  precision@K = hits / K                       recall@K = hits / |rel|
  ndcg@K      = DCG / IDCG, DCG = sum hit_r / log2(r + 1), IDCG over min(|rel|, K) hits
  map@K       = sum_r hit_r * precision@r / min(|rel|, K)   (ranx divides by |rel|: equal when |rel| <= K)
  mrr@K       = 1 / rank of the first hit (0 if none within K)
  hit_rate@K  = 1 if any hit within K
Padding entries (-1) in the ranked lists never hit. Users with no relevant item must be excluded by the caller.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

ACCURACY = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
BEYOND = ("novelty", "popularity_bias", "diversity")


def hits_matrix(ranked: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """hits[u, r] = ranked[u, r] is in relevant row u. ranked: (n, K) int (-1 = padding); relevant: (n, n_items)."""
    n, k = ranked.shape
    rel = relevant.tocsr()
    rel.sort_indices()
    n_items = rel.shape[1]
    rel_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(rel.indptr))
    rel_keys = rel_rows * n_items + rel.indices.astype(np.int64)  # sorted: CSR rows in order, indices sorted
    keys = np.arange(n, dtype=np.int64)[:, None] * n_items + ranked.astype(np.int64)
    pos = np.searchsorted(rel_keys, keys)
    pos = np.minimum(pos, max(len(rel_keys) - 1, 0))
    found = rel_keys[pos] == keys if len(rel_keys) else np.zeros_like(keys, dtype=bool)
    return found & (ranked >= 0)


def accuracy_metrics(hits: np.ndarray, n_relevant: np.ndarray, ks: list[int]) -> dict[str, np.ndarray]:
    """Per-user accuracy metrics for each K from a hits matrix (n, K_max) and |rel| per user."""
    n, kmax = hits.shape
    n_rel = n_relevant.astype(np.float64)
    h = hits.astype(np.float64)
    ranks = np.arange(1, kmax + 1, dtype=np.float64)
    disc = 1.0 / np.log2(ranks + 1.0)
    cum = np.cumsum(h, axis=1)
    dcg_cum = np.cumsum(h * disc, axis=1)
    ap_cum = np.cumsum(h * cum / ranks, axis=1)
    kbig = max(max(ks), kmax)
    idcg_table = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(1, kbig + 1) + 1.0))])
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        kk = min(k, kmax)
        hk = cum[:, kk - 1] if kk > 0 else np.zeros(n)
        denom_k = np.minimum(n_rel, k)
        out[f"precision_at_{k}"] = hk / k
        out[f"recall_at_{k}"] = hk / n_rel
        idcg = idcg_table[np.minimum(n_rel, k).astype(np.int64)]
        out[f"ndcg_at_{k}"] = np.divide(dcg_cum[:, kk - 1], idcg, out=np.zeros(n), where=idcg > 0)
        out[f"map_at_{k}"] = np.divide(ap_cum[:, kk - 1], denom_k, out=np.zeros(n), where=denom_k > 0)
        out[f"mrr_at_{k}"] = np.where((first > 0) & (first <= k), 1.0 / np.maximum(first, 1), 0.0)
        out[f"hit_rate_at_{k}"] = (hk > 0).astype(np.float64)
    return out


def self_information(popularity: np.ndarray, n_users: int) -> np.ndarray:
    """-log2 of the share of training users who interacted with each item ((count + 1) / (n_users + 1), smoothed
    so items nobody interacted with have finite novelty)."""
    return -np.log2((popularity + 1.0) / (n_users + 1.0))


def beyond_accuracy(ranked: np.ndarray, ks: list[int], popularity: np.ndarray, n_users: int,
                    categories: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per-user novelty, popularity bias (mean train-user share of recommended items), intra-list diversity."""
    info = self_information(popularity, n_users)
    share = popularity / max(1, n_users)
    valid = ranked >= 0
    safe = np.where(valid, ranked, 0)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        v = valid[:, :k]
        cnt = np.maximum(v.sum(axis=1), 1)
        out[f"novelty_at_{k}"] = (info[safe[:, :k]] * v).sum(axis=1) / cnt
        out[f"popularity_bias_at_{k}"] = (share[safe[:, :k]] * v).sum(axis=1) / cnt
        if categories is not None:
            c = np.where(v, categories[safe[:, :k]], -1)
            same = (c[:, :, None] == c[:, None, :]) & v[:, :, None] & v[:, None, :]
            m = v.sum(axis=1)
            pairs = m * (m - 1) / 2.0
            same_pairs = (same.sum(axis=(1, 2)) - m) / 2.0
            out[f"diversity_at_{k}"] = np.divide(pairs - same_pairs, pairs, out=np.zeros(len(m)), where=pairs > 0)
    return out


def catalog_coverage(ranked: np.ndarray, k: int, n_items: int) -> float:
    """Share of the catalogue's `n_items` in at least one top-k list (a mask over the catalogue, not a sort)."""
    sub = ranked[:, :k]
    shown = np.zeros(max(n_items, int(sub.max(initial=-1)) + 1), dtype=bool)
    shown[sub[sub >= 0]] = True
    return float(shown.sum() / max(1, n_items))
