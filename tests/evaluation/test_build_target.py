"""`build_target` on a table small enough to count by hand: which test rows are evaluated, with the defaults
(unknown users and unknown items dropped) and each option, and the counts it reports."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.data.tables import TrainData
from recsys.evaluation import build_target

# training: item i0 is trained by u1 and u2, i1 by u1; i2 is in the catalogue (items table) but nobody had it
TRAIN = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["i0", "i1", "i0"], "timestamp": [1, 2, 3],
                      "event": "view", "weight": 1.0})
ITEMS = pd.DataFrame({"item_id": ["i0", "i1", "i2"]})
TEST = pd.DataFrame({
    "user_id": ["u1", "u1", "u1", "u2", "u2", "u2", "cold", "u2"],
    "item_id": ["i0", "i1", "i2", "i1", "new", "i1", "i1", "i0"],  # u1: i0, i1 seen; u2: i1 twice, i0 seen
    "timestamp": [10, 11, 12, 13, 14, 15, 16, 17]}, index=[7, 3, 5, 1, 0, 2, 6, 4])


def _rows(target) -> list[tuple[str, str, int]]:
    return list(target.test_rows.itertuples(index=False, name=None))


@pytest.fixture(scope="module")
def data() -> TrainData:
    return TrainData.build(TRAIN, ITEMS)


def test_defaults_drop_unknown_users_and_items_and_the_seen_pairs(data):
    target = build_target(data, TEST)
    # kept by hand: u2-i1 once (the first, ts 13); u1-i2 is untrained, u2-new unknown, cold unknown; seen dropped
    assert _rows(target) == [("u2", "i1", 13)]
    assert list(target.test_rows.columns) == ["user_id", "item_id", "timestamp"]
    assert target.info == {"test_rows": 8, "rows_unknown_user": 1, "rows_unknown_item": 2, "users": 1,
                           "users_fallback": 0, "relevant_pairs": 1, "relevant_unknown_item": 0}
    assert target.user_ids.tolist() == ["u2"] and target.n_relevant.tolist() == [1]
    assert target.relevant.shape == (1, data.n_items) and target.relevant.toarray().tolist() == [[0.0, 1.0, 0.0]]
    assert build_target(data, TEST, "drop", "drop").info == target.info


def test_keeping_unknown_users_and_items(data):
    target = build_target(data, TEST, unknown_users="fallback", unknown_items="keep")
    assert _rows(target) == [("u1", "i2", 12), ("u2", "i1", 13), ("u2", "new", 14), ("cold", "i1", 16)]
    assert target.user_ids.tolist() == ["cold", "u1", "u2"]
    assert target.user_idx.tolist() == [-1, *data.users.index(["u1", "u2"]).tolist()]
    assert target.n_relevant.tolist() == [1, 1, 2]  # "new" counts as relevant, though it can never be ranked
    assert target.relevant.toarray().sum(axis=1).tolist() == [1.0, 1.0, 1.0]
    assert target.info == {"test_rows": 8, "rows_unknown_user": 1, "rows_unknown_item": 2, "users": 3,
                           "users_fallback": 1, "relevant_pairs": 4, "relevant_unknown_item": 2}
