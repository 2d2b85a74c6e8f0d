"""Check an MLflow tracking store before any work, and create a fresh SQLite store under a file lock.

Two `recsys run` started at once on a fresh `sqlite:///mlflow.db` both run MLflow's schema migration; without
the lock one of them crashes half-way. The check turns a locked, read-only, corrupted or non-database file, an
unknown URI scheme or an unreachable server into one line (see `recsys.faults.describe`) before a model is fitted.
"""

from __future__ import annotations

import os
from pathlib import Path

from recsys.faults import StoreError, check_http, check_sqlite, file_lock, mask, remote_timeouts, sqlite_path

LABEL = "MLflow tracking store"
KNOWN_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "file", "http", "https", "databricks", "databricks-uc",
                 "uc")


def resolve_tracking_uri(uri: str | None = None) -> str:
    """CLI flag > MLFLOW_TRACKING_URI > embedded default (SQLite `mlflow.db` in the working directory)."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def check_tracking_store(uri: str, create: bool = True, write: bool = True) -> None:
    """Raise `StoreError` (one line: store, problem, fix) when `uri` cannot be used; create a fresh SQLite store.

    `create=False` is for the commands that only read what runs registered (`recsys serve`, `recsys score`): a
    SQLite file that does not exist is then an error naming the path, not a new empty store to serve nothing from.
    `write=False` (the service, which only reads): a read-only SQLite store is accepted.
    """
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if scheme and scheme not in KNOWN_SCHEMES:
        raise StoreError(f"{LABEL} {mask(uri)}: unknown URI scheme {scheme!r}; use sqlite:///path/mlflow.db, "
                         "postgresql://user@host:5432/db, file:///dir or http(s)://server "
                         "(--tracking-uri or $MLFLOW_TRACKING_URI)")
    if scheme in ("http", "https"):
        remote_timeouts()
        check_http(uri, LABEL)
        return
    path = sqlite_path(uri)
    if path is None:
        return
    if not create and not path.exists():
        raise StoreError(f"{LABEL} {mask(uri)}: no store at {path} (the file does not exist); run `recsys run` to "
                         "create and fill it, or pass the store that holds the model with --tracking-uri or "
                         "$MLFLOW_TRACKING_URI")
    with file_lock(f"mlflow-schema:{path.resolve()}"):
        check_sqlite(path, LABEL, write=write)
        fresh = not path.exists()
        try:
            _create_schema(uri)
        except BaseException:
            if fresh:  # nothing half-written: a store that could not be created is not left behind
                for leftover in (path, path.with_name(path.name + "-journal")):
                    leftover.unlink(missing_ok=True)
            raise


def _create_schema(uri: str) -> None:
    """Open the tracking and registry stores once (MLflow creates or migrates the schema on first use)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)
