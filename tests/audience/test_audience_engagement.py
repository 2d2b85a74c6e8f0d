"""Engagement score of `activity` on a hand-computed example; `activity_affinity` is product-aware."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.data.tables import TrainData
from recsys.errors import ConfigError
from recsys.models.activity import Activity, ActivityAffinity, engagement_components, minmax
from recsys.models.base import Model

DAY = 86400


def rows(spec: list[tuple[str, str, int, str]]) -> pd.DataFrame:
    """(user, item, day, event) -> canonical interactions (one hour into the day)."""
    df = pd.DataFrame(spec, columns=["user_id", "item_id", "day", "event"])
    df["timestamp"] = (df.pop("day") * DAY + 3600).astype(np.int64)
    df["weight"] = 1.0
    return df


HAND = rows([
    ("a", "p1", 0, "view"), ("a", "p1", 0, "purchase"), ("a", "p2", 2, "cart"),
    ("b", "p3", 4, "search"),
    ("c", "p1", 1, "wishlist"), ("c", "p3", 1, "rating"),
])


def test_engagement_matches_hand_computation():
    model = Activity().fit(TrainData.build(HAND))
    got = dict(zip(model.users_.ids, model.engagement_))
    # raw components        a                      b      c
    # interactions          3                      1      2            -> 1, 0, 0.5
    # unique products       2                      1      2            -> 1, 0, 1
    # mean event score      (0.5+5+3)/3 = 17/6     1.0    (2+2.5)/2    -> 1, 0, (2.25-1)/(17/6-1)
    # interactions / day    3/2                    1/1    2/1          -> 0.5, 0, 1
    # recency (ref = day 4) exp(-2/90)             1      exp(-3/90)   -> (e2-e3)/(1-e3), 1, 0
    e2, e3 = math.exp(-2 / 90), math.exp(-3 / 90)
    expected = {
        "a": 0.35 * 1 + 0.25 * 1 + 0.20 * 1 + 0.15 * 0.5 + 0.05 * (e2 - e3) / (1 - e3),
        "b": 0.05 * 1,
        "c": 0.35 * 0.5 + 0.25 * 1 + 0.20 * (2.25 - 1) / (17 / 6 - 1) + 0.15 * 1 + 0.05 * 0,
    }
    for user, value in expected.items():
        assert got[user] == pytest.approx(value, rel=1e-12)


def test_weights_and_event_weights_are_configurable():
    only_events = Activity(weight_interactions=0, weight_unique_products=0, weight_event_score=1, weight_frequency=0,
                           weight_recency=0, event_weights={"search": 10.0}, unknown_event_weight=0.0)
    only_events.fit(TrainData.build(HAND))
    got = dict(zip(only_events.users_.ids, only_events.engagement_))
    assert got["b"] == pytest.approx(1.0) and got["a"] == pytest.approx(0.0) and got["c"] == pytest.approx(0.0)


def test_constant_component_normalises_to_zero_and_bad_weights_are_rejected():
    assert np.all(minmax(np.full(4, 3.0)) == 0)
    comps = engagement_components(np.array([0, 1]), np.array([0, 0]), np.array([0, 0]), np.array(["view", "view"]),
                                  2, {"view": 0.5})
    assert np.all(comps["event_score"] == 0.5) and np.all(comps["recency"] == 1.0)
    with pytest.raises(ValueError, match="weight_"):
        Activity(weight_interactions=0, weight_unique_products=0, weight_event_score=0, weight_frequency=0,
                 weight_recency=0)
    with pytest.raises(ValueError, match="greater than or equal"):
        Activity(weight_recency=-1)


def test_activity_ranks_engaged_users_first_and_excludes_buyers():
    model = Activity().fit(TrainData.build(HAND))
    p1 = model.items_.index(["p1"])
    users, _ = model.audience(p1, n=3)
    assert list(model.users_.id(users[0][users[0] >= 0])) == ["b"]  # a and c already interacted with p1
    users, _ = model.audience(p1, n=3, exclude_seen=False)
    assert list(model.users_.id(users[0])) == ["a", "c", "b"]


def test_affinity_reorders_by_category_and_falls_back_to_activity():
    df = rows([("heavy", f"b{i}", i, "purchase") for i in range(6)] + [("fan", "g0", 1, "view"),
              ("fan", "g1", 2, "view"), ("other", "b0", 3, "view")])
    items = pd.DataFrame({"item_id": ["b0", "b1", "b2", "b3", "b4", "b5", "g0", "g1", "g2", "x"],
                          "title": "t", "text": "", "category": ["books"] * 6 + ["garden"] * 3 + ["unknown"]})
    data = TrainData.build(df, items)
    plain = Activity().fit(data)
    aff = ActivityAffinity(smoothing=1.0).fit(data)
    g2, x = data.items.index(["g2", "x"])  # g2: garden, nobody bought it yet; x: unknown category, no history
    top_plain = plain.users_.id(plain.audience(np.array([g2]), 1)[0])[0, 0]
    top_aff = aff.users_.id(aff.audience(np.array([g2]), 1)[0])[0, 0]
    assert (top_plain, top_aff) == ("heavy", "fan")
    assert aff.audience_covers(np.array([g2, x])).tolist() == [True, False]
    assert plain.audience_covers(np.array([g2])).tolist() == [False]
    np.testing.assert_allclose(aff.affinity(np.array([x])), 1.0)


def test_save_load_round_trip(tmp_path):
    data = TrainData.build(HAND)
    for cls in (Activity, ActivityAffinity):
        model = cls().fit(data)
        loaded = Model.load(model.save(tmp_path / cls.name))
        assert type(loaded) is cls and loaded.params == model.params
        items = np.arange(data.n_items)
        for a, b in zip(model.audience(items, 3), loaded.audience(items, 3)):
            np.testing.assert_array_equal(a, b)


def test_unknown_task_param_is_a_config_error_naming_the_key():
    from recsys.experiment import experiment_config_from_dict

    raw = {"name": "x", "task": "audience", "models": [{"name": "activity"}], "metrics": {"k": [10],
           "primary": "precision_at_10"}, "task_params": {"exclude_interactd": False}}
    with pytest.raises(ConfigError, match="task_params.exclude_interactd.*exclude_interacted"):
        experiment_config_from_dict(raw)
    raw["task_params"] = {}
    raw["metrics"]["primary"] = "ndcg_at_100"
    with pytest.raises(ConfigError, match="metrics.primary.*ndcg_at_10"):
        experiment_config_from_dict(raw)
