"""The `recommend` task: which items for user u? Full-ranking evaluation on a leakage-aware split."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from recsys.config.loader import flatten
from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.data import Split, TrainData, describe, load_dataset, split_interactions, validation_split
from recsys.data.tables import INTERACTION_COLUMNS
from recsys.evaluation.plots import plot_recommend_diagnostics
from recsys.evaluation.recommend import build_target, evaluate_recommender, metric_names
from recsys.logging import get_logger
from recsys.models.base import ProgressCallback
from recsys.tasks.base import ModelResult, Task, TaskContext

_log = get_logger(__name__)


class RecommendTask(Task):
    name = "recommend"

    def prepare(self, cfg: ExperimentConfig) -> TaskContext:
        t0 = time.perf_counter()
        dataset = load_dataset(cfg.data, cfg.seed)
        split = split_interactions(dataset.interactions, cfg.split, cfg.seed)
        _log.info("data %s: %d interactions; split %s: %d train / %d test rows (leak share %.4f)",
                  dataset.name, len(dataset.interactions), split.method, len(split.train), len(split.test),
                  split.audit["leak_share"])
        ctx = self._context(cfg, dataset.name, dataset.fingerprint(), split, dataset.items)
        ctx.stats = describe(dataset.interactions, split)
        ctx.state["dataset"] = dataset
        ctx.stats["seconds_prepare"] = time.perf_counter() - t0
        return ctx

    def _context(self, cfg: ExperimentConfig, name: str, fingerprint: str, split: Split,
                 items: pd.DataFrame, is_validation: bool = False) -> TaskContext:
        data = TrainData.build(split.train, items)
        target = build_target(data, split.test, cfg.split.unknown_users, cfg.split.unknown_items)
        params = {**flatten(cfg.data.model_dump(mode="json"), "data."), **flatten(cfg.split.model_dump(mode="json"), "split.")}
        params = {k: v for k, v in params.items() if not k.startswith(_other_sources(cfg.data.source))}
        ctx = TaskContext(cfg=cfg, dataset_name=name, fingerprint=fingerprint, split_fingerprint=split.fingerprint(),
                          params=params, is_validation=is_validation)
        ctx.state.update(split=split, data=data, target=target, items=items)
        ctx.parent_artifacts["data/test_interactions.parquet"] = target.test_rows.reset_index(drop=True)
        ctx.inputs = [(name, split.train[INTERACTION_COLUMNS], "training"),
                      (f"{name}-test", target.test_rows, "testing")]
        _log.info("evaluating %d users (%d by fallback) over %d items", len(target.user_ids),
                  int((target.user_idx < 0).sum()), data.n_items)
        return ctx

    def validation_context(self, ctx: TaskContext) -> TaskContext:
        split: Split = ctx.state["split"]
        # a Split without its test part: tuning must never read it
        train_only = Split(train=split.train, test=split.test.iloc[0:0], method=split.method, audit={})
        vsplit = validation_split(train_only, ctx.cfg.split, ctx.cfg.seed)
        vctx = self._context(ctx.cfg, ctx.dataset_name, ctx.fingerprint, vsplit, ctx.state["items"], is_validation=True)
        return vctx

    def run_model(self, ctx: TaskContext, entry: ModelEntry, workdir: Path,
                  callback: ProgressCallback | None = None, store: bool = True) -> ModelResult:
        cfg = ctx.cfg
        data: TrainData = ctx.state["data"]
        model, fit_s = self.fit(entry, data, callback)
        t1 = time.perf_counter()
        res = evaluate_recommender(model, data, ctx.state["target"], cfg.metrics.k, cfg.metrics.batch_size,
                                   store_lists=store, desc=entry.run_name)
        eval_s = time.perf_counter() - t1
        _log.info("%-12s %s=%.4f (fit %.1fs, evaluate %.1fs)", entry.run_name, cfg.metrics.primary,
                  res.metrics.get(cfg.metrics.primary, float("nan")), fit_s, eval_s)
        result = ModelResult(entry=entry, params=flatten(model.params, "model."), metrics=res.metrics, model=model,
                             per_user=res.per_user, seconds={"fit_seconds": fit_s, "evaluate_seconds": eval_s})
        if store:
            model_dir = workdir / "model"
            model.save(model_dir)
            write_pyfunc_meta(model_dir, task=self.name, k=max(cfg.metrics.k))
            result.model_dir = model_dir
            result.tables = {"recommendations.parquet": res.recommendations, "per_user_metrics.parquet": res.per_user}
            popularity = pd.Series(data.item_popularity(), index=data.items.ids)
            result.files = plot_recommend_diagnostics(res.per_user, res.recommendations, popularity,
                                                      cfg.metrics.primary, workdir / "plots")
            known = ctx.state["target"].user_ids[:3]
            result.input_example = pd.DataFrame({"user_id": known})
            result.pyfunc_params = {"k": int(max(cfg.metrics.k))}
        return result

    def metric_names(self, cfg: ExperimentConfig) -> list[str]:
        return metric_names(cfg.metrics.k)


def _other_sources(source: str) -> tuple[str, ...]:
    """Param prefixes of the sources not in use (kept out of the logged params)."""
    return tuple(f"data.{s}." for s in ("synthetic", "movielens", "tabular") if s != source)


def write_pyfunc_meta(model_dir: Path, task: str, **extra) -> None:
    import json

    (model_dir / "pyfunc.json").write_text(json.dumps({"task": task, **extra}, indent=2))


TASK = RecommendTask()
