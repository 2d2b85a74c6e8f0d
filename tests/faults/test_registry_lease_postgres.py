"""The registry lease on a real PostgreSQL tracking database (team mode): one winner, expiry, turns.

The SQLite store is covered by test_registry_concurrency.py; here the same table, INSERT-or-take-over-expired and
the concurrent table creation run against PostgreSQL, whose transactions and catalog races differ from SQLite's.
"""

from __future__ import annotations

import threading

import pytest

from tests.faults.helpers import check_lease_expiry

pytestmark = pytest.mark.slow  # starts a PostgreSQL cluster: `pytest -m "not slow"` skips it

NAME = "lease-model"


@pytest.fixture
def pg_url(postgres_cluster):
    postgres_cluster.create_databases("leases")
    return f"{postgres_cluster.url}/leases"


def test_many_callers_at_once_create_the_table_and_exactly_one_holds_the_lease(pg_url) -> None:
    from recsys.tracking.registry_lock import _SqlLease

    n = 8
    barrier = threading.Barrier(n)  # all create their lease (and the table) at once
    barrier_acquire = threading.Barrier(n)  # then all try to take it at once
    won: list[str] = []
    errors: list[BaseException] = []
    leases: list[_SqlLease] = []
    lock = threading.Lock()

    def caller() -> None:
        try:
            barrier.wait()
            lease = _SqlLease(pg_url, NAME, ttl=3600.0)  # the table does not exist yet: created by racing callers
            with lock:
                leases.append(lease)
            barrier_acquire.wait()
            if lease.try_acquire():
                with lock:
                    won.append(lease.holder)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(won) == 1, won
    assert {lease.current_holder() for lease in leases} == set(won)
    for lease in leases:
        lease.release()  # only the holder's row is deleted
    fresh = _SqlLease(pg_url, NAME, ttl=3600.0)
    assert fresh.current_holder() == "nobody" and fresh.try_acquire()
    fresh.release()


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(pg_url) -> None:
    check_lease_expiry(pg_url, NAME)


def test_holders_of_the_lease_take_turns(pg_url, monkeypatch) -> None:
    """Four promotions at once: while the first holds the lease the other three are refused (it waits until they
    have been), and no two are ever inside together."""
    from recsys.tracking import registry_lock
    from recsys.tracking.registry_lock import registry_lease

    cond = threading.Condition()
    state = {"inside": 0, "max_inside": 0, "refused": 0, "done": 0}
    errors: list[BaseException] = []
    acquire = registry_lock._SqlLease.try_acquire

    def counted(self) -> bool:
        ok = acquire(self)
        if not ok:
            with cond:
                state["refused"] += 1
                cond.notify_all()
        return ok

    monkeypatch.setattr(registry_lock._SqlLease, "try_acquire", counted)
    start = threading.Barrier(4)

    def promote() -> None:
        try:
            start.wait()
            with registry_lease(pg_url, NAME, ttl=30.0, wait=120.0):
                with cond:
                    state["inside"] += 1
                    state["max_inside"] = max(state["max_inside"], state["inside"])
                    if state["done"] == 0:  # the first holder: every other caller is refused meanwhile
                        assert cond.wait_for(lambda: state["refused"] >= 3, timeout=60), state
                    state["inside"] -= 1
                    state["done"] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=promote) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not errors, errors
    assert state["done"] == 4 and state["max_inside"] == 1, state
