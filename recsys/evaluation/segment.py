"""Segmentation criteria, K selection, cluster profiles/names and drift (pure numpy/pandas/scipy/sklearn).

`K_SELECTION` (criteria per K + the selection rule) is what a segmenter's `fit` is given to score and choose K;
`evaluate_segments` turns a fitted segmenter into the segment task's metrics, profile, names and drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from recsys.evaluation.metric_registry import names
from recsys.logging import get_logger
from recsys.random import RandomState

_log = get_logger(__name__)

Criterion = Literal["elbow", "silhouette", "davies_bouldin", "calinski_harabasz", "stability"]
CRITERIA: tuple[str, ...] = ("inertia", "silhouette", "davies_bouldin", "calinski_harabasz", "stability")
# criterion -> True when larger is better (inertia is judged by its elbow, not its optimum)
HIGHER_IS_BETTER = {"silhouette": True, "davies_bouldin": False, "calinski_harabasz": True, "stability": True}
# logged for the chosen K of a segment run (and for every K in its nested runs), and the drift metrics
CRITERIA_METRICS = list(names("segment", group="criteria"))  # inertia, silhouette, davies_bouldin, ... (registry)
DRIFT_METRICS = list(names("segment", group="drift"))


def cluster_criteria(X: np.ndarray, labels: np.ndarray, inertia: float, silhouette_sample: int,
                     random_state: RandomState) -> dict[str, float]:
    """Inertia, silhouette (on a seeded sample of `silhouette_sample` rows above that size), Davies-Bouldin,
    Calinski-Harabasz and the smallest cluster's share (size balance) of one clustering of X (n, d)."""
    n_labels = len(np.unique(labels))
    out = {"inertia": float(inertia), "min_cluster_share": float(np.bincount(labels).min() / len(labels))
           if n_labels else 0.0}
    if n_labels < 2:
        return {**out, "silhouette": float("nan"), "davies_bouldin": float("nan"),
                "calinski_harabasz": float("nan")}
    # imported on use: recsys.evaluation.plots (and so every task) imports this module's metric names
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    seed = random_state if isinstance(random_state, int) else None
    sample = silhouette_sample if len(X) > silhouette_sample else None
    out["silhouette"] = float(silhouette_score(X, labels, sample_size=sample, random_state=seed))
    out["davies_bouldin"] = float(davies_bouldin_score(X, labels))
    out["calinski_harabasz"] = float(calinski_harabasz_score(X, labels))
    return out


def elbow_k(ks: np.ndarray, inertia: np.ndarray) -> int | None:
    """K at the knee of the decreasing, convex inertia curve (Kneedle via `kneed`); None when there is none."""
    from kneed import KneeLocator

    if len(ks) < 3:
        return None
    knee = KneeLocator(np.asarray(ks, float), np.asarray(inertia, float), curve="convex",
                       direction="decreasing").knee
    return None if knee is None else int(round(knee))


def select_k(scores: pd.DataFrame, rule: str = "vote",
             criteria: tuple[str, ...] | list[str] = ("elbow", "silhouette", "davies_bouldin", "calinski_harabasz"),
             fixed_k: int | None = None) -> tuple[int, dict]:
    """Pick K from a per-K table (index K; columns inertia, silhouette, davies_bouldin, calinski_harabasz,
    stability). Returns (k, evidence) where evidence holds each criterion's choice and the votes.

    rule: "vote" (each of `criteria` nominates its best K; most votes wins; ties go to the best mean rank
    across the score criteria, then the smaller K), a single criterion name, or "fixed" (`fixed_k`).
    """
    ks = scores.index.to_numpy()
    nominees: dict[str, int | None] = {}
    for c in set(criteria) | ({rule} if rule not in ("vote", "fixed") else set()):
        nominees[c] = _best_k(scores, c)
    evidence: dict = {"rule": rule, "nominees": nominees}
    if rule == "fixed":
        if fixed_k is None or fixed_k not in ks:
            raise ValueError(f"selection 'fixed' needs k within the K range {ks.tolist()}, but got k={fixed_k}")
        return int(fixed_k), evidence
    if rule != "vote":
        k = nominees[rule]
        if k is None:  # no knee: fall back to the vote
            _log.warning("criterion %r found no K (no knee in the inertia curve); falling back to the vote", rule)
            return select_k(scores, "vote", criteria)
        return int(k), evidence
    votes = pd.Series(0, index=ks, dtype=np.int64)
    for c in criteria:
        if nominees.get(c) is not None:
            votes[nominees[c]] += 1
    ranks = _mean_rank(scores)
    top = votes[votes == votes.max()].index.to_numpy()
    k = int(min(top, key=lambda x: (ranks[x], x)))
    evidence.update(votes={int(x): int(v) for x, v in votes.items()},
                    mean_rank={int(x): float(r) for x, r in ranks.items()})
    return k, evidence


def _best_k(scores: pd.DataFrame, criterion: str) -> int | None:
    if criterion == "elbow":
        return elbow_k(scores.index.to_numpy(), scores["inertia"].to_numpy())
    if criterion not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown K-selection criterion {criterion!r}; allowed: elbow, {', '.join(HIGHER_IS_BETTER)}")
    col = scores[criterion]
    if col.isna().all():
        return None
    return int(col.idxmax() if HIGHER_IS_BETTER[criterion] else col.idxmin())


