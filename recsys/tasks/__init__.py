"""Tasks: how an experiment of each kind prepares data, fits one model and evaluates it.

Each task module defines a `Task` subclass registered in `TASKS`. Tasks are pure (no mlflow/optuna).
"""

from __future__ import annotations

import importlib

from recsys.tasks.base import ModelResult, Task, TaskContext

TASK_MODULES = {
    "recommend": "recsys.tasks.recommend",
    "similar": "recsys.tasks.similar",
    "audience": "recsys.tasks.audience",
    "search": "recsys.tasks.search",
    "segment": "recsys.tasks.segment",
}


def get_task(name: str) -> Task:
    from recsys.errors import ConfigError

    module = TASK_MODULES.get(name)
    if module is None:
        raise ConfigError(f"task {name!r} is unknown (available: {', '.join(TASK_MODULES)})")
    return importlib.import_module(module).TASK  # an import error of the task's module surfaces as it is


__all__ = ["ModelResult", "Task", "TaskContext", "get_task"]
