"""The experiment's comparison chart: one small bar chart per metric, the selected model highlighted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.evaluation.direction import lower_is_better
from recsys.evaluation.plots.layout import set_margins, text_width_in


def highlighted(models: pd.Index, values: np.ndarray, metric: str, selected: str | None = None) -> np.ndarray:
    """Bars to highlight: the selected model's, or without one the best value in the metric's direction."""
    if selected is not None:
        return np.asarray(models == selected)
    best = np.nanmin(values) if lower_is_better(metric) else np.nanmax(values)
    return np.asarray(values == best)


def plot_comparison(df: pd.DataFrame, metric: str, path: Path, selected: str | None = None) -> None:
    """Write `comparison_figure` as a PNG to `path`."""
    comparison_figure(df, metric, selected).savefig(path, dpi=100)


def comparison_figure(df: pd.DataFrame, metric: str, selected: str | None = None):
    """Small multiples: one horizontal bar chart per metric (each on its own scale), the selection metric first.

    `df`: one row per model (index = label), metric columns, optional `<metric>_ci_low/_ci_high` and a boolean
    `tied_with_best`. Intervals become error bars; tied models are hatched and labelled "(tied)". The selected
    model is highlighted; without one, the best value of the selection metric in its direction. Returns the
    matplotlib Figure (made outside pyplot: nothing to close).
    """
    from matplotlib.figure import Figure  # outside pyplot: nothing to close, no global state

    prefixes = ("ndcg_at", "recall_at", "precision_at", "map_at", "hit_rate_at", "catalog_coverage_at", "lift_at",
                "novelty_at", "silhouette", "recall_vs_exact")
    derived = ("_ci_low", "_ci_high", "_std", "delta_vs_best", "p_value", "cohens_d", "tied_with_best")

    def plain(c: str) -> bool:
        return ("/" not in c and not any(d in c for d in derived) and pd.api.types.is_numeric_dtype(df[c])
                and df[c].dtype != bool)

    cols = [c for c in df.columns if c.startswith(prefixes) and plain(c)]
    if not cols:
        cols = [c for c in df.columns if not c.endswith("seconds") and plain(c)]
    cols = ([metric] if metric in df.columns else []) + [c for c in cols if c != metric]
    cols = cols[:8]
    ncols = min(4, max(1, len(cols)))
    nrows = -(-len(cols) // ncols) if cols else 1
    fig = Figure(figsize=(3.6 * ncols, 0.45 * len(df) * nrows + 1.4 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    tied = (df["tied_with_best"].astype(bool).to_numpy() if "tied_with_best" in df.columns
            else np.zeros(len(df), dtype=bool))
    models = [f"{m} (tied)" if t else str(m) for m, t in zip(df.index, tied)]
    for ax, col in zip(axes.ravel(), cols):
        values = df[col].astype(float).to_numpy()
        pick = highlighted(df.index, values, col, selected)
        colors = ["#c0392b" if col == metric and p else "#e0a526" if col == metric and t else "#3b6ea5"
                  for p, t in zip(pick, tied)]
        xerr = None
        if f"{col}_ci_low" in df.columns and f"{col}_ci_high" in df.columns:
            lo = df[f"{col}_ci_low"].astype(float).to_numpy()
            hi = df[f"{col}_ci_high"].astype(float).to_numpy()
            xerr = np.nan_to_num(np.vstack([values - lo, hi - values]).clip(min=0))
        bars = ax.barh(models, values, color=colors, xerr=xerr, capsize=3, ecolor="#333")
        for bar, t in zip(bars, tied):
            if t:
                bar.set_hatch("//")
        ax.invert_yaxis()
        ax.set_title(col + (" (selection, 95% CI)" if col == metric and xerr is not None else
                            " (selection)" if col == metric else ""), fontsize=9)
        ax.tick_params(labelsize=8)
        top = np.nanmax(values if xerr is None else values + xerr[1])
        for y, v in enumerate(values):
            ax.text(v if xerr is None else v + xerr[1][y], y, f" {v:.4g}", va="center", fontsize=7)
        ax.set_xlim(0, max(float(top) * 1.35, 1e-9))
    for ax in axes.ravel()[len(cols):]:
        ax.axis("off")
    label = text_width_in(models, 8) + 0.15  # model names on every panel's y axis
    set_margins(fig, left=label, right=0.15, top=0.3, bottom=0.35, wgap=label + 0.15, hgap=0.65)
    return fig
