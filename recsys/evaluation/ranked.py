"""Padded ranked lists (n, k) -> the cells of a long table, one place for every task, evaluator and predictor.

Models answer batch-first with (n, k) arrays of indices, -1 (or a non-finite score) where a list is shorter than
k. Every long table we write or serve (recommendations, search results, audiences, similar items) keeps the valid
cells in row-major order: list by list, best first.

Example:
    >>> import numpy as np
    >>> cells = ranked_cells(np.array([[4, 2], [7, -1]]), np.array([[0.9, 0.5], [0.8, -np.inf]]))
    >>> cells.row.tolist(), cells.rank.tolist(), cells.item.tolist()
    ([0, 0, 1], [1, 2, 1], [4, 2, 7])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankedCells:
    """The valid cells of padded ranked lists: which list (row), 1-based rank, item index and score, each (m,)."""

    row: np.ndarray
    rank: np.ndarray
    item: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


def ranked_cells(ids: np.ndarray, scores: np.ndarray, valid: np.ndarray | None = None) -> RankedCells:
    """Cells of `ids` (n, k) where `valid` (default ``ids >= 0``) holds, in row-major order; scores keep their dtype."""
    ids = np.asarray(ids)
    scores = np.asarray(scores)
    mask = ids >= 0 if valid is None else np.asarray(valid, dtype=bool)
    row, col = np.nonzero(mask)
    return RankedCells(row=row.astype(np.int64), rank=(col + 1).astype(np.int64), item=ids[mask], score=scores[mask])
