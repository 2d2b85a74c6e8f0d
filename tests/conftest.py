"""Shared fixtures: a seeded rng, tiny deterministic data, a temporary real MLflow SQLite store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("RECSYS_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RECSYS_SHARED_DATA", REPO.parent / "shared" / "data"))


_MLFLOW_CONTEXT = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")
_MLFLOW_CONTEXT_AT_START = {name: os.environ.get(name) for name in _MLFLOW_CONTEXT}


@pytest.fixture(autouse=True)
def _no_inherited_mlflow_experiment():
    """`mlflow.set_experiment` exports MLFLOW_EXPERIMENT_ID to os.environ (for child processes): without this, a
    later test's subprocess (`mlflow run --experiment-name`, `recsys run`) would inherit an earlier test's
    experiment, and fail or log into it depending on the order. Put the variables back as the session found them."""
    yield
    for name, value in _MLFLOW_CONTEXT_AT_START.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A fresh SQLite tracking store + local artifact folder under tmp_path; cwd moved there too."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    import mlflow

    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def tiny_config():
    """A small synthetic recommend experiment config (seconds to run)."""
    from recsys.experiment import experiment_config_from_dict

    def make(**over):
        raw = {
            "name": "tiny",
            "seed": 7,
            "data": {"source": "synthetic", "synthetic": {"n_users": 400, "n_items": 150, "n_categories": 6,
                                                          "mean_interactions": 15}},
            "split": {"method": "temporal", "test_size": 0.2},
            "metrics": {"k": [5, 10]},
            "models": [{"name": "random"}, {"name": "popularity"},
                       {"name": "item_knn", "params": {"k_neighbors": 20}},
                       {"name": "als", "params": {"factors": 8, "iterations": 5, "num_threads": 1}}],
        }
        for key, value in over.items():
            raw[key] = value
        return experiment_config_from_dict(raw)

    return make


@pytest.fixture
def time_zone(monkeypatch):
    """Switch this process's local time zone (TZ + time.tzset) for one test; restored afterwards."""

    def switch(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield switch
    monkeypatch.undo()
    time.tzset()


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data (or $RECSYS_SHARED_DATA); tests skip, saying why, when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path}; set RECSYS_SHARED_DATA to the shared data folder")
    return path


def free_port() -> int:
    """A TCP port that was free on loopback a moment ago. Racy on its own (another process may take it before the
    server binds it): start servers with `start_on_free_port`, or let them bind port 0 (`recsys serve --port 0
    --port-file`) and read the port back with `read_port_file`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    """Whether some process holds `port` on loopback right now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def stop_process(proc: subprocess.Popen, seconds: float = 30) -> None:
    """SIGTERM the process (its whole group when it leads one), then SIGKILL after `seconds`."""
    if proc.poll() is not None:
        return
    try:
        group = os.getpgid(proc.pid) == proc.pid
        os.killpg(proc.pid, signal.SIGTERM) if group else proc.terminate()
        proc.wait(seconds)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
        proc.wait(seconds)


def start_on_free_port(launch: Callable[[int], subprocess.Popen], ready: Callable[[int], bool], what: str,
                       attempts: int = 4, **wait: Any) -> tuple[subprocess.Popen, int]:
    """Start a server that cannot bind port 0 itself (`mlflow server`, `mlflow models serve`) on a free port.

    If it exits while its port is held by someone else (it lost the port between our probe and its bind), it is
    started again on a fresh port; any other failure, or the last attempt, raises with `wait_until`'s message.
    """
    for attempt in range(1, attempts + 1):
        port = free_port()
        proc = launch(port)
        try:
            wait_until(lambda port=port: ready(port), what, proc, **wait)
            assert proc.poll() is None, f"{what}: exited with rc={proc.returncode} while port {port} answered"
            return proc, port
        except AssertionError:
            lost = proc.poll() is not None and port_in_use(port)
            stop_process(proc)
            if not lost or attempt == attempts:
                raise
    raise AssertionError("unreachable")


def read_port_file(path: Path, what: str, proc: subprocess.Popen, seconds: float = 120) -> int:
    """The port a server bound itself (it writes the file atomically once bound); fails loudly at the deadline."""
    wait_until(lambda: path.is_file(), f"{what} port file {path}", proc, seconds=seconds)
    return int(path.read_text().strip())


def wait_until(ready: Callable[[], bool], what: str, proc: subprocess.Popen | None = None, seconds: float = 120,
               interval: float = 0.2, detail: Callable[[], str] | None = None) -> None:
    """Poll `ready` (an OSError counts as not ready) with a bounded deadline; fail early if `proc` exits."""
    deadline = time.monotonic() + seconds
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited with rc={proc.returncode}"
                                 + (f"\n{detail()}" if detail else ""))
        try:
            if ready():
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{what} not ready within {seconds}s" + (f"\n{detail()}" if detail else "")
        time.sleep(interval)  # readiness poll, not a timing assumption


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Print the random-order seed and the local time zone even under -q, so any failing order can be replayed."""
    if config.pluginmanager.hasplugin("randomly") and config.getoption("randomly_seed", None) is not None:
        seed = config.getoption("randomly_seed")
        zone = os.environ.get("TZ", "unset")
        terminalreporter.write_line(f"random order: -p randomly --randomly-seed={seed} (TZ={zone}, "
                                    f"local zone {time.tzname[0]})")


@dataclass(frozen=True)
class PostgresCluster:
    url: str  # SQLAlchemy base URL without a database (append /<db>); psycopg2 driver
    dsn: str  # libpq connection string of the `postgres` database
    port: int


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture
def postgres_cluster():
    """A throwaway PostgreSQL cluster on a free loopback port (trust auth); skips when the binaries are absent."""
    import shutil
    import tempfile

    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not on PATH")
    root = Path(tempfile.mkdtemp(prefix="recsys-pg-"))  # outside pytest's root-only tmp tree
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    try:
        subprocess.run(_as_postgres([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                       check=True, capture_output=True)
        for attempt in range(4):  # PostgreSQL cannot bind port 0: retry when another process took the probed port
            port = free_port()
            opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
            started = subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"),
                                                   "-w", "start"]), check=False, capture_output=True)
            if started.returncode == 0:
                break
            if attempt == 3 or not port_in_use(port):
                raise AssertionError(f"pg_ctl start failed (rc={started.returncode}): "
                                     f"{started.stderr.decode()[-2000:]}")
        # SQLAlchemy 2.1 defaults to psycopg 3: name psycopg2 explicitly
        yield PostgresCluster(url=f"postgresql+psycopg2://postgres@127.0.0.1:{port}",
                              dsn=f"host=127.0.0.1 port={port} user=postgres dbname=postgres", port=port)
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True,
                       check=False)
        shutil.rmtree(root, ignore_errors=True)
