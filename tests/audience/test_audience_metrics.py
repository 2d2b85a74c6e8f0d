"""Audience metrics: exact random expectation, lift of `random` against its analytic value, concentration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recsys.config.schema import SplitConfig, SyntheticConfig
from recsys.data.split import split_interactions
from recsys.data.synthetic import generate
from recsys.data.tables import TrainData
from recsys.evaluation.audience import (
    audience_metrics,
    build_audience_target,
    expected_random_precision,
    lift,
    top_share,
)
from recsys.models.baselines import RandomRecommender


@pytest.mark.parametrize("pool,pos,n", [(6, 2, 3), (5, 5, 2), (4, 1, 6), (7, 0, 3)])
def test_expected_precision_equals_enumeration_of_all_audiences(pool, pos, n):
    positives = set(range(pos))
    draws = min(n, pool)
    precisions = [len(positives & set(c)) / n for c in itertools.combinations(range(pool), draws)]
    assert expected_random_precision(np.array([pos]), np.array([pool]), n)[0] == pytest.approx(np.mean(precisions))


def test_random_lift_matches_analytic_value_within_sampling_error():
    cfg = SyntheticConfig(n_users=6000, n_items=300, n_categories=10, one_time_share=0.5, mean_interactions=20)
    raw, items, _ = generate(cfg, random_state=3)
    raw["weight"] = 1.0
    split = split_interactions(raw, SplitConfig(method="temporal", test_size=0.3), 0)
    data = TrainData.build(split.train, items)
    target = build_audience_target(data, split.test, exclude_interacted=True)
    assert len(target.item_idx) > 100
    n = 400
    model = RandomRecommender(random_state=11).fit(data)
    ranked, _ = model.audience(target.item_idx, n)
    metrics, per = audience_metrics(ranked, target, [n], np.ones(len(ranked), bool), data.n_users)
    hits = per[f"precision_at_{n}"].to_numpy() * n
    # hypergeometric mean and variance of hits per product: draws d from pool M holding K positives
    M, K = target.pool_size.astype(float), target.n_relevant.astype(float)
    d = np.minimum(n, M)
    mean = d * K / M
    var = d * K / M * (M - K) / M * (M - d) / np.maximum(M - 1, 1)
    assert mean.sum() > 200  # enough expected hits for the check to mean something
    z = (hits.sum() - mean.sum()) / np.sqrt(var.sum())
    assert abs(z) < 4, f"random hits {hits.sum()} vs analytic {mean.sum():.1f} (z={z:.2f})"
    assert metrics[f"lift_at_{n}"] == pytest.approx(1.0, abs=4 * np.sqrt(var.sum()) / mean.sum())
    assert metrics[f"lift_at_{n}"] == pytest.approx(hits.sum() / mean.sum())


def test_lift_is_ratio_of_means_and_nan_without_expectation():
    assert lift(np.array([0.2, 0.0]), np.array([0.05, 0.05])) == pytest.approx(2.0)
    assert np.isnan(lift(np.array([0.0]), np.array([0.0])))


def test_concentration_share():
    same = np.tile(np.arange(10), (50, 1))  # every product targets the same 10 users
    assert top_share(same, n_users=1000, share=0.01) == pytest.approx(1.0)
    spread = np.arange(500).reshape(50, 10)  # every slot a different user
    assert top_share(spread, n_users=1000, share=0.01) == pytest.approx(10 / 500)
    assert top_share(np.full((2, 3), -1), n_users=10) == 0.0
