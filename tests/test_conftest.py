"""The suite's own isolation: `isolated_store` and the per-test guard put back what a test changed process-wide
(environment, working directory, time zone, the recsys logger, MLflow's global URI, experiment and active run),
so that no test passes or fails because of the one that ran before it."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

import pytest
from conftest import _ProcessState, isolated_store, refused_port


def _guarded_env() -> dict[str, str]:
    """The variables the suite guards (MLflow's own bookkeeping, e.g. _MLFLOW_TELEMETRY_SESSION_ID, is its own)."""
    return {k: v for k, v in os.environ.items() if k.startswith(("MLFLOW_", "RECSYS_", "TZ"))}


def _global_uri() -> str | None:
    import mlflow.tracking._tracking_service.utils as tracking_utils

    return tracking_utils._tracking_uri


def _active_experiment() -> str | None:
    import mlflow.tracking.fluent as fluent

    return fluent._active_experiment_id


def test_isolated_store_points_everything_at_root_and_puts_it_all_back(tmp_path: Path, monkeypatch) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_RUN_ID", "run-of-an-outer-mlflow-run")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "outer")
    before = (_guarded_env(), os.getcwd(), _global_uri(), _active_experiment())
    root = tmp_path / "store"
    root.mkdir()
    with isolated_store(root) as uri:
        assert uri == f"sqlite:///{root / 'mlflow.db'}"
        assert os.environ["MLFLOW_TRACKING_URI"] == uri and mlflow.get_tracking_uri() == uri
        assert Path.cwd() == root
        assert "MLFLOW_RUN_ID" not in os.environ and "MLFLOW_EXPERIMENT_NAME" not in os.environ
        mlflow.set_experiment("inside")  # exports MLFLOW_EXPERIMENT_ID, sets the active experiment
        run = mlflow.start_run()
        os.environ["RECSYS_LEAK"] = "1"
    assert (_guarded_env(), os.getcwd(), _global_uri(), _active_experiment()) == before
    assert mlflow.active_run() is None
    assert MlflowClient(uri).get_run(run.info.run_id).info.status == "FINISHED"  # ended in its own store


def test_process_state_restores_time_zone_cwd_logger_and_guarded_env(tmp_path: Path) -> None:
    log = logging.getLogger("recsys")
    zone = (time.tzname, time.timezone)
    state = _ProcessState.capture()
    os.environ["TZ"] = "Pacific/Chatham" if os.environ.get("TZ") != "Pacific/Chatham" else "Asia/Tokyo"
    time.tzset()
    assert (time.tzname, time.timezone) != zone
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "99"
    os.environ["RECSYS_FAULT"] = "crash"
    os.environ["UNRELATED_TO_THE_SUITE"] = "kept"  # not ours to guard
    os.chdir(tmp_path)
    handler = logging.NullHandler()
    log.addHandler(handler)
    log.propagate = False
    try:
        state.restore()
        assert (time.tzname, time.timezone) == zone
        assert _guarded_env() == state.env
        assert os.getcwd() == state.cwd
        assert handler not in log.handlers and log.propagate == state.logger[2]
        assert os.environ["UNRELATED_TO_THE_SUITE"] == "kept"
    finally:
        os.environ.pop("UNRELATED_TO_THE_SUITE", None)


def test_refused_port_refuses_and_cannot_be_taken() -> None:
    with refused_port() as port:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
