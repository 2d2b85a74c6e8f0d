"""The `audience` task: which users should a merchant target for product p?

Models rank training users per product (`model.audience(item_idx, n)`); users who already interacted with the
product in training are excluded (configurable). Products a model cannot answer (no training history, unknown
category) get the cold-start fallback: the globally most engaged users. Evaluation is on a temporal split: the
positives of a product are the users who engage with it in the test period (see `recsys.evaluation.audience`).

Task options live in `task_params` (validated by `AudienceParams`), e.g.::

    task: audience
    task_params: {exclude_interacted: true, cache_n: 100}
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recsys.config.loader import flatten
from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.data import Split, TrainData, describe, load_dataset, split_dataset, validation_split
from recsys.data.tables import INTERACTION_COLUMNS
from recsys.evaluation.audience import (
    AudienceTarget,
    audience_frame,
    audience_metrics,
    build_audience_target,
    metric_names,
)
from recsys.logging import get_logger
from recsys.models.activity import ActivityConfig, fit_engagement
from recsys.models.audience import item_users, rank_users
from recsys.models.base import topk
from recsys.tasks.base import ModelResult, Task, TaskContext, TaskState, parse_task_params, write_pyfunc_meta
from recsys.tasks.recommend import _other_sources

_log = get_logger(__name__)

CACHE_FILE, FALLBACK_FILE = "audience_cache.parquet", "fallback.parquet"


class AudienceParams(BaseModel):
    """`task_params` of an audience experiment. Metric cut-offs N come from `metrics.k`."""

    model_config = ConfigDict(extra="forbid")

    exclude_interacted: bool = Field(True, description="never target users who interacted with the product in training")
    include_new_products: bool = Field(True, description="evaluate products with no training interactions too "
                                                         "(answered by the fallback unless the model covers them)")
    min_positives: int = Field(1, ge=1, description="evaluate products with at least this many test engagers")
    cache_n: int | None = Field(None, gt=0, le=100_000, description="audience depth precomputed per product for "
                                                                      "serving; default max(metrics.k)")
    batch_size: int = Field(256, gt=0, description="products scored per batch (memory: batch x users floats)")
    concentration_share: float = Field(0.01, gt=0, le=1, description="top share of users for the concentration "
                                                                     "metric (0.01 -> top1pct_share_at_N)")
    fallback: ActivityConfig = Field(default_factory=ActivityConfig,
                                     description="engagement score that ranks users for cold-start products")


def audience_params(cfg: ExperimentConfig) -> AudienceParams:
    return parse_task_params(AudienceParams, cfg, "audience")


def data_diagnostics(stats: dict) -> dict[str, float]:
    """The numbers to read before choosing an audience model (see docs/audience.md)."""
    split = stats.get("split", {})
    audit = split.get("audit", {})
    test_rows = max(1, int(audit.get("test_rows", 0)))
    return {
        "one_time_user_share": float(stats.get("one_time_user_share", float("nan"))),
        "retention_train_to_test": float(split.get("retention_train_to_test", float("nan"))),
        "new_product_share": float(split.get("test_items_unseen_in_train", float("nan"))),
        "new_product_interaction_share": float(audit.get("test_rows_unknown_item", 0)) / test_rows,
    }


@dataclass
class AudienceState(TaskState):
    """Audience: the split, training data, products to evaluate, the cold-start engagement fallback (one score per
    user), the parsed task_params and each product's training users (CSR, excluded when exclude_interacted)."""

    split: Split
    data: TrainData
    target: AudienceTarget
    items: pd.DataFrame | None
    fallback: np.ndarray
    audience: AudienceParams
    seen_by_item: Any
    diagnostics: dict[str, float] | None = None


