"""Task protocol shared by the experiment runner, tuning and tracking."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.models.base import ProgressCallback


@dataclass
class TaskContext:
    """Prepared data for one experiment (or one validation fold while tuning).

    stats: data statistics (logged as data_statistics.json); params: flattened data/split params;
    parent_artifacts: tables logged on the parent run (path -> DataFrame); inputs: (name, frame, context)
    datasets for mlflow.log_input; state: task-specific objects (train data, evaluation target, ...).
    """

    cfg: ExperimentConfig
    dataset_name: str
    fingerprint: str
    split_fingerprint: str
    stats: dict = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    parent_artifacts: dict[str, pd.DataFrame] = field(default_factory=dict)
    inputs: list[tuple[str, pd.DataFrame, str]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
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

    def validate(self, cfg: ExperimentConfig) -> None:
        """Check task-specific config (e.g. `task_params`) at load time; raise ConfigError naming the key."""

    def prepare(self, cfg: ExperimentConfig) -> TaskContext:
        raise NotImplementedError

    def validation_context(self, ctx: TaskContext) -> TaskContext:
        """A context whose 'test' part is carved from training only (for tuning); never reads the test part."""
        raise NotImplementedError(f"task {self.name!r} does not support tuning")

    def fit(self, entry: ModelEntry, data: Any, callback: ProgressCallback | None = None) -> tuple[Any, float]:
        """Create the entry's model for this task, fit it on `data`; returns (model, fit seconds)."""
        import time

        from recsys.models.catalog import create

        model = create(entry.name, entry.params, task=self.name)
        t0 = time.perf_counter()
        model.fit(data, callback=callback)
        return model, time.perf_counter() - t0

    def run_model(self, ctx: TaskContext, entry: ModelEntry, workdir: Path,
                  callback: ProgressCallback | None = None, store: bool = True) -> ModelResult:
        raise NotImplementedError

    def metric_names(self, cfg: ExperimentConfig) -> list[str]:
        raise NotImplementedError
