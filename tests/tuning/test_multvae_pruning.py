"""Mult-VAE reports every epoch through the progress callback, so an Optuna study prunes its poor trials."""

from __future__ import annotations

import optuna
import pytest

from recsys.tasks import get_task

SEARCH = {"learning_rate": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True}}
PARAMS = {"hidden": 32, "latent": 8, "epochs": 8, "batch_size": 64, "total_anneal_steps": 50,
          "early_stopping_patience": 0, "num_threads": 1, "random_state": 1}


@pytest.mark.slow  # a whole Optuna study of Mult-VAE fits
def test_multvae_tuning_prunes_trials_from_per_epoch_validation(tiny_config, tmp_path) -> None:
    from recsys.tuning import tune_model

    cfg = tiny_config(models=[{"name": "multvae", "params": PARAMS, "search": SEARCH, "pruner": "median",
                               "sampler": "random"}])
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    task = get_task("recommend")
    res = tune_model(task, task.prepare(cfg), cfg.models[0], storage=storage, n_trials=12)
    study = optuna.load_study(study_name=res.study_name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned, "no trial was pruned"
    assert complete and len(pruned) + len(complete) == 12
    # stopped early: a pruned trial reports fewer epochs than a full one
    assert all(len(t.intermediate_values) <= PARAMS["epochs"] for t in pruned)
    assert any(len(t.intermediate_values) < PARAMS["epochs"] for t in pruned)
    assert all(len(t.intermediate_values) == PARAMS["epochs"] for t in complete)
    # what was pruned was worse, at the epoch it stopped, than the median of the trials before it
    best = max(t.value for t in complete)
    assert all(t.intermediate_values[max(t.intermediate_values)] < best for t in pruned)
