"""One task-params parser and one metric check for every task: unknown keys get a did-you-mean at their own level,
and a primary metric the task does not compute fails at load time (recommend included), before any fit."""

from __future__ import annotations

import pytest

from recsys.config.schema import ExperimentConfig
from recsys.errors import ConfigError
from recsys.tasks import get_task

BASE = {"name": "x", "models": [{"name": "random"}]}


def validate(raw: dict) -> ExperimentConfig:
    """The task's own load-time check (the experiment loader calls the same hook)."""
    cfg = ExperimentConfig.model_validate(raw)
    get_task(cfg.task).validate(cfg)
    return cfg


@pytest.mark.parametrize(("raw", "fragment"), [
    ({"task": "audience", "models": [{"name": "activity"}], "metrics": {"k": [10], "primary": "precision_at_10"},
      "task_params": {"fallback": {"recency_dayz": 3}}},
     "`task_params.fallback.recency_dayz` is unknown for task 'audience'; did you mean "
     "`task_params.fallback.recency_days`?"),
    ({"task": "segment", "models": [{"name": "kmeans"}], "metrics": {"primary": "silhouette"},
      "task_params": {"drift": {"later_shares": 0.3}}},
     "`task_params.drift.later_shares` is unknown for task 'segment'; did you mean `task_params.drift.later_share`?"),
    ({"task": "search", "models": [{"name": "content"}], "task_params": {"min_relevent": 2}},
     "`task_params.min_relevent` is unknown for task 'search'; did you mean `task_params.min_relevant`?"),
])
def test_unknown_task_param_gets_a_did_you_mean_at_its_level(raw, fragment):
    with pytest.raises(ConfigError) as info:
        validate({**BASE, **raw})
    assert fragment in str(info.value)


def test_recommend_primary_metric_is_checked_at_load_time():
    with pytest.raises(ConfigError) as info:
        validate({**BASE, "task": "recommend", "metrics": {"k": [10, 20], "primary": "ndcg_at_50"}})
    msg = str(info.value)
    assert "`metrics.primary` is 'ndcg_at_50', which the recommend task does not compute" in msg
    assert "ndcg_at_20" in msg and "ndcg_at_50" not in msg.split("available", 1)[1]
    cfg = validate({**BASE, "task": "recommend", "metrics": {"k": [10, 20], "primary": "ndcg_at_20"}})
    assert cfg.metrics.primary == "ndcg_at_20"


def test_invalid_value_names_the_key_and_the_value():
    with pytest.raises(ConfigError, match=r"`task_params\.validation_share` has invalid value 1\.5"):
        validate({**BASE, "task": "search", "models": [{"name": "content"}],
                          "task_params": {"validation_share": 1.5}})
