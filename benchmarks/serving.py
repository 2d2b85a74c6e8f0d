"""`recsys serve` against `mlflow models serve` for the same champion, driven by wrk (or locust) on loopback.

Starts both servers (one worker each) for the registered model's `@champion`, spreads requests over many known user
ids, and prints RPS, p50/p95/p99 latency and failures side by side as JSON (also saved to
benchmarks/results/serving.json). Scenarios:

  recsys cached     GET /users/{id}/recommendations           (fast path: pre-serialised bytes)
  recsys cold       GET /users/{unknown id}/recommendations   (fast path: popular items, id spliced into bytes)
  recsys uncached   GET /users/{id}/recommendations?k=7       (FastAPI route, answer built from the top-K arrays)
  mlflow serve      POST /invocations {"dataframe_split": {"columns": ["user_id"], "data": [[id]]}, "params": {"k": 10}}

    recsys run configs/quickstart.yaml && recsys registry promote -m recsys-quickstart   # a champion to serve
    python benchmarks/serving.py --model recsys-quickstart --duration 15 --connections 64

Needs wrk (`apt-get install -y wrk`) or, failing that, locust (`pip install locust`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
    .. '"status_errors": %d, "timeouts": %d, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, '
    .. '"mean_ms": %.3f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before {url} answered 200")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer 200 within {deadline_s:.0f}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def lua_list(values: list[str]) -> str:
    return "{" + ",".join(json.dumps(v) for v in values) + "}"


def wrk_script(kind: str, user_ids: list[str], query: str = "") -> str:
    if kind == "mlflow":
        bodies = [json.dumps({"dataframe_split": {"columns": ["user_id"], "data": [[u]]}, "params": {"k": 10}})
                  for u in user_ids]
        return (f"local bodies = {lua_list(bodies)}\n"
                "local headers = {['Content-Type'] = 'application/json'}\n"
                "request = function() return wrk.format('POST', '/invocations', headers, "
                "bodies[math.random(#bodies)]) end\n" + WRK_DONE)
    paths = [f"/users/{u}/recommendations{query}" for u in user_ids]
    return (f"local paths = {lua_list(paths)}\n"
            "request = function() return wrk.format('GET', paths[math.random(#paths)]) end\n" + WRK_DONE)


def run_wrk(url: str, script: str, connections: int, threads: int, duration: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
                              "-s", f.name, url], capture_output=True, text=True, timeout=duration + 60, check=False)
    finally:
        os.unlink(f.name)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    raw = json.loads(line[len("WRK_JSON "):])
    failures = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return {"rps": raw["requests"] / (raw["duration_us"] / 1e6), "requests": raw["requests"], "failures": failures,
            "p50_ms": raw["p50_ms"], "p95_ms": raw["p95_ms"], "p99_ms": raw["p99_ms"], "max_ms": raw["max_ms"],
            "errors": {k: raw[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors",
                                           "timeouts")}}


LOCUST_FILE = """
import json, random
from locust import FastHttpUser, constant, task
IDS = json.loads({ids!r})
class U(FastHttpUser):
    wait_time = constant(0)
    @task
    def go(self):
        u = random.choice(IDS)
        if {mlflow}:
            self.client.post("/invocations", json={{"dataframe_split": {{"columns": ["user_id"], "data": [[u]]}},
                                                   "params": {{"k": 10}}}}, name="invocations")
        else:
            self.client.get(f"/users/{{u}}/recommendations{query}", name="recommendations")
