"""leave_last: interactions that share a user's boundary timestamp all go to train (never split by item id)."""

from __future__ import annotations

import pandas as pd

from recsys.config.schema import SplitConfig
from recsys.data.split import split_interactions

T = 1_650_000_000


def _frame(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).assign(event="view", weight=1.0)


def test_tied_boundary_goes_to_train_and_is_counted():
    rows = [
        # u1: items z, a, m share the last timestamp; test_n=1 would pick one of them by id -> none goes to test
        ("u1", "b", T), ("u1", "z", T + 10), ("u1", "a", T + 10), ("u1", "m", T + 10),
        # u2: no tie; its last item (by time) is held out, although its id sorts first
        ("u2", "c", T), ("u2", "y", T + 5), ("u2", "a", T + 9),
        # u3: tie below the boundary only (x and w at T+1), the last item is alone: held out as usual
        ("u3", "x", T + 1), ("u3", "w", T + 1), ("u3", "v", T + 2),
        # u4: test_n=2 with the 2nd-last sharing its time with the 3rd-last: only the last goes to test
        ("u4", "p", T), ("u4", "q", T + 3), ("u4", "r", T + 3), ("u4", "s", T + 4),
    ]
    split = split_interactions(_frame(rows), SplitConfig(method="leave_last", test_n=1))
    test = set(zip(split.test["user_id"], split.test["item_id"]))
    assert test == {("u2", "a"), ("u3", "v"), ("u4", "s")}
    assert split.audit["boundary_tie_users"] == 1 and split.audit["boundary_tie_rows"] == 1
    assert len(split.train) + len(split.test) == len(rows)

    split2 = split_interactions(_frame(rows), SplitConfig(method="leave_last", test_n=2))
    test2 = set(zip(split2.test["user_id"], split2.test["item_id"]))
    # u1: the last two are tied with a third -> all train; u2: y, a; u3: v plus one of the tied x/w -> both train
    assert test2 == {("u2", "y"), ("u2", "a"), ("u3", "v"), ("u4", "s")}
    assert split2.audit["boundary_tie_users"] == 3  # u1, u3, u4
    assert split2.audit["boundary_tie_rows"] == 2 + 1 + 1


def test_no_ties_means_the_last_n_by_time():
    rows = [("u1", f"i{k}", T + 100 - k) for k in range(6)]  # ids run against time
    split = split_interactions(_frame(rows), SplitConfig(method="leave_last", test_n=2))
    assert sorted(split.test["item_id"]) == ["i0", "i1"]
    assert split.audit["boundary_tie_users"] == 0
