"""Tuning never reads the test split; search-space errors name the parameter and the rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import Split
from recsys.errors import ConfigError
from recsys.tasks import get_task

ALS_SEARCH = {"regularization": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
              "factors": {"type": "int", "low": 4, "high": 24}}


class Untouchable:
    """Stands in for the test part: any attribute access fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"tuning read the test part ({name!r})")


def _poisoned(ctx, rng: np.random.Generator):
    """Same context, but the test rows are garbage (random users/items, other timestamps) and the test
    evaluation target refuses any access."""
    split: Split = ctx.state["split"]
    test = split.test.copy()
    test["user_id"] = rng.permutation(test["user_id"].to_numpy())
    test["item_id"] = rng.choice(split.train["item_id"].unique(), size=len(test))
    test["timestamp"] = test["timestamp"] + 10**6
    ctx.state["split"] = Split(train=split.train, test=test, method=split.method, audit={})
    ctx.state["target"] = Untouchable()
    return ctx


def _values(res_storage: str, ctx, entry, n: int) -> list[tuple[float, dict]]:
    import optuna

    from recsys.tuning import tune_model

    res = tune_model(get_task("recommend"), ctx, entry, storage=res_storage, n_trials=n)
    study = optuna.load_study(study_name=res.study_name, storage=res_storage)
    return [(t.value, t.params) for t in study.get_trials(deepcopy=False)]


@pytest.mark.slow
def test_trial_values_do_not_depend_on_the_test_part(tiny_config, tmp_path, rng) -> None:
    cfg = tiny_config(models=[{"name": "als", "params": {"factors": 8, "iterations": 4, "num_threads": 1},
                               "search": ALS_SEARCH, "pruner": "none"}])
    entry = cfg.models[0]
    task = get_task("recommend")
    clean = _values(f"sqlite:///{tmp_path / 'clean.db'}", task.prepare(cfg), entry, 3)
    poisoned = _values(f"sqlite:///{tmp_path / 'poisoned.db'}", _poisoned(task.prepare(cfg), rng), entry, 3)
    assert len(clean) == 3
    assert poisoned == clean
    # and the test part does matter for the final evaluation: the poisoned context cannot be evaluated
    with pytest.raises(AssertionError, match="read the test part"):
        task.run_model(_poisoned(task.prepare(cfg), rng), entry, tmp_path / "final", store=False)


@pytest.mark.parametrize("search, words", [
    ({"factors": {"type": "int", "low": 64, "high": 8}}, ["factors", "low", "< `high`"]),
    ({"regularization": {"type": "float", "low": 0.0, "high": 1.0, "log": True}},
     ["regularization", "log=true", "low > 0"]),
    ({"factors": {"type": "int", "low": 0, "high": 8}}, ["factors", "value 0", "'als'"]),
    ({"factor": {"type": "int", "low": 4, "high": 8}}, ["factor", "not a parameter of model 'als'", "factors"]),
    ({"factors": {"type": "categorical", "choices": []}}, ["factors", "choices"]),
    ({"factors": {"type": "int", "low": 4.5, "high": 8}}, ["factors", "integer `low`"]),
    ({"factors": {"type": "uniform", "low": 4, "high": 8}}, ["factors", "type"]),
])
def test_search_space_errors_name_parameter_and_rule(tiny_config, search, words) -> None:
    with pytest.raises(ConfigError) as err:
        tiny_config(models=[{"name": "als", "search": search}])
    for word in words:
        assert word in str(err.value)


def test_multi_objective_needs_explicit_selection_rule(tiny_config) -> None:
    base = {"name": "als", "search": ALS_SEARCH, "metric": ["ndcg_at_10", "catalog_coverage_at_10"]}
    with pytest.raises(ConfigError, match="needs an explicit `select` rule"):
        tiny_config(models=[base])
    with pytest.raises(ConfigError, match="not tuning metrics"):
        tiny_config(models=[{**base, "select": {"metric": "recall_at_10"}}])
    with pytest.raises(ConfigError, match="one direction per metric"):
        tiny_config(models=[{**base, "select": {"metric": "ndcg_at_10"}, "directions": ["maximize"]}])


def test_study_name_follows_the_search_space_not_the_budget(tiny_config) -> None:
    from recsys.tuning.storage import study_name

    cfg = tiny_config(models=[{"name": "als", "search": ALS_SEARCH, "n_trials": 5}])
    more = tiny_config(models=[{"name": "als", "search": ALS_SEARCH, "n_trials": 50}])
    wider = tiny_config(models=[{"name": "als", "n_trials": 5,
                                 "search": {**ALS_SEARCH, "factors": {"type": "int", "low": 4, "high": 64}}}])
    assert study_name(cfg, cfg.models[0]) == study_name(more, more.models[0])
    assert study_name(cfg, cfg.models[0]) != study_name(wider, wider.models[0])
    assert study_name(cfg, cfg.models[0]).startswith("tiny.als.")


