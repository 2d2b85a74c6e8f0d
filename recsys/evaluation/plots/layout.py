"""Margins in inches, set without measuring text: `fig.tight_layout()` draws every label to measure it, which
costs more than drawing the figure itself (about half of a plot's time in an experiment run)."""

from __future__ import annotations

from typing import Any

CHAR_WIDTH_IN = 0.6 / 72  # a character's width, in inches per point of font size (DejaVu Sans, on average)


def text_width_in(labels: Any, fontsize: float) -> float:
    """Width in inches of the longest of `labels` at `fontsize` points (an estimate that errs on the wide side)."""
    longest = max((len(str(s)) for s in labels), default=0)
    return longest * fontsize * CHAR_WIDTH_IN


def set_margins(fig: Any, left: float, right: float, top: float, bottom: float, wgap: float = 0.0,
                hgap: float = 0.0) -> None:
    """Place the subplots of `fig` with these margins and gaps between panels, all in inches."""
    width, height = fig.get_size_inches()
    ncols, nrows = 1, 1
    axes = [ax for ax in fig.axes if ax.get_subplotspec() is not None]
    if axes:
        nrows, ncols = axes[0].get_subplotspec().get_gridspec().get_geometry()
    lo, hi = left / width, 1 - right / width
    bo, to = bottom / height, 1 - top / height
    ax_w = max((width * (hi - lo) - (ncols - 1) * wgap) / ncols, 0.1)
    ax_h = max((height * (to - bo) - (nrows - 1) * hgap) / nrows, 0.1)
    fig.subplots_adjust(left=lo, right=hi, top=to, bottom=bo, wspace=wgap / ax_w, hspace=hgap / ax_h)
