"""Vocabularies: map external ids to dense indices once; everything inside works on indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


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
        mine, theirs = _arrow_strings(self._index), _arrow_strings(ids)
        if mine is not None and theirs is not None:  # Arrow's hash lookup: no Python string per row
            found = pc.index_in(theirs, value_set=mine.combine_chunks() if isinstance(mine, pa.ChunkedArray) else mine)
            return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        return self._index.get_indexer(pd.Index(ids)).astype(np.int64)

    def id(self, idx: np.ndarray | int) -> np.ndarray:
        return self._index.to_numpy()[np.asarray(idx)]

    def take(self, idx: np.ndarray) -> pd.Index:
        """The ids at `idx` as an Index of the vocabulary's own dtype: for a column of a result table. Arrow
        strings stay Arrow (a take), where `id()`'s object array makes the DataFrame convert every row again."""
        return self._index.take(np.asarray(idx, dtype=np.int64))

    def contains(self, ids) -> np.ndarray:
        return self.index(ids) >= 0

    def save(self, path: str | Path) -> None:
        pd.DataFrame({"id": self._index}).to_parquet(path, index=False)

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls(pd.read_parquet(path)["id"].to_numpy())


def _arrow_strings(values: object) -> pa.Array | pa.ChunkedArray | None:
    """The Arrow string array under a pandas string Series/Index/array (None for anything else)."""
    array = getattr(values, "array", values)
    if isinstance(array, pd.arrays.ArrowStringArray):
        data = array._pa_array  # noqa: SLF001 - the public route (pa.array(values)) copies
        return data if pa.types.is_large_string(data.type) or pa.types.is_string(data.type) else None
    return None
