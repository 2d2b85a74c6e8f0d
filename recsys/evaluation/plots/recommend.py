"""Plots of one recommender's evaluation: per-user diagnostics and user/item slices (PNG files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.evaluation.plots.layout import set_margins


def plot_recommend_diagnostics(per_user: pd.DataFrame, recommendations: pd.DataFrame, popularity: pd.Series,
                               metric: str, folder: Path) -> dict[str, Path]:
    """Per-user distribution of `metric`, and popularity of recommended items against the catalogue's.

    popularity: training users per item, indexed by item id. Returns artifact path -> local file.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullLocator

    # Figure objects outside pyplot (no global state); histograms as one step artist each, not one patch per
    # bin; plain tick labels on the log axis (mathtext labels are parsed per tick): a third of the drawing time;
    # no minor ticks on the log axis (unlabelled, 40 tick objects: 40% of that figure's drawing)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    if metric in per_user.columns and len(per_user):
        fig = Figure(figsize=(6, 3.5))
        ax = fig.add_subplot()
        values = per_user[metric].to_numpy()
        counts, edges = np.histogram(values, bins=30)
        ax.stairs(counts, edges, fill=True, color="#3b6ea5")
        ax.axvline(values.mean(), color="#c0392b", linestyle="--", label=f"mean {values.mean():.4g}")
        ax.set_xlabel(metric)
        ax.set_ylabel("users")
        ax.set_title(f"per-user {metric} ({(values == 0).mean():.0%} of users at 0)")
        ax.legend()
        set_margins(fig, left=0.75, right=0.2, top=0.35, bottom=0.55)
        out[f"plots/per_user_{metric}.png"] = folder / f"per_user_{metric}.png"
        fig.savefig(out[f"plots/per_user_{metric}.png"], dpi=90)
    if len(recommendations) and len(popularity):
        fig = Figure(figsize=(6, 3.5))
        ax = fig.add_subplot()
        bins = np.logspace(0, np.log10(max(2.0, float(popularity.max()) + 1)), 30)
        cat_pop = popularity.to_numpy() + 1
        rec_pop = popularity.reindex(recommendations["item_id"]).fillna(0).to_numpy() + 1
        for pop, label in ((cat_pop, "catalogue items"), (rec_pop, "recommendation slots")):
            share, _ = np.histogram(pop, bins=bins, weights=np.full(len(pop), 1 / len(pop)))
            ax.stairs(share, bins, fill=True, alpha=0.6, label=label)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("training users per item + 1")
        ax.set_ylabel("share")
        ax.set_title("popularity of recommended items")
        ax.legend()
        set_margins(fig, left=0.75, right=0.2, top=0.35, bottom=0.55)
        out["plots/recommended_popularity.png"] = folder / "recommended_popularity.png"
        fig.savefig(out["plots/recommended_popularity.png"], dpi=90)
    return out


def plot_slices(slices: pd.DataFrame, metric: str, folder: Path) -> dict[str, Path]:
    """Bars of `metric` per user slice (with the slice sizes) and recall by item popularity (head / tail)."""
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    users = slices[(slices["kind"] != "item_popularity") & (slices["users"] > 0)]
    items = slices[(slices["kind"] == "item_popularity") & (slices["users"] > 0)]
    recall = sorted(c for c in items.columns if c.startswith("recall_at") and items[c].notna().any())
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1.4]})
    if metric in users.columns and len(users):
        axes[0].bar(users["slice"].astype(str), users[metric].astype(float), color="#3b6ea5")
        for x, (v, n) in enumerate(zip(users[metric].astype(float), users["users"])):
            axes[0].text(x, v, f"{v:.4g}\nn={int(n)}", ha="center", va="bottom", fontsize=7)
        axes[0].set_ylabel(metric)
        axes[0].set_title(f"{metric} by training activity of the user", fontsize=9)
        axes[0].tick_params(axis="x", labelsize=7, rotation=20)
    if recall and len(items):
        col = recall[-1]
        axes[1].bar(items["slice"].astype(str), items[col].astype(float), color=["#c0392b", "#e0a526"][:len(items)])
        for x, v in enumerate(items[col].astype(float)):
            axes[1].text(x, v, f"{v:.4g}", ha="center", va="bottom", fontsize=7)
        axes[1].set_title(f"{col} by item popularity\n(head = top 20%)", fontsize=9)
    set_margins(fig, left=0.7, right=0.15, top=0.5, bottom=0.75, wgap=0.6)
    out = {"plots/slices.png": folder / "slices.png"}
    fig.savefig(out["plots/slices.png"], dpi=90)
    return out
