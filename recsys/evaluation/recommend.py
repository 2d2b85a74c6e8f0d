"""Full-ranking evaluation of a recommender: every item is a candidate, the user's train items excluded."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

from recsys.data.tables import TrainData
from recsys.evaluation import metrics as M
from recsys.evaluation.metric_registry import RankingContext, compute_recommend, metric_keys
from recsys.evaluation.ranked import ranked_cells
from recsys.logging import get_logger, progress_enabled

_log = get_logger(__name__)


@dataclass
class EvalTarget:
    """What is evaluated: user indices (-1 = unknown user served by fallback) and their relevant items."""

    user_ids: np.ndarray
    user_idx: np.ndarray
    relevant: sp.csr_matrix  # (n_eval_users, n_items) binary
    n_relevant: np.ndarray  # includes relevant items unknown to training when split.unknown_items = keep
    test_rows: pd.DataFrame  # user_id, item_id, timestamp of the evaluated test interactions
    info: dict = field(default_factory=dict)

    @cached_property
    def user_index(self) -> pd.Index:
        """`user_ids` as an Index (Arrow strings for string ids), built once: every model's result tables take
        their user column from it instead of converting the object array again."""
        return pd.Index(self.user_ids)


def build_target(data: TrainData, test: pd.DataFrame, unknown_users: str = "drop",
                 unknown_items: str = "drop") -> EvalTarget:
    """Relevant = test items of each user minus the user's training items."""
    test = test[["user_id", "item_id", "timestamp"]].reset_index(drop=True)
    test["user_idx"] = data.users.index(test["user_id"])
    test["item_idx"] = data.items.index(test["item_id"])
    trained_items = np.zeros(data.n_items, dtype=bool)
    trained_items[np.unique(data.matrix.indices)] = True
    known_item = (test["item_idx"].to_numpy() >= 0)
    known_item &= trained_items[np.maximum(test["item_idx"].to_numpy(), 0)]
    info = {"test_rows": int(len(test)), "rows_unknown_user": int((test["user_idx"] < 0).sum()),
            "rows_unknown_item": int((~known_item).sum())}
    if unknown_users == "drop":
        test = test[test["user_idx"] >= 0]
        known_item = known_item[test.index.to_numpy()] if len(known_item) else known_item
        test = test.reset_index(drop=True)
    if unknown_items == "drop":
        test = test[known_item].reset_index(drop=True)
        known_item = np.ones(len(test), dtype=bool)
    # remove items the user already had in training (they are excluded from rankings)
    u, i = test["user_idx"].to_numpy(), test["item_idx"].to_numpy()
    seen = np.zeros(len(test), dtype=bool)
    ok = (u >= 0) & (i >= 0)
    if ok.any():
        seen[ok] = np.asarray(data.matrix[u[ok], i[ok]]).ravel() > 0
    test = test[~seen].drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)
    known_item = (test["item_idx"].to_numpy() >= 0) & trained_items[np.maximum(test["item_idx"].to_numpy(), 0)]
    user_ids, inverse = np.unique(test["user_id"].to_numpy(), return_inverse=True)
    user_idx = data.users.index(user_ids)
    n_rel = np.bincount(inverse, minlength=len(user_ids))
    rel_rows = inverse[test["item_idx"].to_numpy() >= 0]
    rel_cols = test["item_idx"].to_numpy()[test["item_idx"].to_numpy() >= 0]
    relevant = sp.csr_matrix((np.ones(len(rel_rows), np.float32), (rel_rows, rel_cols)),
                             shape=(len(user_ids), data.n_items))
    relevant.sum_duplicates()
    relevant.data[:] = 1.0
    info.update({"users": int(len(user_ids)), "users_fallback": int((user_idx < 0).sum()),
                 "relevant_pairs": int(len(test)), "relevant_unknown_item": int((~known_item).sum())})
    return EvalTarget(user_ids=user_ids, user_idx=user_idx, relevant=relevant, n_relevant=n_rel,
                      test_rows=test[["user_id", "item_id", "timestamp"]], info=info)


