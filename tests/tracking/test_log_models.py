"""`tracking.log_models`: which runs get a pyfunc model (all, only the selected one, none), on a real SQLite store."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from recsys.errors import ConfigError
from recsys.experiment import run_experiment
from recsys.tracking import MlflowTracker

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it


def logged_models(client: MlflowClient, experiment_id: str) -> dict[str, str]:
    """source run id -> model id of every logged model of the experiment."""
    return {m.source_run_id: m.model_id for m in client.search_logged_models(experiment_ids=[experiment_id])}


def model_runs(client: MlflowClient, experiment_id: str) -> dict[str, object]:
    return {r.data.tags["label"]: r for r in client.search_runs([experiment_id]) if r.data.tags.get("role") == "model"}


def test_selected_logs_one_model_for_the_selected_run_and_registers_it(mlflow_uri, tiny_config, monkeypatch):
    import mlflow

    cfg = tiny_config(tracking={"log_models": "selected"})
    result = run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name(cfg.name)
    runs = model_runs(client, exp.experiment_id)
    best_run = runs[result.best.entry.run_name]
    # exactly one logged model, from the selected model's run; no other run points at one
    assert list(logged_models(client, exp.experiment_id)) == [best_run.info.run_id]
    assert [label for label, r in runs.items() if "model_uri" in r.data.tags] == [result.best.entry.run_name]
    assert best_run.data.tags["model_uri"] == result.best.extra["model_uri"]
    assert all(r.info.status == "FINISHED" for r in runs.values())
    # logged after its run ended, the run's end time is left as it was: before the version was created
    version = client.get_model_version(cfg.registered_model_name, result.registry["version"])
    assert version.run_id == best_run.info.run_id
    assert best_run.info.end_time <= version.creation_timestamp
    # the registered model loads and ranks like the in-process model
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    mlflow.set_tracking_uri(mlflow_uri)
    model = mlflow.pyfunc.load_model(f"models:/{cfg.registered_model_name}/{version.version}")
    best = result.best
    users = best.per_user["user_id"].to_numpy()[:10]
    out = model.predict(pd.DataFrame({"user_id": users}), params={"k": 5})
    items, _ = best.model.recommend(best.model.users_.index(users), k=5)
    for row, user in enumerate(users):
        got = out[out["user_id"] == str(user)].sort_values("rank")["item_id"].tolist()
        assert got == [str(i) for i in best.model.items_.id(items[row])]
    # the parent run holds no model of its own
    parent = client.get_run(result.parent_run_id)
    assert parent.info.run_id not in logged_models(client, exp.experiment_id)


def test_all_is_the_default_and_logs_every_model(mlflow_uri, tiny_config):
    cfg = tiny_config(registry={"enabled": False})
    assert cfg.tracking.log_models == "all"
    run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name(cfg.name)
    runs = model_runs(client, exp.experiment_id)
    assert set(logged_models(client, exp.experiment_id)) == {r.info.run_id for r in runs.values()}


def test_none_logs_no_model_and_needs_the_registry_off(mlflow_uri, tiny_config):
    with pytest.raises(ConfigError, match=r"tracking\.log_models is 'none'.*registry\.enabled: false"):
        tiny_config(tracking={"log_models": "none"})
    cfg = tiny_config(tracking={"log_models": "none"}, registry={"enabled": False})
    result = run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name(cfg.name)
    assert logged_models(client, exp.experiment_id) == {}
    assert result.registry == {} and "model_uri" not in result.best.extra


def test_selected_model_that_cannot_be_logged_fails_its_run_and_registers_nothing(mlflow_uri, tiny_config,
                                                                                  monkeypatch):
    from recsys.tracking import mlflow_tracker

    def broken(*args, **kwargs):
        raise OSError("simulated full disk while logging the model")

    monkeypatch.setattr(mlflow_tracker, "_requirements", broken)
    cfg = tiny_config(tracking={"log_models": "selected"})
    with pytest.raises(OSError, match="simulated full disk"):
        run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name(cfg.name)
    status = {r.data.tags.get("label", "parent"): r.info.status for r in client.search_runs([exp.experiment_id])}
    assert status.pop("parent") == "FAILED"
    assert sorted(status.values()).count("FAILED") == 1 and "RUNNING" not in status.values()
    assert client.search_registered_models() == [] or not client.search_model_versions(
        f"name='{cfg.registered_model_name}'")


@pytest.mark.parametrize("flags,over,why", [
    (["--no-log-model"], [], "--no-log-model"),
    ([], ["--set", "tracking.log_models=none", "--set", "registry.enabled=false"], "tracking.log_models is 'none'"),
])
def test_tune_register_without_a_logged_model_is_refused_before_any_trial(tmp_path, capsys, monkeypatch, flags,
                                                                          over, why):
    import yaml

    from recsys.cli import main

    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "x", "models": [
        {"name": "als", "search": {"factors": {"type": "int", "low": 4, "high": 8}}}]}))
    storage = tmp_path / "optuna.db"
    code = main(["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "tune", str(cfg), "--model", "als",
                 "--register", "--storage", f"sqlite:///{storage}", *flags, *over])
    assert code == 2
    err = capsys.readouterr().err
    assert f"--register needs the tuned model logged, but {why}" in err
    assert not storage.exists() and not (tmp_path / "mlflow.db").exists()  # refused before any store was made
