"""The only package that imports mlflow.

`MlflowTracker` and `resolve_tracking_uri` are loaded on first use (PEP 562): the command line imports
`recsys.tracking.registry_cli` to build its parser, and `recsys --help` must not pay for importing mlflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recsys.tracking.mlflow_tracker import MlflowTracker, resolve_tracking_uri

__all__ = ["MlflowTracker", "resolve_tracking_uri"]


def __getattr__(name: str) -> Any:
    if name == "resolve_tracking_uri":  # no mlflow import: the commands check the store before loading anything
        from recsys.tracking.store import resolve_tracking_uri

        return resolve_tracking_uri
    if name in __all__:
        from recsys.tracking import mlflow_tracker

        return getattr(mlflow_tracker, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
