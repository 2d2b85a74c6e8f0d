"""Repeated splits (`split.folds`): rolling temporal origins and user-disjoint folds never share a test row;
tuning only sees the training part common to every fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.config import config_from_dict
from recsys.config.schema import SplitConfig
from recsys.data import load_dataset
from recsys.data.split import split_folds, split_interactions
from recsys.errors import DataError


@pytest.fixture(scope="module")
def interactions():
    cfg = config_from_dict({"name": "f", "seed": 1, "models": [{"name": "popularity"}],
                            "data": {"synthetic": {"n_users": 400, "n_items": 100, "n_categories": 4}}})
    df = load_dataset(cfg.data, cfg.seed).interactions
    return df.assign(row=np.arange(len(df)))  # a row identity carried through the split


def _rows(frame: pd.DataFrame) -> set[int]:
    return set(frame["row"].tolist())


@pytest.mark.parametrize("method", ["temporal", "leave_last", "random"])
@pytest.mark.parametrize("n_folds", [2, 3, 4])
def test_no_fold_test_rows_overlap_another_fold(interactions, method, n_folds):
    cfg = SplitConfig(method=method, folds=n_folds, test_size=0.15)
    folds, common = split_folds(interactions, cfg, random_state=5)
    assert len(folds) == n_folds
    tests = [_rows(f.test) for f in folds]
    for i in range(n_folds):
        assert tests[i], f"fold {i} has an empty test part"
        assert not (_rows(folds[i].train) & tests[i])
        assert not (_rows(common) & tests[i]), "the common training part holds a test row"
        assert _rows(common) <= _rows(folds[i].train)
        for j in range(i + 1, n_folds):
            assert not (tests[i] & tests[j]), f"folds {i} and {j} share test rows"
    if method == "temporal":
        for j in range(1, n_folds):  # walking back in time: fold j's window ends where fold j-1's starts
            assert folds[j].test["timestamp"].max() < folds[j - 1].test["timestamp"].min()
            assert folds[j].train["timestamp"].max() < folds[j].test["timestamp"].min()
            assert folds[j].audit["cutoff"] < folds[j - 1].audit["cutoff"]
        base = split_interactions(interactions, cfg, 5)
        assert _rows(folds[0].test) == _rows(base.test)  # fold 0 is the usual split
    else:
        users = [set(f.test["user_id"]) for f in folds]
        assert all(not (users[i] & users[j]) for i in range(n_folds) for j in range(i + 1, n_folds))
        base = split_interactions(interactions, cfg, 5)
        assert set().union(*tests) == _rows(base.test)  # the same per-user holdout, dealt out
        assert all(_rows(f.train) | _rows(f.test) == _rows(interactions) for f in folds)


def test_too_many_folds_is_a_clear_error(interactions):
    with pytest.raises(DataError, match="split.folds"):
        split_folds(interactions, SplitConfig(method="temporal", folds=6, test_size=0.2))


def test_tuning_with_folds_sees_only_the_common_training_part():
    from recsys.tasks import get_task

    cfg = config_from_dict({"name": "f", "seed": 1, "models": [{"name": "popularity"}],
                            "data": {"synthetic": {"n_users": 300, "n_items": 80, "n_categories": 4}},
                            "split": {"method": "temporal", "folds": 3}})
    task = get_task("recommend")
    ctx = task.prepare(cfg)
    vctx = task.validation_context(ctx)
    key = ["user_id", "item_id", "timestamp"]
    seen = pd.concat([vctx.state["split"].train, vctx.state["split"].test])[key]
    for state in ctx.state["folds"]:
        test = state["split"].test[key]
        assert seen.merge(test, on=key).empty, "tuning data overlaps a fold's test rows"
