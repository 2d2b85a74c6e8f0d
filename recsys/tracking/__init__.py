"""The only package that imports mlflow.

`MlflowTracker` and `resolve_tracking_uri` are loaded on first use (PEP 562): the command line imports
`recsys.tracking.registry_cli` to build its parser, and `recsys --help` must not pay for importing mlflow;
`resolve_tracking_uri` lives in the mlflow-free `store` module, so the commands check the store before loading mlflow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recsys.tracking.mlflow_tracker import MlflowTracker
    from recsys.tracking.store import resolve_tracking_uri

_MODULE = {"MlflowTracker": "recsys.tracking.mlflow_tracker", "resolve_tracking_uri": "recsys.tracking.store"}
__all__ = ["MlflowTracker", "resolve_tracking_uri"]  # the keys of _MODULE


def __getattr__(name: str) -> Any:
    if name in _MODULE:
        return getattr(importlib.import_module(_MODULE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
