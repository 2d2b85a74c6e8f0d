"""Cluster profiles (size, share, conversion, revenue, feature means) and generated human-readable names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation.segment import cluster_profile, name_clusters

FEATURES = ["pageviews", "time_on_site", "cart_adds"]


@pytest.fixture
def frame(rng) -> tuple[pd.DataFrame, np.ndarray]:
    # cluster 0: one-page visits; 1: long visits; 2: carts that convert; 3: carts that do not; 4: middling
    spec = [(1, 0, 0, 0.0, 300), (20, 1500, 0, 0.01, 200), (10, 400, 2, 0.9, 100), (9, 350, 2, 0.0, 150),
            (5, 120, 0, 0.02, 250)]
    parts, labels = [], []
    for c, (pv, t, cart, conv, n) in enumerate(spec):
        converted = rng.random(n) < conv
        pages = rng.poisson(pv, n) + 1.0 if pv > 1 else np.ones(n)
        parts.append(pd.DataFrame({"pageviews": pages,
                                   "time_on_site": rng.normal(t, 10, n).clip(0), "cart_adds": np.full(n, cart),
                                   "converted": converted, "revenue": np.where(converted, 50.0, 0.0)}))
        labels.append(np.full(n, c))
    return pd.concat(parts, ignore_index=True), np.concatenate(labels)


def test_profile_sizes_shares_conversion_and_means(frame):
    df, labels = frame
    prof = cluster_profile(df, labels, FEATURES, 5)
    assert prof["size"].tolist() == np.bincount(labels).tolist()
    assert prof["share"].sum() == pytest.approx(1)
    for c in range(5):
        part = df[labels == c]
        assert prof.loc[c, "conversion_rate"] == pytest.approx(part["converted"].mean())
        assert prof.loc[c, "revenue_per_session"] == pytest.approx(part["revenue"].mean())
        assert prof.loc[c, "mean_time_on_site"] == pytest.approx(part["time_on_site"].mean())


def test_names_follow_the_profile(frame):
    df, labels = frame
    prof = cluster_profile(df, labels, FEATURES, 5)
    names = name_clusters(prof, df, FEATURES)
    assert names[0] == "bouncers"
    assert names[1] == "engaged researchers"
    assert names[2] == "high-intent buyers"
    assert names[3] == "cart abandoners"
    # cluster 4 by hand: mean z-score of page views and time on site against all sessions, below -0.4
    assert _engagement_z(df, labels, 4) < -0.4
    assert names[4] == "quick browsers"
    assert len(set(names)) == 5


def _engagement_z(df: pd.DataFrame, labels: np.ndarray, c: int) -> float:
    part = df[labels == c]
    return float(np.mean([(part[f].mean() - df[f].mean()) / df[f].std() for f in ("pageviews", "time_on_site")]))


def test_average_engagement_is_casual_browsing(frame):
    df, labels = frame
    df = df.copy()
    others = labels != 4
    for f in ("pageviews", "time_on_site"):  # cluster 4 at the others' mean: the overall mean, so z = 0
        df.loc[~others, f] = df.loc[others, f].mean()
    assert abs(_engagement_z(df, labels, 4)) < 1e-9
    names = name_clusters(cluster_profile(df, labels, FEATURES, 5), df, FEATURES)
    assert names[4] == "casual browsers"


def test_repeated_names_are_made_unique(frame):
    df, labels = frame
    labels = np.where(labels == 1, 0, labels)  # fold the long visits into cluster 0 ...
    labels[:150] = 1  # ... and split the one-page visits in two
    prof = cluster_profile(df, labels, FEATURES, 5)
    names = name_clusters(prof, df, FEATURES)
    assert len(set(names)) == len(names)