class AudienceTask(Task):
    name = "audience"

    def validate(self, cfg: ExperimentConfig) -> None:
        audience_params(cfg)
        self.check_metrics(cfg)

    def metric_names(self, cfg: ExperimentConfig) -> list[str]:
        return metric_names(cfg.metrics.k, audience_params(cfg).concentration_share)

    # data -------------------------------------------------------------------------------------------------
    def prepare(self, cfg: ExperimentConfig) -> TaskContext:
        t0 = time.perf_counter()
        dataset = load_dataset(cfg.data, cfg.seed)
        split = split_dataset(dataset, cfg.split, cfg.seed)
        stats = describe(dataset.all_interactions, split)
        diag = data_diagnostics(stats)
        stats["audience_diagnostics"] = diag
        _log.info("data %s: %d interactions, one-time users %.1f%%, retention %.1f%%, new products %.1f%%",
                  dataset.name, len(dataset.interactions), 100 * diag["one_time_user_share"],
                  100 * diag["retention_train_to_test"], 100 * diag["new_product_share"])
        ctx = self._context(cfg, dataset.name, dataset.fingerprint(), split, dataset.items)
        ctx.stats = stats
        ctx.params.update({f"diagnostics.{k}": round(v, 6) for k, v in diag.items()})
        ctx.state.diagnostics = diag
        ctx.stats["seconds_prepare"] = time.perf_counter() - t0
        return ctx

    def _context(self, cfg: ExperimentConfig, name: str, fingerprint: str, split: Split, items: pd.DataFrame,
                 is_validation: bool = False) -> TaskContext:
        params_t = audience_params(cfg)
        data = TrainData.build(split.train, items)
        target = build_audience_target(data, split.test, params_t.exclude_interacted, params_t.include_new_products,
                                       params_t.min_positives)
        if len(target.item_idx) == 0:
            from recsys.errors import DataError

            raise DataError(f"audience: no product has >= {params_t.min_positives} test-period engager(s) among "
                            f"training users ({target.info}); lower task_params.min_positives or enlarge "
                            "split.test_size")
        fallback, _ = fit_engagement(data, params_t.fallback)
        params = {**flatten(cfg.data.model_dump(mode="json"), "data."),
                  **flatten(cfg.split.model_dump(mode="json"), "split."),
                  **flatten(params_t.model_dump(mode="json"), "task_params.")}
        params = {k: v for k, v in params.items() if not k.startswith(_other_sources(cfg.data.source))}
        ctx = TaskContext(cfg=cfg, dataset_name=name, fingerprint=fingerprint, split_fingerprint=split.fingerprint(),
                          params=params, is_validation=is_validation)
        ctx.state = AudienceState(split=split, data=data, target=target, items=items, fallback=fallback,
                                  audience=params_t, seen_by_item=item_users(data.matrix))
        ctx.parent_artifacts["data/audience_products.parquet"] = pd.DataFrame({
            "item_id": target.item_ids, "n_positives": target.n_relevant, "pool_size": target.pool_size,
            "new_product": target.new_product})
        ctx.inputs = [(name, split.train[INTERACTION_COLUMNS], "training"),
                      (f"{name}-test", split.test[INTERACTION_COLUMNS], "testing")]
        _log.info("audience: %d products to evaluate (%d new), %d candidate users, %d positive pairs",
                  len(target.item_idx), int(target.new_product.sum()), data.n_users, target.relevant.nnz)
        return ctx

    def validation_context(self, ctx: TaskContext) -> TaskContext:
        split: Split = ctx.state.split
        train_only = dataclasses.replace(split, test=split.test.iloc[0:0], audit={})
        vsplit = validation_split(train_only, ctx.cfg.split, ctx.cfg.seed)
        return self._context(ctx.cfg, ctx.dataset_name, ctx.fingerprint, vsplit, ctx.state.items,
                             is_validation=True)

    # models -----------------------------------------------------------------------------------------------
    def evaluate(self, ctx: TaskContext, entry: ModelEntry, model: Any, store: bool = True) -> ModelResult:
        state: AudienceState = ctx.state
        ns = ctx.cfg.metrics.k
        ranked, scores, covered = audiences(model, ctx, state.target.item_idx, max(ns))
        metrics, per_product = audience_metrics(ranked, state.target, ns, covered, state.data.n_users,
                                                state.audience.concentration_share)
        result = ModelResult(entry=entry, params=flatten(model.params, "model."), metrics=metrics, model=model,
                             per_user=per_product, tags={"per_user_key": "item_id"})
        result.extra.update(ranked=ranked, scores=scores, covered=covered)
        return result

    def describe(self, ctx: TaskContext, result: ModelResult) -> str:
        m, primary, n = result.metrics, ctx.cfg.metrics.primary, max(ctx.cfg.metrics.k)
        return (f"{primary}={m.get(primary, float('nan')):.4f} lift_at_{n}={m.get(f'lift_at_{n}', float('nan')):.2f} "
                f"coverage={m['product_coverage']:.3f}")

    def package(self, ctx: TaskContext, result: ModelResult, model_dir: Path) -> None:
        state: AudienceState = ctx.state
        p, ns = state.audience, ctx.cfg.metrics.k
        t0 = time.perf_counter()
        depth = p.cache_n or max(ns)
        write_audience_cache(result.model, ctx, model_dir, depth)
        write_pyfunc_meta(model_dir, task=self.name, n=max(ns), cache_n=depth, exclude_interacted=p.exclude_interacted)
        result.seconds["cache_seconds"] = time.perf_counter() - t0
        ranked, scores, covered = (result.extra.pop(k) for k in ("ranked", "scores", "covered"))
        target = state.target
        result.tables = {"per_user_metrics.parquet": result.per_user,
                         "audiences.parquet": audience_frame(target.item_ids, ranked, scores, covered,
                                                             state.data.users)}
        example = target.item_ids[covered][:2] if covered.any() else target.item_ids[:2]
        result.input_example = pd.DataFrame({"item_id": example})
        result.pyfunc_params = {"n": int(max(ns))}


