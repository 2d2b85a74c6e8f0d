"""Vocabularies: map external ids to dense indices once; everything inside works on indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


class Vocabulary:
    """An ordered set of external ids. ``index(ids)`` gives dense indices (-1 for unknown ids)."""

    def __init__(self, ids: np.ndarray | pd.Index | list) -> None:
        index = pd.Index(ids)
        if index.has_duplicates:
            raise ValueError(f"vocabulary ids must be unique, but {int(index.duplicated().sum())} repeat")
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._index.equals(other._index)

    @property
    def ids(self) -> np.ndarray:
        return self._index.to_numpy()

    def index(self, ids: np.ndarray | pd.Series | list) -> np.ndarray:
        """Dense indices of `ids`; -1 where an id is unknown."""
        return self._index.get_indexer(pd.Index(ids)).astype(np.int64)

    def id(self, idx: np.ndarray | int) -> np.ndarray:
        return self._index.to_numpy()[np.asarray(idx)]

    def contains(self, ids) -> np.ndarray:
        return self.index(ids) >= 0

    def save(self, path: str | Path) -> None:
        pd.DataFrame({"id": self._index}).to_parquet(path, index=False)

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls(pd.read_parquet(path)["id"].to_numpy())
