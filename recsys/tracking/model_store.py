"""Read side of the registry for serving: which version holds an alias, and its saved model folder.

Only names passed in are looked up, and only in the registry of the given tracking URI.

    ref = resolve_alias("sqlite:///mlflow.db", "recsys-quickstart", "champion")
    folder = download_model_folder("sqlite:///mlflow.db", ref, Path("/tmp/models"))  # holds pyfunc.json
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import mlflow
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from recsys.errors import RecsysError
from recsys.logging import get_logger

_log = get_logger(__name__)

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
ARTIFACT_KEY = "model"  # key of the saved model folder in the pyfunc's `artifacts`


@dataclass(frozen=True)
class AliasedVersion:
    """One registered model version reached through an alias."""

    name: str
    alias: str
    version: str
    run_id: str | None
    source: str


def _client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri, registry_uri=tracking_uri)


def resolve_alias(tracking_uri: str, name: str, alias: str) -> AliasedVersion | None:
    """The version of `name` that holds `alias`, or None when the model or the alias does not exist."""
    try:
        mv = _client(tracking_uri).get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
    return AliasedVersion(name=name, alias=alias, version=str(mv.version), run_id=mv.run_id, source=mv.source)


def download_model_folder(tracking_uri: str, ref: AliasedVersion, dst: Path) -> Path:
    """Download the recsys model folder (the pyfunc's `model` artifact) of `ref` into `dst`; returns its path."""
    client = _client(tracking_uri)
    base = client.get_model_version_download_uri(ref.name, ref.version).rstrip("/")
    dst.mkdir(parents=True, exist_ok=True)
    mlmodel = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{base}/MLmodel", dst_path=str(dst),
                                                       tracking_uri=tracking_uri))
    flavor = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {}).get("python_function", {})
    entry = (flavor.get("artifacts") or {}).get(ARTIFACT_KEY)
    if not entry or "path" not in entry:
        raise RecsysError(f"{ref.name} version {ref.version} is not a recsys pyfunc: its MLmodel has no "
                          f"`{ARTIFACT_KEY}` artifact; register models logged by `recsys run`")
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{base}/{entry['path']}", dst_path=str(dst),
                                                     tracking_uri=tracking_uri))
    _log.info("downloaded %s version %s (@%s) to %s", ref.name, ref.version, ref.alias, local)
    return local