"""


def run_locust(url: str, kind: str, user_ids: list[str], connections: int, duration: int, query: str = "") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "locustfile.py"
        path.write_text(LOCUST_FILE.format(ids=json.dumps(user_ids), mlflow=kind == "mlflow", query=query))
        subprocess.run(["locust", "-f", str(path), "--headless", "-u", str(connections), "-r", str(connections),
                        "-t", f"{duration}s", "--host", url, "--csv", str(Path(tmp) / "out"), "--only-summary"],
                       capture_output=True, text=True, timeout=duration + 120, check=False)
        with open(Path(tmp) / "out_stats.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        agg = next(r for r in rows if r["Name"] == "Aggregated")
    return {"rps": float(agg["Requests/s"]), "requests": int(agg["Request Count"]),
            "failures": int(agg["Failure Count"]), "p50_ms": float(agg["50%"]), "p95_ms": float(agg["95%"]),
            "p99_ms": float(agg["99%"]), "max_ms": float(agg["Max Response Time"]), "errors": {}}


def drive(tool: str, url: str, kind: str, user_ids: list[str], args: argparse.Namespace, query: str = "") -> dict:
    if tool == "wrk":
        run_wrk(url, wrk_script(kind, user_ids, query), args.connections, args.threads, args.warmup)
        out = run_wrk(url, wrk_script(kind, user_ids, query), args.connections, args.threads, args.duration)
    else:
        run_locust(url, kind, user_ids, args.connections, args.warmup, query)
        out = run_locust(url, kind, user_ids, args.connections, args.duration, query)
    out["load_avg_after"] = os.getloadavg()[0]
    return out


def known_user_ids(tracking_uri: str, model: str, alias: str, n: int, seed: int) -> tuple[list[str], str]:
    from recsys.data.vocab import Vocabulary
    from recsys.tracking.model_store import download_model_folder, resolve_alias

    ref = resolve_alias(tracking_uri, model, alias)
    if ref is None:
        sys.exit(f"error: {model} has no version with alias {alias!r} in {tracking_uri}; run "
                 f"`recsys run configs/quickstart.yaml` and `recsys registry promote -m {model}` first")
    with tempfile.TemporaryDirectory() as tmp:
        folder = download_model_folder(tracking_uri, ref, Path(tmp))
        ids = Vocabulary.load(folder / "users.parquet").ids
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(ids), size=min(n, len(ids)), replace=False)
    return [str(ids[i]) for i in pick], ref.version


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    p.add_argument("--model", default="recsys-quickstart")
    p.add_argument("--alias", default="champion")
    p.add_argument("--duration", type=int, default=15, help="seconds measured per scenario (after --warmup)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="wrk threads (1 leaves a core to the server on 2 cores)")
    p.add_argument("--users", type=int, default=5000, help="distinct user ids the requests are spread over")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-mlflow", action="store_true")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serving.json"))
    args = p.parse_args()

    tool = "wrk" if shutil.which("wrk") else "locust" if shutil.which("locust") else None
    if tool is None:
        sys.exit("error: no load generator found; install wrk (`apt-get install -y wrk`) or locust (`pip install locust`)")
    user_ids, version = known_user_ids(args.tracking_uri, args.model, args.alias, args.users, args.seed)
    env = {**os.environ, "MLFLOW_TRACKING_URI": args.tracking_uri, "RECSYS_LOG_LEVEL": "WARNING"}
    results: dict[str, dict] = {}

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "recsys.cli", "serve", "--models", args.model, "--alias", args.alias,
                             "--port", str(port), "--poll-interval", "0"], env=env, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/ready", proc, 180)
        url = f"http://127.0.0.1:{port}"
        results["recsys serve (cached)"] = drive(tool, url, "recsys", user_ids, args)
        cold = [f"new-user-{i}" for i in range(len(user_ids))]
        results["recsys serve (cold-start users)"] = drive(tool, url, "recsys", cold, args)
        results["recsys serve (uncached k=7)"] = drive(tool, url, "recsys", user_ids, args, query="?k=7")
    finally:
        stop(proc)

    if not args.skip_mlflow:
        port = free_port()
        proc = subprocess.Popen(["mlflow", "models", "serve", "-m", f"models:/{args.model}@{args.alias}",
                                 "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
                                env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # it logs a traceback per request cut at the end
        try:
            wait_ready(f"http://127.0.0.1:{port}/ping", proc, 300)
            results["mlflow models serve"] = drive(tool, f"http://127.0.0.1:{port}", "mlflow", user_ids, args)
        finally:
            stop(proc)

    report = {
        "model": args.model, "alias": args.alias, "version": version, "tool": tool,
        "connections": args.connections, "threads": args.threads, "duration_s": args.duration,
        "distinct_users": len(user_ids), "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "results": results,
    }
    ours, peer = results.get("recsys serve (cached)"), results.get("mlflow models serve")
    if ours and peer and peer["rps"] > 0:
        report["ratio_rps_vs_mlflow"] = ours["rps"] / peer["rps"]
        report["ratio_p99_mlflow_over_ours"] = peer["p99_ms"] / ours["p99_ms"] if ours["p99_ms"] else None
    text = json.dumps(report, indent=2)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
