"""Team mode: two `recsys tune` workers share one study on PostgreSQL, logging to an `mlflow server` on it."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest
import yaml
from conftest import start_on_free_port, stop_process

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it

N_TRIALS = 6
CONFIG = {
    "name": "tune-team",
    "seed": 5,
    "data": {"source": "synthetic", "synthetic": {"n_users": 300, "n_items": 120, "n_categories": 5,
                                                  "mean_interactions": 12}},
    "split": {"method": "temporal", "test_size": 0.2},
    "metrics": {"k": [10]},
    "models": [{"name": "als", "params": {"factors": 8, "iterations": 4, "num_threads": 1}, "n_trials": N_TRIALS,
                "pruner": "none",
                "search": {"regularization": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
                           "factors": {"type": "int", "low": 4, "high": 16}}}],
}



@pytest.fixture
def postgres(postgres_cluster):
    """The throwaway cluster (tests/conftest.py) with databases for MLflow and Optuna; yields its base URL."""
    postgres_cluster.create_databases("mlflow", "optuna")
    yield postgres_cluster.url


@pytest.fixture
def mlflow_server(postgres, tmp_path):
    log = open(tmp_path / "mlflow-server.log", "wb")

    def launch(port: int) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"{postgres}/mlflow",
               "--serve-artifacts", "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def healthy(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    server = None
    try:
        server, port = start_on_free_port(launch, healthy, "mlflow server", seconds=90,
                                          detail=lambda: (tmp_path / "mlflow-server.log").read_text()[-2000:])
        yield f"http://127.0.0.1:{port}"
    finally:
        if server is not None:
            stop_process(server)
        log.close()


def test_two_workers_share_one_postgres_study(mlflow_server, postgres, tmp_path, monkeypatch) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    from recsys.config import load_config
    from recsys.tuning.storage import study_name

    cfg_path = tmp_path / "team.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    cfg = load_config(cfg_path)
    name = study_name(cfg, cfg.models[0])
    storage = f"{postgres}/optuna"
    client = MlflowClient(mlflow_server)
    exp_id = client.create_experiment(CONFIG["name"])  # created once, as a team would before starting workers
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "RECSYS_OPTUNA_STORAGE": storage,
           "RECSYS_PROGRESS": "0"}
    env.pop("MLFLOW_RUN_ID", None)
    cmd = [sys.executable, "-m", "recsys.cli", "tune", str(cfg_path), "--model", "als", "--heartbeat-interval", "2",
           "--no-log-model"]
    workers = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for _ in range(2)]
    outputs = [w.communicate(timeout=240)[0].decode() for w in workers]
    for i, (w, out) in enumerate(zip(workers, outputs)):
        (tmp_path / f"worker{i}.log").write_text(out)
        assert w.returncode == 0, out[-3000:]

    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == N_TRIALS
    assert len({t.number for t in trials}) == len(trials)
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in trials)

    runs = client.search_runs([exp_id], max_results=1000)
    assert [r.info.run_id for r in runs if r.info.status == "RUNNING"] == []
    tuning = [r for r in runs if r.data.tags.get("role") == "tuning"]
    assert len(tuning) == 2 and {r.data.tags["worker.pid"] for r in tuning} == {str(w.pid) for w in workers}
    trial_runs = [r for r in runs if r.data.tags.get("role") == "trial"]
    numbers = sorted(int(r.data.tags["optuna.trial_number"]) for r in trial_runs if r.data.tags["state"] == "COMPLETE")
    assert numbers == sorted(t.number for t in complete)  # every trial exactly once in MLflow
    tuning_ids = {r.info.run_id for r in tuning}
    assert all(r.data.tags["mlflow.parentRunId"] in tuning_ids for r in trial_runs)
    for t in complete:
        run = next(r for r in trial_runs if r.data.tags["optuna.trial_number"] == str(t.number))
        assert run.data.metrics["val_ndcg_at_10"] == pytest.approx(t.value)
