"""Tracking writes on one background thread, in the order they were asked for, off the experiment's critical path.

The experiment thread hands a write over (`submit`) and goes on fitting and evaluating the next model while the
pyfunc model, the tables and the metrics of the last one go to the store. Failures are not lost: the first one
is kept, every write after it is skipped (its run is closed FAILED by the tracker), and it is raised in the
experiment thread at its next `check()` / `drain()` (the next tracker call, at the latest when the experiment run
closes). `settle()` waits for the writes and raises nothing: on a failure or a signal the runs are closed KILLED /
FAILED after it, so that no late write finishes one, and what was computed before still lands.

`LogQueue(background=False)` runs every write at once in the caller's thread (the same writes, in the same order).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from recsys.logging import get_logger

_log = get_logger(__name__)


class LogQueue:
    """First in, first out on one thread; the first failure is kept and re-raised in the submitting thread."""

    def __init__(self, background: bool = True) -> None:
        self.background = background
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future] = deque()
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any, on_error: Callable[[], None] | None = None,
               **kwargs: Any) -> None:
        """Run `fn(*args, **kwargs)` after every write submitted before it. `on_error` runs (in the writer's
        thread) when this write fails or is skipped because an earlier one failed."""
        self.check()
        if not self.background:
            self._run(fn, args, kwargs, on_error)
            self.check()
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recsys-mlflow-log")
        while self._pending and self._pending[0].done():
            self._pending.popleft()
        self._pending.append(self._pool.submit(self._run, fn, args, kwargs, on_error))

    def _run(self, fn: Callable[..., Any], args: tuple, kwargs: dict, on_error: Callable[[], None] | None) -> None:
        if self._error is None:
            try:
                fn(*args, **kwargs)
                return
            except BaseException as exc:  # noqa: BLE001 - kept and re-raised in the experiment thread
                with self._lock:
                    if self._error is None:
                        self._error = exc
        if on_error is not None:
            try:
                on_error()
            except Exception as exc:  # the store that failed the write may fail this too; the first error wins
                _log.warning("could not mark a run as failed after a logging error: %s", exc)

    @property
    def failed(self) -> bool:
        return self._error is not None

    def check(self) -> None:
        """Raise the first failure of a background write, if any."""
        if self._error is not None:
            raise self._error

    def drain(self) -> None:
        """Wait for every write submitted so far, then raise the first failure, if any."""
        pending = list(self._pending)
        self._pending.clear()
        if pending:
            wait(pending)
        self.check()

    def settle(self) -> None:
        """Wait for every write submitted so far and raise nothing (a failure or a signal is being handled: what
        was computed still lands, unless a write failed, after which the rest are skipped)."""
        pending = list(self._pending)
        self._pending.clear()
        if pending:
            wait(pending)

    def close(self) -> None:
        """Stop the writer thread (after `drain` or `settle`)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
