"""The `similar` task: which items are like item i? Judged by next-item prediction on the recommend split.

The task reuses the recommend task's data and split; the pairs and the scoring are
`recsys.evaluation.similar` (next_item_pairs, evaluate_similar).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.config.loader import flatten
from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.data.tables import TrainData
from recsys.evaluation.similar import evaluate_similar, metric_names, next_item_pairs, similar_frame
from recsys.logging import get_logger
from recsys.tasks.base import ModelResult, TaskContext, write_pyfunc_meta
from recsys.tasks.recommend import RecommendState, RecommendTask

_log = get_logger(__name__)


@dataclass
class SimilarState(RecommendState):
    """The recommend state plus the (user, query item, next item) pairs that are evaluated."""

    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)  # set by SimilarTask._context


class SimilarTask(RecommendTask):
    name = "similar"
    supports_folds = False
    state_type = SimilarState
    metric_keys = ("metrics.primary", "selection.metric")
    user_slices = False  # item-to-item lists: no user slices

    def _context(self, cfg, name, fingerprint, split, items, is_validation=False) -> TaskContext:
        ctx = super()._context(cfg, name, fingerprint, split, items, is_validation)
        data: TrainData = ctx.state.data
        pairs = next_item_pairs(data, split.test)
        ctx.state.pairs = pairs
        ctx.parent_artifacts["data/next_item_pairs.parquet"] = pd.DataFrame({
            "user_id": pairs["user_id"], "query_item_id": data.items.id(pairs["query"].to_numpy()),
            "target_item_id": data.items.id(pairs["target"].to_numpy())})
        _log.info("similar: %d (query, next item) pairs", len(pairs))
        return ctx

    def evaluate(self, ctx: TaskContext, entry: ModelEntry, model: Any, store: bool = True) -> ModelResult:
        state: SimilarState = ctx.state
        metrics, per_user, ranked, scores = evaluate_similar(model, state.pairs, state.data.n_items, ctx.cfg.metrics.k)
        result = ModelResult(entry=entry, params=flatten(model.params, "model."), metrics=metrics, model=model,
                             per_user=per_user)
        result.extra.update(ranked=ranked, scores=scores)
        return result

    def package(self, ctx: TaskContext, result: ModelResult, model_dir: Path) -> None:
        state: SimilarState = ctx.state
        kmax = max(ctx.cfg.metrics.k)
        write_pyfunc_meta(model_dir, task=self.name, k=kmax)
        ranked, scores = result.extra.pop("ranked"), result.extra.pop("scores")
        result.tables = {"similar_items.parquet": similar_frame(state.pairs, ranked, scores, state.data.items),
                         "per_user_metrics.parquet": result.per_user}
        result.input_example = pd.DataFrame({"item_id": state.data.items.id(state.pairs["query"].to_numpy()[:3])})
        result.pyfunc_params = {"k": int(kmax)}

    def metric_names(self, cfg: ExperimentConfig) -> list[str]:
        return metric_names(cfg.metrics.k)


TASK = SimilarTask()
