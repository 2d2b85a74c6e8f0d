"""`mlflow models serve -m models:/<name>@champion` answers /invocations with the in-process top-K."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import start_on_free_port, stop_process
from mlflow.tracking import MlflowClient

from recsys.experiment import run_experiment
from recsys.tracking import MlflowTracker

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it

NAME = "recsys-tiny-serving"



def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status


def test_served_champion_returns_the_same_top_k_as_in_process_predict(mlflow_uri, tiny_config, tmp_path):
    policy = str(Path(__file__).resolve().parents[2] / "configs/policies/default.yaml")
    cfg = tiny_config(registry={"model_name": NAME, "policy": policy}, experiment={"auto_promote": True},
                      models=[{"name": "popularity"},
                              {"name": "als", "params": {"factors": 8, "iterations": 5, "num_threads": 1}}])
    res = run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
    # experiment.auto_promote ran the gate at the end of the experiment: the first champion beat popularity
    assert res.registry["promotion"]["decision"] == "promoted"
    champion = MlflowClient(mlflow_uri).get_model_version_by_alias(NAME, "champion")
    assert str(champion.version) == res.registry["version"]

    known = [str(u) for u in res.context.state["target"].user_ids[:4]]
    users = [*known, "no-such-user"]  # the last one is served by the cold-start fallback
    uri = f"models:/{NAME}@champion"
    expected = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"user_id": users}), params={"k": 5})

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    log = (tmp_path / "serve.log").open("w")

    def launch(port: int) -> subprocess.Popen:
        return subprocess.Popen([str(bin_dir / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local",
                                 "-p", str(port), "-h", "127.0.0.1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    proc = None
    try:
        proc, port = start_on_free_port(launch, lambda p: _get(f"http://127.0.0.1:{p}/ping") == 200,
                                        "mlflow models serve", interval=0.5,
                                        detail=lambda: (tmp_path / "serve.log").read_text()[-2000:])
        body = json.dumps({"dataframe_records": [{"user_id": u} for u in users], "params": {"k": 5}}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            served = pd.DataFrame(json.loads(resp.read())["predictions"])
    finally:
        if proc is not None:
            stop_process(proc, 20)
        log.close()
    cols = ["user_id", "item_id", "rank", "reason"]
    assert served[cols].to_dict("records") == expected[cols].to_dict("records")
    assert (served.groupby("user_id").size() == 5).all() and set(served["user_id"]) == set(users)
    assert served["score"].to_numpy() == pytest.approx(expected["score"].to_numpy())
