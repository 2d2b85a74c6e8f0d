"""The comparison chart highlights the best model in the metric's own direction (not always the highest value)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation.direction import metric_direction
from recsys.evaluation.plots import plot_comparison
from recsys.evaluation.plots.comparison import highlighted

MODELS = pd.Index(["a", "b", "c"])


@pytest.mark.parametrize(("metric", "values", "best"), [
    ("ndcg_at_10", [0.2, 0.5, 0.3], "b"),             # higher is better
    ("davies_bouldin", [1.4, 0.9, 1.1], "b"),         # lower is better: 0.9, not the highest 1.4
    ("query_latency_p99_ms", [3.0, 7.5, 1.25], "c"),  # lower is better
    ("popularity_bias_at_10", [0.8, 0.6, 0.7], "b"),
])
def test_highlight_follows_the_metric_direction(metric, values, best):
    pick = highlighted(MODELS, np.array(values), metric)
    assert list(MODELS[pick]) == [best]


def test_selected_model_wins_over_the_best_value():
    pick = highlighted(MODELS, np.array([0.2, 0.5, 0.3]), "ndcg_at_10", selected="c")
    assert list(MODELS[pick]) == ["c"]


def test_directions_used_by_tuning_and_charts_agree():
    from recsys.tuning.storage import default_direction

    for metric in ("ndcg_at_10", "davies_bouldin", "index_build_seconds", "silhouette", "index_memory_mb"):
        assert default_direction(metric) == metric_direction(metric)
    assert metric_direction("davies_bouldin") == "minimize" and metric_direction("silhouette") == "maximize"


def test_comparison_chart_is_written(tmp_path):
    df = pd.DataFrame({"davies_bouldin": [1.4, 0.9], "silhouette": [0.3, 0.4]}, index=pd.Index(["k3", "k4"]))
    path = tmp_path / "comparison.png"
    plot_comparison(df, "davies_bouldin", path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
