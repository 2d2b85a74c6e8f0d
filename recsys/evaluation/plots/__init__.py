"""Every plot of the project (PNG files; `recsys.tracking` logs them as run artifacts).

recommend: per-user diagnostics and slices; comparison: the experiment's model comparison chart;
segment: K-selection criteria against K. Tuning's study plots are Optuna's own (`recsys.tuning.report`).
"""

from recsys.evaluation.plots.comparison import plot_comparison
from recsys.evaluation.plots.recommend import plot_recommend_diagnostics, plot_slices
from recsys.evaluation.plots.segment import plot_criteria

__all__ = ["plot_comparison", "plot_criteria", "plot_recommend_diagnostics", "plot_slices"]
