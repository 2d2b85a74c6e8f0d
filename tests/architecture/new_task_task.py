"""A new task, `reorder`: which items will user u buy again? (`recsys/tasks/reorder.py` in the copy)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.data import Split, TrainData, load_dataset, split_dataset
from recsys.evaluation.reorder import ReorderTarget, build_reorder_target, evaluate_reorder, metric_names
from recsys.tasks.base import ModelResult, Task, TaskContext, TaskState, parse_task_params, write_pyfunc_meta


class ReorderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_history: int = Field(1, ge=1, description="users with at least this many training items")


@dataclass
class ReorderState(TaskState):
    split: Split
    data: TrainData
    target: ReorderTarget


class ReorderTask(Task):
    name = "reorder"
    served_by = "recommend"  # any recommender answers it

    def validate(self, cfg: ExperimentConfig) -> None:
        parse_task_params(ReorderParams, cfg, self.name)
        self.check_metrics(cfg)

    def metric_names(self, cfg: ExperimentConfig) -> list[str]:
        return metric_names(cfg.metrics.k)

    def prepare(self, cfg: ExperimentConfig) -> TaskContext:
        t0 = time.perf_counter()
        params = parse_task_params(ReorderParams, cfg, self.name)
        dataset = load_dataset(cfg.data, cfg.seed)
        split = split_dataset(dataset, cfg.split, cfg.seed)
        data = TrainData.build(split.train, dataset.items)
        target = build_reorder_target(data, split.test, params.min_history)
        ctx = TaskContext(cfg=cfg, dataset_name=dataset.name, fingerprint=dataset.fingerprint(),
                          split_fingerprint=split.fingerprint())
        ctx.state = ReorderState(split=split, data=data, target=target)
        ctx.stats = {"users": len(target.user_idx), "seconds_prepare": time.perf_counter() - t0}
        return ctx

    def evaluate(self, ctx: TaskContext, entry: ModelEntry, model: Any, store: bool = True) -> ModelResult:
        metrics, per_user = evaluate_reorder(model, ctx.state.target, ctx.cfg.metrics.k)
        return ModelResult(entry=entry, params=dict(model.params), metrics=metrics, model=model, per_user=per_user)

    def package(self, ctx: TaskContext, result: ModelResult, model_dir: Path) -> None:
        write_pyfunc_meta(model_dir, task=self.name, k=max(ctx.cfg.metrics.k))
        result.tables = {"per_user_metrics.parquet": result.per_user}
        result.input_example = pd.DataFrame({"user_id": ctx.state.target.user_ids[:3]})


TASK = ReorderTask()
