"""One metric registry: a new metric is one registration, and the evaluator, the metric lists, tuning's direction,
the chart highlight, the champion re-evaluation filter and the docs all follow it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.evaluation import metric_registry as R
from recsys.evaluation.plots.comparison import highlighted
from recsys.evaluation.recommend import build_target, evaluate_recommender, metric_names
from recsys.models.catalog import create
from recsys.testing import checkerboard
from recsys.tuning.storage import default_direction

REPO_DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def _first_hit_rank(ctx: R.RankingContext, k: int) -> np.ndarray:
    """Rank (1-based) of the first relevant item within the top k; k + 1 when there is none."""
    hits = ctx.hits[:, :k]
    return np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, k + 1).astype(np.float64)


@pytest.fixture
def first_hit_rank():
    """The whole of adding a metric: this one registration (removed again after the test)."""
    R.register(R.Metric("first_hit_rank", "minimize", ("recommend",), "rank of the first relevant item",
                        per_user=_first_hit_rank))
    yield
    R.unregister("first_hit_rank")


def test_a_registered_metric_is_computed_listed_and_directed(first_hit_rank):
    # hand-made lists: user 0 finds its item at rank 2, user 1 never (K + 1 = 4), user 2 at rank 1
    ranked = np.array([[2, 0, 1], [1, 2, 3], [3, 0, 1]])
    relevant = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0]], dtype=np.float32))
    ctx = R.RankingContext(ranked=ranked, hits=R.M.hits_matrix(ranked, relevant), n_relevant=np.array([1, 1, 1]),
                           ks=[1, 3], popularity=np.ones(5), n_users=3, n_items=5)
    per, lists = R.compute_recommend(ctx)
    np.testing.assert_array_equal(per["first_hit_rank_at_3"], [2.0, 4.0, 1.0])
    np.testing.assert_array_equal(per["first_hit_rank_at_1"], [2.0, 2.0, 1.0])
    assert "diversity_at_3" not in per  # needs categories, which this context lacks
    assert lists["catalog_coverage_at_3"] == pytest.approx(4 / 5)  # items 0..3 appear
    assert "first_hit_rank_at_10" in metric_names([5, 10])  # the task's metric list (what metrics.primary may name)
    assert default_direction("first_hit_rank_at_10") == "minimize"  # tuning
    bars = highlighted(pd.Index(["a", "b"]), np.array([3.0, 2.0]), "first_hit_rank_at_10")
    assert bars.tolist() == [False, True]  # the chart highlights the lowest value
    assert "| first_hit_rank | `first_hit_rank_at_<k>` | recommend | lower |" in R.markdown()  # docs


def test_the_recommend_evaluator_computes_a_registered_metric(first_hit_rank):
    data, test = checkerboard(n_users=12, n_items=12, n_groups=2, held_out=1)
    model = create("popularity").fit(data)
    res = evaluate_recommender(model, data, build_target(data, test), [5])
    ranks = res.per_user["first_hit_rank_at_5"].to_numpy()
    # oracle: position of the held-out item in each user's list, from the lists themselves
    for u, user in enumerate(res.per_user["user_id"]):
        recs = res.recommendations[res.recommendations["user_id"] == user].sort_values("rank")
        held = set(test.loc[test["user_id"] == user, "item_id"])
        pos = [r for r, item in zip(recs["rank"], recs["item_id"]) if item in held]
        assert ranks[u] == (pos[0] if pos else 6)
    assert res.metrics["first_hit_rank_at_5"] == pytest.approx(ranks.mean())


def test_registry_directions_and_needs():
    assert R.direction("ndcg_at_10") == "maximize" and R.direction("popularity_bias_at_20") == "minimize"
    assert R.direction("top1pct_share_at_20") == "minimize"  # a key matched by pattern
    assert R.direction("fit_seconds") == "minimize" and R.direction("some_count") == "maximize"  # unregistered
    assert R.needs("diversity_at_10", "categories") and not R.needs("ndcg_at_10", "categories")
    with pytest.raises(ValueError, match="already registered"):
        R.register(R.Metric("ndcg", "maximize", ("recommend",), "again"))
    with pytest.raises(ValueError, match="direction must be"):
        R.Metric("x", "up", ("recommend",), "bad")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs"):
        R.Metric("x", "maximize", ("recommend",), "bad", needs=frozenset({"prices"}))


def test_docs_metrics_page_is_generated_from_the_registry():
    assert REPO_DOCS.read_text() == R.markdown(), "regenerate it: recsys metrics > docs/metrics.md"
