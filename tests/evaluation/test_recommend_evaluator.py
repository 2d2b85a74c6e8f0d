"""The recommend evaluator: unknown test users/items follow the config, relevant sets exclude training items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.tables import TrainData
from recsys.evaluation import build_target, evaluate_recommender
from recsys.models.catalog import create


def train_test():
    train = pd.DataFrame({"user_id": ["a", "a", "b", "b", "c"], "item_id": ["x", "y", "x", "z", "z"],
                          "timestamp": [1, 2, 3, 4, 5], "event": "view", "weight": 1.0})
    test = pd.DataFrame({"user_id": ["a", "a", "b", "new", "new"], "item_id": ["z", "x", "y", "x", "fresh"],
                         "timestamp": [6, 7, 8, 9, 10]})
    return TrainData.build(train), test


def test_unknown_users_dropped_or_served_by_fallback():
    data, test = train_test()
    dropped = build_target(data, test, unknown_users="drop")
    assert "new" not in set(dropped.user_ids)
    kept = build_target(data, test, unknown_users="fallback")
    assert "new" in set(kept.user_ids) and kept.info["users_fallback"] == 1
    model = create("popularity").fit(data)
    res = evaluate_recommender(model, data, kept, ks=[2])
    recs = res.recommendations[res.recommendations["user_id"] == "new"].sort_values("rank")
    # distinct training users: x 2 (a, b), z 2 (b, c), y 1; the tie x/z goes to the lower id
    assert recs["item_id"].tolist() == ["x", "z"]
    assert recs["score"].tolist() == [2.0, 2.0]


def test_relevant_items_exclude_training_items_and_unknown_items_follow_config():
    data, test = train_test()
    target = build_target(data, test, unknown_users="fallback", unknown_items="drop")
    rel = {u: set(data.items.id(target.relevant[i].indices)) for i, u in enumerate(target.user_ids)}
    assert rel["a"] == {"z"}  # 'x' was a training item of a
    assert rel["new"] == {"x"}  # 'fresh' is unknown to training and dropped
    keep = build_target(data, test, unknown_users="fallback", unknown_items="keep")
    n_rel = dict(zip(keep.user_ids, keep.n_relevant))
    assert n_rel["new"] == 2 and keep.info["relevant_unknown_item"] == 1  # counted, never hittable
    model = create("popularity").fit(data)
    res = evaluate_recommender(model, data, keep, ks=[3])
    per = res.per_user.set_index("user_id")
    # "new" gets the fallback x, z, y; of its 2 relevant items only x is known to training: 1 hit of 2
    assert per.loc["new", "recall_at_3"] == 0.5
    assert per.loc["new", "ndcg_at_3"] == pytest.approx(1.0 / (1.0 + 1.0 / np.log2(3)))
    assert np.isfinite(res.metrics["ndcg_at_3"])


def test_max_batch_mb_derives_the_batch_from_the_catalogue_and_changes_no_number():
    from recsys.evaluation.recommend import batch_rows

    # 12 bytes per user x item: 1 MiB over 1,000 items holds 1,048,576 // 12,000 = 87 users
    assert batch_rows(2048, 1000, 1.0) == 87
    assert batch_rows(50, 1000, 1.0) == 50  # never more than batch_size
    assert batch_rows(2048, 10**9, 1.0) == 1  # at least one user
    assert batch_rows(2048, 1000, None) == 2048
    data, test = train_test()
    target = build_target(data, test, unknown_users="fallback")
    model = create("item_knn", {"k_neighbors": 5}).fit(data)
    whole = evaluate_recommender(model, data, target, ks=[2])
    capped = evaluate_recommender(model, data, target, ks=[2], max_batch_mb=1e-5)  # one user per batch
    assert capped.metrics == whole.metrics
    pd.testing.assert_frame_equal(capped.recommendations, whole.recommendations)


def test_max_users_evaluates_a_seeded_sample_ranked_over_all_items(tiny_config):
    from recsys.tasks import get_task

    task = get_task("recommend")
    full = task.prepare(tiny_config())
    n = len(full.state["target"].user_ids)
    assert n > 60
    sampled = task.prepare(tiny_config(metrics={"k": [5, 10], "max_users": 60}))
    again = task.prepare(tiny_config(metrics={"k": [5, 10], "max_users": 60}))
    t = sampled.state["target"]
    assert len(t.user_ids) == 60 and t.relevant.shape[0] == 60 and len(t.n_relevant) == 60
    assert sampled.params["evaluation.users_sampled"] == 60 and sampled.params["evaluation.users_total"] == n
    assert "evaluation.users_sampled" not in full.params
    np.testing.assert_array_equal(t.user_ids, again.state["target"].user_ids)  # seeded
    assert set(t.user_ids) <= set(full.state["target"].user_ids)
    assert set(t.test_rows["user_id"]) == set(t.user_ids)
    # a sampled user keeps exactly the numbers the full evaluation gives them (full ranking, same relevant set)
    model = create("popularity").fit(full.state["data"])
    ks = [5, 10]
    whole = evaluate_recommender(model, full.state["data"], full.state["target"], ks).per_user.set_index("user_id")
    part = evaluate_recommender(model, sampled.state["data"], t, ks).per_user.set_index("user_id")
    pd.testing.assert_frame_equal(part, whole.loc[part.index])
