"""Shared pieces of the fault suite: a tiny experiment, a subprocess runner, store assertions with MlflowClient."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

TINY: dict[str, Any] = {
    "name": "faults",
    "seed": 5,
    "data": {"source": "synthetic", "synthetic": {"n_users": 300, "n_items": 120, "n_categories": 6,
                                                  "mean_interactions": 12}},
    "split": {"method": "temporal", "test_size": 0.2},
    "metrics": {"k": [10]},
    "models": [{"name": "random"}, {"name": "popularity"},
               {"name": "als", "params": {"factors": 8, "iterations": 3, "num_threads": 1}, "n_trials": 3,
                "pruner": "none", "search": {"regularization": {"type": "float", "low": 1e-3, "high": 1.0,
                                                                "log": True}}}],
    "registry": {"model_name": "faults-model"},
}


def write_config(tmp: Path, **over: Any) -> Path:
    raw = {**TINY, **over}
    path = tmp / "faults.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def env(mlflow_uri: str | None = None, **extra: str) -> dict[str, str]:
    leaked = ("RECSYS_FAULT", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT")  # set by other tests or an outer `mlflow run`
    out = {k: v for k, v in os.environ.items() if not k.startswith(leaked)}
    out.update({"RECSYS_PROGRESS": "0", "PYTHONPATH": str(ROOT) + os.pathsep + out.get("PYTHONPATH", "")})
    if mlflow_uri:
        out["MLFLOW_TRACKING_URI"] = mlflow_uri
    out.update(extra)
    return out


def recsys(args: list[str], cwd: Path, environ: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recsys.cli", *args], check=False, cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=timeout)


def one_clean_line(proc: subprocess.CompletedProcess) -> None:
    """At most 2 lines of our own on stderr and no traceback (log lines of the run itself are allowed before)."""
    err = proc.stderr
    assert "Traceback" not in err, err[-3000:]
    ours = [line for line in err.splitlines() if line.startswith(("error:", "interrupted"))]
    assert 1 <= len(ours) <= 2, err[-3000:]


def _client(uri: str) -> Any:
    """An MlflowClient on `uri`, opened the way the platform opens it: a fresh SQLite schema is created under the
    platform's file lock. A test that polls a store a child process is still creating would otherwise race it in
    MLflow's schema migration ("table ... already exists"). `write=False`: a poll never takes the write lock the
    child needs."""
    from mlflow.tracking import MlflowClient

    from recsys.tracking.store import check_tracking_store

    check_tracking_store(uri, write=False)
    return MlflowClient(uri, registry_uri=uri)


def runs(uri: str, experiment: str = "faults") -> list[Any]:
    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def model_versions(uri: str, name: str = "faults-model") -> list[Any]:
    return list(_client(uri).search_model_versions(f"name='{name}'"))


def check_lease_expiry(uri: str, name: str) -> None:
    """A lease whose holder died (never released) is taken over once it expires; a live one is not; the dead
    holder's late release does not free its successor's lease."""
    from recsys.tracking.registry_lock import _SqlLease

    dead = _SqlLease(uri, name, ttl=0.0)
    assert dead.try_acquire()
    live = _SqlLease(uri, name, ttl=3600.0)
    assert live.try_acquire(), "an expired lease must be taken over"
    other = _SqlLease(uri, name, ttl=3600.0)
    assert not other.try_acquire(), "a live lease must not be taken"
    dead.release()
    assert other.current_holder() == live.holder and not other.try_acquire()
    live.release()
    assert other.try_acquire()
    other.release()
