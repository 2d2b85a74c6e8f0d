"""Per-user metrics broken down by slice: user activity in training, fallback users, item popularity.

User slices partition the evaluated users (activity buckets of known users + the users served by the fallback),
so their means weighted by size give back the overall mean. Item-popularity slices split each user's relevant
items into head (the top 20% of items by training interactions) and tail (the rest, unknown items included) and
report recall within each part.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.evaluation import metrics as M

ACTIVITY_BUCKETS: tuple[tuple[int, float, str], ...] = (
    (1, 1, "activity_1"), (2, 5, "activity_2-5"), (6, 20, "activity_6-20"), (21, 100, "activity_21-100"),
    (101, np.inf, "activity_gt100"))
FALLBACK = "fallback"
HEAD_SHARE = 0.2


def activity_slice(train_interactions: np.ndarray) -> np.ndarray:
    """Slice name of each user from their number of training interactions (0 = unknown: the fallback)."""
    n = np.asarray(train_interactions)
    out = np.full(len(n), FALLBACK, dtype=object)
    for low, high, name in ACTIVITY_BUCKETS:
        out[(n >= low) & (n <= high)] = name
    return out


def head_items(popularity: np.ndarray, share: float = HEAD_SHARE) -> np.ndarray:
    """Boolean mask of the head: the top `share` of items by training interactions (ties: lower index first)."""
    pop = np.asarray(popularity, dtype=np.float64)
    n_head = int(np.ceil(share * len(pop))) if len(pop) else 0
    order = np.lexsort((np.arange(len(pop)), -pop))
    mask = np.zeros(len(pop), dtype=bool)
    mask[order[:n_head]] = True
    return mask


def user_slices(per_user: pd.DataFrame, slice_of_user: np.ndarray) -> pd.DataFrame:
    """One row per user slice: slice, kind, users, mean of every per-user metric column."""
    cols = [c for c in per_user.columns if c not in ("user_id", "fold") and pd.api.types.is_numeric_dtype(per_user[c])]
    frame = per_user[cols].assign(slice=slice_of_user)
    order = [name for _, _, name in ACTIVITY_BUCKETS] + [FALLBACK]
    grouped = frame.groupby("slice", sort=False)
    means = grouped[cols].mean()
    sizes = grouped.size().rename("users")
    table = pd.concat([sizes, means], axis=1).reindex([s for s in order if s in sizes.index])
    table.insert(0, "kind", ["fallback" if s == FALLBACK else "activity" for s in table.index])
    return table.rename_axis("slice").reset_index()


def popularity_recall(ranked: np.ndarray, relevant: sp.csr_matrix, n_relevant: np.ndarray, head: np.ndarray,
                      ks: list[int], hits: np.ndarray | None = None) -> pd.DataFrame:
    """Recall@K within head and tail relevant items, averaged over the users who have relevant items there.

    hits: `hits_matrix(ranked, relevant)` when the caller has it already (the evaluation computed it)."""
    hits = M.hits_matrix(ranked, relevant) if hits is None else hits
    safe = np.maximum(ranked, 0)
    is_head_slot = head[safe] & (ranked >= 0)
    head_rel = np.asarray(sp.csr_matrix(relevant) @ head.astype(np.float64)).ravel()  # no column slice (tocsc)
    tail_rel = np.asarray(n_relevant, dtype=np.float64) - head_rel
    rows = []
    for name, rel_count, slot in (("head", head_rel, is_head_slot), ("tail", tail_rel, ~is_head_slot)):
        users = rel_count > 0
        row: dict = {"slice": name, "kind": "item_popularity", "users": int(users.sum()),
                     "relevant_items": int(rel_count.sum())}
        for k in ks:
            got = (hits[:, :k] & slot[:, :k]).sum(axis=1)
            row[f"recall_at_{k}"] = float((got[users] / rel_count[users]).mean()) if users.any() else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def slice_metrics(table: pd.DataFrame) -> dict[str, float]:
    """`slice/<slice>/<metric>` for every non-empty slice, and `slice/<slice>/users`."""
    out: dict[str, float] = {}
    for _, row in table.iterrows():
        if not row["users"]:
            continue
        for col, value in row.items():
            if col in ("slice", "kind") or pd.isna(value):
                continue
            out[f"slice/{row['slice']}/{col}"] = float(value)
    return out
