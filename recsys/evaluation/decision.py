"""Which model should we ship, and is the difference real? Intervals, corrected paired tests, ties, selection.

Pure pandas/numpy on per-user metric tables (one row per evaluation unit, plus `fold` under repeated splits);
`recsys.experiment` calls it, `recsys.tracking` logs what it returns.

Example:
    >>> boot = BootstrapCache(n_resamples=1000, random_state=42)  # doctest: +SKIP
    >>> intervals = metric_intervals(per_user, metrics, boot)  # {'ndcg_at_10_ci_low': ..., ...}  # doctest: +SKIP
    >>> decision = decide(scores, cfg_like...)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.evaluation.statistics import PairedBootstrap, PairedComparison, holm_adjust, paired_comparison
from recsys.random import RandomState

FOLD = "fold"


class BootstrapCache:
    """One `PairedBootstrap` per number of units, all from one seed: every model with the same evaluation users
    gets exactly the same resamples. `n_resamples=0` turns intervals off."""

    def __init__(self, n_resamples: int = 1000, random_state: RandomState = 0) -> None:
        self.n_resamples = int(n_resamples)
        self.random_state = random_state
        self._by_n: dict[int, PairedBootstrap] = {}

    @property
    def enabled(self) -> bool:
        return self.n_resamples > 0

    def get(self, n: int) -> PairedBootstrap | None:
        if not self.enabled or n < 1:
            return None
        if n not in self._by_n:
            self._by_n[n] = PairedBootstrap(n, self.n_resamples, self.random_state)
        return self._by_n[n]


def per_unit_metrics(per_user: pd.DataFrame | None, metrics: dict[str, float]) -> list[str]:
    """Metric columns of `per_user` whose logged value is their per-unit mean (or fold mean under repeated splits).

    Aggregates that are not means of the table (coverage, lift over a pool, latency quantiles) get no interval.
    """
    if per_user is None or per_user.empty:
        return []
    folded = FOLD in per_user.columns
    out = []
    for col in per_user.columns:
        if col == FOLD or col not in metrics or not pd.api.types.is_numeric_dtype(per_user[col]):
            continue
        value = metrics[col]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        mean = float(per_user[col].mean())
        if folded:
            mean = float(per_user.groupby(FOLD)[col].mean().mean())
        if abs(mean - float(value)) <= 1e-9 * max(1.0, abs(float(value))):
            out.append(col)
    return out


def metric_intervals(per_user: pd.DataFrame | None, metrics: dict[str, float], cache: BootstrapCache,
                     confidence: float = 0.95) -> dict[str, float]:
    """`<metric>_ci_low` / `<metric>_ci_high` for every per-unit metric (pooled over folds)."""
    cols = per_unit_metrics(per_user, metrics)
    if not cols or not cache.enabled:
        return {}
    assert per_user is not None  # per_unit_metrics found the columns in it
    boot = cache.get(len(per_user))
    if boot is None:  # no rows to resample
        return {}
    low, high = boot.interval(per_user[cols].to_numpy(dtype=np.float64), confidence)
    out: dict[str, float] = {}
    for col, lo, hi in zip(cols, np.atleast_1d(low), np.atleast_1d(high)):
        out[f"{col}_ci_low"], out[f"{col}_ci_high"] = float(lo), float(hi)
    return out


@dataclass
class Candidate:
    """What the decision needs of one evaluated model."""

    label: str
    metrics: dict[str, float]
    per_user: pd.DataFrame | None
    fit_seconds: float = float("nan")
    key: str = "user_id"


@dataclass
class Decision:
    """The comparison of every model with the best one (highest point estimate of `metric`) and the selection.

    comparisons: metric -> label -> PairedComparison (Holm-adjusted across the models compared with the best).
    tied: labels not significantly different from the best on `metric` (adjusted p >= alpha), best excluded.
    """

    metric: str
    direction: str
    rule: str
    test: str
    alpha: float
    best: str
    selected: str
    reason: str
    tied: list[str] = field(default_factory=list)
    comparisons: dict[str, dict[str, PairedComparison]] = field(default_factory=dict)
    tested: bool = False

    def model_metrics(self, label: str) -> dict[str, float]:
        """Values logged on a model run: delta_vs_best, p_value_vs_best (corrected), its CI and effect size."""
        out: dict[str, float] = {}
        for metric, by_label in self.comparisons.items():
            c = by_label.get(label)
            if c is None:
                continue
            prefix = "" if metric == self.metric else f"{metric}_"
            out[f"{prefix}delta_vs_best"] = c.delta
            out[f"{prefix}p_value_vs_best"] = c.p_value(self.test)  # type: ignore[arg-type]
            if metric == self.metric:
                out["p_value_wilcoxon_vs_best"] = c.p_wilcoxon_adjusted
                out["p_value_ttest_vs_best"] = c.p_ttest_adjusted
                out["cohens_d_vs_best"] = c.cohens_d
                if not math.isnan(c.delta_ci_low):
                    out["delta_vs_best_ci_low"], out["delta_vs_best_ci_high"] = c.delta_ci_low, c.delta_ci_high
        return {k: v for k, v in out.items() if v is not None and not math.isnan(v)}

    def is_tied(self, label: str) -> bool:
        return label in self.tied

    def tests_table(self) -> pd.DataFrame:
        """One row per (metric, model compared with the best): full precision."""
        rows = []
        for metric, by_label in self.comparisons.items():
            for label, c in by_label.items():
                rows.append({"metric": metric, "model": label, "best": self.best, **c.to_dict(),
                             "tied": c.p_value(self.test) >= self.alpha})  # type: ignore[arg-type]
        return pd.DataFrame(rows)


def decide(candidates: list[Candidate], metric: str, direction: str = "maximize", rule: str = "best",
           test_metrics: list[str] | None = None, alpha: float = 0.05, test: str = "wilcoxon",
           cache: BootstrapCache | None = None, confidence: float = 0.95) -> Decision:
    """Compare every candidate with the best by point estimate, Holm-correct, find the ties, apply the rule.

    The first of equal point estimates (config order) is the best. `simplest_tied` selects, among the best and
    the models tied with it, the one with the smallest fit time.
    """
    if not candidates:
        raise ValueError("no models to compare")
    sign = 1.0 if direction == "maximize" else -1.0

    def score(c: Candidate) -> float:
        v = c.metrics.get(metric)
        return -math.inf if v is None or math.isnan(v) else sign * float(v)

    best = max(candidates, key=score)
    others = [c for c in candidates if c is not best]
    comparisons: dict[str, dict[str, PairedComparison]] = {}
    for m in dict.fromkeys([metric, *(test_metrics or [])]):
        rows = []
        for c in others:
            pair = _paired_vectors(c, best, m)
            if pair is None:
                continue
            a, b = pair
            boot = cache.get(len(a)) if cache is not None else None
            rows.append((c.label, paired_comparison(a, b, m, boot, confidence)))
        if rows:
            adjusted = holm_adjust([r[1] for r in rows])
            comparisons[m] = {label: c for (label, _), c in zip(rows, adjusted)}
    tested = metric in comparisons
    tied = [label for label, c in comparisons.get(metric, {}).items()
            if c.p_value(test) >= alpha]  # type: ignore[arg-type]
    selected, reason = best, f"highest {metric} ({fmt(best.metrics.get(metric))})"
    if direction == "minimize":
        reason = f"lowest {metric} ({fmt(best.metrics.get(metric))})"
    if tested and not tied:
        ps = [c.p_value(test) for c in comparisons[metric].values()]  # type: ignore[arg-type]
        reason += (f"; every other model is significantly different "
                   f"(Holm-corrected {test} p ≤ {fmt(max(ps))} < {fmt(alpha)})")
    elif tied:
        reason += f"; tied with {', '.join(tied)} (Holm-corrected {test} p ≥ {fmt(alpha)})"
    if not tested:
        reason += "; no per-user metrics to test the difference"
    if rule == "simplest_tied" and tied:
        pool = [best, *[c for c in others if c.label in tied]]
        fastest = min(pool, key=lambda c: (math.inf if math.isnan(c.fit_seconds) else c.fit_seconds))
        if fastest is not best:
            p = comparisons[metric][fastest.label].p_value(test)  # type: ignore[arg-type]
            reason = (f"simplest_tied: tied with the best, {best.label} ({metric} {fmt(best.metrics.get(metric))} vs "
                      f"{fmt(fastest.metrics.get(metric))}, Holm-corrected {test} p = {fmt(p)} ≥ {fmt(alpha)}), "
                      f"and the fastest to fit ({fmt(fastest.fit_seconds)} s vs {fmt(best.fit_seconds)} s)")
        else:
            reason = f"simplest_tied: {reason}; and the fastest to fit among the tied ({fmt(best.fit_seconds)} s)"
        selected = fastest
    return Decision(metric=metric, direction=direction, rule=rule, test=test, alpha=alpha, best=best.label,
                    selected=selected.label, reason=reason, tied=tied, comparisons=comparisons, tested=tested)


def _paired_vectors(a: Candidate, b: Candidate, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-unit values of `metric` for the same units in the same order (joined on key [+ fold] if needed)."""
    fa, fb = a.per_user, b.per_user
    if fa is None or fb is None or metric not in fa.columns or metric not in fb.columns:
        return None
    if metric not in per_unit_metrics(fa, a.metrics) or metric not in per_unit_metrics(fb, b.metrics):
        return None
    keys = [k for k in (FOLD, a.key) if k in fa.columns and k in fb.columns]
    if len(fa) == len(fb) and all(np.array_equal(fa[k].to_numpy(), fb[k].to_numpy()) for k in keys):
        va, vb = fa[metric].to_numpy(np.float64), fb[metric].to_numpy(np.float64)
    else:
        if not keys:
            return None
        joined = fa[[*keys, metric]].merge(fb[[*keys, metric]], on=keys, suffixes=("_a", "_b"), how="inner")
        va, vb = joined[f"{metric}_a"].to_numpy(np.float64), joined[f"{metric}_b"].to_numpy(np.float64)
    return (va, vb) if len(va) else None


def fmt(value: float | None, digits: int = 4) -> str:
    """Human-facing number: `digits` significant digits (JSON and metrics keep full precision)."""
    if value is None:
        return "n/a"
    v = float(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if v == int(v) and abs(v) < 10 ** digits:
        return str(int(v))
    return f"{v:.{digits}g}"
