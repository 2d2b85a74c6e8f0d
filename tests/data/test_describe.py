"""`describe` + `feasibility`: the numbers and the verdict "is collaborative filtering feasible here?" on data
small enough to count by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.data.split import Split
from recsys.data.stats import describe, describe_text, feasibility

DAY = 86_400
T0 = 1_577_836_800  # 2020-01-01T00:00:00Z

# (user, item, day). Before the cutoff (day 10): u1 once, u2 twice, u3 three times, u4 once, u6 once.
# After: u2 (returns, new item i3), u4 (returns), u5 (new user, new item i5).
ROWS = [("u1", "i1", 1), ("u2", "i1", 2), ("u2", "i2", 3), ("u3", "i2", 1), ("u3", "i3", 2), ("u3", "i1", 3),
        ("u4", "i1", 4), ("u6", "i2", 5), ("u2", "i3", 11), ("u4", "i2", 12), ("u5", "i5", 13)]


def hand_split() -> tuple[pd.DataFrame, Split]:
    df = pd.DataFrame(ROWS, columns=["user_id", "item_id", "day"])
    df["timestamp"] = T0 + df.pop("day") * DAY
    df["event"], df["weight"] = "interaction", 1.0
    train, test = df[df["timestamp"] < T0 + 10 * DAY], df[df["timestamp"] >= T0 + 10 * DAY]
    return df, Split(train=train, test=test, method="temporal", audit={"leak_share": 0.0})


def test_describe_counts_by_hand():
    df, split = hand_split()
    stats = describe(df, split)
    assert (stats["users"], stats["items"], stats["interactions"]) == (6, 4, 11)
    assert stats["density"] == pytest.approx(11 / 24)
    # totals per user: u1 1, u2 3, u3 3, u4 2, u5 1, u6 1 -> three of six have one interaction
    assert stats["one_time_user_share"] == pytest.approx(3 / 6)
    assert stats["interactions_per_user"]["mean"] == pytest.approx(11 / 6)
    s = stats["split"]
    assert (s["train_interactions"], s["test_interactions"]) == (8, 3)
    assert s["retention_train_to_test"] == pytest.approx(2 / 5)  # u2, u4 of u1 u2 u3 u4 u6
    assert s["test_users_seen_in_train"] == pytest.approx(2 / 3)  # u2, u4 of u2 u4 u5
    assert s["test_items_unseen_in_train"] == pytest.approx(1 / 3)  # i5 of i3 i2 i5


def test_verdict_and_its_thresholds_on_the_hand_data():
    df, split = hand_split()
    v = feasibility(describe(df, split))
    assert v["verdict"] == "feasible with caveats" and v["feasible"] is True
    assert v["numbers"] == pytest.approx({"one_time_user_share": 0.5, "retention_train_to_test": 0.4,
                                          "cold_user_share": 1 / 3, "cold_item_share": 1 / 3})
    # caveats first (one-time 50% > 40%, cold users 33.33% > 25%, cold items 33.33% > 25%), the fine one last
    assert [r.split(":")[0] for r in v["reasons"]] == ["one-time users", "cold users", "cold items", "retention"]
    assert "50% of users" in v["reasons"][0] and "caveat above 40%" in v["reasons"][0]
    assert "33.33% of test users" in v["reasons"][1] and "not feasible above 50%" in v["reasons"][1]
    assert "40% of training users" in v["reasons"][3] and "caveat below 5%" in v["reasons"][3]


@pytest.mark.parametrize("one_time, retention, cold, verdict", [
    (0.9, 0.5, 0.0, "not feasible"),  # 90% one-time > 80%
    (0.8, 0.5, 0.0, "feasible with caveats"),  # exactly 80% is not above it
    (0.4, 0.05, 0.25, "feasible"),  # every number exactly at its caveat threshold, on the good side
    (0.1, 0.009, 0.0, "not feasible"),  # retention below 1%
    (0.1, 0.3, 0.6, "not feasible"),  # 60% of test users are cold
    (0.1, 0.049, 0.0, "feasible with caveats"),
])
def test_verdict_thresholds(one_time, retention, cold, verdict):
    stats = {"one_time_user_share": one_time,
             "split": {"retention_train_to_test": retention, "test_users_seen_in_train": 1.0 - cold}}
    v = feasibility(stats)
    assert v["verdict"] == verdict and v["feasible"] is (verdict != "not feasible")
    assert "cold_item_share" not in v["numbers"]  # missing statistics are skipped, not guessed


def test_text_summary_has_the_verdict_and_four_significant_digits():
    df, split = hand_split()
    stats = describe(df, split)
    text = describe_text(stats)
    first = text.splitlines()[0]
    assert first == "is collaborative filtering feasible here? FEASIBLE WITH CAVEATS"
    assert "density 0.4583" in text and "0.45833" not in text  # 11/24, four significant digits
    assert "mean 1.833" in text and "test_users_seen_in_train: 0.6667" in text
    assert "8 train / 3 test interactions" in text
