"""Runs left RUNNING by a process that died without closing them (SIGKILL, the OOM killer, a power cut).

Every experiment and model run carries the identity of the process that logs it: host, pid namespace, pid and
the pid's start time (Linux `/proc/<pid>/stat`, so a pid reused by another process is not taken for the
original; two containers with one host name have different pid namespaces). When the next experiment starts in
the same MLflow experiment, `close_orphans` closes as FAILED each RUNNING run whose process, on this host and in
this pid namespace, no longer exists, with a tag saying why. Runs of live processes, of other hosts or
containers, and runs without the identity (logged by something else: `mlflow run`'s own, Optuna's trials,
which the tuner closes) are left alone.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from mlflow.tracking import MlflowClient

from recsys.logging import get_logger

_log = get_logger(__name__)

PID_TAG = "recsys.pid"
HOST_TAG = "recsys.host"
START_TAG = "recsys.process_start"  # clock ticks after boot (field 22 of /proc/<pid>/stat); "" off Linux
PIDNS_TAG = "recsys.pid_namespace"  # /proc/self/ns/pid: containers with one hostname can see different pids
CLOSED_TAG = "recsys.closed_because"


def process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot), "" where /proc is absent, None if no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None if Path("/proc/self/stat").exists() else ""
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # fields after "(comm)" start at field 3; starttime is field 22


def process_tags() -> dict[str, str]:
    """The identity of this process, as run tags."""
    pid = os.getpid()
    return {PID_TAG: str(pid), HOST_TAG: socket.gethostname(), START_TAG: process_start(pid) or "",
            PIDNS_TAG: pid_namespace()}


def pid_namespace() -> str:
    """This process's pid namespace ("pid:[4026531836]"), "" where it cannot be read."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def is_orphan(tags: dict[str, str]) -> bool:
    """Whether the process named by a run's tags ran on this host and is gone (or its pid now belongs to another
    process). False when unsure."""
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return False
    if tags.get(PIDNS_TAG, "") != pid_namespace():  # another container on this host name: its pids are not ours
        return False
    try:
        pid = int(tags[PID_TAG])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    now = process_start(pid)
    if now is None:
        return True
    if now == "":  # no /proc: ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    return bool(tags.get(START_TAG)) and now != tags[START_TAG]


def close_orphans(client: MlflowClient, experiment_id: str) -> list[str]:
    """Close as FAILED the RUNNING runs of `experiment_id` whose process died; returns their run ids."""
    closed: list[str] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'",
                                  max_results=1000, page_token=token)
        for run in page:
            tags = run.data.tags
            if not is_orphan(tags):
                continue
            why = (f"process {tags[PID_TAG]} on {tags[HOST_TAG]} ended without closing the run (killed?); "
                   "closed by the next experiment")
            client.set_tag(run.info.run_id, CLOSED_TAG, why)
            client.set_terminated(run.info.run_id, "FAILED")
            closed.append(run.info.run_id)
        token = page.token
        if not token:
            break
    if closed:
        _log.warning("closed %d run(s) left RUNNING by a process that died (killed?) as FAILED: %s", len(closed),
                     ", ".join(closed))
    return closed
