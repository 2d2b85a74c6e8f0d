"""Paired significance tests on per-user metric vectors (pure scipy/pandas).

Example:
    >>> res = paired_test(challenger_ndcg, champion_ndcg, test="wilcoxon")  # doctest: +SKIP
    >>> res.p_value < 0.05  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from recsys.evaluation.statistics import Alternative, paired_p_value


@dataclass(frozen=True)
class PairedTestResult:
    """Outcome of a paired test of a - b. `p_value` is 1.0 when every difference is zero."""

    test: str
    alternative: str
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    statistic: float
    p_value: float

    def to_dict(self) -> dict:
        return asdict(self)


def paired_test(a: np.ndarray, b: np.ndarray, test: Literal["wilcoxon", "ttest"] = "wilcoxon",
                alternative: Alternative = "greater") -> PairedTestResult:
    """Test whether `a` is greater (less, different) than `b` on paired samples of equal length.

    a, b: (n,) per-user metric values of the same users in the same order.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired vectors must be 1-D of equal length, got shapes {a.shape} and {b.shape}")
    if test not in ("wilcoxon", "ttest"):
        raise ValueError(f"test must be 'wilcoxon' or 'ttest', but got {test!r}")
    n = len(a)
    diff = a - b
    mean_a = float(a.mean()) if n else float("nan")
    mean_b = float(b.mean()) if n else float("nan")
    mean_diff = float(diff.mean()) if n else float("nan")
    statistic, p = paired_p_value(diff, test, alternative)  # the one implementation (recsys.evaluation.statistics)
    return PairedTestResult(test, alternative, n, mean_a, mean_b, mean_diff, statistic, p)


def paired_frame_test(challenger: pd.DataFrame, reference: pd.DataFrame, metric: str,
                      test: Literal["wilcoxon", "ttest"] = "wilcoxon", alternative: Alternative = "greater",
                      key: str | Sequence[str] = "user_id") -> PairedTestResult:
    """Join two per-user metric tables on `key` (inner join) and run `paired_test` on column `metric`.

    `key` is one column or several: under repeated splits a user can be evaluated in more than one fold, so
    the pairs are (fold, user_id). A key that does not identify one row per side is an error, never a
    cross product of the duplicates.
    """
    keys = [key] if isinstance(key, str) else list(key)
    for name, frame in (("challenger", challenger), ("reference", reference)):
        missing = [c for c in (*keys, metric) if c not in frame.columns]
        if missing:
            raise KeyError(f"{name} per-user table lacks columns {missing} (has {list(frame.columns)})")
        dup = frame.duplicated(keys)
        if dup.any():
            first = frame.loc[dup, keys].iloc[0].tolist()
            hint = (" (rows from several folds: both tables need the `fold` column)" if "fold" not in keys
                    and "fold" in frame.columns else "")
            raise ValueError(f"{name} per-user table has {int(dup.sum())} duplicate row(s) of {keys}, e.g. "
                             f"{first}: cannot pair units{hint}")
    left = challenger[[*keys, metric]].astype({k: str for k in keys})
    right = reference[[*keys, metric]].astype({k: str for k in keys})
    joined = left.merge(right, on=keys, suffixes=("_a", "_b"), how="inner")
    return paired_test(joined[f"{metric}_a"].to_numpy(), joined[f"{metric}_b"].to_numpy(), test, alternative)
