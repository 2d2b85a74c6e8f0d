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


def test_comparison_chart_draws_the_intervals_as_error_bars_and_marks_ties():
    import matplotlib.pyplot as plt
    from matplotlib.container import BarContainer

    from recsys.evaluation.plots.comparison import comparison_figure

    df = pd.DataFrame({"ndcg_at_10": [0.123456, 0.12, 0.05], "ndcg_at_10_ci_low": [0.11, 0.1, 0.04],
                       "ndcg_at_10_ci_high": [0.14, 0.13, 0.061], "recall_at_10": [0.2, 0.19, 0.1],
                       "tied_with_best": [False, True, False]}, index=pd.Index(["als", "item_knn", "popularity"]))
    fig = comparison_figure(df, "ndcg_at_10", selected="als")
    try:
        ax = fig.axes[0]
        assert ax.get_title() == "ndcg_at_10 (selection, 95% CI)"
        assert [t.get_text() for t in ax.get_yticklabels()] == ["als", "item_knn (tied)", "popularity"]
        bars = next(c for c in ax.containers if isinstance(c, BarContainer))
        segments = bars.errorbar.lines[2][0].get_segments()  # one horizontal segment per model: [lo, hi]
        ends = np.array([(s[0][0], s[1][0]) for s in segments])
        assert ends == pytest.approx(np.array([(0.11, 0.14), (0.1, 0.13), (0.04, 0.061)]))
        assert [p.get_hatch() for p in bars.patches] == [None, "//", None]
        labels = [t.get_text().strip() for t in ax.texts]
        assert labels == ["0.1235", "0.12", "0.05"]  # 4 significant digits on the bars
        # recall has no interval columns: plain bars, no error bars
        assert fig.axes[1].get_title() == "recall_at_10"
        assert [type(c) for c in fig.axes[1].containers] == [BarContainer]
        assert next(c for c in fig.axes[1].containers).errorbar is None
    finally:
        plt.close(fig)