def _mean_rank(scores: pd.DataFrame) -> pd.Series:
    ranks = [scores[c].rank(ascending=not hi) for c, hi in HIGHER_IS_BETTER.items()
             if c in scores and scores[c].notna().any()]
    return pd.concat(ranks, axis=1).mean(axis=1) if ranks else pd.Series(0.0, index=scores.index)


# profiles and names ------------------------------------------------------------------------------------------
def cluster_profile(frame: pd.DataFrame, labels: np.ndarray, features: list[str], k: int) -> pd.DataFrame:
    """One row per cluster: size, share, conversion_rate, revenue_per_session and the mean of each feature
    (original units). `frame` needs the feature columns and may hold `converted` and `revenue`."""
    df = frame[features].copy()
    df["cluster"] = labels
    df["_converted"] = frame["converted"].astype(float).to_numpy() if "converted" in frame else np.nan
    df["_revenue"] = pd.to_numeric(frame["revenue"], errors="coerce").to_numpy() if "revenue" in frame else np.nan
    g = df.groupby("cluster")
    prof = pd.DataFrame(index=pd.RangeIndex(k, name="cluster"))
    prof["size"] = g.size().reindex(prof.index, fill_value=0)
    prof["share"] = prof["size"] / max(len(df), 1)
    prof["conversion_rate"] = g["_converted"].mean().reindex(prof.index)
    prof["revenue_per_session"] = g["_revenue"].mean().reindex(prof.index)
    means = g[features].mean().reindex(prof.index)
    prof = pd.concat([prof, means.add_prefix("mean_")], axis=1)
    return prof.reset_index()


ENGAGEMENT = ("pageviews", "time_on_site", "hits", "unique_pages", "product_views")
INTENT = ("cart_adds", "checkouts", "cart_rate", "page_value")


def name_clusters(profile: pd.DataFrame, overall: pd.DataFrame, features: list[str]) -> list[str]:
    """Human-readable, unique names from each cluster's profile against all sessions (`overall`: the feature frame
    the profile was computed on, with `converted`). Rules, first match wins: conversion >= 50% -> high-intent
    buyers; intent signals (cart/checkout/page value) well above average -> cart abandoners (warm prospects when
    they also convert well above average); one page per visit or a high bounce rate -> bouncers; engagement
    (page views, time, products) above average -> engaged researchers; below average -> quick browsers;
    otherwise casual browsers. Repeated names get the most distinctive feature appended."""
    mu = overall[features].mean()
    sd = overall[features].std().replace(0, 1.0)
    z = (profile[[f"mean_{f}" for f in features]].set_axis(features, axis=1) - mu) / sd
    base_conv = float(overall["converted"].mean()) if "converted" in overall else float("nan")
    names = []
    for i, row in profile.iterrows():
        zi = z.loc[i]
        engage = _mean_of(zi, ENGAGEMENT)
        intent = _mean_of(zi, INTENT)
        conv = row["conversion_rate"]
        one_page = "mean_pageviews" in row and row["mean_pageviews"] <= 1.5
        bouncy = "bounce_rate" in zi and zi["bounce_rate"] > 1.0
        if conv == conv and conv >= 0.5:
            name = "high-intent buyers"
        elif intent == intent and intent > 0.75:
            name = "warm prospects" if conv == conv and conv > max(2 * base_conv, 0.1) else "cart abandoners"
        elif one_page or bouncy:
            name = "bouncers"
        elif engage == engage and engage > 0.4:
            name = "engaged researchers"
        elif engage == engage and engage < -0.4:
            name = "quick browsers"
        else:
            name = "casual browsers"
        names.append(name)
    counts = pd.Series(names).value_counts()
    out = []
    for i, name in enumerate(names):
        if counts[name] > 1:
            f = z.loc[i].abs().idxmax()
            name = f"{name} ({'high' if z.loc[i, f] > 0 else 'low'} {f.replace('_', ' ')})"
        out.append(name)
    seen: dict[str, int] = {}
    for i, name in enumerate(out):  # still repeated: number them
        seen[name] = seen.get(name, 0) + 1
        if out.count(name) > 1:
            out[i] = f"{name} #{seen[name]}"
    return out


def _mean_of(z: pd.Series, cols: tuple[str, ...]) -> float:
    present = [c for c in cols if c in z.index]
    return float(z[present].mean()) if present else float("nan")


