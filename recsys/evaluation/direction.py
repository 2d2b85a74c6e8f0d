"""Which way is better for a metric name: one rule for tuning directions and the charts' highlight.

A metric is lower-is-better when its name holds one of `LOWER_IS_BETTER` (latency, seconds, memory, popularity
bias, Davies-Bouldin, inertia, index build); every other metric is higher-is-better.

Example:
    >>> metric_direction("query_latency_p99_ms"), metric_direction("ndcg_at_10")
    ('minimize', 'maximize')
"""

from __future__ import annotations

from typing import Literal

LOWER_IS_BETTER = ("latency", "seconds", "memory", "popularity_bias", "davies_bouldin", "inertia", "build_")


def lower_is_better(metric: str) -> bool:
    return any(token in metric for token in LOWER_IS_BETTER)


def metric_direction(metric: str) -> Literal["minimize", "maximize"]:
    return "minimize" if lower_is_better(metric) else "maximize"
