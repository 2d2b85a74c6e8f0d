"""Name -> class catalog used by configs. Modules register their classes with `@register`.

Registration fails loudly: an error while importing one of the project's model modules (a typo, a broken import
of `recsys.*`) is raised as it is, never turned into "unknown model". Only a missing optional third-party package
makes its module's models unavailable, with an "install X" hint on the lookup that needed them.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from recsys.models.base import Model

T = TypeVar("T", bound="type[Model]")

_REGISTRY: dict[str, type[Model]] = {}
# extra modules to import besides the ones found in recsys/models (e.g. a plug-in package's models)
MODEL_MODULES: list[str] = []
_loaded = False
_unavailable: dict[str, str] = {}  # model module -> the third-party package it could not import


def register(cls: T) -> T:
    _REGISTRY[cls.name] = cls
    return cls


def model_modules() -> list[str]:
    """Every module of `recsys.models` but base, catalog and private helpers: each may define models, so a new
    model is one module with an `@register`ed class, found without editing a list."""
    import recsys.models as package

    return sorted(f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)
                  if not m.name.startswith("_") and m.name not in ("base", "catalog"))


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    for mod in [*model_modules(), *MODEL_MODULES]:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if not exc.name or exc.name.split(".")[0] == "recsys":
                raise  # the project's own module: surface the import error
            _unavailable[mod] = exc.name.split(".")[0]
    _loaded = True


def unavailable_hint() -> str:
    """'; models of M are unavailable because package P is not installed (...)' for each such module, else ''."""
    return "".join(f"; models of {mod} are unavailable because package {pkg!r} is not installed "
                   f"(install it: pip install {pkg})" for mod, pkg in sorted(_unavailable.items()))


def get_model_class(name: str, task: str | None = None) -> type[Model]:
    """The registered class; KeyError(name) when unknown (for the task): see `unavailable_hint` for why."""
    _ensure_loaded()
    cls = _REGISTRY.get(name)
    if cls is None or (task is not None and task not in cls.tasks):
        raise KeyError(name)
    return cls


def available(task: str | None = None) -> list[str]:
    _ensure_loaded()
    return sorted(n for n, c in _REGISTRY.items() if task is None or task in c.tasks)


def create(name: str, params: dict[str, Any] | None = None, task: str | None = None) -> Any:
    return get_model_class(name, task)(**(params or {}))
