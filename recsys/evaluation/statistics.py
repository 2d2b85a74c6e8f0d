"""Statistics for decision-grade comparisons (pure numpy/scipy): one implementation of every test.

- `PairedBootstrap`: a seeded percentile bootstrap over n paired units (evaluation users). Its resamples are drawn
  once and reused for every vector it is applied to, so every model (and every metric) of an experiment sees the
  same resampled users: differences between models are paired, not two independent noises.
- `t_interval`: the textbook Student-t interval of a mean.
- `wilcoxon`, `ttest`: paired tests on per-unit differences (two-sided or one-sided).
- `cohens_d`: the paired effect size d_z = mean(diff) / sd(diff).
- `holm`: Holm–Bonferroni step-down adjusted p-values.
- `paired_comparison`: everything above for one model against a reference on one metric.

The registry's promotion gate (`recsys.evaluation.significance`) and the experiment's comparison both call these.

Example:
    >>> boot = PairedBootstrap(n=len(ndcg_als), n_resamples=1000, random_state=42)  # doctest: +SKIP
    >>> low, high = boot.interval(ndcg_als)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import stats as _st

from recsys.random import RandomState
from recsys.random import rng as make_rng

Alternative = Literal["greater", "less", "two-sided"]
TestName = Literal["wilcoxon", "ttest"]
_CACHE_BYTES = 256 * 2**20  # resample count matrices up to this size are kept; larger ones are redrawn per call


class PairedBootstrap:
    """`n_resamples` resamples of n units with replacement, drawn from one seeded generator.

    Resample b is the textbook draw `rng.integers(0, n, n)` (row b of `indices()`); it is applied as a count
    vector, so the bootstrap mean of x is `counts[b] @ x / n` and a (n, m) block of metrics costs one matrix product.
    """

    def __init__(self, n: int, n_resamples: int = 1000, random_state: RandomState = 0, chunk: int = 200) -> None:
        if n < 1:
            raise ValueError(f"a bootstrap needs at least 1 unit, but got n={n}")
        if n_resamples < 1:
            raise ValueError(f"n_resamples must be >= 1, but got {n_resamples}")
        if isinstance(random_state, np.random.Generator):  # a generator cannot be replayed: freeze one seed from it
            random_state = int(random_state.integers(0, 2**63 - 1))
        self.n, self.n_resamples, self.seed = int(n), int(n_resamples), random_state
        self.chunk = max(1, int(chunk))
        self._counts: list[np.ndarray] | None = None

    def indices(self) -> np.ndarray:
        """(n_resamples, n) int64: the resampled unit indices (the textbook representation)."""
        return np.concatenate([idx for idx in self._index_chunks()])

    def _index_chunks(self):
        r = make_rng(self.seed)
        for start in range(0, self.n_resamples, self.chunk):
            yield r.integers(0, self.n, size=(min(self.chunk, self.n_resamples - start), self.n))

    def _count_chunks(self):
        if self._counts is not None:
            yield from self._counts
            return
        keep = self.n_resamples * self.n * 8 <= _CACHE_BYTES
        out = []
        for idx in self._index_chunks():
            c = idx.shape[0]
            flat = (idx + (np.arange(c) * self.n)[:, None]).ravel()
            counts = np.bincount(flat, minlength=c * self.n).reshape(c, self.n).astype(np.float64)
            if keep:
                out.append(counts)
            yield counts
        if keep:
            self._counts = out

    def means(self, values: np.ndarray) -> np.ndarray:
        """Bootstrap means: (n,) -> (n_resamples,); (n, m) -> (n_resamples, m)."""
        x = np.asarray(values, dtype=np.float64)
        if x.shape[0] != self.n:
            raise ValueError(f"values have {x.shape[0]} units but the bootstrap was drawn for {self.n}")
        return np.concatenate([counts @ x for counts in self._count_chunks()]) / self.n

    def interval(self, values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the mean: (low, high), scalars for (n,) input, (m,) arrays for (n, m)."""
        _check_confidence(confidence)
        alpha = 1.0 - confidence
        low, high = np.quantile(self.means(values), [alpha / 2, 1 - alpha / 2], axis=0)
        return low, high


