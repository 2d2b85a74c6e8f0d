"""A tuning worker killed with SIGKILL mid-study: re-running the same command finishes the study cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it

N_TRIALS = 6
KILL_AT = 2  # the trial whose worker is SIGKILLed just after its run started

CONFIG = {
    "name": "tune-kill",
    "seed": 3,
    "data": {"source": "synthetic", "synthetic": {"n_users": 800, "n_items": 300, "n_categories": 8,
                                                  "mean_interactions": 20}},
    "split": {"method": "temporal", "test_size": 0.2},
    "metrics": {"k": [10]},
    "models": [{"name": "als", "params": {"factors": 16, "num_threads": 1}, "n_trials": N_TRIALS, "pruner": "none",
                "search": {"regularization": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
                           "iterations": {"type": "int", "low": 15, "high": 30}}}],
}


def _study(url: str, name: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:
        return None


def _complete(study: optuna.Study | None) -> list[optuna.trial.FrozenTrial]:
    if study is None:
        return []
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def test_sigkilled_worker_is_resumed_without_duplicates_or_running_runs(tmp_path: Path, mlflow_uri: str) -> None:
    from recsys.config import load_config
    from recsys.tuning.storage import study_name

    cfg_path = tmp_path / "kill.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    cfg = load_config(cfg_path)
    name = study_name(cfg, cfg.models[0])
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    cmd = [sys.executable, "-m", "recsys.cli", "tune", str(cfg_path), "--model", "als", "--storage", url,
           "--heartbeat-interval", "1", "--grace-period", "2", "--no-log-model"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "RECSYS_PROGRESS": "0"}

    # SIGKILL at a known point (recsys.faults.checkpoint): trials 0 and 1 are COMPLETE, trial 2's run has started and
    # its heartbeat is beating. Waiting from outside for "a trial completed" raced fast trials on an idle machine
    # (the worker could finish all of them between two polls)
    killer = {**env, "RECSYS_FAULT_AT": f"trial:{KILL_AT}", "RECSYS_FAULT_SIGNAL": "KILL"}
    worker = subprocess.run(cmd, cwd=tmp_path, env=killer, capture_output=True, text=True, timeout=300)
    assert worker.returncode == -signal.SIGKILL, worker.stdout[-3000:] + worker.stderr[-3000:]
    killed = _study(url, name)
    assert [t.number for t in _complete(killed)] == list(range(KILL_AT))
    assert [t.state for t in killed.get_trials(deepcopy=False)][-1] == optuna.trial.TrialState.RUNNING
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name(CONFIG["name"])
    left_running = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
    assert left_running, "a SIGKILLed worker leaves its runs RUNNING (precondition)"

    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]

    study = _study(url, name)
    complete = _complete(study)
    assert len(complete) == N_TRIALS
    numbers = [t.number for t in study.get_trials(deepcopy=False)]
    assert len(numbers) == len(set(numbers))
    params = [json.dumps(t.params, sort_keys=True) for t in complete]
    assert len(params) == len(set(params)), "a trial was run twice"
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert optuna.trial.TrialState.RUNNING not in states.values()

    runs = client.search_runs([exp.experiment_id], max_results=1000)
    assert [r.info.run_id for r in runs if r.info.status == "RUNNING"] == []
    trial_runs = [r for r in runs if r.data.tags.get("role") == "trial"]
    finished = [int(r.data.tags["optuna.trial_number"]) for r in trial_runs if r.info.status == "FINISHED"]
    assert sorted(finished) == sorted(t.number for t in complete)  # each COMPLETE trial once, as FINISHED
    for r in trial_runs:
        number = int(r.data.tags["optuna.trial_number"])
        assert r.data.tags["state"] == states[number].name
        if states[number] == optuna.trial.TrialState.FAIL:
            assert r.info.status == "FAILED"
    # the killed worker's tuning run was closed as FAILED, the resumed one FINISHED with the whole study's best
    tuning = sorted((r for r in runs if r.data.tags.get("role") == "tuning"), key=lambda r: r.info.start_time)
    assert [r.info.status for r in tuning] == ["FAILED", "FINISHED"]
    best = max(t.value for t in complete)
    assert tuning[1].data.metrics["best_val_ndcg_at_10"] == pytest.approx(best)
