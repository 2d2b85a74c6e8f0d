"""Runs left RUNNING by a process that died: the next experiment closes them FAILED; live processes, other hosts,
reused pids and runs logged by something else are told apart (real SQLite store, real processes)."""

from __future__ import annotations

import socket
import subprocess
import sys

from mlflow.tracking import MlflowClient

from recsys.experiment import run_experiment
from recsys.tracking import MlflowTracker
from recsys.tracking.orphans import (
    CLOSED_TAG,
    HOST_TAG,
    PID_TAG,
    PIDNS_TAG,
    START_TAG,
    close_orphans,
    pid_namespace,
    process_start,
    process_tags,
)


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def test_close_orphans_closes_only_the_runs_of_dead_processes_on_this_host(mlflow_uri):
    client = MlflowClient(mlflow_uri)
    exp = client.create_experiment("orphans")
    host = socket.gethostname()
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        live_start = process_start(live.pid)
        assert live_start and pid_namespace()  # the precondition: /proc on this machine
        dead = _dead_pid()
        ns = pid_namespace()
        cases = {
            "dead": {PID_TAG: str(dead), HOST_TAG: host, START_TAG: "12345", PIDNS_TAG: ns},
            "reused pid": {PID_TAG: str(live.pid), HOST_TAG: host, START_TAG: str(int(live_start) - 1),
                           PIDNS_TAG: ns},
            "live": {PID_TAG: str(live.pid), HOST_TAG: host, START_TAG: live_start, PIDNS_TAG: ns},
            "other host": {PID_TAG: str(dead), HOST_TAG: host + "-elsewhere", START_TAG: "12345", PIDNS_TAG: ns},
            "other container": {PID_TAG: str(dead), HOST_TAG: host, START_TAG: "12345", PIDNS_TAG: "pid:[1]"},
            "this process": process_tags(),
            "no identity": {},
            "bad pid": {PID_TAG: "n/a", HOST_TAG: host},
        }
        ids = {name: client.create_run(exp, tags=tags, run_name=name).info.run_id for name, tags in cases.items()}
        finished = client.create_run(exp, tags=cases["dead"], run_name="finished").info.run_id
        client.set_terminated(finished, "FINISHED")

        closed = close_orphans(client, exp)

        assert sorted(closed) == sorted([ids["dead"], ids["reused pid"]])
        status = {name: client.get_run(i).info for name, i in ids.items()}
        assert {n: s.status for n, s in status.items()} == {
            "dead": "FAILED", "reused pid": "FAILED", "live": "RUNNING", "other host": "RUNNING",
            "other container": "RUNNING",
            "this process": "RUNNING", "no identity": "RUNNING", "bad pid": "RUNNING"}
        assert status["dead"].end_time and status["reused pid"].end_time
        why = client.get_run(ids["dead"]).data.tags[CLOSED_TAG]
        assert why.startswith(f"process {dead} on {host} ended without closing the run")
        assert CLOSED_TAG not in client.get_run(ids["live"]).data.tags
        assert client.get_run(finished).info.status == "FINISHED"
        assert close_orphans(client, exp) == []  # closed once
    finally:
        live.communicate(b"")


def test_experiment_and_model_runs_carry_the_process_and_the_next_experiment_closes_its_orphans(mlflow_uri,
                                                                                                tiny_config):
    cfg = tiny_config(models=[{"name": "popularity"}], registry={"enabled": False})
    client = MlflowClient(mlflow_uri)
    exp = client.create_experiment(cfg.name)
    host = socket.gethostname()
    orphan = client.create_run(exp, tags={PID_TAG: str(_dead_pid()), HOST_TAG: host, START_TAG: "1",
                                          PIDNS_TAG: pid_namespace()}, run_name="killed earlier").info.run_id
    result = run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
    mine = process_tags()
    for run_id in [result.parent_run_id, *result.run_ids.values()]:
        tags = client.get_run(run_id).data.tags
        assert {k: tags[k] for k in mine} == mine
    assert client.get_run(orphan).info.status == "FAILED"
    assert all(client.get_run(r).info.status == "FINISHED" for r in [result.parent_run_id, *result.run_ids.values()])
