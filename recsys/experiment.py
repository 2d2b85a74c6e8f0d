"""One experiment: config -> data -> split -> models -> evaluation -> selection. Logs through a tracker.

`run_experiment` is what the CLI, the MLproject entry points and the tests call. Without a tracker it runs
purely in memory (NullTracker); `recsys.tracking.MlflowTracker` turns the same calls into MLflow runs.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.logging import get_logger
from recsys.tasks import ModelResult, Task, TaskContext, get_task

_log = get_logger(__name__)

# tuner(task, ctx, entry, tracker, model_run_id) -> entry with the best params filled in
Tuner = Callable[[Task, TaskContext, ModelEntry, Any, str | None], ModelEntry]


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    context: TaskContext
    results: list[ModelResult]
    best: ModelResult
    comparison: pd.DataFrame
    parent_run_id: str | None = None
    run_ids: dict[str, str] = field(default_factory=dict)
    registry: dict[str, Any] = field(default_factory=dict)


class NullTracker:
    """Tracker that records nothing (library use and unit tests)."""

    @contextlib.contextmanager
    def experiment_run(self, cfg: ExperimentConfig, config_path: str | None = None) -> Iterator[str | None]:
        yield None

    def log_context(self, ctx: TaskContext) -> None:
        pass

    @contextlib.contextmanager
    def model_run(self, entry: ModelEntry, ctx: TaskContext) -> Iterator[str | None]:
        yield None

    def log_model_result(self, run_id: str | None, result: ModelResult, ctx: TaskContext) -> None:
        pass

    def log_comparison(self, comparison: pd.DataFrame, best: ModelResult, run_ids: dict[str, str],
                       ctx: TaskContext) -> None:
        pass

    def register_best(self, best: ModelResult, run_id: str | None, ctx: TaskContext) -> dict[str, Any]:
        return {}


def run_experiment(cfg: ExperimentConfig, tracker: Any = None, config_path: str | None = None,
                   tuner: Tuner | None = None, tune_models: set[str] | None = None,
                   workdir: str | Path | None = None) -> ExperimentResult:
    """Run every model of `cfg` on one prepared context; returns plain results (metrics, tables, models).

    tune_models: labels of entries to tune with `tuner` before the final fit (entries need a `search`).
    """
    tracker = tracker or NullTracker()
    task = get_task(cfg.task)
    tmp = tempfile.TemporaryDirectory(prefix="recsys-") if workdir is None else None
    root = Path(workdir or tmp.name)  # type: ignore[union-attr]
    try:
        with tracker.experiment_run(cfg, config_path) as parent_id:
            ctx = task.prepare(cfg)
            tracker.log_context(ctx)
            results: list[ModelResult] = []
            run_ids: dict[str, str] = {}
            for entry in cfg.models:
                with tracker.model_run(entry, ctx) as run_id:
                    final_entry = entry
                    if tuner is not None and tune_models and entry.run_name in tune_models:
                        final_entry = tuner(task, ctx, entry, tracker, run_id)
                    result = task.run_model(ctx, final_entry, root / entry.run_name)
                    tracker.log_model_result(run_id, result, ctx)
                results.append(result)
                if run_id:
                    run_ids[entry.run_name] = run_id
            comparison = compare(results, cfg)
            best = select_best(results, cfg)
            _log.info("best model by %s: %s (%.4f)", cfg.selection_metric, best.entry.run_name,
                      best.metrics.get(cfg.selection_metric, float("nan")))
            tracker.log_comparison(comparison, best, run_ids, ctx)
            registry = {}
            if cfg.registry.enabled:
                registry = tracker.register_best(best, run_ids.get(best.entry.run_name), ctx) or {}
        return ExperimentResult(config=cfg, context=ctx, results=results, best=best, comparison=comparison,
                                parent_run_id=parent_id, run_ids=run_ids, registry=registry)
    finally:
        if tmp is not None:
            tmp.cleanup()


def compare(results: list[ModelResult], cfg: ExperimentConfig) -> pd.DataFrame:
    rows = []
    for r in results:
        rows.append({"model": r.entry.run_name, **r.metrics, **r.seconds})
    df = pd.DataFrame(rows).set_index("model")
    metric = cfg.selection_metric
    if metric in df.columns:
        df = df.sort_values(metric, ascending=cfg.selection.direction == "minimize", kind="stable")
    return df


def select_best(results: list[ModelResult], cfg: ExperimentConfig) -> ModelResult:
    metric = cfg.selection_metric
    missing = [r.entry.run_name for r in results if metric not in r.metrics]
    if missing:
        from recsys.errors import ConfigError

        available = sorted(results[0].metrics)
        raise ConfigError(f"selection metric {metric!r} was not computed for {missing}; "
                          f"choose one of {available} (selection.metric / metrics.primary)")
    sign = 1.0 if cfg.selection.direction == "maximize" else -1.0

    def key(r: ModelResult) -> float:
        v = r.metrics[metric]
        return -math.inf if v is None or math.isnan(v) else sign * v

    return max(results, key=key)  # first of equals wins (config order)
