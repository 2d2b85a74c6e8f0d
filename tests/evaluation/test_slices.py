"""Slices of per-user metrics: user activity buckets and fallback users partition the evaluated users,
so their size-weighted means give back the overall mean; recall by item popularity against a hand loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.config import config_from_dict
from recsys.data import TrainData, load_dataset, split_interactions
from recsys.evaluation.recommend import build_target, evaluate_recommender
from recsys.evaluation.slices import activity_slice, head_items, popularity_recall, slice_metrics
from recsys.models.catalog import create
from recsys.tasks.recommend import recommend_slices


@pytest.fixture(scope="module", params=["temporal", "random"])
def evaluated(request):
    cfg = config_from_dict({"name": "s", "seed": 3, "models": [{"name": "popularity"}],
                            "data": {"synthetic": {"n_users": 500, "n_items": 120, "n_categories": 4,
                                                   "one_time_share": 0.3}},
                            "split": {"method": request.param, "unknown_users": "fallback",
                                      "unknown_items": "keep"}})
    ds = load_dataset(cfg.data, cfg.seed)
    split = split_interactions(ds.interactions, cfg.split, cfg.seed)
    data = TrainData.build(split.train, ds.items)
    target = build_target(data, split.test, "fallback", "keep")
    model = create("item_knn", {"k_neighbors": 20}).fit(data)
    res = evaluate_recommender(model, data, target, [5, 10])
    return data, target, split, res


def test_activity_buckets_at_their_boundaries():
    n = np.array([0, 1, 2, 5, 6, 20, 21, 100, 101, 5000])
    assert list(activity_slice(n)) == ["fallback", "activity_1", "activity_2-5", "activity_2-5", "activity_6-20",
                                       "activity_6-20", "activity_21-100", "activity_21-100", "activity_gt100",
                                       "activity_gt100"]


def test_head_is_the_top_fifth_by_training_popularity_ties_to_the_lower_index():
    pop = np.array([5, 9, 9, 1, 0, 3, 7, 2, 2, 4])  # 10 items: head = 2 items
    assert np.flatnonzero(head_items(pop)).tolist() == [1, 2]
    assert np.flatnonzero(head_items(np.ones(7))).tolist() == [0, 1]  # ceil(0.2 * 7) = 2, lowest indices


def test_size_weighted_slice_means_equal_the_overall_mean(evaluated):
    data, target, split, res = evaluated
    table = recommend_slices(res.per_user, res.ranked, data, target, split, [5, 10])
    users = table[table["kind"] != "item_popularity"]
    assert users["users"].sum() == len(res.per_user)
    assert "fallback" in set(users["slice"]) and users["slice"].nunique() >= 4
    for metric in [c for c in res.per_user.columns if c != "user_id"]:
        weighted = float((users["users"] * users[metric]).sum() / users["users"].sum())
        assert weighted == pytest.approx(res.metrics[metric], abs=1e-12), metric
    # each user's slice is its number of training interactions
    counts = split.train.groupby("user_id").size()
    fb = target.user_idx < 0
    expect = activity_slice(counts.reindex(target.user_ids).fillna(0).to_numpy().astype(int))
    assert (expect[fb] == "fallback").all()
    got = table.set_index("slice")["users"]
    for name in set(expect):
        assert got[name] == (expect == name).sum()


def test_recall_by_item_popularity_matches_a_hand_loop(evaluated):
    data, target, split, res = evaluated
    head = head_items(data.item_popularity())
    table = popularity_recall(res.ranked, target.relevant, target.n_relevant, head, [5, 10])
    # the evaluation's own hits matrix (what the task passes) gives the same table
    pd.testing.assert_frame_equal(popularity_recall(res.ranked, target.relevant, target.n_relevant, head, [5, 10],
                                                    hits=res.hits), table)
    rel = target.relevant.tocsr()
    for part in ("head", "tail"):
        for k in (5, 10):
            per_user = []
            for u in range(len(target.user_ids)):
                items = set(rel.indices[rel.indptr[u]:rel.indptr[u + 1]])
                n_unknown = int(target.n_relevant[u]) - len(items)  # relevant items unknown to training: tail
                mine = {i for i in items if head[i] == (part == "head")}
                denominator = len(mine) + (n_unknown if part == "tail" else 0)
                if denominator == 0:
                    continue
                top = [i for i in res.ranked[u, :k] if i >= 0]
                per_user.append(sum(i in mine for i in top) / denominator)
            row = table[table["slice"] == part].iloc[0]
            assert row["users"] == len(per_user)
            assert row[f"recall_at_{k}"] == pytest.approx(np.mean(per_user), abs=1e-12)


def test_slice_metric_names_are_grouped_and_skip_empty_slices():
    table = pd.DataFrame({"slice": ["activity_1", "fallback"], "kind": ["activity", "fallback"], "users": [3, 0],
                          "ndcg_at_10": [0.5, np.nan]})
    assert slice_metrics(table) == {"slice/activity_1/users": 3.0, "slice/activity_1/ndcg_at_10": 0.5}


def test_user_slice_labels_count_training_rows_per_user_like_a_hand_loop():
    """Rows (not distinct items) per user, duplicates and repeat events included; ids of users the model does
    not know (cold test users) are the fallback; integer and string ids alike."""
    from recsys.tasks.recommend import user_slice_labels

    rng = np.random.default_rng(4)
    for as_text in (False, True):
        users = rng.integers(0, 60, 900)
        train = pd.DataFrame({"user_id": users, "item_id": rng.integers(0, 40, 900),
                              "timestamp": pd.date_range("2024-01-01", periods=900, freq="h"), "weight": 1.0})
        train = pd.concat([train, train.iloc[:50]], ignore_index=True)  # repeated rows count again
        if as_text:
            train["user_id"] = "u" + train["user_id"].astype(str)
        data = TrainData.build(train, None)
        test_ids = pd.unique(np.concatenate([train["user_id"].to_numpy()[:200:3],
                                             np.array(["cold-1", "cold-2"] if as_text else [1000, 1001])]))
        test = pd.DataFrame({"user_id": test_ids, "item_id": train["item_id"].iloc[0],
                             "timestamp": pd.Timestamp("2025-01-01"), "weight": 1.0})
        target = build_target(data, test, "fallback", "keep")
        hand: dict = {}
        for uid in train["user_id"].tolist():
            hand[uid] = hand.get(uid, 0) + 1
        expect = activity_slice(np.array([hand.get(u, 0) if idx >= 0 else 0
                                          for u, idx in zip(target.user_ids, target.user_idx)]))
        split = type("S", (), {"train": train})()
        got = user_slice_labels(data, target, split)
        assert got.tolist() == expect.tolist()
        assert "fallback" in set(got.tolist()) and len(set(got.tolist())) >= 3


def test_slice_labels_are_computed_once_per_data_target_and_split(evaluated, monkeypatch):
    import dataclasses

    from recsys.evaluation.recommend import sample_target
    from recsys.tasks import recommend as task_module

    data, target, split, _ = evaluated
    state = task_module.RecommendState(split=split, data=data, target=target, items=None)
    calls = []
    real = task_module.user_slice_labels
    monkeypatch.setattr(task_module, "user_slice_labels", lambda *a: calls.append(a) or real(*a))
    first = state.slice_labels()
    assert state.slice_labels() is first and len(calls) == 1  # every model after the first: no recomputation
    state.target = sample_target(target, 50, seed=1)  # a new target: new labels, for its users
    again = state.slice_labels()
    assert len(calls) == 2 and len(again) == len(state.target.user_ids)
    assert again.tolist() == real(data, state.target, split).tolist()
    copy = dataclasses.replace(state, target=target)  # a copy does not carry the cache over
    assert copy.slice_labels().tolist() == first.tolist() and len(calls) == 3
