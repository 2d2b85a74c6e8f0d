"""Task protocol shared by the experiment runner, tuning and tracking.

A task prepares a `TaskContext` once (data, split, evaluation target in a typed `TaskState`), then runs each model
entry through one template, `Task.run_model`: fit (timed) -> `evaluate` hook (timed) -> log one line -> with
`store`, save the model and the `package` hook (tables, plots, pyfunc meta, input example). A task supplies
`prepare`, `evaluate`, `package`, `metric_names` and, where its models do not fit on `state.data`, `fit_model`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from pydantic import BaseModel, ValidationError

from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.errors import ConfigError
from recsys.logging import get_logger
from recsys.models.base import ProgressCallback

P = TypeVar("P", bound=BaseModel)
_log = get_logger(__name__)


def parse_task_params(schema: type[P], cfg: ExperimentConfig, task: str) -> P:
    """`cfg.task_params` validated by a task's pydantic `schema`; a ConfigError naming every bad key otherwise.

    An unknown key gets a did-you-mean from the keys allowed at its level (nested sections included), e.g.
    "config key `task_params.querys` is unknown for task 'search'; did you mean `task_params.queries`?".
    """
    try:
        return schema.model_validate(cfg.task_params)
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            path = [str(part) for part in err["loc"]]
            loc = ".".join(["task_params", *path])
            if err["type"] == "extra_forbidden":
                parent = ".".join(["task_params", *path[:-1]])
                allowed = sorted(_fields_at(schema, path[:-1]))
                hint = difflib.get_close_matches(path[-1], allowed, n=1)
                msgs.append(f"config key `{loc}` is unknown for task {task!r}"
                            + (f"; did you mean `{parent}.{hint[0]}`?" if hint else "")
                            + (f" (allowed: {', '.join(allowed)})" if allowed else ""))
            else:
                msgs.append(f"config key `{loc}` has invalid value {err.get('input')!r}: {err['msg']}")
        raise ConfigError("; ".join(msgs)) from None


def _fields_at(schema: type[BaseModel], path: list[str]) -> list[str]:
    """Field names of the (nested) pydantic model at `path` below `schema`; [] where the path is not a model."""
    model: Any = schema
    for part in path:
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            return []
        model = next((a for a in (info.annotation, *getattr(info.annotation, "__args__", ()))
                      if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


class TaskState:
    """Base of each task's typed state (a dataclass per task: `RecommendState`, `SearchState`, ...).

    Attribute access is the way; `state["data"]` / `state["data"] = ...` read and write the attribute of that name
    (KeyError for a name the state does not have), for callers written against the former dict.
    """

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def __contains__(self, key: object) -> bool:
        """`"target" in state`: the state has that attribute and it is set (not None), as a dict had the key."""
        return isinstance(key, str) and getattr(self, key, None) is not None


@dataclass
class TaskContext:
    """Prepared data for one experiment (or one validation fold while tuning).

    stats: data statistics (logged as data_statistics.json); params: flattened data/split params;
    parent_artifacts: tables logged on the parent run (path -> DataFrame); inputs: (name, frame, context)
    datasets for mlflow.log_input; state: the task's typed state (train data, evaluation target, ...).
    """

    cfg: ExperimentConfig
    dataset_name: str
    fingerprint: str
    split_fingerprint: str
    stats: dict = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    parent_artifacts: dict[str, pd.DataFrame] = field(default_factory=dict)
    inputs: list[tuple[str, pd.DataFrame, str]] = field(default_factory=list)
    state: Any = field(default_factory=TaskState)  # the task's TaskState subclass
    is_validation: bool = False


@dataclass
class ChildRun:
    """A nested run under a model run (e.g. one per K in segmentation): logged by the tracker as-is."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # artifact path -> local file
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class ModelResult:
    """Outcome of fitting and evaluating one model entry; plain data that tracking turns into a run."""

    entry: ModelEntry
    params: dict[str, Any]
    metrics: dict[str, float]
    model: Any = None
    model_dir: Path | None = None  # saved model (plain files) for the pyfunc
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # artifact path -> frame (parquet)
    files: dict[str, Path] = field(default_factory=dict)  # artifact path -> local file (plots, json)
    per_user: pd.DataFrame | None = None
    input_example: pd.DataFrame | None = None
    pyfunc_params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    children: list[ChildRun] = field(default_factory=list)


