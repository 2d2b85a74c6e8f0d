"""The service under hostile or broken input: a body over the limit is refused with 413 before it is parsed (by
Content-Length and while streaming), other requests keep being answered, public responses show no paths, and a
champion that failed to load is reported as such (503), not as "no version holds the alias"."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import http_json, isolated_store, read_port_file, stop_process, wait_until
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

GOOD, BROKEN = "faults-serving", "faults-broken"
LIMIT = 65536
TINY = {
    "name": "faults-serving", "seed": 7,
    "data": {"source": "synthetic", "synthetic": {"n_users": 200, "n_items": 80, "n_categories": 4,
                                                  "mean_interactions": 10}},
    "split": {"method": "temporal", "test_size": 0.2}, "metrics": {"k": [10]},
    "models": [{"name": "popularity"}], "registry": {"model_name": GOOD},
}


def _serve(root: Path, uri: str, models: str, name: str) -> tuple[subprocess.Popen, int]:
    port_file = root / f"{name}.port"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "RECSYS_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "recsys.cli", "--tracking-uri", uri, "serve", "--models", models,
                             "--port", "0", "--port-file", str(port_file), "--poll-interval", "0",
                             "--max-body-bytes", str(LIMIT)], cwd=root, env=env, start_new_session=True,
                            stderr=subprocess.DEVNULL)
    return proc, read_port_file(port_file, f"recsys serve {name}", proc)


def _get(port: int, path: str) -> tuple[int, dict]:
    return http_json(port, path)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from recsys.config import config_from_dict
    from recsys.experiment import run_experiment
    from recsys.tracking import MlflowTracker

    root = tmp_path_factory.mktemp("faults-serving")
    with isolated_store(root) as uri:
        result = run_experiment(config_from_dict(TINY), tracker=MlflowTracker(uri))
    client = MlflowClient(uri, registry_uri=uri)
    version = client.get_model_version(GOOD, result.registry["version"])
    client.set_registered_model_alias(GOOD, "champion", version.version)
    broken_dir = root / "broken-model"
    broken_dir.mkdir()
    (broken_dir / "MLmodel").write_text("this: [is not a model\n")
    client.create_registered_model(BROKEN)
    bad = client.create_model_version(BROKEN, source=str(broken_dir), run_id=version.run_id)
    client.set_registered_model_alias(BROKEN, "champion", bad.version)
    procs = []
    try:
        good, good_port = _serve(root, uri, GOOD, "good")
        procs.append(good)
        broken, broken_port = _serve(root, uri, BROKEN, "broken")
        procs.append(broken)
        wait_until(lambda: _get(good_port, "/ready")[0] == 200, "good service", good)
        wait_until(lambda: _get(broken_port, "/models")[1].get("errors"), "broken service", broken)
        user = str(result.best.model.users_.ids[0])
        yield {"root": root, "good": good_port, "broken": broken_port, "user": user}
    finally:
        for p in procs:
            stop_process(p)


def _raw(port: int, head: bytes, body: bytes) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1] or b"null")


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def test_declared_20_mb_body_is_413_before_it_is_sent(service) -> None:
    head = (b"POST /segments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 20971520\r\n\r\n")
    status, body = _raw(service["good"], head, b'{"sessions": [' + b'{"a": 1.0},' * 1000)
    assert status == 413 and str(LIMIT) in body["detail"]
    assert _get(service["good"], f"/users/{service['user']}/recommendations")[0] == 200  # still serving


def test_streamed_body_over_the_limit_is_413(service) -> None:
    head = b"POST /segments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    piece = b'{"a": 1.0},' * 2000  # 22 kB per chunk, 4 chunks: over the 64 kB limit
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(4)) + b"0\r\n\r\n"
    status, body = _raw(service["good"], head, b"%x\r\n%s\r\n" % (len(b'{"sessions": ['), b'{"sessions": [') + chunks)
    assert status == 413 and str(LIMIT) in body["detail"]


def test_small_bodies_still_reach_the_routes(service) -> None:
    payload = json.dumps({"items": [], "k": 5}).encode()
    head = (b"POST /recommendations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(payload))
    status, body = _raw(service["good"], head, payload)
    assert status == 200 and len(body["items"]) == 5


def test_public_responses_show_no_paths(service) -> None:
    root = str(service["root"])
    for port in (service["good"], service["broken"]):
        for path in ("/ready", "/models"):
            text = json.dumps(_get(port, path)[1])
            assert root not in text and "/tmp" not in text and "file:" not in text, text


def test_champion_that_failed_to_load_is_a_truthful_503(service) -> None:
    status, body = _get(service["broken"], "/ready")
    assert status == 503 and "failed to load" in body["detail"]
    status, body = _get(service["broken"], f"/users/{service['user']}/recommendations")
    assert status == 503 and "failed to load" in body["detail"] and "no version holds" not in body["detail"]
