"""Tasks: how an experiment of each kind prepares data, fits one model and evaluates it.

Each module `recsys.tasks.<name>` (but `base`) is the task `<name>`: it defines a `Task` subclass and its
instance `TASK`. Modules are found, not listed, so a new task is its module here plus its evaluator
(`recsys.evaluation.<name>`), its predictor (`recsys.serving.predictors.<name>`) and one test file.
Tasks are pure (no mlflow/optuna).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil

from recsys.tasks.base import ModelResult, Task, TaskContext

# extra tasks (name -> module) besides the modules found in this package (e.g. a plug-in package's task)
TASK_MODULES: dict[str, str] = {}


def task_modules() -> dict[str, str]:
    """Task name -> module: every module of this package but `base` (the module name is the task name), then
    `TASK_MODULES`."""
    found = {m.name: f"{__name__}.{m.name}" for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
             if m.name != "base" and not m.name.startswith("_")}
    return {**found, **TASK_MODULES}


def get_task(name: str) -> Task:
    from recsys.errors import ConfigError

    modules = task_modules()
    module = modules.get(name)
    if module is None:
        hint = difflib.get_close_matches(str(name), modules, n=1)
        raise ConfigError(f"task {name!r} is unknown" + (f"; did you mean {hint[0]!r}?" if hint else "")
                          + f" (available: {', '.join(modules)})")
    return importlib.import_module(module).TASK  # an import error of the task's module surfaces as it is


__all__ = ["ModelResult", "Task", "TaskContext", "get_task", "task_modules"]