# drift --------------------------------------------------------------------------------------------------------
def population_stability_index(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    """PSI = sum (a - e) * ln(a / e) over bins of two count (or share) vectors; shares floored at `eps`.
    Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift."""
    e = _shares(expected, eps)
    a = _shares(actual, eps)
    return float(np.sum((a - e) * np.log(a / e)))


def js_divergence(expected: np.ndarray, actual: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two count vectors."""
    e = np.asarray(expected, float)
    a = np.asarray(actual, float)
    if e.sum() <= 0 or a.sum() <= 0:
        return float("nan")
    return float(jensenshannon(e / e.sum(), a / a.sum(), base=2) ** 2)


def _shares(counts: np.ndarray, eps: float) -> np.ndarray:
    c = np.asarray(counts, float)
    s = c / c.sum() if c.sum() > 0 else np.full(len(c), 1.0 / len(c))
    s = np.maximum(s, eps)
    return s / s.sum()


def cluster_mix_drift(reference: np.ndarray, current: np.ndarray, k: int) -> tuple[dict[str, float], pd.DataFrame]:
    """Drift of the cluster mix between two label arrays: ({psi, js_divergence}, per-cluster share table)."""
    ref = np.bincount(reference, minlength=k)
    cur = np.bincount(current, minlength=k)
    table = pd.DataFrame({"cluster": np.arange(k), "reference_share": ref / max(ref.sum(), 1),
                          "current_share": cur / max(cur.sum(), 1)})
    table["share_change"] = table["current_share"] - table["reference_share"]
    return {"psi": population_stability_index(ref, cur), "js_divergence": js_divergence(ref, cur)}, table


def feature_shift(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], bins: int = 10) -> pd.DataFrame:
    """Per feature: means, standardised mean difference (in reference SDs) and PSI over reference-quantile bins."""
    rows = []
    for f in features:
        r = reference[f].to_numpy(float)
        c = current[f].to_numpy(float)
        sd = r.std()
        edges = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1)[1:-1]))
        rc = np.bincount(np.searchsorted(edges, r, side="right"), minlength=len(edges) + 1)
        cc = np.bincount(np.searchsorted(edges, c, side="right"), minlength=len(edges) + 1)
        rows.append({"feature": f, "reference_mean": float(r.mean()), "current_mean": float(c.mean()),
                     "smd": float((c.mean() - r.mean()) / sd) if sd > 0 else 0.0,
                     "psi": population_stability_index(rc, cc)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class KSelection:
    """How a segmenter scores one K (`criteria`) and picks K from the per-K table (`select`)."""

    criteria: Callable[..., dict[str, float]]
    select: Callable[..., tuple[int, dict]]


K_SELECTION = KSelection(criteria=cluster_criteria, select=select_k)


@dataclass
class SegmentEvaluation:
    """What a segment run logs: metrics of the chosen K, ARI per K (synthetic truth), profile with names, and drift
    of the later period (labels, tables, details; `drift_warning` None when there is no later period)."""

    metrics: dict[str, float]
    ari_by_k: dict[int, float]
    profile: pd.DataFrame
    names: list[str]
    later_labels: np.ndarray
    drift_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    drift_info: dict[str, Any] = field(default_factory=dict)
    drift_warning: bool | None = None


def evaluate_segments(model: Any, reference: pd.DataFrame, later: pd.DataFrame, features: list[str],
                      psi_threshold: float, js_threshold: float | None = None) -> SegmentEvaluation:
    """Score a fitted segmenter (`k_`, `labels_`, `scores_`, `labels_by_k_`, `assign`) on its reference sessions
    and, when `later` has rows, the drift of the later period's cluster mix and features."""
    k = int(model.k_)
    labels = model.labels_
    scores: pd.DataFrame = model.scores_
    metrics = {m: float(scores.loc[k, m]) for m in CRITERIA_METRICS}
    metrics["n_clusters"] = float(k)
    ari_by_k: dict[int, float] = {}
    if "true_type" in reference:
        from sklearn.metrics import adjusted_rand_score

        truth = reference["true_type"].to_numpy()
        ari_by_k = {kk: float(adjusted_rand_score(truth, lab)) for kk, lab in model.labels_by_k_.items()}
        metrics["ari_vs_truth"] = ari_by_k[k]
    profile = cluster_profile(reference, labels, features, k)
    names = name_clusters(profile, reference, features)
    profile.insert(1, "name", names)
    out = SegmentEvaluation(metrics=metrics, ari_by_k=ari_by_k, profile=profile, names=names,
                            later_labels=np.empty(0, np.int64), drift_info={"enabled": bool(len(later))})
    if len(later):
        out.later_labels = model.assign(later)
        mix, mix_table = cluster_mix_drift(labels, out.later_labels, k)
        shift = feature_shift(reference, later, features)
        metrics["drift_psi"] = mix["psi"]
        metrics["drift_js_divergence"] = mix["js_divergence"]
        metrics["drift_max_abs_smd"] = float(shift["smd"].abs().max())
        metrics["drift_max_feature_psi"] = float(shift["psi"].max())
        warn = bool(mix["psi"] > psi_threshold or (js_threshold is not None and mix["js_divergence"] > js_threshold))
        out.drift_warning = warn
        mix_table.insert(1, "name", names)
        out.drift_tables = {"drift/cluster_mix.parquet": mix_table, "drift/feature_shift.parquet": shift}
        out.drift_info.update(mix, warning=warn, psi_threshold=psi_threshold, js_threshold=js_threshold,
                              n_later=len(later), cluster_mix=mix_table.to_dict("records"),
                              feature_shift=shift.to_dict("records"))
    return out