@pytest.mark.slow
def test_multi_objective_logs_pareto_front_and_picks_by_rule(tiny_config, mlflow_uri, tmp_path) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    from recsys.experiment import run_experiment
    from recsys.tracking import MlflowTracker
    from recsys.tuning import make_tuner

    cfg = tiny_config(models=[{"name": "item_knn", "params": {"num_threads": 1}, "n_trials": 5,
                               "metric": ["ndcg_at_10", "catalog_coverage_at_10"],
                               "select": {"metric": "catalog_coverage_at_10"},
                               "search": {"k_neighbors": {"type": "int", "low": 2, "high": 100, "log": True},
                                          "similarity": ["cosine", "bm25"]}}],
                      registry={"enabled": False})
    storage = f"sqlite:///{tmp_path / 'mo.db'}"
    result = run_experiment(cfg, tracker=MlflowTracker(mlflow_uri, log_models=False),
                            tuner=make_tuner(storage=storage), tune_models={"item_knn"})
    client = MlflowClient(mlflow_uri)
    model_run = client.get_run(result.run_ids["item_knn"])
    study = optuna.load_study(study_name=model_run.data.tags["optuna.study_name"], storage=storage)
    front = study.best_trials
    chosen = max(front, key=lambda t: (t.values[1], -t.number))
    # the pick is refit only if it Pareto-dominates the default params on validation (worked out here by hand)
    baseline = [model_run.data.metrics[f"tuning_baseline_val_{m}"] for m in ("ndcg_at_10", "catalog_coverage_at_10")]
    dominates = (all(v >= b for v, b in zip(chosen.values, baseline))
                 and any(v > b for v, b in zip(chosen.values, baseline)))
    assert model_run.data.tags["tuning.selected"] == ("best_trial" if dominates else "defaults")
    refit = result.results[0].entry.params
    if dominates:
        assert {k: refit[k] for k in chosen.params} == chosen.params
    else:
        assert refit == {"num_threads": 1}
    tuning = client.get_run(model_run.data.tags["tuning_run_id"])
    files = {a.path for a in client.list_artifacts(tuning.info.run_id)}
    assert {"pareto.csv", "study_summary.json", "trials.csv"} <= files
    pareto = pd.read_csv(client.download_artifacts(tuning.info.run_id, "pareto.csv", str(tmp_path)))
    assert sorted(pareto["trial"]) == sorted(t.number for t in front)
    assert pareto.loc[pareto["selected"], "trial"].tolist() == [chosen.number]
    plots = {a.path for a in client.list_artifacts(tuning.info.run_id, "plots")}
    assert "plots/pareto_front.png" in plots


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
def test_trial_that_never_sent_a_heartbeat_is_failed_and_retried(tmp_path, time_zone, zone):
    """A worker killed between creating a trial and its first heartbeat must not block the study forever,
    and a live one is left alone in any local time zone (Optuna keeps datetime_start in UTC)."""
    import warnings

    import optuna
    import sqlalchemy

    from recsys.tuning.tuner import _fail_stale

    time_zone(zone)
    warnings.simplefilter("ignore")
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = optuna.storages.RDBStorage(
        url, heartbeat_interval=1, grace_period=2,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3))
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})  # RUNNING, never beats
    _fail_stale(study)
    assert study.trials[0].state == optuna.trial.TrialState.RUNNING  # within the grace period: left alone
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE trials SET datetime_start = '2000-01-01 00:00:00' WHERE trial_id = :t"),
                     {"t": trial._trial_id})
    _fail_stale(study)
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert study.get_trials()[1].params == study.get_trials()[0].params


def test_database_clock_is_read_as_utc_whatever_its_session_zone():
    """PostgreSQL's now() comes back aware in the session's zone; SQLite's CURRENT_TIMESTAMP is naive UTC."""
    import datetime as dt

    from recsys.tuning.tuner import _utc_naive

    tokyo = dt.timezone(dt.timedelta(hours=9))
    assert _utc_naive(dt.datetime(2024, 1, 1, 9, 30, tzinfo=tokyo)) == dt.datetime(2024, 1, 1, 0, 30)
    assert _utc_naive(dt.datetime(2024, 1, 1, 9, 30)) == dt.datetime(2024, 1, 1, 9, 30)
