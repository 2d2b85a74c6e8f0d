"""One experiment: config -> data -> split -> models -> evaluation -> selection. Logs through a tracker.

`run_experiment` is what the CLI, the MLproject entry points and the tests call. Without a tracker it runs
purely in memory (NullTracker); `recsys.tracking.MlflowTracker` turns the same calls into MLflow runs.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from recsys.config.loader import config_from_dict, format_validation, load_config
from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.config.search import check_search
from recsys.errors import ConfigError
from recsys.evaluation.decision import BootstrapCache, Candidate, Decision, decide, metric_intervals
from recsys.faults import checkpoint
from recsys.logging import get_logger
from recsys.preflight import check_config, check_context
from recsys.random import derive_seed
from recsys.tasks import ModelResult, Task, TaskContext, get_task

_log = get_logger(__name__)

# tuner(task, ctx, entry, tracker, model_run_id) -> entry with the best params filled in
Tuner = Callable[[Task, TaskContext, ModelEntry, Any, str | None], ModelEntry]


def load_experiment_config(path: str | Path, overrides: Iterable[str] | str | None = None) -> ExperimentConfig:
    """`recsys.config.load_config` (schema) plus the checks that need the model catalog and the task.

    Example:
        >>> cfg = load_experiment_config("configs/quickstart.yaml", ["seed=7"])  # doctest: +SKIP
    """
    return validate_config(load_config(path, overrides), str(path))


def experiment_config_from_dict(raw: dict, overrides: Iterable[str] | str | None = None,
                                source: str = "<dict>") -> ExperimentConfig:
    """`recsys.config.config_from_dict` plus the catalog and task checks of `validate_config`."""
    return validate_config(config_from_dict(raw, overrides, source), source)


def validate_config(cfg: ExperimentConfig, source: str = "<config>") -> ExperimentConfig:
    """What the schema cannot know: every model name is in the catalog for the task, its params (and the bounds
    of its `search` space) fit the model's config, and the task accepts its options (`task_params`, metrics).
    Raises ConfigError naming the file, the key and what is allowed; returns `cfg`."""
    from recsys.models.catalog import available, get_model_class, unavailable_hint

    try:
        task = get_task(cfg.task)  # the task catalog knows the task names (the schema takes any)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    served = task.model_task  # the models registered for this task name answer it
    for i, entry in enumerate(cfg.models):
        try:
            cls = get_model_class(entry.name, task=served)
        except KeyError:
            names = available(served)
            hint = difflib.get_close_matches(entry.name, names, n=1)
            raise ConfigError(
                f"{source}: config key `models.{i}.name` has unknown model {entry.name!r} for task {cfg.task!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else "")
                + f" (available: {', '.join(names)})" + unavailable_hint()
            ) from None
        try:
            cls.Config.model_validate(entry.params)
        except ValidationError as exc:
            raise ConfigError(format_validation(exc, source, cls.Config, ("models", i, "params"),
                                                owner=f" for model {cls.name!r}")) from None
        if entry.search is not None:
            try:
                check_search(entry.search, entry.name, cls.Config, entry.params)
            except ValueError as exc:
                raise ConfigError(f"{source}: config key `models.{i}.search` has invalid value "
                                  f"{entry.search!r}: {exc}") from None
    try:
        task.validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


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
    decision: Decision | None = None


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

    def log_selected_model(self, best: ModelResult, run_id: str | None, ctx: TaskContext) -> None:
        pass

    def render_decision(self, decision: Decision, results: list[ModelResult], comparison: pd.DataFrame,
                        ctx: TaskContext, folder: Path) -> dict[str, Path]:
        return {}  # nothing is logged: nothing to draw

    def log_decision(self, decision: Decision, results: list[ModelResult], comparison: pd.DataFrame,
                     run_ids: dict[str, str], ctx: TaskContext, files: dict[str, Path] | None = None) -> None:
        pass

    def register_best(self, best: ModelResult, run_id: str | None, ctx: TaskContext) -> dict[str, Any]:
        return {}


def run_experiment(cfg: ExperimentConfig, tracker: Any = None, config_path: str | None = None,
                   tuner: Tuner | None = None, tune_models: set[str] | None = None,
                   workdir: str | Path | None = None) -> ExperimentResult:
    """Run every model of `cfg` on one prepared context; returns plain results (metrics, tables, models).

    tune_models: labels of entries to tune with `tuner` before the final fit (entries need a `search`).
    """
    validate_config(cfg, config_path or "<config>")
    tracker = tracker or NullTracker()
    task = get_task(cfg.task)
    check_config(cfg, task)  # everything knowable before a run is started or a model fitted
    tmp = tempfile.TemporaryDirectory(prefix="recsys-") if workdir is None else None
    root = Path(workdir or tmp.name)  # type: ignore[union-attr]
    try:
        with tracker.experiment_run(cfg, config_path) as parent_id:
            if cfg.split.folds > 1 and not task.supports_folds:
                raise ConfigError(f"split.folds={cfg.split.folds} is not supported by task {cfg.task!r} "
                                  "(repeated splits: task recommend); remove split.folds")
            ctx = task.prepare(cfg)
            check_context(ctx)
            checkpoint("prepared")
            tracker.log_context(ctx)
            # one seeded set of resamples for the whole experiment: every model sees the same resampled users
            boot = BootstrapCache(cfg.evaluation.bootstrap, derive_seed(cfg.seed, "bootstrap"))
            results: list[ModelResult] = []
            run_ids: dict[str, str] = {}
            for entry in cfg.models:
                with tracker.model_run(entry, ctx) as run_id:
                    checkpoint(f"model:{entry.run_name}")
                    final_entry = entry
                    if tuner is not None and tune_models and entry.run_name in tune_models:
                        final_entry = tuner(task, ctx, entry, tracker, run_id)
                    result = task.run_model(ctx, final_entry, root / entry.run_name)
                    result.metrics.update(metric_intervals(result.per_user, result.metrics, boot,
                                                           cfg.evaluation.confidence))
                    checkpoint(f"fitted:{entry.run_name}")
                    tracker.log_model_result(run_id, result, ctx)
                results.append(result)
                if run_id:
                    run_ids[entry.run_name] = run_id
            select_best(results, cfg)  # raises when the selection metric is missing
            decision = decide_models(results, cfg, boot)
            best = next(r for r in results if r.entry.run_name == decision.selected)
            comparison = compare(results, cfg, decision)
            _log.info("selected model by %s: %s (%.4g); %s", cfg.selection_metric, best.entry.run_name,
                      best.metrics.get(cfg.selection_metric, float("nan")), decision.reason)
            tracker.log_comparison(comparison, best, run_ids, ctx)
            tracker.log_selected_model(best, run_ids.get(best.entry.run_name), ctx)
            files = tracker.render_decision(decision, results, comparison, ctx, root / "decision")
            tracker.log_decision(decision, results, comparison, run_ids, ctx, files)
            registry: dict[str, Any] = {}
            if cfg.registry.enabled:
                checkpoint("register")
                registry = tracker.register_best(best, run_ids.get(best.entry.run_name), ctx) or {}
        return ExperimentResult(config=cfg, context=ctx, results=results, best=best, comparison=comparison,
                                parent_run_id=parent_id, run_ids=run_ids, registry=registry, decision=decision)
    finally:
        if tmp is not None:
            tmp.cleanup()


def decide_models(results: list[ModelResult], cfg: ExperimentConfig, boot: BootstrapCache | None = None) -> Decision:
    """Paired tests of every model against the best, Holm-corrected; ties; `selection.rule` applied."""
    t = cfg.evaluation.tests
    candidates = [Candidate(r.entry.run_name, r.metrics, r.per_user, r.seconds.get("fit_seconds", float("nan")),
                            key=r.tags.get("per_user_key", "user_id")) for r in results]
    return decide(candidates, cfg.selection_metric, cfg.selection.direction, cfg.selection.rule, t.metrics, t.alpha,
                  t.test, boot, cfg.evaluation.confidence)


def compare(results: list[ModelResult], cfg: ExperimentConfig, decision: Decision | None = None) -> pd.DataFrame:
    rows = []
    for r in results:
        extra = decision.model_metrics(r.entry.run_name) if decision is not None else {}
        tie = {"tied_with_best": decision.is_tied(r.entry.run_name)} if decision is not None else {}
        plain = {k: v for k, v in r.metrics.items() if "/" not in k}  # slice/... metrics stay on the model runs
        rows.append({"model": r.entry.run_name, **plain, **extra, **tie, **r.seconds})
    df = pd.DataFrame(rows).set_index("model")
    metric = cfg.selection_metric
    if metric in df.columns:
        df = df.sort_values(metric, ascending=cfg.selection.direction == "minimize", kind="stable")
    return df


def select_best(results: list[ModelResult], cfg: ExperimentConfig) -> ModelResult:
    metric = cfg.selection_metric
    missing = [r.entry.run_name for r in results if metric not in r.metrics]
    if missing:
        available = sorted(results[0].metrics)
        raise ConfigError(f"selection metric {metric!r} was not computed for {missing}; "
                          f"choose one of {available} (selection.metric / metrics.primary)")
    sign = 1.0 if cfg.selection.direction == "maximize" else -1.0

    def key(r: ModelResult) -> float:
        v = r.metrics[metric]
        return -math.inf if v is None or math.isnan(v) else sign * v

    return max(results, key=key)  # first of equals wins (config order)
