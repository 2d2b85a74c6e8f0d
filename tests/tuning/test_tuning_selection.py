"""Tuning never ships a model worse than its defaults, and leaves evidence that it only saw validation data."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from recsys.experiment import run_experiment
from recsys.tracking import MlflowTracker
from recsys.tuning import make_tuner
from recsys.tuning.tuner import beats


def _run(tiny_config, mlflow_uri, tmp_path, default_k: int, choices: list[int]):
    entry = {"name": "item_knn", "label": "knn", "params": {"k_neighbors": default_k},
             "search": {"k_neighbors": {"type": "categorical", "choices": choices}}, "n_trials": 2, "pruner": "none"}
    cfg = tiny_config(models=[entry], registry={"enabled": False})
    tuner = make_tuner(storage=f"sqlite:///{tmp_path / f'optuna-{default_k}.db'}")
    result = run_experiment(cfg, tracker=MlflowTracker(mlflow_uri), tuner=tuner, tune_models={"knn"})
    client = MlflowClient(mlflow_uri)
    model_run = client.get_run(result.run_ids["knn"])
    tuning_run = client.get_run(model_run.data.tags["tuning_run_id"])
    return result, model_run, tuning_run


@pytest.mark.slow  # a whole tuned experiment through MLflow
def test_search_that_only_does_worse_refits_the_defaults(tiny_config, mlflow_uri, tmp_path):
    result, model_run, tuning_run = _run(tiny_config, mlflow_uri, tmp_path, default_k=30, choices=[1])
    m = model_run.data.metrics
    # premise: every trial (k_neighbors=1) is worse than the defaults on validation
    assert m["tuning_best_val_ndcg_at_10"] < m["tuning_baseline_val_ndcg_at_10"]
    assert model_run.data.tags["tuning.selected"] == "defaults"
    assert tuning_run.data.tags["tuning.selected"] == "defaults"
    assert model_run.data.params["model.k_neighbors"] == "30"
    assert result.results[0].entry.params["k_neighbors"] == 30
    # the refit is the untuned model: same test score as a run without tuning
    plain = run_experiment(tiny_config(models=[{"name": "item_knn", "params": {"k_neighbors": 30}}],
                                       registry={"enabled": False}))
    assert result.results[0].metrics["ndcg_at_10"] == pytest.approx(plain.results[0].metrics["ndcg_at_10"], abs=0)


@pytest.mark.slow  # a whole tuned experiment through MLflow
def test_search_that_does_better_refits_the_best_trial_and_logs_validation_evidence(tiny_config, mlflow_uri, tmp_path):
    result, model_run, tuning_run = _run(tiny_config, mlflow_uri, tmp_path, default_k=1, choices=[30])
    m = model_run.data.metrics
    assert m["tuning_best_val_ndcg_at_10"] > m["tuning_baseline_val_ndcg_at_10"]
    assert model_run.data.tags["tuning.selected"] == "best_trial"
    assert model_run.data.params["model.k_neighbors"] == "30"
    # validation evidence: fingerprint on both runs, the validation holdout as a dataset input
    fp = tuning_run.data.tags["validation_fingerprint"]
    assert fp and model_run.data.tags["validation_fingerprint"] == fp
    assert fp != model_run.data.tags["split_fingerprint"]  # not the test split
    contexts = {next(t.value for t in d.tags if t.key == "mlflow.data.context")
                for d in tuning_run.inputs.dataset_inputs}
    assert "validation" in contexts
    val = next(d for d in tuning_run.inputs.dataset_inputs
               if any(t.key == "mlflow.data.context" and t.value == "validation" for t in d.tags))
    assert val.dataset.name.endswith("-validation")


@pytest.mark.parametrize("best,base,dirs,expected", [
    ({"a": 0.30}, {"a": 0.31}, ["maximize"], False),
    ({"a": 0.31}, {"a": 0.31}, ["maximize"], False),  # a tie does not justify the tuned params
    ({"a": 0.32}, {"a": 0.31}, ["maximize"], True),
    ({"a": 0.30}, {"a": 0.31}, ["minimize"], True),
    ({"a": 0.32, "b": 0.5}, {"a": 0.31, "b": 0.6}, ["maximize", "maximize"], False),  # trades one for another
    ({"a": 0.32, "b": 0.6}, {"a": 0.31, "b": 0.6}, ["maximize", "maximize"], True),
    ({"a": 0.32}, {}, ["maximize"], True),  # no baseline measured: keep the trial
])
def test_beats_rule(best, base, dirs, expected):
    assert beats(best, base, list(best), dirs) is expected
