"""Shared fixtures: a seeded rng, tiny deterministic data, a temporary real MLflow SQLite store."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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
_GUARDED_ENV = ("MLFLOW_", "RECSYS_", "TZ")  # what the project and MLflow read from the environment


@dataclass
class _ProcessState:
    """What a test (or a store set up for a module) may change process-wide without meaning to keep it: the
    MLFLOW_* / RECSYS_* / TZ variables, the working directory, the local time zone, the `recsys` logger (the CLI's
    `main` configures a handler and turns propagation off, so a later test's caplog would see nothing), and
    MLflow's process-wide tracking URI, registry URI and active experiment (`MlflowTracker` and
    `mlflow.set_tracking_uri` set them; the global URI wins over MLFLOW_TRACKING_URI, so a later test would log
    into an earlier test's store)."""

    env: dict[str, str]
    cwd: str
    logger: tuple[list[logging.Handler], int, bool]
    mlflow: tuple[Any, Any, Any]

    @classmethod
    def capture(cls) -> _ProcessState:
        log = logging.getLogger("recsys")
        return cls(env={k: v for k, v in os.environ.items() if k.startswith(_GUARDED_ENV)}, cwd=os.getcwd(),
                   logger=(list(log.handlers), log.level, log.propagate), mlflow=_mlflow_globals())

    def restore(self) -> None:
        """Put everything back as captured (ending any MLflow run left active first, in the store it runs in)."""
        fluent = sys.modules.get("mlflow.tracking.fluent")
        if fluent is not None:
            while fluent.active_run() is not None:
                fluent.end_run()
            if _mlflow_globals() != self.mlflow:
                import mlflow.tracking._model_registry.utils as registry_utils
                import mlflow.tracking._tracking_service.utils as tracking_utils

                tracking_utils.set_tracking_uri(self.mlflow[0])  # also resets the tracer provider bound to the URI
                registry_utils._registry_uri = self.mlflow[1]
                fluent._active_experiment_id = self.mlflow[2]
        for name in [k for k in os.environ if k.startswith(_GUARDED_ENV) and k not in self.env]:
            del os.environ[name]
        os.environ.update(self.env)
        time.tzset()  # TZ may be back while the C library still runs in the zone a test switched to
        try:
            moved = os.getcwd() != self.cwd
        except FileNotFoundError:  # the test's working directory was removed under it
            moved = True
        if moved:
            os.chdir(self.cwd)
        log = logging.getLogger("recsys")
        log.handlers[:] = self.logger[0]
        log.setLevel(self.logger[1])
        log.propagate = self.logger[2]


def _mlflow_globals() -> tuple[Any, Any, Any]:
    """MLflow's global tracking URI, registry URI and active experiment id (all unset before it is imported)."""
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is None:
        return (None, None, None)
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    return (tracking_utils._tracking_uri, registry_utils._registry_uri, fluent._active_experiment_id)


@pytest.fixture(autouse=True)
def _leaves_no_trace():
    """Every test leaves the process as it found it (see `_ProcessState`), so no test depends on which ran before.

    MLFLOW_EXPERIMENT_ID/NAME and MLFLOW_RUN_ID go back to how the session found them, not how the test found
    them: `mlflow.set_experiment` exports MLFLOW_EXPERIMENT_ID to os.environ (for child processes), also while a
    module-scoped fixture is set up, and a later subprocess (`mlflow run --experiment-name`, `recsys run`) would
    inherit it and fail or log into it depending on the order."""
    state = _ProcessState.capture()
    yield
    state.restore()
    for name, value in _MLFLOW_CONTEXT_AT_START.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def isolated_store(root: Path) -> Iterator[str]:
    """Work in the SQLite MLflow store `root/mlflow.db` (created on first use; artifacts under root/mlruns):
    root is the working directory, MLFLOW_TRACKING_URI and MLflow's global URI point at the store, and no run or
    experiment is inherited (MLFLOW_RUN_ID, MLFLOW_EXPERIMENT_ID/NAME unset). Yields the store URI. On exit every
    environment variable, the working directory and MLflow's global state are put back as they were (see
    `_ProcessState`); a run left active is ended first.

        with isolated_store(tmp_path_factory.mktemp("serving")) as uri:
            result = run_experiment(cfg, tracker=MlflowTracker(uri))
    """
    import mlflow

    state = _ProcessState.capture()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    try:
        for name in _MLFLOW_CONTEXT:
            os.environ.pop(name, None)
        os.environ["MLFLOW_TRACKING_URI"] = uri
        os.chdir(root)
        mlflow.set_tracking_uri(uri)
        yield uri
    finally:
        state.restore()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def mlflow_uri(tmp_path) -> Iterator[str]:
    """A fresh SQLite tracking store + local artifact folder under tmp_path; cwd moved there too."""
    with isolated_store(tmp_path) as uri:
        yield uri


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


def http_json(port: int, path: str, method: str = "GET", body: Any = None, headers: dict | None = None,
              response_headers: dict | None = None) -> tuple[int, Any]:
    """One request to a server on loopback: (status, decoded JSON body or None). A `body` is sent as JSON; the
    response headers (lower-cased names) are copied into `response_headers` when given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        sent = {**(headers or {}), **({"Content-Type": "application/json"} if body is not None else {})}
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=sent)
        resp = conn.getresponse()
        raw = resp.read()
        if response_headers is not None:
            response_headers.update({k.lower(): v for k, v in resp.getheaders()})
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def free_port() -> int:
    """A TCP port that was free on loopback a moment ago. Racy on its own (another process may take it before the
    server binds it): start servers with `start_on_free_port`, or let them bind port 0 (`recsys serve --port 0
    --port-file`) and read the port back with `read_port_file`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port on which nobody listens, for as long as the block runs: bound here but never listened on, so
    a connection to it is refused and no server started meanwhile (by a parallel test) can take it, as it could a
    port probed with `free_port`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


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

    def create_databases(self, *names: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        try:
            with conn.cursor() as cur:
                for name in names:
                    cur.execute(f"CREATE DATABASE {name}")
        finally:
            conn.close()


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
