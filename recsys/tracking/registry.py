"""Model registry: register the selected model as a new version with alias `challenger` (aliases, never stages)."""

from __future__ import annotations

from typing import Any

from mlflow.tracking import MlflowClient

from recsys.config.loader import config_hash
from recsys.config.schema import ExperimentConfig
from recsys.logging import get_logger
from recsys.tasks.base import ModelResult, TaskContext

_log = get_logger(__name__)

CHALLENGER, CHAMPION = "challenger", "champion"


def register_challenger(client: MlflowClient, cfg: ExperimentConfig, best: ModelResult, run_id: str,
                        ctx: TaskContext) -> dict[str, Any]:
    """Create a model version from the run's pyfunc and point `challenger` at it."""
    from mlflow.exceptions import MlflowException

    name = cfg.registered_model_name
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, tags={"task": cfg.task},
                                       description=f"recsys {cfg.task} models from experiment {cfg.name!r}")
    metric = cfg.metrics.primary
    tags = {
        "run_id": run_id,
        "task": cfg.task,
        "model": best.entry.name,
        "label": best.entry.run_name,
        "primary_metric": metric,
        "primary_value": repr(float(best.metrics.get(metric, float("nan")))),
        "dataset": ctx.dataset_name,
        "dataset_fingerprint": ctx.fingerprint,
        "split_fingerprint": ctx.split_fingerprint,
        "config_hash": config_hash(cfg),
        "experiment": cfg.name,
    }
    mv = client.create_model_version(name=name, source=best.extra["model_uri"], run_id=run_id, tags=tags,
                                     description=f"{best.entry.run_name}: {metric}={tags['primary_value']}")
    client.set_registered_model_alias(name, CHALLENGER, mv.version)
    _log.info("registered %s version %s (alias %s)", name, mv.version, CHALLENGER)
    return {"model_name": name, "version": str(mv.version), "alias": CHALLENGER}


def promote(client: MlflowClient, model_name: str, policy_path: str | None = None, **kwargs: Any) -> dict[str, Any]:
    raise NotImplementedError("promotion policies are not implemented yet")
