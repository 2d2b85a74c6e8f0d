"""Search evaluation: NDCG/Recall@K of text queries with known relevant items, agreement with an exact search,
and the index's latency and throughput.

`evaluate_search(model, queries, ks, latency_queries)` runs a fitted search model (`encode_queries`,
`search_vectors`, `exact_search`) on a `QuerySet` and returns the metrics, a per-query table and the ranked lists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.tables import TrainData
from recsys.evaluation import metrics as M
from recsys.evaluation.metric_registry import names
from recsys.evaluation.ranked import ranked_cells

SEARCH_METRICS = names("search", at_k=True)  # ndcg, recall, ..., recall_vs_exact (the metric registry)
INDEX_METRICS = names("search", at_k=False)  # latency, throughput, index build and memory, embedding counts


def metric_names(ks: list[int]) -> list[str]:
    return sorted([f"{m}_at_{k}" for k in ks for m in SEARCH_METRICS] + list(INDEX_METRICS))


@dataclass
class QuerySet:
    """Text queries with their relevant items: texts (n,), kinds (n,), relevant (n, n_items) binary CSR."""

    texts: np.ndarray
    kinds: np.ndarray
    relevant: sp.csr_matrix

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_relevant(self) -> np.ndarray:
        return np.diff(self.relevant.indptr).astype(np.int64)

    def subset(self, rows: np.ndarray) -> QuerySet:
        return QuerySet(self.texts[rows], self.kinds[rows], self.relevant[rows])

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"query": self.texts, "kind": self.kinds, "n_relevant": self.n_relevant})


def recall_vs_exact(ids: np.ndarray, scores: np.ndarray, exact_scores: np.ndarray, k: int,
                    tol: float = 1e-5) -> np.ndarray:
    """Per query: share of the exact top-k that the index returned, ties at the k-th exact score counted as found
    (an approximate result with score >= the exact k-th score is a correct answer)."""
    kk = min(k, exact_scores.shape[1], ids.shape[1])
    kth = exact_scores[:, kk - 1]
    ok = (ids[:, :kk] >= 0) & (scores[:, :kk].astype(np.float64) >= kth[:, None] - tol)
    denom = np.isfinite(exact_scores[:, :kk]).sum(axis=1)
    return np.divide(ok.sum(axis=1), denom, out=np.ones(len(ids)), where=denom > 0)


def single_query_latency(model: Any, vectors: np.ndarray, k: int, n: int) -> np.ndarray:
    """Milliseconds of `n` searches issued one query at a time (after one warm-up query)."""
    rows = vectors[:n]
    model.search_vectors(rows[:1], k)
    out = np.empty(len(rows))
    for i in range(len(rows)):
        t0 = time.perf_counter()
        model.search_vectors(rows[i:i + 1], k)
        out[i] = (time.perf_counter() - t0) * 1e3
    return out


def evaluate_search(model: Any, queries: QuerySet, ks: list[int], latency_queries: int
                    ) -> tuple[dict[str, float], pd.DataFrame, np.ndarray, np.ndarray]:
    """Metrics, per-query metrics, ranked item indices (n, K) and scores for a fitted search model."""
    kmax = max(ks)
    vectors, _ = model.encode_queries(list(queries.texts))
    t0 = time.perf_counter()
    ids, scores = model.search_vectors(vectors, kmax)
    batch_s = time.perf_counter() - t0
    _, exact_scores = model.exact_search(vectors, kmax)
    hits = M.hits_matrix(ids, queries.relevant)
    per = M.accuracy_metrics(hits, queries.n_relevant, ks)
    for k in ks:
        per[f"recall_vs_exact_at_{k}"] = recall_vs_exact(ids, scores, exact_scores, k)
    metrics = {name: float(np.mean(v)) for name, v in per.items()}
    kinds = np.unique(queries.kinds)
    if len(kinds) > 1:
        for kind in kinds:
            mask = queries.kinds == kind
            for k in ks:
                for m in ("ndcg", "recall"):
                    metrics[f"{m}_at_{k}_{kind}"] = float(np.mean(per[f"{m}_at_{k}"][mask]))
    lat = single_query_latency(model, vectors, kmax, latency_queries)
    metrics.update({
        "query_latency_p50_ms": float(np.percentile(lat, 50)), "query_latency_p99_ms": float(np.percentile(lat, 99)),
        "queries_per_second": len(queries) / max(batch_s, 1e-9), "n_queries": float(len(queries)),
        **{k: float(v) for k, v in (getattr(model, "fit_info_", None) or {}).items()},
    })
    per_query = pd.DataFrame({"query": queries.texts.astype(str), "kind": queries.kinds.astype(str),
                              "n_relevant": queries.n_relevant, **per})
    return dict(sorted(metrics.items())), per_query, ids, scores


def results_frame(queries: QuerySet, ids: np.ndarray, scores: np.ndarray, data: TrainData) -> pd.DataFrame:
    """Long table of the ranked results: query, kind, rank, item_id, title, score, relevant."""
    cells = ranked_cells(ids, scores)
    items = cells.item
    return pd.DataFrame({
        "query": queries.texts.astype(str)[cells.row], "kind": queries.kinds.astype(str)[cells.row],
        "rank": cells.rank, "item_id": data.items.take(items),
        "title": data.item_table["title"].to_numpy()[items], "score": cells.score.astype(np.float64),
        "relevant": M.hits_matrix(ids, queries.relevant)[ids >= 0],
    })