def sample_target(target: EvalTarget, max_users: int, seed: int) -> EvalTarget:
    """A seeded sample of `max_users` evaluated users (all of them when there are no more): same rows of
    `relevant`/`n_relevant`, their test interactions, user order kept. info gains users_total / users_sampled."""
    n = len(target.user_ids)
    if max_users <= 0:
        raise ValueError(f"max_users must be > 0, but got max_users={max_users}")
    if n <= max_users:
        return target
    keep = np.sort(np.random.default_rng(seed).choice(n, size=max_users, replace=False))
    rows = target.test_rows[target.test_rows["user_id"].isin(target.user_ids[keep])].reset_index(drop=True)
    info = {**target.info, "users_total": int(n), "users_sampled": int(max_users),
            "users": int(max_users), "users_fallback": int((target.user_idx[keep] < 0).sum())}
    return EvalTarget(user_ids=target.user_ids[keep], user_idx=target.user_idx[keep],
                      relevant=target.relevant[keep], n_relevant=target.n_relevant[keep], test_rows=rows, info=info)


def batch_rows(batch_size: int, n_items: int, max_batch_mb: float | None) -> int:
    """Users per evaluation batch: `batch_size`, lowered so the dense scores (float64 plus the kernel's float32
    copy: 12 bytes per user x item) stay within `max_batch_mb` MiB; at least one user."""
    if max_batch_mb is None:
        return batch_size
    return max(1, min(batch_size, int(max_batch_mb * 2**20 // (12 * max(n_items, 1)))))


@dataclass
class EvalResult:
    metrics: dict[str, float]
    per_user: pd.DataFrame  # user_id + per-user metric columns
    recommendations: pd.DataFrame  # user_id, item_id, rank, score
    ranked: np.ndarray | None = None  # (n_users, K) item indices (-1 = padding), for slices
    hits: np.ndarray | None = None  # (n_users, K) ranked[u, r] is relevant, for slices


def evaluate_recommender(model, data: TrainData, target: EvalTarget, ks: list[int], batch_size: int = 2048,
                         store_lists: bool = True, desc: str = "evaluate",
                         max_batch_mb: float | None = None) -> EvalResult:
    """Rank every item for every evaluated user (batches of `batch_size` users, fewer when `max_batch_mb` caps
    the score buffer; the numbers never depend on the batch size) and score the lists."""
    kmax = max(ks)
    batch_size = batch_rows(batch_size, data.n_items, max_batch_mb)
    n = len(target.user_ids)
    ranked = np.full((n, kmax), -1, dtype=np.int64)
    scores = np.full((n, kmax), -np.inf)
    known = np.flatnonzero(target.user_idx >= 0)
    for start in tqdm(range(0, len(known), batch_size), desc=desc, disable=not progress_enabled(), leave=False):
        rows = known[start:start + batch_size]
        idx, val = model.recommend(target.user_idx[rows], kmax)
        ranked[rows, :idx.shape[1]], scores[rows, :idx.shape[1]] = idx, val
    cold = np.flatnonzero(target.user_idx < 0)
    if len(cold):
        idx, val = model.fallback(len(cold), kmax)
        ranked[cold, :idx.shape[1]], scores[cold, :idx.shape[1]] = idx, val
    return score_lists(ranked, scores, data, target, ks, store_lists)


def score_lists(ranked: np.ndarray, scores: np.ndarray, data: TrainData, target: EvalTarget, ks: list[int],
                store_lists: bool = True) -> EvalResult:
    hits = M.hits_matrix(ranked, target.relevant)
    ctx = RankingContext(ranked=ranked, hits=hits, n_relevant=target.n_relevant,
                         ks=ks, popularity=data.item_popularity().astype(np.float64), n_users=data.n_users,
                         n_items=data.n_items, categories=data.item_categories())
    per, lists = compute_recommend(ctx)  # every registered recommend metric
    agg = {name: float(np.mean(v)) if len(v) else 0.0 for name, v in per.items()}
    agg.update(lists)
    per_user = pd.DataFrame({"user_id": target.user_index, **per})
    recs = pd.DataFrame()
    if store_lists:
        cells = ranked_cells(ranked, scores)
        recs = pd.DataFrame({
            "user_id": target.user_index.take(cells.row),
            "item_id": data.items.take(cells.item),
            "rank": cells.rank,
            "score": cells.score,
        })
    return EvalResult(metrics=dict(sorted(agg.items())), per_user=per_user, recommendations=recs, ranked=ranked,
                      hits=hits)


def metric_names(ks: list[int]) -> list[str]:
    return metric_keys("recommend", ks)