def bootstrap_interval(values: np.ndarray, n_resamples: int = 1000, confidence: float = 0.95,
                       random_state: RandomState = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of one vector (a one-off `PairedBootstrap`)."""
    low, high = PairedBootstrap(len(values), n_resamples, random_state).interval(values, confidence)
    return float(low), float(high)


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """mean ± t(1-α/2, n-1) · s / √n; a single value or a constant vector gives (mean, mean)."""
    _check_confidence(confidence)
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("a t-interval needs at least 1 value")
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean
    half = float(_st.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean - half, mean + half


def cohens_d(diff: np.ndarray) -> float:
    """Paired effect size d_z = mean(diff) / sd(diff) (ddof=1); 0 when every difference is 0, ±inf when constant."""
    d = np.asarray(diff, dtype=np.float64)
    if len(d) < 2 or not np.any(d != 0):
        return 0.0
    sd = float(d.std(ddof=1))
    mean = float(d.mean())
    if float(np.ptp(d)) <= 1e-12 * max(1.0, float(np.abs(d).max())):
        return float(np.sign(mean) * np.inf)
    return mean / sd


def wilcoxon(diff: np.ndarray, alternative: Alternative = "two-sided") -> tuple[float, float]:
    """Wilcoxon signed-rank test of paired differences (zero differences dropped): (statistic, p-value).

    No non-zero difference (identical models) gives (0, 1): nothing distinguishes them.
    """
    d = _check_alternative(diff, alternative)
    if np.count_nonzero(d) == 0 or len(d) < 2:
        return 0.0, 1.0
    res = _st.wilcoxon(d, alternative=alternative, zero_method="wilcox")
    return float(res.statistic), _p(res.pvalue)


def ttest(diff: np.ndarray, alternative: Alternative = "two-sided") -> tuple[float, float]:
    """Paired t-test (one-sample t-test of the differences against 0): (statistic, p-value).

    Every difference 0 gives (0, 1); a constant non-zero difference is certain: (±inf, 0) in its direction.
    """
    d = _check_alternative(diff, alternative)
    if np.count_nonzero(d) == 0 or len(d) < 2:
        return 0.0, 1.0
    if float(np.ptp(d)) <= 1e-12 * max(1.0, float(np.abs(d).max())):  # constant: no variance to test against
        sign = float(np.sign(d.mean()))
        hit = alternative == "two-sided" or (alternative == "greater") == (sign > 0)
        return sign * np.inf, 0.0 if hit else 1.0
    res = _st.ttest_1samp(d, 0.0, alternative=alternative)
    return float(res.statistic), _p(res.pvalue)


TESTS = {"wilcoxon": wilcoxon, "ttest": ttest}


def paired_p_value(diff: np.ndarray, test: TestName = "wilcoxon",
                   alternative: Alternative = "two-sided") -> tuple[float, float]:
    """(statistic, p) of the named paired test."""
    if test not in TESTS:
        raise ValueError(f"test must be one of {sorted(TESTS)}, but got {test!r}")
    return TESTS[test](diff, alternative)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni step-down adjusted p-values, in the input order.

    Sorted ascending p(1) ≤ … ≤ p(m): adj(i) = max over j ≤ i of min(1, (m - j + 1) · p(j)).
    Compare the adjusted p-values with α directly (the correction controls the family-wise error rate).
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    if np.any((p < 0) | (p > 1) | np.isnan(p)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


@dataclass(frozen=True)
class PairedComparison:
    """One model (a) against the reference (b) on one metric; `diff` = a - b per unit.

    p_* are raw; `holm` fills the *_adjusted fields across the models compared.
    """

    metric: str
    n: int
    mean_a: float
    mean_b: float
    delta: float
    delta_ci_low: float
    delta_ci_high: float
    delta_t_low: float
    delta_t_high: float
    cohens_d: float
    wilcoxon_statistic: float
    p_wilcoxon: float
    ttest_statistic: float
    p_ttest: float
    p_wilcoxon_adjusted: float = float("nan")
    p_ttest_adjusted: float = float("nan")

    def p_value(self, test: TestName, adjusted: bool = True) -> float:
        return getattr(self, f"p_{test}_adjusted" if adjusted else f"p_{test}")

    def to_dict(self) -> dict:
        return asdict(self)


def paired_comparison(a: np.ndarray, b: np.ndarray, metric: str = "", bootstrap: PairedBootstrap | None = None,
                      confidence: float = 0.95) -> PairedComparison:
    """Both paired tests (two-sided), the mean difference with its bootstrap and t intervals, and Cohen's d_z.

    Without a bootstrap the bootstrap interval fields are NaN.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired vectors must be 1-D, non-empty and of equal length, got {a.shape} and {b.shape}")
    diff = a - b
    low = high = float("nan")
    if bootstrap is not None:
        lo, hi = bootstrap.interval(diff, confidence)
        low, high = float(lo), float(hi)
    t_low, t_high = t_interval(diff, confidence)
    w_stat, w_p = wilcoxon(diff)
    t_stat, t_p = ttest(diff)
    return PairedComparison(metric, len(a), float(a.mean()), float(b.mean()), float(diff.mean()), low, high,
                            t_low, t_high, cohens_d(diff), w_stat, w_p, t_stat, t_p)


def holm_adjust(comparisons: list[PairedComparison]) -> list[PairedComparison]:
    """The same comparisons with Holm-adjusted p-values for both tests (one family per test)."""
    from dataclasses import replace

    if not comparisons:
        return []
    w = holm([c.p_wilcoxon for c in comparisons])
    t = holm([c.p_ttest for c in comparisons])
    return [replace(c, p_wilcoxon_adjusted=float(pw), p_ttest_adjusted=float(pt))
            for c, pw, pt in zip(comparisons, w, t)]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), but got {confidence}")


def _check_alternative(diff: np.ndarray, alternative: str) -> np.ndarray:
    if alternative not in ("greater", "less", "two-sided"):
        raise ValueError(f"alternative must be 'greater', 'less' or 'two-sided', but got {alternative!r}")
    d = np.asarray(diff, dtype=np.float64)
    if d.ndim != 1:
        raise ValueError(f"differences must be 1-D, got shape {d.shape}")
    return d


def _p(value: float) -> float:
    p = float(value)
    return 1.0 if np.isnan(p) else min(1.0, max(0.0, p))
