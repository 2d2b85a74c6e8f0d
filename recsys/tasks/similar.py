"""The `similar` task: which items are like item i? Judged by next-item prediction on the recommend split.

For every evaluated user, the query is the user's last training item and the target is the user's first test
item (the next thing they engaged with, not the query itself). A model's `similar(query, K)` list is scored with
hit_rate_at_K, mrr_at_K and ndcg_at_K (one relevant item), plus catalog coverage of the lists.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.config.loader import flatten
from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.data.tables import TrainData
from recsys.evaluation import metrics as M
from recsys.logging import get_logger
from recsys.models.base import ProgressCallback
from recsys.tasks.base import ModelResult, TaskContext
from recsys.tasks.recommend import RecommendTask, write_pyfunc_meta

_log = get_logger(__name__)


def next_item_pairs(data: TrainData, test: pd.DataFrame) -> pd.DataFrame:
    """One (user, query item, target item) row per user known to training with a usable test interaction."""
    train = data.interactions.sort_values(["timestamp", "item_idx"], kind="stable")
    last = train.groupby("user_id", sort=False).tail(1)[["user_id", "item_idx"]].rename(columns={"item_idx": "query"})
    t = test[["user_id", "item_id", "timestamp"]].copy()
    t["target"] = data.items.index(t["item_id"].to_numpy())
    t = t.merge(last, on="user_id", how="inner")
    t = t[(t["target"] >= 0) & (t["target"] != t["query"])]
    first = t.sort_values(["timestamp", "target"], kind="stable").groupby("user_id", sort=True).head(1)
    return first[["user_id", "query", "target"]].reset_index(drop=True)


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
        ranked, scores = model.similar(pairs["query"].to_numpy(), kmax)
        ranked = np.where(np.isfinite(scores), ranked, -1)
        n = len(pairs)
        relevant = sp.csr_matrix((np.ones(n), (np.arange(n), pairs["target"].to_numpy())), shape=(n, data.n_items))
        hits = M.hits_matrix(ranked, relevant)
        per = M.accuracy_metrics(hits, np.ones(n), cfg.metrics.k)
        per = {k: v for k, v in per.items() if k.startswith(("hit_rate", "mrr", "ndcg"))}
        metrics = {k: float(v.mean()) if n else 0.0 for k, v in per.items()}
        for k in cfg.metrics.k:
            metrics[f"catalog_coverage_at_{k}"] = M.catalog_coverage(ranked, k, data.n_items)
        eval_s = time.perf_counter() - t1
        _log.info("%-12s %s=%.4f (fit %.1fs, evaluate %.1fs)", entry.run_name, cfg.metrics.primary,
                  metrics.get(cfg.metrics.primary, float("nan")), fit_s, eval_s)
        per_user = pd.DataFrame({"user_id": pairs["user_id"], **per})
        result = ModelResult(entry=entry, params=flatten(model.params, "model."), metrics=dict(sorted(metrics.items())),
                             model=model, per_user=per_user,
                             seconds={"fit_seconds": fit_s, "evaluate_seconds": eval_s})
        if store:
            model_dir = workdir / "model"
            model.save(model_dir)
            write_pyfunc_meta(model_dir, task=self.name, k=kmax)
            result.model_dir = model_dir
            valid = ranked >= 0
            rows = np.repeat(np.arange(n), kmax).reshape(n, kmax)[valid]
            result.tables = {
                "similar_items.parquet": pd.DataFrame({
                    "query_item_id": data.items.id(pairs["query"].to_numpy()[rows]),
                    "item_id": data.items.id(ranked[valid]),
                    "rank": np.tile(np.arange(1, kmax + 1), (n, 1))[valid], "score": scores[valid]}),
                "per_user_metrics.parquet": per_user,
            }
            result.input_example = pd.DataFrame({"item_id": data.items.id(pairs["query"].to_numpy()[:3])})
            result.pyfunc_params = {"k": int(kmax)}
        return result

    def metric_names(self, cfg: ExperimentConfig) -> list[str]:
        return sorted(f"{m}_at_{k}" for k in cfg.metrics.k for m in ("hit_rate", "mrr", "ndcg", "catalog_coverage"))

    def validate(self, cfg: ExperimentConfig) -> None:
        from recsys.errors import ConfigError

        allowed = set(self.metric_names(cfg))
        for key, value in (("metrics.primary", cfg.metrics.primary), ("selection.metric", cfg.selection_metric)):
            if value not in allowed:
                raise ConfigError(f"config key `{key}` is {value!r}, which the similar task does not compute; "
                                  f"choose one of {sorted(allowed)}")


TASK = SimilarTask()
