"""A registry-level lease held in the tracking store, and the append-only champion event log.

Promotion and rollback read the champion, decide, then move the alias and rewrite the history: two of them at
once (two CI jobs, two people) would interleave and duplicate the history. `registry_lease(uri, name)` makes them
take turns, on every machine that shares the store:

- SQL tracking stores (SQLite, PostgreSQL, MySQL): one row per registered model in a small table
  `recsys_registry_leases` created in the tracking database. Taking the lease is an INSERT (primary key) or an
  UPDATE of an expired row -- both atomic in the database, so exactly one caller wins.
- The holder renews the lease every `ttl/3` seconds from a background thread; a holder that dies (SIGKILL, lost
  machine) stops renewing, and the lease expires after `ttl` seconds for the next caller.
- Other stores (an `mlflow server` over HTTP): the lease is a registered-model tag written and read back
  (best effort: MLflow's REST API has no compare-and-set); point the command at the server's database for a
  strict lease.

`append_event` records every move of `champion` as tag `champion_event.<seq>` (seq 1, 2, ...; allocated while
holding the lease, never rewritten), so the history is append-only and has no duplicates.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from recsys.errors import PromotionError
from recsys.logging import get_logger

_log = get_logger(__name__)

TABLE = "recsys_registry_leases"
EVENT_PREFIX = "champion_event."
LEASE_TAG = "recsys.lease"
DEFAULT_TTL_S = 60.0
DEFAULT_WAIT_S = 300.0
SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql")


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def registry_lease(tracking_uri: str, model_name: str, ttl: float = DEFAULT_TTL_S,
                   wait: float = DEFAULT_WAIT_S) -> Iterator[str]:
    """Hold the lease of `model_name` for the block (see the module docstring); yields the holder id."""
    scheme = tracking_uri.split(":", 1)[0].split("+", 1)[0].lower()
    lease = _SqlLease(tracking_uri, model_name, ttl) if scheme in SQL_SCHEMES else _TagLease(tracking_uri,
                                                                                                model_name, ttl)
    deadline = time.monotonic() + wait
    delay = 0.05
    while not lease.try_acquire():
        if time.monotonic() >= deadline:
            raise PromotionError(f"registry lease of {model_name!r} is held by {lease.current_holder()} for more "
                                 f"than {wait:.0f}s; wait for that promotion/rollback to finish, or if its process "
                                 f"is gone, the lease expires by itself within {ttl:.0f}s")
        time.sleep(delay)  # waiting for the peer holding the lease
        delay = min(delay * 1.5, 1.0)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lease, stop, ttl / 3), daemon=True, name="recsys-lease")
    renewer.start()
    try:
        yield lease.holder
    finally:
        stop.set()
        renewer.join(timeout=5)
        lease.release()


def _renew(lease: Any, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        try:
            lease.renew()
        except Exception as exc:  # noqa: BLE001 - a failed renewal is logged; the lease then expires
            _log.warning("could not renew the registry lease: %s", exc)


class _SqlLease:
    """The lease as one row of `recsys_registry_leases` in the tracking database."""

    def __init__(self, uri: str, name: str, ttl: float) -> None:
        import sqlalchemy as sa

        if uri.startswith("postgres://"):
            uri = "postgresql://" + uri[len("postgres://"):]
        self.name, self.ttl, self.holder = name, ttl, _holder()
        args = {"connect_args": {"timeout": 30}} if uri.startswith("sqlite") else {}
        self.engine = sa.create_engine(uri, **args)
        meta = sa.MetaData()
        self.table = sa.Table(TABLE, meta, sa.Column("name", sa.String(256), primary_key=True),
                              sa.Column("holder", sa.String(256), nullable=False),
                              sa.Column("expires_at", sa.Float, nullable=False))
        for attempt in range(5):
            try:
                meta.create_all(self.engine, checkfirst=True)
                break
            except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError):
                if attempt == 4:  # two processes creating the table at once: the loser retries
                    raise
                time.sleep(0.2 * (attempt + 1))

    def try_acquire(self) -> bool:
        import sqlalchemy as sa

        now = time.time()
        t = self.table
        try:
            with self.engine.begin() as conn:
                conn.execute(t.insert().values(name=self.name, holder=self.holder, expires_at=now + self.ttl))
            return True
        except sa.exc.IntegrityError:
            pass
        with self.engine.begin() as conn:  # take it over only when it expired (a dead holder)
            done = conn.execute(t.update().where(t.c.name == self.name, t.c.expires_at < now)
                                .values(holder=self.holder, expires_at=now + self.ttl))
            if done.rowcount == 1:
                _log.warning("registry lease of %r had expired (its holder died); taken over", self.name)
                return True
        return False

    def renew(self) -> None:
        t = self.table
        with self.engine.begin() as conn:
            conn.execute(t.update().where(t.c.name == self.name, t.c.holder == self.holder)
                         .values(expires_at=time.time() + self.ttl))

    def release(self) -> None:
        t = self.table
        try:
            with self.engine.begin() as conn:
                conn.execute(t.delete().where(t.c.name == self.name, t.c.holder == self.holder))
        finally:
            self.engine.dispose()

    def current_holder(self) -> str:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.table.c.holder).where(self.table.c.name == self.name)).first()
        return row[0] if row else "nobody"


class _TagLease:
    """Best-effort lease for stores without SQL access: a registered-model tag, written then read back."""

    def __init__(self, uri: str, name: str, ttl: float) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(uri, registry_uri=uri)
        self.name, self.ttl, self.holder = name, ttl, _holder()

    def _read(self) -> dict[str, Any] | None:
        raw = (self.client.get_registered_model(self.name).tags or {}).get(LEASE_TAG)
        return json.loads(raw) if raw else None

    def try_acquire(self) -> bool:
        cur = self._read()
        if cur and cur.get("expires_at", 0) >= time.time() and cur.get("holder") != self.holder:
            return False
        self.renew()
        time.sleep(0.2)  # let a concurrent writer's tag land, then check who won
        cur = self._read()
        return bool(cur and cur.get("holder") == self.holder)

    def renew(self) -> None:
        self.client.set_registered_model_tag(self.name, LEASE_TAG, json.dumps(
            {"holder": self.holder, "expires_at": time.time() + self.ttl}))

    def release(self) -> None:
        cur = self._read()
        if cur and cur.get("holder") == self.holder:
            self.client.delete_registered_model_tag(self.name, LEASE_TAG)

    def current_holder(self) -> str:
        cur = self._read()
        return cur.get("holder", "nobody") if cur else "nobody"


# the append-only event log ----------------------------------------------------------------------------------
def events(client: Any, model_name: str) -> list[dict[str, Any]]:
    """Every recorded move of `champion`, oldest first (tags `champion_event.<seq>`)."""
    tags = client.get_registered_model(model_name).tags or {}
    out = [json.loads(v) for k, v in tags.items() if k.startswith(EVENT_PREFIX)]
    return sorted(out, key=lambda e: int(e["seq"]))


def append_event(client: Any, model_name: str, action: str, from_version: str | None, to_version: str | None,
                 **extra: Any) -> dict[str, Any]:
    """Record one event with the next sequence number (call it while holding the lease)."""
    seq = max((int(e["seq"]) for e in events(client, model_name)), default=0) + 1
    event = {"seq": seq, "action": action, "from": from_version, "to": to_version,
             "at": datetime.now(UTC).isoformat(timespec="milliseconds"), **extra}
    client.set_registered_model_tag(model_name, f"{EVENT_PREFIX}{seq:06d}", json.dumps(event, default=str))
    return event


def under_lease(func: Any) -> Any:
    """Decorator for registry writes `func(client, model_name, ...)`: the body runs holding the lease."""
    import functools

    @functools.wraps(func)
    def wrapper(client: Any, model_name: str, *args: Any, **kwargs: Any) -> Any:
        with registry_lease(client.tracking_uri, model_name):
            return func(client, model_name, *args, **kwargs)

    return wrapper
