"""Faults and signals: one error boundary for every entry point, a signal policy, cheap store checks.

    from recsys.faults import boundary
    sys.exit(boundary(lambda: run(args), stores={"MLflow tracking store": uri}))

- `boundary` turns the project's own errors and every foreseeable infrastructure error (a locked, read-only,
  corrupted or non-database SQLite file, a full or read-only disk, an unknown URI scheme, an unreachable server,
  an Optuna storage that is down) into ONE line on stderr naming the store (password masked), the problem and the
  fix, exit 2. `RECSYS_DEBUG=1` re-raises with the traceback.
- SIGTERM / SIGINT raise `Interrupted` in the main thread (a KeyboardInterrupt, so Optuna fails the running trial
  and every `except Exception` lets it through); the tracking code closes its runs as KILLED with an end time,
  temporary directories are removed on the way out, and the process exits 143 (TERM) / 130 (INT) with one line.
- `checkpoint(stage)` is the fault-injection hook the tests use to signal a process at a known stage:
  RECSYS_FAULT_AT=<stage> [RECSYS_FAULT_SIGNAL=TERM|INT] [RECSYS_FAULT_TARGET=self|parent].
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import signal
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DEBUG_ENV = "RECSYS_DEBUG"
EXIT_INFRA = 2
SQLITE_TIMEOUT_S = 5.0  # what sqlite3 (and so MLflow's SQLAlchemy engine) waits for a lock


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived: the current step stops, runs close as KILLED, the process exits 128+signum."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"{signal.Signals(signum).name} received")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StoreError(Exception):
    """An infrastructure store cannot be used; the message is the one line the boundary prints."""


# signals ---------------------------------------------------------------------------------------------------
_received: list[int] = []


def _handler(signum: int, frame: Any) -> None:
    if _received:  # a second signal while cleaning up: finish the cleanup, exit with the first signal's code
        return
    _received.append(signum)
    raise Interrupted(signum)


def interrupted() -> bool:
    """Whether SIGTERM/SIGINT arrived under the current signal policy (cleanup is running)."""
    return bool(_received)


@contextlib.contextmanager
def signal_policy() -> Iterator[None]:
    """SIGTERM/SIGINT -> `Interrupted` in the main thread while the block runs (no-op off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    _received.clear()
    for s in previous:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def entry_point() -> None:
    """What every MLproject entry point calls first: under `mlflow run` (MLFLOW_RUN_ID set), die with the parent."""
    if os.environ.get("MLFLOW_RUN_ID"):
        die_with_parent()


def die_with_parent() -> None:
    """Linux: the kernel sends SIGTERM to this process when its parent dies (PR_SET_PDEATHSIG).

    Used by the MLproject entry points, so a killed `mlflow run` does not leave an orphaned child that goes on
    fitting and registering models. No-op elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the call took effect
        os.kill(os.getpid(), signal.SIGTERM)


def checkpoint(stage: str) -> None:
    """Fault-injection hook: signal this process (or its parent) when RECSYS_FAULT_AT names `stage`."""
    want = os.environ.get("RECSYS_FAULT_AT")
    if not want or want != stage:
        return
    sig = getattr(signal, "SIG" + os.environ.get("RECSYS_FAULT_SIGNAL", "TERM").upper().removeprefix("SIG"))
    target = os.getppid() if os.environ.get("RECSYS_FAULT_TARGET") == "parent" else os.getpid()
    os.kill(target, sig)  # to ourselves: the handler runs before os.kill returns
    if target != os.getpid():  # the parent dies; PR_SET_PDEATHSIG then signals us: wait for it here
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)


# the boundary ----------------------------------------------------------------------------------------------
def boundary(func: Callable[[], int], stores: dict[str, str | None] | None = None) -> int:
    """Run `func` under the signal policy; map errors to one line and an exit code (see the module docstring)."""
    from recsys.errors import RecsysError

    named: dict[str, str] = {k: v for k, v in (stores or {}).items() if v}
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0", "false", "no")
    try:
        with signal_policy():
            return int(func() or 0)
    except Interrupted as exc:
        print(f"interrupted by {signal.Signals(exc.signum).name}: runs closed as KILLED; rerun the same command "
              "to start again", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted by SIGINT: rerun the same command to start again", file=sys.stderr)
        return 130
    except (RecsysError, StoreError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_INFRA
    except Exception as exc:  # the boundary: only known infrastructure faults are mapped
        message = describe(exc, named)
        if message is None or debug:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_INFRA


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "; ".join(lines)[:1500]


def mask(url: str) -> str:
    """A URL without its password (safe to print or log)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 20:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _frames_mention(exc: BaseException, package: str) -> bool:
    tb = exc.__traceback__
    needle = f"{os.sep}{package}{os.sep}"
    while tb is not None:
        if needle in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def _which_store(chain: list[BaseException], stores: dict[str, str]) -> tuple[str, str]:
    """(label, masked url) of the store the failing call talked to, judged by the frames it went through."""
    if not stores:
        return "the store", ""
    optuna_label = next((k for k in stores if "optuna" in k.lower()), None)
    if optuna_label and any(_frames_mention(e, "optuna") for e in chain):
        return optuna_label, mask(stores[optuna_label])
    label = next((k for k in stores if "optuna" not in k.lower()), next(iter(stores)))
    return label, mask(stores[label])


def describe(exc: BaseException, stores: dict[str, str] | None = None) -> str | None:
    """One line for a known infrastructure fault (store, problem, fix), or None for anything else."""
    stores = stores or {}
    chain = _chain(exc)
    label, url = _which_store(chain, stores)
    where = f"{label} {url}".strip()
    text = " | ".join(f"{type(e).__name__}: {e}" for e in chain)
    low = text.lower()
    names = {c.__name__ for e in chain for c in type(e).__mro__}

    for e in chain:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            place = e.filename or "a file system this command writes to (MLflow artifacts, temp files or a store)"
            return f"no space left on the device holding {place}; free some space and rerun"
        if isinstance(e, OSError) and e.errno == errno.EROFS:
            return f"{e.filename or where} is on a read-only file system; point to a writable location and rerun"
        if isinstance(e, PermissionError):
            return f"permission denied on {e.filename or where}; fix the permissions or use another location"
    if "database or disk is full" in low:
        return f"{where}: no space left on the device (database or disk is full); free some space and rerun"
    if "database is locked" in low:
        return (f"{where}: the SQLite database is locked by another process; wait for it to finish (or stop it) "
                "and rerun, or use a server store (PostgreSQL) for concurrent writers")
    if "readonly database" in low or "read-only file system" in low:
        return f"{where}: the database is read-only; make the file and its directory writable or use another store"
    if "unable to open database file" in low:
        return (f"{where}: the SQLite file cannot be opened or created (missing or unwritable directory); "
                "create the directory or choose another path")
    if "file is not a database" in low or "malformed" in low or "file is encrypted" in low:
        return (f"{where}: the file is not a valid SQLite database (corrupted or truncated); restore it from a "
                "backup, or move it away to start a new store")
    if "unsupported uri" in low or "could not find a registered" in low or "unsupported model registry" in low:
        scheme = url.split("://")[0] if "://" in url else url
        return (f"{where}: unknown URI scheme {scheme!r}; use sqlite:///path.db, postgresql://user@host/db, "
                "file:///dir or http(s)://server")
    if names & {"ConnectionError", "NewConnectionError", "MaxRetryError", "ConnectTimeout", "ReadTimeout",
                "Timeout", "ConnectTimeoutError"} or "failed to establish a new connection" in low \
            or "max retries exceeded" in low or "connection refused" in low or "could not connect" in low \
            or "timed out" in low or "name or service not known" in low:
        return (f"{where}: cannot reach the server (connection refused or timed out); start it or fix the URL, "
                "then rerun")
    if "NoSuchModuleError" in names or "could not parse sqlalchemy url" in low:
        return f"{where}: not a valid database URL; use e.g. sqlite:///optuna.db or postgresql://user@host:5432/db"
    if names & {"OperationalError", "DatabaseError", "InterfaceError"}:
        first = _one_line(str(chain[-1]))[:300]
        return f"{where}: database error ({first}); check the database and rerun"
    return None


# store checks ----------------------------------------------------------------------------------------------
def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///` URL (None for memory databases and other schemes)."""
    m = re.match(r"^sqlite(\+\w+)?:///(.*)$", url)
    if not m or not m.group(2) or m.group(2) == ":memory:":
        return None
    return Path(m.group(2).split("?")[0])


def check_sqlite(path: Path, label: str, write: bool = True) -> None:
    """Cheap check before any work: the file opens, is a SQLite database, is not locked and can be written
    (`write=False`: only read, e.g. a service reading a store on a read-only mount)."""
    where = f"{label} sqlite:///{path}"
    parent = path.parent
    if not parent.exists():
        raise StoreError(f"{where}: the directory {parent} does not exist; create it or choose another path")
    if write and ((path.exists() and not os.access(path, os.W_OK)) or not os.access(parent, os.W_OK)):
        raise StoreError(f"{where}: the database is read-only (the file or its directory {parent} cannot be "
                         "written, e.g. a read-only mount); make both writable or use another store")
    if not path.exists():
        probe = parent / f".recsys-write-check-{os.getpid()}"
        try:
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"{where}: cannot create the database ({exc.strerror}); use a writable directory") \
                from None
        return
    try:
        con = sqlite3.connect(f"file:{path}?mode={'rw' if write else 'ro'}", uri=True, timeout=SQLITE_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise StoreError(describe(exc, {label: f"sqlite:///{path}"}) or f"{where}: {exc}") from None
    try:
        ok = con.execute("PRAGMA quick_check").fetchone()
        if not ok or ok[0] != "ok":
            raise sqlite3.DatabaseError("database disk image is malformed")
        if write:
            con.execute("BEGIN IMMEDIATE")  # takes the write lock: fails on a locked or read-only database
            con.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise StoreError(describe(exc, {label: f"sqlite:///{path}"}) or f"{where}: {exc}") from None
    finally:
        con.close()


def check_http(url: str, label: str, timeout: float = 5.0) -> None:
    """An MLflow server answers /health within `timeout` seconds."""
    import requests

    try:
        requests.get(url.rstrip("/") + "/health", timeout=timeout)
    except requests.RequestException as exc:
        raise StoreError(describe(exc, {label: url}) or f"{label} {mask(url)}: {exc}") from None


def remote_timeouts() -> None:
    """Short retries for remote tracking servers (MLflow's defaults retry for minutes); user settings win."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


@contextlib.contextmanager
def file_lock(key: str) -> Iterator[None]:
    """An exclusive advisory lock (fcntl) named by `key`, held for the block, in the temp directory."""
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"recsys-{digest}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield  # no lock possible (read-only temp dir): go on without one
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