def covers(model: Any, data: TrainData, item_idx: np.ndarray) -> np.ndarray:
    """Products the model answers itself: its own `audience_covers`, else products with training interactions."""
    if hasattr(model, "audience_covers"):
        return np.asarray(model.audience_covers(item_idx), dtype=bool)
    trained = data.item_popularity() > 0
    return trained[np.asarray(item_idx, dtype=np.int64)]


def audiences(model: Any, ctx: TaskContext, item_idx: np.ndarray, n: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Audiences (users (len, n), scores (len, n), covered (len,)) for item indices; uncovered products get the
    engagement fallback with the same exclusion rule."""
    p: AudienceParams = ctx.state.audience
    data: TrainData = ctx.state.data
    item_idx = np.asarray(item_idx, dtype=np.int64)
    covered = covers(model, data, item_idx)
    ranked = np.full((len(item_idx), n), -1, dtype=np.int64)
    scores = np.full((len(item_idx), n), -np.inf)
    seen = ctx.state.seen_by_item if p.exclude_interacted else None
    fallback = ctx.state.fallback
    for mask, by_model in ((covered, True), (~covered, False)):
        rows_all = np.flatnonzero(mask)
        for start in range(0, len(rows_all), p.batch_size):
            rows = rows_all[start:start + p.batch_size]
            if by_model:
                idx, val = model.audience(item_idx[rows], n, exclude_seen=p.exclude_interacted)
            else:
                idx, val = rank_users(np.broadcast_to(fallback, (len(rows), len(fallback))), item_idx[rows], n, seen)
            ranked[rows, :idx.shape[1]], scores[rows, :idx.shape[1]] = idx, val
    return ranked, scores, covered


def write_audience_cache(model: Any, ctx: TaskContext, model_dir: Path, depth: int) -> None:
    """Precompute the audience of every product the model covers (`audience_cache.parquet`) and the cold-start
    list (`fallback.parquet`, the most engaged users) into the model folder the pyfunc serves from."""
    data: TrainData = ctx.state.data
    all_items = np.arange(data.n_items, dtype=np.int64)
    covered_items = all_items[covers(model, data, all_items)]
    ranked, scores, _ = audiences(model, ctx, covered_items, depth)
    cache = audience_frame(data.items.id(covered_items), ranked, scores, np.ones(len(covered_items), bool), data.users)
    cache.drop(columns="reason").to_parquet(model_dir / CACHE_FILE, index=False)
    idx, val = topk(np.asarray(ctx.state.fallback, dtype=np.float64)[None, :], depth)
    keep = idx[0] >= 0
    pd.DataFrame({"user_id": data.users.id(idx[0][keep]), "rank": np.arange(1, int(keep.sum()) + 1, dtype=np.int64),
                  "score": val[0][keep]}).to_parquet(model_dir / FALLBACK_FILE, index=False)
    _log.info("audience cache: %d products x %d users (%d rows)", len(covered_items), depth, len(cache))


TASK = AudienceTask()
