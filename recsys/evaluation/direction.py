"""Which way is better for a metric key: read from the metric registry (`recsys.evaluation.metric_registry`).

Used by tuning's default directions and the comparison chart's highlight.

Example:
    >>> metric_direction("query_latency_p99_ms"), metric_direction("ndcg_at_10")
    ('minimize', 'maximize')
"""

from __future__ import annotations

from recsys.evaluation.metric_registry import Direction, direction, lower_is_better


def metric_direction(metric: str) -> Direction:
    return direction(metric)


__all__ = ["lower_is_better", "metric_direction"]
