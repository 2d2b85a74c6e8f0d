"""Similar-items evaluation: next-item prediction on the recommend split.

For every evaluated user, the query is the user's last training item and the target is the user's first test
item (the next thing they engaged with, not the query itself). A model's `similar(query, K)` list is scored with
hit_rate_at_K, mrr_at_K and ndcg_at_K (one relevant item), plus catalog coverage of the lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.tables import TrainData
from recsys.data.vocab import Vocabulary
from recsys.evaluation import metrics as M
from recsys.evaluation.metric_registry import names
from recsys.evaluation.ranked import ranked_cells

SIMILAR_METRICS = names("similar")  # ndcg, mrr, hit_rate, catalog_coverage (the metric registry)


def metric_names(ks: list[int]) -> list[str]:
    return sorted(f"{m}_at_{k}" for k in ks for m in SIMILAR_METRICS)


def next_item_pairs(data: TrainData, test: pd.DataFrame) -> pd.DataFrame:
    """One (user, query item, target item) row per user known to training with a usable test interaction."""
    train = data.interactions.sort_values(["timestamp", "item_idx"], kind="stable")
    last = train.groupby("user_id", sort=False).tail(1)[["user_id", "item_idx"]].rename(columns={"item_idx": "query"})
    t = test[["user_id", "item_id", "timestamp"]].copy()
    t["target"] = data.items.index(t["item_id"].to_numpy())
    t = t.merge(last, on="user_id", how="inner")
    t = t[(t["target"] >= 0) & (t["target"] != t["query"])]
    first = t.sort_values(["timestamp", "target"], kind="stable").groupby("user_id", sort=True).head(1)
    return first[["user_id", "query", "target"]].reset_index(drop=True)


def evaluate_similar(model: Any, pairs: pd.DataFrame, n_items: int, ks: list[int]
                     ) -> tuple[dict[str, float], pd.DataFrame, np.ndarray, np.ndarray]:
    """Metrics, per-user metrics, ranked item indices (n, K; -1 where the score is not finite) and scores."""
    kmax = max(ks)
    ranked, scores = model.similar(pairs["query"].to_numpy(), kmax)
    ranked = np.where(np.isfinite(scores), ranked, -1)
    n = len(pairs)
    relevant = sp.csr_matrix((np.ones(n), (np.arange(n), pairs["target"].to_numpy())), shape=(n, n_items))
    hits = M.hits_matrix(ranked, relevant)
    per = M.accuracy_metrics(hits, np.ones(n), ks)
    per = {k: v for k, v in per.items() if k.startswith(("hit_rate", "mrr", "ndcg"))}
    metrics = {k: float(v.mean()) if n else 0.0 for k, v in per.items()}
    for k in ks:
        metrics[f"catalog_coverage_at_{k}"] = M.catalog_coverage(ranked, k, n_items)
    per_user = pd.DataFrame({"user_id": pairs["user_id"], **per})
    return dict(sorted(metrics.items())), per_user, ranked, scores


def similar_frame(pairs: pd.DataFrame, ranked: np.ndarray, scores: np.ndarray, items: Vocabulary) -> pd.DataFrame:
    """Long table query_item_id, item_id, rank, score of the similar-item lists (padding dropped)."""
    cells = ranked_cells(ranked, scores)
    return pd.DataFrame({"query_item_id": items.take(pairs["query"].to_numpy()[cells.row]),
                         "item_id": items.take(cells.item), "rank": cells.rank, "score": cells.score})
