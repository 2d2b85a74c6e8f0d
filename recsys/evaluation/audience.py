"""Audience evaluation on a temporal split: for each product with test-period engagement, did the targeted users
engage? Rows are products, columns are users (the transpose of the recommend task).

For product p with candidate pool C_p (training users, minus those who interacted with p in training when excluded)
and positives P_p (users of C_p who engage with p in the test period), an audience A_p of N users scores
  precision_at_N = |A_p & P_p| / N          recall_at_N = |A_p & P_p| / |P_p|          ndcg_at_N (binary)
  expected_precision_at_N = min(N, |C_p|) / N * |P_p| / |C_p|   exact mean precision of a uniform random N-subset
                                                                 of C_p (hypergeometric expectation)
  lift_at_N = sum_p precision / sum_p expected precision         ratio of means (1.0 for a random audience)
and over all products: product_coverage (share answered by the model, not the cold-start fallback) and
top1pct_share_at_N (share of all audience slots taken by the 1% most-targeted users).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.tables import TrainData
from recsys.data.vocab import Vocabulary
from recsys.evaluation import metrics as M
from recsys.evaluation.metric_registry import names
from recsys.evaluation.ranked import ranked_cells

ACCURACY = names("audience", group="accuracy")  # precision, recall, ndcg (the metric registry)


@dataclass
class AudienceTarget:
    """Evaluated products (vocabulary indices), their positives and candidate pool sizes."""

    item_ids: np.ndarray
    item_idx: np.ndarray
    relevant: sp.csr_matrix  # (n_products, n_users) binary: test engagers inside the pool
    n_relevant: np.ndarray
    pool_size: np.ndarray
    new_product: np.ndarray  # no training interactions
    info: dict = field(default_factory=dict)


def build_audience_target(data: TrainData, test: pd.DataFrame, exclude_interacted: bool = True,
                          include_new_products: bool = True, min_positives: int = 1) -> AudienceTarget:
    """Positives per product = training users who engage with it in the test period (and are candidates)."""
    rows = test[["user_id", "item_id"]].drop_duplicates()
    u = data.users.index(rows["user_id"].to_numpy())
    i = data.items.index(rows["item_id"].to_numpy())
    trained = data.item_popularity()  # training users per item index
    info = {"test_pairs": int(len(rows)), "pairs_unknown_user": int((u < 0).sum()),
            "pairs_unknown_item": int((i < 0).sum())}
    keep = (u >= 0) & (i >= 0)
    if not include_new_products:
        keep &= trained[np.maximum(i, 0)] > 0
    u, i = u[keep], i[keep]
    if exclude_interacted and len(u):
        seen = np.asarray(data.matrix[u, i]).ravel() > 0
        info["pairs_already_interacted"] = int(seen.sum())
        u, i = u[~seen], i[~seen]
    n_rel_all = np.bincount(i, minlength=data.n_items)
    items = np.flatnonzero(n_rel_all >= max(1, min_positives))
    pos = np.full(data.n_items, -1, dtype=np.int64)
    pos[items] = np.arange(len(items))
    ok = pos[i] >= 0
    relevant = sp.csr_matrix((np.ones(int(ok.sum()), np.float32), (pos[i[ok]], u[ok])),
                             shape=(len(items), data.n_users))
    relevant.sum_duplicates()
    relevant.data[:] = 1.0
    pool = data.n_users - (trained[items] if exclude_interacted else 0)
    new = trained[items] == 0
    info.update({"products": int(len(items)), "new_products": int(new.sum()),
                 "positive_pairs": int(relevant.nnz), "candidates": int(data.n_users)})
    return AudienceTarget(item_ids=data.items.id(items), item_idx=items.astype(np.int64), relevant=relevant,
                          n_relevant=n_rel_all[items].astype(np.int64), pool_size=np.asarray(pool, np.int64),
                          new_product=new, info=info)


def expected_random_precision(n_positive: np.ndarray, pool_size: np.ndarray, n: int) -> np.ndarray:
    """Exact expected precision@n of n users drawn uniformly without replacement from the pool (padding counts
    as a miss when the pool is smaller than n)."""
    pos = np.asarray(n_positive, dtype=np.float64)
    pool = np.asarray(pool_size, dtype=np.float64)
    drawn = np.minimum(float(n), pool)
    return np.divide(drawn * pos, n * pool, out=np.zeros_like(pos), where=pool > 0)


def lift(precision: np.ndarray, expected: np.ndarray) -> float:
    """Ratio of mean precision to mean expected random precision over products (nan when nothing is expected)."""
    denom = float(np.sum(expected))
    return float(np.sum(precision)) / denom if denom > 0 else float("nan")


def product_coverage(covered: np.ndarray) -> float:
    """Share of products answered by the model itself (not the cold-start fallback)."""
    covered = np.asarray(covered, dtype=bool)
    return float(covered.mean()) if covered.size else 0.0


def top_share(ranked: np.ndarray, n_users: int, share: float = 0.01) -> float:
    """Share of all audience slots (valid entries of `ranked`) taken by the ceil(share * n_users) users targeted
    most often. 1.0 = every product gets the same few users; about n/n_users-ish for random audiences."""
    valid = ranked[ranked >= 0]
    if valid.size == 0:
        return 0.0
    counts = np.bincount(valid, minlength=n_users)
    top = max(1, math.ceil(share * n_users))
    return float(np.sort(counts)[::-1][:top].sum() / valid.size)


def audience_metrics(ranked: np.ndarray, target: AudienceTarget, ns: list[int], covered: np.ndarray,
                     n_users: int, concentration_share: float = 0.01) -> tuple[dict[str, float], pd.DataFrame]:
    """Aggregate metrics and a per-product table (keyed by `item_id`) for audiences `ranked` (n_products, N_max)
    aligned with `target.item_idx`."""
    hits = M.hits_matrix(ranked, target.relevant)
    per = M.accuracy_metrics(hits, target.n_relevant, ns)
    table = {"item_id": target.item_ids, "n_positives": target.n_relevant, "pool_size": target.pool_size,
             "new_product": target.new_product, "covered": np.asarray(covered, dtype=bool)}
    agg: dict[str, float] = {}
    for n in ns:
        exp = expected_random_precision(target.n_relevant, target.pool_size, n)
        prec = per[f"precision_at_{n}"]
        for m in ACCURACY:
            col = per[f"{m}_at_{n}"]
            table[f"{m}_at_{n}"] = col
            agg[f"{m}_at_{n}"] = float(col.mean()) if len(col) else 0.0
        table[f"expected_precision_at_{n}"] = exp
        table[f"lift_at_{n}"] = np.divide(prec, exp, out=np.full(len(exp), np.nan), where=exp > 0)
        agg[f"expected_precision_at_{n}"] = float(exp.mean()) if len(exp) else 0.0
        agg[f"lift_at_{n}"] = lift(prec, exp)
        pct = round(concentration_share * 100, 6)
        agg[f"top{pct:g}pct_share_at_{n}"] = top_share(ranked[:, :n], n_users, concentration_share)
        agg[f"user_coverage_at_{n}"] = float(len(np.unique(ranked[:, :n][ranked[:, :n] >= 0])) / max(1, n_users))
    agg["product_coverage"] = product_coverage(covered)
    return dict(sorted(agg.items())), pd.DataFrame(table)


def metric_names(ns: list[int], concentration_share: float = 0.01) -> list[str]:
    pct = round(concentration_share * 100, 6)
    names = [f"{m}_at_{n}" for n in ns for m in (*ACCURACY, "expected_precision", "lift", "user_coverage")]
    names += [f"top{pct:g}pct_share_at_{n}" for n in ns]
    return sorted([*names, "product_coverage"])


def audience_frame(item_ids: np.ndarray, ranked: np.ndarray, scores: np.ndarray, covered: np.ndarray,
                   users: Vocabulary) -> pd.DataFrame:
    """Long table item_id, user_id, rank, score, reason (padding dropped)."""
    cells = ranked_cells(ranked, scores)
    return pd.DataFrame({
        "item_id": pd.Index(np.asarray(item_ids)).take(cells.row),
        "user_id": users.take(cells.item),
        "rank": cells.rank,
        "score": cells.score.astype(np.float64),
        "reason": np.where(covered, "model", "cold_start")[cells.row],
    })
