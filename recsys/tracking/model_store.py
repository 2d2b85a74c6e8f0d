"""Read side of the registry for serving: which version holds an alias, and its saved model folder.

Only names passed in are looked up, and only in the registry of the given tracking URI.

    ref = resolve_alias("sqlite:///mlflow.db", "recsys-quickstart", "champion")
    folder = download_model_folder("sqlite:///mlflow.db", ref, Path("/tmp/models"))  # holds pyfunc.json
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from recsys.errors import RecsysError
from recsys.logging import get_logger

_log = get_logger(__name__)

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
    return AliasedVersion(name=name, alias=alias, version=str(mv.version), run_id=mv.run_id, source=mv.source or "")


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


def resolve_model_uri(tracking_uri: str, uri: str) -> AliasedVersion:
    """`models:/<name>@<alias>` or `models:/<name>/<version>` -> the version it names (an error if none)."""
    import re

    m = re.fullmatch(r"models:/([^@/]+)(?:@([^/]+)|/(\d+))", uri.strip())
    if m is None:
        raise RecsysError(f"--model {uri!r} must look like models:/<name>@<alias> or models:/<name>/<version>, "
                          "e.g. models:/recsys-quickstart@champion")
    name, alias, version = m.groups()
    if alias:
        ref = resolve_alias(tracking_uri, name, alias)
        if ref is None:
            raise RecsysError(f"no version of {name!r} holds alias {alias!r} in {tracking_uri}; "
                              f"see `recsys registry status -m {name}`")
        return ref
    try:
        mv = _client(tracking_uri).get_model_version(name, version)
    except MlflowException:
        raise RecsysError(f"{name!r} has no version {version} in {tracking_uri}") from None
    return AliasedVersion(name=name, alias="", version=str(mv.version), run_id=mv.run_id, source=mv.source or "")


@contextlib.contextmanager
def fetch_model(tracking_uri: str, uri: str) -> Iterator[tuple[AliasedVersion, Path]]:
    """The version a `models:/` URI names and its recsys model folder, downloaded to a temporary folder."""
    ref = resolve_model_uri(tracking_uri, uri)
    with tempfile.TemporaryDirectory(prefix="recsys-model-") as tmp:
        yield ref, download_model_folder(tracking_uri, ref, Path(tmp))


@contextlib.contextmanager
def batch_run(tracking_uri: str, experiment: str, ref: AliasedVersion,
              params: dict) -> Iterator[Callable[[dict], None]]:
    """An MLflow run for one batch job (tag role=batch, the model version); yields `log(metrics)`.

    Under `mlflow run` ($MLFLOW_RUN_ID) the project's run is used. A job that raises ends the run FAILED.
    """
    from recsys.config.urls import mask_text

    mlflow.set_tracking_uri(tracking_uri)
    env_run = os.environ.pop("MLFLOW_RUN_ID", None)
    if env_run:
        run = mlflow.start_run(run_id=env_run)
    else:
        exp = mlflow.set_experiment(experiment)
        run = mlflow.start_run(run_name=f"score {ref.name} v{ref.version}", experiment_id=exp.experiment_id)
    client = _client(tracking_uri)
    tags = {"role": "batch", "model_name": ref.name, "model_version": ref.version,
            "model_alias": ref.alias, "model_run_id": ref.run_id or ""}
    for key, value in tags.items():
        client.set_tag(run.info.run_id, key, value)
    mlflow.log_params({k: mask_text(str(v)) for k, v in params.items()})
    try:
        def log(metrics: dict) -> None:
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})

        yield log
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")
