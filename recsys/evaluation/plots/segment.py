"""Plots of a segmentation run: each K-selection criterion against K, the chosen K marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.evaluation.segment import CRITERIA_METRICS


def plot_criteria(scores: pd.DataFrame, chosen_k: int, folder: Path, ari_by_k: dict[int, float]) -> dict[str, Path]:
    """One PNG per criterion vs K (chosen K marked) plus an overview; returns artifact path -> file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    series = {c: scores[c] for c in CRITERIA_METRICS if c in scores and scores[c].notna().any()}
    if ari_by_k:
        series["ari_vs_truth"] = pd.Series(ari_by_k).sort_index()
    out: dict[str, Path] = {}
    fig_all, axes = plt.subplots(1, len(series), figsize=(3.2 * len(series), 3))
    for ax_all, (name, s) in zip(np.atleast_1d(axes), series.items()):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for a in (ax, ax_all):
            a.plot(s.index, s.to_numpy(), marker="o")
            a.axvline(chosen_k, color="tab:red", linestyle="--", label=f"chosen K={chosen_k}")
            a.set_xlabel("K")
            a.set_title(name.replace("_", " "))
        ax.legend()
        fig.tight_layout()
        path = folder / f"{name}_vs_k.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        out[f"plots/{path.name}"] = path
    fig_all.tight_layout()
    fig_all.savefig(folder / "criteria_vs_k.png", dpi=80)
    plt.close(fig_all)
    out["plots/criteria_vs_k.png"] = folder / "criteria_vs_k.png"
    return out