class Task:
    """A task prepares a context once, then fits + evaluates each model entry on it."""

    name: str = "base"
    supports_folds: bool = False  # split.folds > 1 (repeated splits) is handled by this task
    # models whose `tasks` name this answer the task (default: the task's own name); a new task can reuse a
    # model family, e.g. served_by = "recommend"
    served_by: str | None = None

    @property
    def model_task(self) -> str:
        return self.served_by or self.name

    # config keys naming a metric that this task must compute (checked at load time, before any model is fitted)
    metric_keys: tuple[str, ...] = ("metrics.primary", "selection.metric")

    def validate(self, cfg: ExperimentConfig) -> None:
        """Check task-specific config at load time; raise ConfigError naming the key. The default checks that the
        metrics named by `metric_keys` are ones the task computes; tasks with `task_params` parse them first."""
        self.check_metrics(cfg)

    def check_metrics(self, cfg: ExperimentConfig) -> None:
        """ConfigError when `metrics.primary` (or `selection.metric`) is not among `metric_names(cfg)`."""
        names = self.metric_names(cfg)
        values = {"metrics.primary": cfg.metrics.primary, "selection.metric": cfg.selection_metric}
        for key in self.metric_keys:
            value = values[key]
            if value in names:
                continue
            hint = difflib.get_close_matches(value, names, n=1)
            per_k = any("_at_" in n for n in names)
            raise ConfigError(f"config key `{key}` is {value!r}, which the {self.name} task does not compute"
                              + (f"; did you mean {hint[0]!r}?" if hint else "")
                              + f" (available{f' for metrics.k={cfg.metrics.k}' if per_k else ''}: "
                              + f"{', '.join(names)})")

    def prepare(self, cfg: ExperimentConfig) -> TaskContext:
        raise NotImplementedError

    def validation_context(self, ctx: TaskContext) -> TaskContext:
        """A context whose 'test' part is carved from training only (for tuning); never reads the test part."""
        raise NotImplementedError(f"task {self.name!r} does not support tuning")

    def fit(self, entry: ModelEntry, data: Any, callback: ProgressCallback | None = None) -> tuple[Any, float]:
        """Create the entry's model for this task, fit it on `data`; returns (model, fit seconds)."""
        import time

        from recsys.models.catalog import create

        model = create(entry.name, entry.params, task=self.model_task)
        t0 = time.perf_counter()
        model.fit(data, callback=callback)
        return model, time.perf_counter() - t0

    def fit_model(self, ctx: TaskContext, entry: ModelEntry, callback: ProgressCallback | None = None
                  ) -> tuple[Any, float]:
        """Hook: (fitted model, fit seconds); the default fits on `ctx.state.data`."""
        return self.fit(entry, ctx.state.data, callback)

    def run_model(self, ctx: TaskContext, entry: ModelEntry, workdir: Path,
                  callback: ProgressCallback | None = None, store: bool = True) -> ModelResult:
        """Fit, evaluate and (with `store`) save + package one model entry: the skeleton every task shares.

        `evaluate` returns the result with its metrics; `fit_seconds`/`evaluate_seconds` are added here, then
        `describe` gives the log line's middle part, and `package` adds what is logged with a stored model.
        """
        import time

        model, fit_s = self.fit_model(ctx, entry, callback)
        t1 = time.perf_counter()
        result = self.evaluate(ctx, entry, model, store)
        eval_s = time.perf_counter() - t1
        result.seconds = {"fit_seconds": fit_s, "evaluate_seconds": eval_s, **result.seconds}
        _log.info("%-14s %s (fit %.1fs, evaluate %.1fs)", entry.run_name, self.describe(ctx, result), fit_s, eval_s)
        if store:
            model_dir = workdir / "model"
            model.save(model_dir)
            result.model_dir = model_dir
            self.package(ctx, result, model_dir)
        return result

    def evaluate(self, ctx: TaskContext, entry: ModelEntry, model: Any, store: bool = True) -> ModelResult:
        """Hook: score a fitted model on the context's evaluation data -> ModelResult (metrics, per-unit table).

        With `store` false (tuning trials, later folds) it may skip what only `package` needs."""
        raise NotImplementedError

    def describe(self, ctx: TaskContext, result: ModelResult) -> str:
        """Hook: the task's numbers for the log line (default: the primary metric)."""
        primary = ctx.cfg.metrics.primary
        return f"{primary}={result.metrics.get(primary, float('nan')):.4g}"

    def package(self, ctx: TaskContext, result: ModelResult, model_dir: Path) -> None:
        """Hook: with the model saved in `model_dir`, add what a stored run logs (pyfunc.json, tables, files,
        input example, pyfunc params)."""
        raise NotImplementedError

    def metric_names(self, cfg: ExperimentConfig) -> list[str]:
        raise NotImplementedError


def write_pyfunc_meta(model_dir: Path, task: str, **extra: Any) -> None:
    """`pyfunc.json` in a saved model folder: the task (which predictor serves it) and its serving defaults."""
    import json

    (model_dir / "pyfunc.json").write_text(json.dumps({"task": task, **extra}, indent=2))
