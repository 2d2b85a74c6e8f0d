"""A 20 MB POST /segments against `recsys serve`: time to its 413, and the latency of cached recommendations
answered meanwhile, side by side with the same requests when no large body is in flight (the peer, same run).

Builds its own tiny store (a synthetic experiment, popularity champion) in a temp dir, so it needs nothing else:

    python benchmarks/body_limit.py [--repeats 20]

Prints JSON and saves it to benchmarks/results/body_limit.json. Goal (issue 15): 413 in < 0.5 s while a
concurrent cached recommendation answers in < 50 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIG = 20 * 1024 * 1024
TINY = {"name": "body-limit-bench", "seed": 7,
        "data": {"source": "synthetic", "synthetic": {"n_users": 500, "n_items": 200, "mean_interactions": 10}},
        "split": {"method": "temporal", "test_size": 0.2}, "metrics": {"k": [10]},
        "models": [{"name": "popularity"}], "registry": {"model_name": "body-limit-bench"}}


BODY = b'{"sessions": [' + b'{"a": 1.0},' * (BIG // 11)  # built once: not while a request is timed


def big_post(port: int) -> tuple[int, float]:
    """Send a 20 MB body as fast as the socket takes it; seconds from the first byte to the 413 status line."""
    body = BODY
    head = (b"POST /segments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        t0 = time.perf_counter()
        sender = threading.Thread(target=_send_quietly, args=(s, head + body), daemon=True)
        sender.start()
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        elapsed = time.perf_counter() - t0
    return int(data.split(b" ", 2)[1]), elapsed


def _send_quietly(s: socket.socket, data: bytes) -> None:
    try:
        s.sendall(data)
    except OSError:
        pass  # the server answered 413 and closed: the rest of the body is never read


def cached_get(port: int, user: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        t0 = time.perf_counter()
        conn.request("GET", f"/users/{user}/recommendations")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
        return time.perf_counter() - t0
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from recsys.config import config_from_dict
    from recsys.experiment import run_experiment
    from recsys.tracking import MlflowTracker

    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        os.chdir(root)
        result = run_experiment(config_from_dict(TINY), tracker=MlflowTracker(uri))
        from mlflow.tracking import MlflowClient

        MlflowClient(uri).set_registered_model_alias("body-limit-bench", "champion", result.registry["version"])
        user = str(result.best.model.users_.ids[0])
        port_file = root / "port"
        proc = subprocess.Popen([sys.executable, "-m", "recsys.cli", "--tracking-uri", uri, "serve", "--models",
                                 "body-limit-bench", "--port", "0", "--port-file", str(port_file),
                                 "--poll-interval", "0"], cwd=root, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            deadline = time.monotonic() + 180
            while not port_file.exists() or _status(int(port_file.read_text()), "/ready") != 200:
                assert proc.poll() is None and time.monotonic() < deadline, "service did not become ready"
                time.sleep(0.2)  # readiness poll
            port = int(port_file.read_text())
            for _ in range(20):
                cached_get(port, user)  # warm up
            alone = [cached_get(port, user) for _ in range(args.repeats)]
            to_413, during, statuses = [], [], []
            for _ in range(args.repeats):
                out: dict = {}
                t = threading.Thread(target=lambda o=out: o.update(zip(("status", "s"), big_post(port))))
                t.start()
                during.append(cached_get(port, user))
                t.join()
                statuses.append(out["status"])
                to_413.append(out["s"])
        finally:
            proc.terminate()
            proc.wait(30)
    ms = lambda xs: round(1000 * statistics.median(xs), 3)  # noqa: E731
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_1m": os.getloadavg()[0]},
        "body_bytes": BIG, "repeats": args.repeats, "statuses": sorted(set(statuses)),
        "to_413_ms": {"median": ms(to_413), "max": round(1000 * max(to_413), 3)},
        "cached_get_ms": {"alone_median": ms(alone), "during_big_body_median": ms(during),
                          "during_big_body_max": round(1000 * max(during), 3)},
        "ratio_during_vs_alone": round(statistics.median(during) / statistics.median(alone), 2),
        "goal": {"to_413_under_ms": 500, "cached_under_ms": 50,
                 "met": max(to_413) < 0.5 and max(during) < 0.05 and set(statuses) == {413}},
    }
    print(json.dumps(report, indent=2))
    out_path = REPO / "benchmarks" / "results" / "body_limit.json"
    out_path.write_text(json.dumps(report, indent=2) + "\n")


def _status(port: int, path: str) -> int:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return 0


if __name__ == "__main__":
    main()
