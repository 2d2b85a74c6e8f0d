"""The `similar` task: which items are like item i? Judged by next-item prediction on the recommend split.

The task reuses the recommend task's data and split; the pairs and the scoring are
`recsys.evaluation.similar` (next_item_pairs, evaluate_similar).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from recsys.config.loader import flatten
from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.data.tables import TrainData
from recsys.evaluation.similar import evaluate_similar, metric_names, next_item_pairs, similar_frame
from recsys.logging import get_logger
from recsys.models.base import ProgressCallback
from recsys.tasks.base import ModelResult, TaskContext
from recsys.tasks.recommend import RecommendTask, write_pyfunc_meta

_log = get_logger(__name__)


class SimilarTask(RecommendTask):
    name = "similar"
    supports_folds = False

    def _context(self, cfg, name, fingerprint, split, items, is_validation=False) -> TaskContext:
        ctx = super()._context(cfg, name, fingerprint, split, items, is_validation)
        pairs = next_item_pairs(ctx.state["data"], split.test)
        ctx.state["pairs"] = pairs
        data: TrainData = ctx.state["data"]
        ctx.parent_artifacts["data/next_item_pairs.parquet"] = pd.DataFrame({
            "user_id": pairs["user_id"], "query_item_id": data.items.id(pairs["query"].to_numpy()),
            "target_item_id": data.items.id(pairs["target"].to_numpy())})
        _log.info("similar: %d (query, next item) pairs", len(pairs))
        return ctx

    def run_model(self, ctx: TaskContext, entry: ModelEntry, workdir: Path,
                  callback: ProgressCallback | None = None, store: bool = True) -> ModelResult:
        cfg = ctx.cfg
        data: TrainData = ctx.state["data"]
        pairs: pd.DataFrame = ctx.state["pairs"]
        model, fit_s = self.fit(entry, data, callback)
        t1 = time.perf_counter()
        kmax = max(cfg.metrics.k)
        metrics, per_user, ranked, scores = evaluate_similar(model, pairs, data.n_items, cfg.metrics.k)
        eval_s = time.perf_counter() - t1
        _log.info("%-12s %s=%.4f (fit %.1fs, evaluate %.1fs)", entry.run_name, cfg.metrics.primary,
                  metrics.get(cfg.metrics.primary, float("nan")), fit_s, eval_s)
        result = ModelResult(entry=entry, params=flatten(model.params, "model."), metrics=metrics,
                             model=model, per_user=per_user,
                             seconds={"fit_seconds": fit_s, "evaluate_seconds": eval_s})
        if store:
            model_dir = workdir / "model"
            model.save(model_dir)
            write_pyfunc_meta(model_dir, task=self.name, k=kmax)
            result.model_dir = model_dir
            result.tables = {"similar_items.parquet": similar_frame(pairs, ranked, scores, data.items),
                             "per_user_metrics.parquet": per_user}
            result.input_example = pd.DataFrame({"item_id": data.items.id(pairs["query"].to_numpy()[:3])})
            result.pyfunc_params = {"k": int(kmax)}
        return result

    def metric_names(self, cfg: ExperimentConfig) -> list[str]:
        return metric_names(cfg.metrics.k)

    metric_keys = ("metrics.primary", "selection.metric")


TASK = SimilarTask()
