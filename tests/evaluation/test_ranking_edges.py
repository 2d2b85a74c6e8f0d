"""The pieces under full-ranking evaluation, on a six-row table whose answers are counted by hand:
popularity by summed weight, seen-item exclusion on and off, k and user-index errors, a fallback longer than
the catalog, and the recommendation table of an evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.tables import TrainData
from recsys.evaluation import build_target, evaluate_recommender
from recsys.models.catalog import create

# users u1..u3; items a..d. Distinct users: a 2, b 2, c 1, d 1. Summed weights: a 2, b 7, c 4, d 0.5.
TRAIN = pd.DataFrame({"user_id": ["u1", "u2", "u1", "u3", "u3", "u2"],
                      "item_id": ["a", "a", "b", "b", "c", "d"],
                      "timestamp": range(6), "event": "view", "weight": [1.0, 1.0, 2.0, 5.0, 4.0, 0.5]})


@pytest.fixture(scope="module")
def data() -> TrainData:
    return TrainData.build(TRAIN)


def ids(data: TrainData, idx: np.ndarray) -> list[str]:
    return [str(x) for x in data.items.id(idx)]


def test_popularity_by_weight_ranks_by_summed_weight(data):
    model = create("popularity", {"measure": "weight"}).fit(data)
    items, scores = model.recommend(data.users.index(["u2"]), 4, exclude_seen=False)
    assert ids(data, items[0]) == ["b", "c", "a", "d"]
    assert scores[0].tolist() == [7.0, 4.0, 2.0, 0.5]
    by_users = create("popularity").fit(data)
    items, scores = by_users.recommend(data.users.index(["u3"]), 4, exclude_seen=False)
    assert ids(data, items[0]) == ["a", "b", "c", "d"]  # 2, 2, 1, 1: ties by item id
    assert scores[0].tolist() == [2.0, 2.0, 1.0, 1.0]


def test_seen_items_are_excluded_only_when_asked(data):
    model = create("popularity").fit(data)
    u1 = data.users.index(["u1"])
    items, scores = model.recommend(u1, 4)  # u1 had a and b: two items left, then padding
    assert ids(data, items[0][:2]) == ["c", "d"] and items[0][2:].tolist() == [-1, -1]
    assert scores[0][2:].tolist() == [-np.inf, -np.inf]
    items, _ = model.recommend(u1, 2, exclude_seen=False)
    assert ids(data, items[0]) == ["a", "b"]


def test_bad_k_and_bad_user_index_name_the_rule(data):
    model = create("popularity").fit(data)
    with pytest.raises(ValueError, match=r"^k must be > 0, but got k=0$"):
        model.recommend(np.array([0]), 0)
    with pytest.raises(IndexError, match=r"user indices must be in \[0, 3\), got 0\.\.3"):
        model.recommend(np.array([0, 3]), 2)
    with pytest.raises(IndexError, match=r"user indices must be in \[0, 3\), got -1\.\.1"):
        model.score(np.array([-1, 1]))


def test_fallback_longer_than_the_catalog_and_the_evaluation_table(data):
    model = create("popularity").fit(data)
    idx, val = model.fallback(2, 10)  # only 4 items: the list stops there
    assert idx.shape == (2, 4) and [ids(data, r) for r in idx] == [["a", "b", "c", "d"]] * 2
    assert val.tolist() == [[2.0, 2.0, 1.0, 1.0]] * 2
    test = pd.DataFrame({"user_id": ["u1", "cold"], "item_id": ["c", "b"], "timestamp": [10, 11]})
    target = build_target(data, test, unknown_users="fallback")
    res = evaluate_recommender(model, data, target, [1, 3], batch_size=1)
    recs = res.recommendations
    assert recs.columns.tolist() == ["user_id", "item_id", "rank", "score"]
    cold = recs[recs["user_id"] == "cold"].sort_values("rank")
    assert cold["item_id"].tolist() == ["a", "b", "c"] and cold["rank"].tolist() == [1, 2, 3]
    assert cold["score"].tolist() == [2.0, 2.0, 1.0]
    u1 = recs[recs["user_id"] == "u1"].sort_values("rank")
    assert u1["item_id"].tolist() == ["c", "d"]  # the padding (-1) is not a recommendation
    # u1: c at rank 1 -> hit; cold: b at rank 2 -> precision@1 0, recall@3 1
    per = res.per_user.set_index("user_id")
    assert per.loc["u1", "precision_at_1"] == 1.0 and per.loc["cold", "precision_at_1"] == 0.0
    assert per.loc["cold", "recall_at_3"] == 1.0
    assert res.metrics["precision_at_1"] == 0.5
    assert res.ranked.shape == (2, 3)
