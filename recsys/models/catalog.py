"""Name -> class catalog used by configs. Modules register their classes with `@register`."""

from __future__ import annotations

import importlib
from typing import TypeVar

T = TypeVar("T", bound=type)

_REGISTRY: dict[str, type] = {}
# modules that define models; imported lazily on first lookup (task modules add themselves here)
MODEL_MODULES = [
    "recsys.models.baselines",
    "recsys.models.item_knn",
    "recsys.models.als",
    "recsys.models.ease",
    "recsys.models.bpr",
    "recsys.models.rp3beta",
    "recsys.models.multvae",
    "recsys.models.sasrec",
    "recsys.models.hybrid",
    "recsys.models.content",
    "recsys.models.activity",
    "recsys.models.kmeans",
]
_loaded = False


def register(cls: T) -> T:
    _REGISTRY[cls.name] = cls
    return cls


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in MODEL_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("recsys"):
                continue  # a task module that is not there yet
            raise


def get_model_class(name: str, task: str | None = None) -> type:
    _ensure_loaded()
    cls = _REGISTRY.get(name)
    if cls is None or (task is not None and task not in cls.tasks):
        raise KeyError(name)
    return cls


def available(task: str | None = None) -> list[str]:
    _ensure_loaded()
    return sorted(n for n, c in _REGISTRY.items() if task is None or task in c.tasks)


def create(name: str, params: dict | None = None, task: str | None = None):
    return get_model_class(name, task)(**(params or {}))
