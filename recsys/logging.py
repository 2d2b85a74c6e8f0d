"""Library logging: one `recsys` root logger; only entry points configure handlers."""

from __future__ import annotations

import logging
import os
import sys

ROOT = "recsys"


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at emit time (a handler bound once would keep a replaced, closed stream)."""

    _recsys = True

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001
        pass


def configure(level: str | int | None = None) -> None:
    """Configure console logging for entry points (CLI, MLproject scripts). Idempotent."""
    level = level or os.environ.get("RECSYS_LOG_LEVEL", "INFO")
    root = logging.getLogger(ROOT)
    root.setLevel(level)
    if not any(getattr(h, "_recsys", False) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    root.propagate = False


def progress_enabled() -> bool:
    """Progress bars only on a TTY (and never when RECSYS_PROGRESS=0)."""
    flag = os.environ.get("RECSYS_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "no")
    return sys.stderr.isatty()
