"""Canonical tables and the train-time view models consume (CSR matrices over dense indices)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.vocab import Vocabulary

INTERACTION_COLUMNS = ["user_id", "item_id", "timestamp", "event", "weight"]
ITEM_COLUMNS = ["item_id", "title", "text", "category"]
UNKNOWN_CATEGORY = "unknown"  # what validation fills in for items without a category


@dataclass
class Dataset:
    """Validated canonical tables.

    interactions: user_id, item_id, timestamp (int64 unix seconds), event (str), weight (float, > 0),
                  and optionally rating (float).
    items: item_id, title, text, category (one row per item; may list items nobody interacted with).
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    extras: dict = field(default_factory=dict)
    parts: dict[str, pd.DataFrame] = field(default_factory=dict)  # predefined split: `test`, `validation`

    @property
    def all_interactions(self) -> pd.DataFrame:
        """Every interaction of the source: the training rows plus any predefined parts."""
        if not self.parts:
            return self.interactions
        return pd.concat([self.interactions, *self.parts.values()], ignore_index=True)

    def fingerprint(self) -> str:
        """Hash of the canonical rows (every part); for a database source also of the raw rows read, so a
        changed table changes it even where validation drops the changed rows."""
        cols = ["user_id", "item_id", "timestamp", "weight"]
        frames = [self.interactions[cols].assign(_p="train" if self.parts else "all")]
        frames += [p[cols].assign(_p=name) for name, p in sorted(self.parts.items())]
        fp = frame_fingerprint(pd.concat(frames) if self.parts else self.interactions[cols])
        raw = self.extras.get("rows_fingerprint")
        return fp if raw is None else hashlib.sha256(f"{fp}:{raw}".encode()).hexdigest()[:16]


def frame_fingerprint(df: pd.DataFrame) -> str:
    return hashes_fingerprint(list(df.columns), pd.util.hash_pandas_object(df, index=False).to_numpy())


def hashes_fingerprint(columns: list, row_hashes: np.ndarray) -> str:
    """`frame_fingerprint` of a frame with these columns whose rows hash to `row_hashes` (uint64, in order)."""
    h = hashlib.sha256()
    h.update(",".join(map(str, columns)).encode())
    h.update(row_hashes.tobytes())
    return h.hexdigest()[:16]


@dataclass
class TrainData:
    """What models see: a weighted user x item CSR matrix plus id vocabularies and item metadata.

    matrix: (n_users, n_items) float32 CSR, summed weights of the training interactions.
    item_table: Items aligned to item index (row i describes item i).
    interactions: the training rows with `user_idx` and `item_idx` columns added.
    """

    matrix: sp.csr_matrix
    users: Vocabulary
    items: Vocabulary
    item_table: pd.DataFrame
    interactions: pd.DataFrame

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @classmethod
    def build(cls, interactions: pd.DataFrame, items: pd.DataFrame | None = None) -> TrainData:
        """Vocabularies from the training rows (users, items by first appearance order sorted by id),
        catalog items without interactions appended after them so content models can serve them."""
        user_ids = np.sort(interactions["user_id"].unique())
        item_ids = np.sort(interactions["item_id"].unique())
        users = Vocabulary(user_ids)
        if items is not None and len(items):
            extra = items.loc[~items["item_id"].isin(item_ids), "item_id"].to_numpy()
            item_vocab = Vocabulary(np.concatenate([item_ids, np.sort(extra)]) if len(extra) else item_ids)
        else:
            item_vocab = Vocabulary(item_ids)
        u = users.index(interactions["user_id"])
        i = item_vocab.index(interactions["item_id"])
        w = interactions["weight"].to_numpy(dtype=np.float32)
        matrix = sp.csr_matrix((w, (u, i)), shape=(len(users), len(item_vocab)), dtype=np.float32)
        matrix.sum_duplicates()
        table = align_items(items, item_vocab)
        inter = interactions.copy(deep=False)  # new columns only (copy-on-write): the rows are not copied
        inter["user_idx"] = u
        inter["item_idx"] = i
        return cls(matrix=matrix, users=users, items=item_vocab, item_table=table, interactions=inter)

    def item_categories(self) -> np.ndarray | None:
        """Integer category code per item index; None when no item has a category (diversity cannot be
        computed then, and must not be reported as 0)."""
        cats = self.item_table["category"]
        if not len(cats) or bool((cats == UNKNOWN_CATEGORY).all()):
            return None
        codes, _ = pd.factorize(cats)
        return codes.astype(np.int64)

    def item_popularity(self) -> np.ndarray:
        """Number of distinct training users per item."""
        return item_user_counts(self.matrix)


def item_user_counts(matrix: sp.spmatrix) -> np.ndarray:
    """Stored entries per column of a user x item matrix: the number of distinct users per item (int64)."""
    return np.diff(matrix.tocsc().indptr).astype(np.int64)


def align_items(items: pd.DataFrame | None, vocab: Vocabulary) -> pd.DataFrame:
    base = pd.DataFrame({"item_id": vocab.ids})
    if items is None or not len(items):
        base["title"] = base["item_id"].astype(str)
        base["text"] = ""
        base["category"] = "unknown"
        return base
    items = items.assign(**{c: None for c in ("title", "text", "category") if c not in items.columns})
    merged = base.merge(items.drop_duplicates("item_id"), on="item_id", how="left")
    merged["title"] = merged["title"].fillna(merged["item_id"].astype(str)).astype(str)
    merged["text"] = merged["text"].fillna("").astype(str)
    merged["category"] = merged["category"].fillna("unknown").astype(str)
    return merged[ITEM_COLUMNS].reset_index(drop=True)
