"""MLproject entry points pass every parameter through unchanged: spaces, quotes, shell characters, empty values."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[2]
TRICKY = ["manual check", "it's \"quoted\"", "", "a;b $HOME `x` *", "--looks-like-a-flag"]


def _entry_points():
    from mlflow.projects._project_spec import load_project

    project = load_project(str(REPO))
    return project, sorted(project._entry_points)


@pytest.mark.parametrize("value", TRICKY, ids=["spaces", "quotes", "empty", "shell", "dash"])
def test_every_parameter_of_every_entry_point_arrives_as_one_unchanged_argument(value):
    project, names = _entry_points()
    assert {"main", "run", "promote", "rollback", "status", "tune"} <= set(names)
    for name in names:
        ep = project.get_entry_point(name)
        for param in ep.parameters:
            if value.startswith("-") and param == "config":
                continue  # a positional config path starting with '-' is not a supported file name
            values = {p: f"v-{p}" for p in ep.parameters}
            values[param] = value
            argv = shlex.split(ep.compute_command(values, storage_dir=None))
            assert argv.count(value) == 1, (name, param, argv)
            for other, v in values.items():
                assert v in argv, (name, other, argv)  # every other parameter intact as well


def _experiment_config(tmp_path: Path, name: str, models: list[dict]) -> Path:
    cfg = {"name": name, "seed": 7,  # the data and models of test_promotion_sequence (v2 beats v1 there)
           "data": {"synthetic": {"n_users": 400, "n_items": 150, "n_categories": 6, "mean_interactions": 15}},
           "split": {"method": "temporal", "test_size": 0.2}, "metrics": {"k": [5, 10]}, "models": models}
    path = tmp_path / "my configs" / f"{name} exp.yaml"  # spaces in the config path too
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def _mlflow_run(tmp_path: Path, uri: str, entry: str, **params: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mlflow", "run", str(REPO), "--env-manager", "local", "-e", entry,
           "--experiment-name", "mlproject-params"]
    for k, v in params.items():
        cmd += ["-P", f"{k}={v}"]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME",
                                                             "MLFLOW_RUN_ID")}
    env.update(MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(REPO), RECSYS_PROGRESS="0")
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_mlflow_run_promote_with_a_policy_path_with_spaces_and_rollback_with_a_reason(tmp_path, mlflow_uri):
    from recsys.config import load_config
    from recsys.experiment import run_experiment
    from recsys.tracking import MlflowTracker

    als = {"name": "als", "params": {"factors": 4, "iterations": 5, "num_threads": 1}}
    weak = _experiment_config(tmp_path, "mlp", [{"name": "random"}, {"name": "popularity"}, als])
    res1 = run_experiment(load_config(str(weak)), tracker=MlflowTracker(mlflow_uri), config_path=str(weak))
    client = MlflowClient(mlflow_uri)
    name = "recsys-mlp"
    assert client.get_registered_model(name).aliases["challenger"] == int(res1.registry["version"])

    proc = _mlflow_run(tmp_path, mlflow_uri, "promote", config=str(weak),
                       policy="configs/policies/a policy with spaces.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    v1 = res1.registry["version"]
    tags = client.get_model_version(name, v1).tags
    assert tags["promotion.policy"] == "a policy with spaces"  # the file with spaces in its name was read
    assert tags["promotion.decision"] == "promoted"

    stronger = [{"name": "random"}, {"name": "popularity"}, {"name": "item_knn", "params": {"k_neighbors": 20}},
                {"name": "als", "params": {"factors": 8, "iterations": 5, "num_threads": 1}}]
    res2 = run_experiment(load_config(str(_experiment_config(tmp_path, "mlp", stronger))),
                          tracker=MlflowTracker(mlflow_uri))
    proc = _mlflow_run(tmp_path, mlflow_uri, "promote", config=str(weak), model_name="",
                       policy="configs/policies/a policy with spaces.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    v2 = res2.registry["version"]
    if client.get_registered_model(name).aliases.get("champion") != int(v2):
        pytest.fail(f"v{v2} was not promoted: {client.get_model_version(name, v2).tags.get('promotion.reason')}")

    proc = _mlflow_run(tmp_path, mlflow_uri, "rollback", config=str(weak), reason="manual check: it's \"odd\"")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert client.get_registered_model(name).aliases["champion"] == int(v1)
    reason = client.get_model_version(name, v2).tags["promotion.reason"]
    assert reason == f"rolled back to v{v1}: manual check: it's \"odd\""
