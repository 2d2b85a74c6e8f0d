"""Optuna tuning of model entries (the only package that imports optuna).

`tune_model` runs (or resumes) one study for one model entry on a validation context carved from the training
part; `make_tuner` returns the hook `run_experiment` calls for entries with a `search` space. Importing this
package does not import optuna.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recsys.tuning.tuner import TuneResult


def make_tuner(storage: str | None = None, n_trials: int | None = None, **options: Any):
    """Hook for `run_experiment(tuner=...)`: tunes an entry, returns it with the best params filled in."""
    from recsys.tuning.tuner import make_tuner as _make

    return _make(storage=storage, n_trials=n_trials, **options)


def tune_model(*args: Any, **kwargs: Any) -> TuneResult:
    """See `recsys.tuning.tuner.tune_model`."""
    from recsys.tuning.tuner import tune_model as _tune

    return _tune(*args, **kwargs)


def resolve_storage(storage: str | None = None) -> str:
    """--storage > $RECSYS_OPTUNA_STORAGE > sqlite:///optuna.db (in the working directory)."""
    from recsys.tuning.storage import resolve_storage as _resolve

    return _resolve(storage)


__all__ = ["make_tuner", "resolve_storage", "tune_model"]
