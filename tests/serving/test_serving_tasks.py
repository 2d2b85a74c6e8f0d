"""`recsys serve` over audience and segment champions (no recommend champion): the predictor-backed endpoints
answer what the registered predictors answer, with fallbacks, 422s from predictor rules, and 503 for the
task without a champion."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import http_json, isolated_store, read_port_file, stop_process, wait_until

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it

REPO = Path(__file__).resolve().parents[2]
AUDIENCE, SEGMENT = "recsys-serving-audience", "recsys-serving-segment"
FEATURES = ["pageviews", "time_on_site", "product_views", "cart_adds", "transactions", "revenue"]
CONFIGS = {
    AUDIENCE: {
        "name": "serving-audience", "task": "audience", "seed": 5,
        "data": {"source": "synthetic", "synthetic": {"n_users": 600, "n_items": 80, "n_categories": 4,
                                                      "one_time_share": 0.5, "mean_interactions": 12,
                                                      "new_item_share": 0.2}},
        "split": {"method": "temporal", "test_size": 0.25},
        "metrics": {"k": [5, 10], "primary": "precision_at_10"},
        "task_params": {"cache_n": 20},
        "models": [{"name": "activity"}],
        "registry": {"model_name": AUDIENCE},
    },
    SEGMENT: {
        "name": "serving-segment", "task": "segment", "seed": 3,
        "metrics": {"primary": "silhouette"}, "selection": {"metric": "silhouette"},
        "models": [{"name": "kmeans", "params": {"k_min": 2, "k_max": 4, "n_init": 2, "stability_bootstraps": 2,
                                                 "random_state": 3}}],
        "task_params": {"sessions": {"synthetic": {"n_sessions": 600, "n_users": 400}}, "features": FEATURES},
        "registry": {"model_name": SEGMENT},
    },
}


@dataclass
class Service:
    port: int
    predictors: dict[str, Any]  # registered name -> the champion's predictor, loaded from its own model folder
    versions: dict[str, str]
    proc: subprocess.Popen

    def call(self, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
        return http_json(self.port, path, method, body)



@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Service:
    from mlflow.tracking import MlflowClient

    from recsys.config import config_from_dict
    from recsys.experiment import run_experiment
    from recsys.serving.predictor import load_predictor
    from recsys.tracking import MlflowTracker

    root = tmp_path_factory.mktemp("serving-tasks")
    predictors, versions = {}, {}
    with isolated_store(root) as uri:
        for name, raw in CONFIGS.items():
            result = run_experiment(config_from_dict(raw), tracker=MlflowTracker(uri), workdir=root / name)
            versions[name] = result.registry["version"]
            MlflowClient(uri).set_registered_model_alias(name, "champion", versions[name])
            predictors[name] = load_predictor(result.best.model_dir)
    env = {**os.environ, "RECSYS_ADMIN_TOKEN": secrets.token_hex(8), "MLFLOW_TRACKING_URI": uri}
    port_file = root / "port"
    proc = subprocess.Popen([sys.executable, "-m", "recsys.cli", "--tracking-uri", uri, "serve", "--models",
                             f"{AUDIENCE},{SEGMENT}", "--port", "0", "--port-file", str(port_file),
                             "--poll-interval", "0"], cwd=root, env=env, start_new_session=True)
    try:
        svc = Service(port=read_port_file(port_file, "recsys serve", proc), predictors=predictors,
                      versions=versions, proc=proc)
        wait_until(lambda: svc.call("/ready")[0] == 200, "recsys serve", proc)
        yield svc
    finally:
        stop_process(proc)


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(json.dumps(frame.to_dict("records"), default=str))


def test_models_map_each_task_to_its_champion(service: Service) -> None:
    status, info = service.call("/models")
    assert status == 200
    assert info["tasks"] == {"audience": AUDIENCE, "segment": SEGMENT}
    assert {(m["name"], m["version"], m["task"]) for m in info["models"]} == \
        {(AUDIENCE, service.versions[AUDIENCE], "audience"), (SEGMENT, service.versions[SEGMENT], "segment")}


def test_recommendations_without_a_recommend_champion_are_503(service: Service) -> None:
    status, body = service.call("/users/u1/recommendations")
    assert status == 503 and "no champion for task 'recommend'" in body["detail"]


def test_audience_is_the_champions_cached_audience(service: Service) -> None:
    pred = service.predictors[AUDIENCE]
    product = str(pred.items.ids[0])
    status, body = service.call(f"/products/{product}/audience?n=5")
    assert status == 200
    assert body["model"] == {"name": AUDIENCE, "version": service.versions[AUDIENCE], "alias": "champion"}
    expected = _records(pred.predict(pd.DataFrame({"item_id": [product]}), {"n": 5}))
    assert body["results"] == expected and {r["reason"] for r in body["results"]} == {"model"}


def test_unknown_product_gets_the_fallback_audience_with_a_reason(service: Service) -> None:
    status, body = service.call("/products/never-sold/audience?n=5")
    assert status == 200 and body["results"]
    assert {r["reason"] for r in body["results"]} == {"cold_start"}


def test_audience_deeper_than_the_cache_is_422_naming_the_limit(service: Service) -> None:
    status, body = service.call("/products/p/audience?n=21")
    assert status == 422 and "n must be in [1, 20]" in body["detail"]


def test_segments_assign_sessions_like_the_champion(service: Service) -> None:
    sessions = [{"pageviews": 1, "time_on_site": 5, "product_views": 0, "cart_adds": 0, "transactions": 0,
                 "revenue": 0},
                {"pageviews": 40, "time_on_site": 2400, "product_views": 25, "cart_adds": 4, "transactions": 1,
                 "revenue": 180.0}]
    status, body = service.call("/segments", "POST", {"sessions": sessions, "session_ids": ["a", "b"]})
    assert status == 200
    frame = pd.DataFrame(sessions).astype(float)
    frame.insert(0, "session_id", ["a", "b"])
    assert body["results"] == _records(service.predictors[SEGMENT].predict(frame, {}))
    assert [r["session_id"] for r in body["results"]] == ["a", "b"]


@pytest.mark.parametrize("payload,fragment", [
    ({"sessions": [{"pageviews": 3.0}]}, "missing session feature"),
    ({"sessions": [dict.fromkeys(FEATURES, 1.0)], "session_ids": ["a", "b"]}, "one id per session"),
])
def test_bad_sessions_are_422_with_the_rule(service: Service, payload: dict, fragment: str) -> None:
    status, body = service.call("/segments", "POST", payload)
    assert status == 422 and fragment in body["detail"]
