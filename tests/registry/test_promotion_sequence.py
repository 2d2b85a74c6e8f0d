"""The promotion story end to end through the `recsys registry` CLI: first champion, a weaker run kept,
a stronger run promoted, rollback to the previous champion, and the status table."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from recsys.cli import main
from recsys.experiment import run_experiment
from recsys.tracking import MlflowTracker

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it

NAME = "recsys-tiny-sequence"


def _aliases(client: MlflowClient) -> dict[str, str]:
    return {k: str(v) for k, v in (client.get_registered_model(NAME).aliases or {}).items()}


def _cli(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["registry", *argv, "--model-name", NAME])
    return code, capsys.readouterr().out


def test_weaker_run_stays_challenger_stronger_run_becomes_champion_and_rollback_restores(
        mlflow_uri, tiny_config, capsys):
    from pathlib import Path

    policy = str(Path(__file__).resolve().parents[2] / "configs/policies/default.yaml")
    client = MlflowClient(mlflow_uri)
    registry = {"model_name": NAME, "policy": policy}
    als_small = {"name": "als", "params": {"factors": 4, "iterations": 5, "num_threads": 1}}
    runs = [
        tiny_config(registry=registry, models=[{"name": "random"}, {"name": "popularity"}, als_small]),
        tiny_config(registry=registry, models=[{"name": "random"}, {"name": "popularity"}]),  # weaker
        tiny_config(registry=registry),  # the default tiny set: ALS with more factors
    ]
    results = []
    expected = [("promoted", "1"), ("kept", "1"), ("promoted", "3")]
    for cfg, (decision, champion) in zip(runs, expected):
        res = run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
        results.append(res)
        version = res.registry["version"]
        assert _aliases(client)["challenger"] == version
        code, out = _cli(capsys, "promote", "--policy", policy)
        assert code == 0 and out.startswith(f"{decision}: {NAME} v{version}")
        assert _aliases(client)["champion"] == champion
        tags = client.get_model_version(NAME, version).tags
        assert tags["promotion.decision"] == decision and tags["promotion.reason"]
    # the weaker run's best (popularity) stays challenger, with the reason recorded on the version
    assert results[1].best.entry.name == "popularity"
    assert "uplift" in client.get_model_version(NAME, "2").tags["promotion.reason"]
    metric = "ndcg_at_10"
    assert results[2].best.metrics[metric] > results[0].best.metrics[metric] > results[1].best.metrics[metric]
    assert "challenger" not in _aliases(client)  # v3 moved from challenger to champion
    assert json.loads(client.get_registered_model(NAME).tags["champion_history"]) == ["1", "3"]

    code, out = _cli(capsys, "rollback", "--reason", "test")
    assert code == 0 and "v3 -> v1" in out
    assert _aliases(client)["champion"] == "1"
    assert client.get_model_version(NAME, "3").tags["promotion.decision"] == "rolled_back"
    assert main(["registry", "rollback", "--model-name", NAME]) == 2  # nothing older than v1

    code, out = _cli(capsys, "status", "--json")
    rows = {r["version"]: r for r in json.loads(out)}
    assert rows[1]["aliases"] == "champion" and rows[2]["decision"] == "kept" and rows[3]["decision"] == "rolled_back"
    assert rows[3]["value"] == results[2].best.metrics[metric]
    code, out = _cli(capsys, "status")
    assert code == 0 and "champion" in out and "kept" in out
