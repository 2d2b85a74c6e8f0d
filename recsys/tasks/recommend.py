"""The `recommend` task: which items for user u? Full-ranking evaluation on a leakage-aware split."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.config.loader import flatten
from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.data import Dataset, Split, TrainData, describe, load_dataset, split_dataset, validation_split
from recsys.data.split import split_folds
from recsys.data.tables import INTERACTION_COLUMNS, frame_fingerprint
from recsys.evaluation.plots import plot_recommend_diagnostics, plot_slices
from recsys.evaluation.recommend import EvalTarget, build_target, evaluate_recommender, metric_names, sample_target
from recsys.evaluation.slices import activity_slice, head_items, popularity_recall, slice_metrics, user_slices
from recsys.logging import get_logger
from recsys.models.base import ProgressCallback
from recsys.random import derive_seed
from recsys.tasks.base import ChildRun, ModelResult, Task, TaskContext, TaskState, write_pyfunc_meta

_log = get_logger(__name__)


@dataclass
class RecommendState(TaskState):
    """Recommend (and similar): the split, training data and evaluation target; with repeated splits, one
    state per fold in `folds` (the context's own `split` is then the training part common to all folds)."""

    split: Split
    data: TrainData
    target: EvalTarget
    items: pd.DataFrame | None
    dataset: Dataset | None = None
    folds: list[RecommendState] | None = None
    _slice_labels: tuple[tuple[Any, ...], np.ndarray] | None = dataclasses.field(default=None, init=False,
                                                                                repr=False, compare=False)

    def slice_labels(self) -> np.ndarray:
        """`user_slice_labels` of this state, computed once for its (data, target, split): every model of the
        experiment is evaluated on the same users (recomputed per model, it was most of a cheap model's evaluation
        time)."""
        key = (self.data, self.target, self.split)
        cached = self._slice_labels
        if cached is None or any(a is not b for a, b in zip(cached[0], key)):
            cached = self._slice_labels = (key, user_slice_labels(self.data, self.target, self.split))
        return cached[1]


class RecommendTask(Task):
    name = "recommend"
    supports_folds = True
    state_type: type[RecommendState] = RecommendState
    # selection.metric may name a fold or slice aggregate; the primary must be a computed metric
    metric_keys: tuple[str, ...] = ("metrics.primary",)
    user_slices = True  # evaluate() reports metrics by user activity slice (state.slice_labels)

    def prepare(self, cfg: ExperimentConfig) -> TaskContext:
        t0 = time.perf_counter()
        dataset = load_dataset(cfg.data, cfg.seed)
        folds: list[Split] = []
        if cfg.split.folds > 1:
            folds, common_train = split_folds(dataset.interactions, cfg.split, cfg.seed)
            split = folds[0]
        else:
            split = split_dataset(dataset, cfg.split, cfg.seed)
        _log.info("data %s: %d interactions; split %s: %d train / %d test rows (leak share %.4f)",
                  dataset.name, len(dataset.interactions), split.method, len(split.train), len(split.test),
                  split.audit["leak_share"])
        ctx = self._context(cfg, dataset.name, dataset.fingerprint(), split, dataset.items)
        ctx.stats = describe(dataset.all_interactions, split)
        if ctx.state.data.item_categories() is None:
            reason = "items have no categories (map data.tabular.item_columns.category or give an items table)"
            ctx.stats["metrics_not_computed"] = {f"diversity_at_{k}": reason for k in cfg.metrics.k}
            _log.warning("diversity_at_K is not computed (nor logged) for any model: %s", reason)
        ctx.state.dataset = dataset
        if folds:
            self._add_folds(ctx, folds, common_train, dataset.items)
        if self.user_slices:  # work for the whole experiment: here, not inside the first model's evaluation
            for state in ctx.state.folds or [ctx.state]:
                state.slice_labels()
        ctx.stats["seconds_prepare"] = time.perf_counter() - t0
        return ctx

    def _context(self, cfg: ExperimentConfig, name: str, fingerprint: str, split: Split,
                 items: pd.DataFrame, is_validation: bool = False) -> TaskContext:
        data = TrainData.build(split.train, items)
        split.audit.update(catalog_audit(split.test, data))
        target = self._target(cfg, data, split.test)
        params = {**flatten(cfg.data.model_dump(mode="json"), "data."),
                  **flatten(cfg.split.model_dump(mode="json"), "split.")}
        params = {k: v for k, v in params.items() if not k.startswith(_other_sources(cfg.data.source))}
        ctx = TaskContext(cfg=cfg, dataset_name=name, fingerprint=fingerprint, split_fingerprint=split.fingerprint(),
                          params=params, is_validation=is_validation)
        if "users_sampled" in target.info:
            params.update({"evaluation.users_total": target.info["users_total"],
                           "evaluation.users_sampled": target.info["users_sampled"]})
        ctx.state = self.state_type(split=split, data=data, target=target, items=items)
        ctx.parent_artifacts["data/test_interactions.parquet"] = target.test_rows.reset_index(drop=True)
        ctx.inputs = [(name, split.train[INTERACTION_COLUMNS], "training"),
                      (f"{name}-test", target.test_rows, "testing")]
        _log.info("evaluating %d users (%d by fallback) over %d items", len(target.user_ids),
                  int((target.user_idx < 0).sum()), data.n_items)
        return ctx

    @staticmethod
    def _target(cfg: ExperimentConfig, data: TrainData, test: pd.DataFrame) -> EvalTarget:
        """The evaluated users and their relevant items; a seeded sample of them under `metrics.max_users`."""
        target = build_target(data, test, cfg.split.unknown_users, cfg.split.unknown_items)
        if cfg.metrics.max_users is not None and len(target.user_ids) > cfg.metrics.max_users:
            n = len(target.user_ids)
            target = sample_target(target, cfg.metrics.max_users, derive_seed(cfg.seed, "metrics.max_users"))
            _log.info("metrics.max_users: evaluating a seeded sample of %d of %d users", len(target.user_ids), n)
        return target

    def _add_folds(self, ctx: TaskContext, folds: list[Split], common_train: pd.DataFrame, items: pd.DataFrame) -> None:
        """Evaluation state per fold; tuning (validation_context) sees only the training part common to all folds."""
        cfg = ctx.cfg
        states = [dataclasses.replace(ctx.state)]
        for fold in folds[1:]:
            data = TrainData.build(fold.train, items)
            target = self._target(cfg, data, fold.test)
            states.append(dataclasses.replace(ctx.state, split=fold, data=data, target=target))
        for j, (fold, state) in enumerate(zip(folds, states)):
            _log.info("fold %d: %d train / %d test rows, %d evaluated users", j, len(fold.train), len(fold.test),
                      len(state.target.user_ids))
        ctx.state.folds = states
        ctx.state.split = Split(train=common_train, test=folds[0].test, method=folds[0].method, audit={})
        ctx.split_fingerprint = frame_fingerprint(pd.DataFrame({"fold": [f.fingerprint() for f in folds]}))
        ctx.parent_artifacts["data/test_interactions.parquet"] = pd.concat(
            [s.target.test_rows.assign(fold=j) for j, s in enumerate(states)], ignore_index=True)
        ctx.stats["folds"] = [{**f.audit, "evaluated_users": int(len(s.target.user_ids))}
                              for f, s in zip(folds, states)]
        ctx.stats["common_train_interactions"] = int(len(common_train))

    def validation_context(self, ctx: TaskContext) -> TaskContext:
        split: Split = ctx.state.split
        # a Split without its test part: tuning must never read it
        train_only = dataclasses.replace(split, test=split.test.iloc[0:0], audit={})
        vsplit = validation_split(train_only, ctx.cfg.split, ctx.cfg.seed)
        vctx = self._context(ctx.cfg, ctx.dataset_name, ctx.fingerprint, vsplit, ctx.state.items, is_validation=True)
        return vctx

    def run_model(self, ctx: TaskContext, entry: ModelEntry, workdir: Path,
                  callback: ProgressCallback | None = None, store: bool = True) -> ModelResult:
        """The shared template per fold; with repeated splits, one result from the fold results."""
        folds = ctx.state.folds
        if not folds or ctx.is_validation:
            return super().run_model(ctx, entry, workdir, callback, store)
        results = [super(RecommendTask, self).run_model(dataclasses.replace(ctx, state=fold), entry,
                                                        workdir / f"fold_{j}", callback, store and j == 0)
                   for j, fold in enumerate(folds)]
        return combine_folds(results, [s.split for s in folds], ctx.cfg.selection_metric,
                             workdir / "plots" if store else None)

    def evaluate(self, ctx: TaskContext, entry: ModelEntry, model: Any, store: bool = True) -> ModelResult:
        cfg, state = ctx.cfg, ctx.state
        res = evaluate_recommender(model, state.data, state.target, cfg.metrics.k, cfg.metrics.batch_size,
                                   store_lists=store, desc=entry.run_name, max_batch_mb=cfg.metrics.max_batch_mb)
        result = ModelResult(entry=entry, params=flatten(model.params, "model."), metrics=res.metrics, model=model,
                             per_user=res.per_user)
        if not ctx.is_validation and res.ranked is not None:
            labels = state.slice_labels()
            table = recommend_slices(res.per_user, res.ranked, state.data, state.target, state.split, cfg.metrics.k,
                                     labels, res.hits)
            result.tables["slices.parquet"] = table
            result.metrics.update(slice_metrics(table))
            result.extra["slice_labels"] = labels
        if store:
            result.extra["recommendations"] = res.recommendations
        return result

    def package(self, ctx: TaskContext, result: ModelResult, model_dir: Path) -> None:
        cfg, state = ctx.cfg, ctx.state
        write_pyfunc_meta(model_dir, task=self.name, k=max(cfg.metrics.k))
        recommendations = result.extra.pop("recommendations")
        result.tables.update({"recommendations.parquet": recommendations,
                              "per_user_metrics.parquet": result.per_user})
        popularity = pd.Series(state.data.item_popularity(), index=state.data.items.ids)
        plots = model_dir.parent / "plots"
        result.files = plot_recommend_diagnostics(result.per_user, recommendations, popularity, cfg.metrics.primary,
                                                  plots)
        if "slices.parquet" in result.tables:
            result.files.update(plot_slices(result.tables["slices.parquet"], cfg.selection_metric, plots))
        result.input_example = pd.DataFrame({"user_id": state.target.user_ids[:3]})
        result.pyfunc_params = {"k": int(max(cfg.metrics.k))}
        if self.name == "recommend":
            result.extra["history_input"] = True  # the predictor also takes an `items` column (fold-in)

    def metric_names(self, cfg: ExperimentConfig) -> list[str]:
        return metric_names(cfg.metrics.k)


def user_slice_labels(data: TrainData, target: EvalTarget, split: Split) -> np.ndarray:
    """Activity slice of each evaluated user (training interactions; unknown users are the fallback slice)."""
    per_id = split.train["user_id"].value_counts(sort=False)  # rows per distinct id: few ids to look up
    idx = data.users.index(per_id.index.to_numpy())
    counts = np.zeros(data.n_users, dtype=np.int64)
    known = idx >= 0
    counts[idx[known]] = per_id.to_numpy()[known]  # the ids are distinct: one count per user
    activity = np.where(target.user_idx >= 0, counts[np.maximum(target.user_idx, 0)], 0)
    return activity_slice(activity)


def recommend_slices(per_user: pd.DataFrame, ranked: np.ndarray, data: TrainData, target: EvalTarget, split: Split,
                     ks: list[int], labels: np.ndarray | None = None, hits: np.ndarray | None = None) -> pd.DataFrame:
    """User slices (activity buckets, fallback) and recall by the relevant items' popularity (head / tail).

    labels: `user_slice_labels(data, target, split)`, hits: the evaluation's hits matrix, when the caller has them."""
    users = user_slices(per_user, user_slice_labels(data, target, split) if labels is None else labels)
    items = popularity_recall(ranked, target.relevant, target.n_relevant, head_items(data.item_popularity()), ks,
                              hits)
    return pd.concat([users, items], ignore_index=True)


def combine_folds(results: list[ModelResult], splits: list[Split], metric: str,
                  plots: Path | None) -> ModelResult:
    """One model result from its fold results: fold means as metrics, `<metric>_std` across folds, per-user
    vectors pooled over folds (column `fold`), one nested run per fold (tag role=fold), fold 0's model."""
    first = results[0]
    plain = [k for k in first.metrics if "/" not in k]
    values = pd.DataFrame([{k: r.metrics.get(k, np.nan) for k in plain} for r in results])
    metrics = {k: float(values[k].mean()) for k in plain}
    metrics.update({f"{k}_std": float(values[k].std(ddof=1)) for k in plain})
    per_user = pd.concat([r.per_user.assign(fold=j) for j, r in enumerate(results) if r.per_user is not None],
                         ignore_index=True)
    per_user = per_user[["fold", *[c for c in per_user.columns if c != "fold"]]]
    labels = np.concatenate([r.extra["slice_labels"] for r in results if "slice_labels" in r.extra]) \
        if all("slice_labels" in r.extra for r in results) else None
    out = ModelResult(entry=first.entry, params=first.params, metrics=metrics, model=first.model,
                      model_dir=first.model_dir, tables=dict(first.tables), files=dict(first.files),
                      per_user=per_user, input_example=first.input_example, pyfunc_params=first.pyfunc_params,
                      tags={**first.tags, "folds": str(len(results))},
                      seconds={"fit_seconds": float(np.mean([r.seconds["fit_seconds"] for r in results])),
                               "fit_seconds_total": float(np.sum([r.seconds["fit_seconds"] for r in results])),
                               "evaluate_seconds": float(np.sum([r.seconds["evaluate_seconds"] for r in results]))})
    if labels is not None:
        users = user_slices(per_user.drop(columns=["fold"]), labels)
        items = [r.tables["slices.parquet"] for r in results if "slices.parquet" in r.tables]
        items = [t[t["kind"] == "item_popularity"] for t in items]
        pooled = pd.concat(items).groupby(["slice", "kind"], sort=False) if items else None
        parts = [users]
        if pooled is not None:
            cols = [c for c in items[0].columns if c.startswith("recall_at")]
            weighted = pooled.apply(lambda g: pd.Series({"users": g["users"].sum(),
                                                         "relevant_items": g["relevant_items"].sum(),
                                                         **{c: np.average(g[c].fillna(0), weights=g["users"])
                                                            if g["users"].sum() else np.nan for c in cols}}),
                                    include_groups=False).reset_index()
            parts.append(weighted)
        table = pd.concat(parts, ignore_index=True)
        out.tables["slices.parquet"] = table
        out.metrics.update(slice_metrics(table))
        if plots is not None:
            out.files.update(plot_slices(table, metric, plots))
    out.tables["per_user_metrics.parquet"] = per_user
    for j, (r, split) in enumerate(zip(results, splits)):
        fold_metrics = {k: v for k, v in r.metrics.items() if "/" not in k}
        fold_metrics.update({"train_rows": float(len(split.train)), "test_rows": float(len(split.test)),
                             "evaluated_users": float(len(r.per_user) if r.per_user is not None else 0),
                             **{k: v for k, v in r.seconds.items()}})
        tags = {"role": "fold", "fold": str(j), "label": first.entry.run_name, "model": first.entry.name}
        if "cutoff" in split.audit:
            tags["cutoff"] = str(split.audit["cutoff"])
        out.children.append(ChildRun(name=f"{first.entry.run_name} fold {j}", metrics=fold_metrics, tags=tags,
                                     params={"fold": j}))
    return out


def _other_sources(source: str) -> tuple[str, ...]:
    """Param prefixes of the sources not in use (kept out of the logged params)."""
    return tuple(f"data.{s}." for s in ("synthetic", "movielens", "tabular", "sql") if s != source)


TASK = RecommendTask()


def catalog_audit(test: pd.DataFrame, data: TrainData) -> dict[str, int]:
    """Test items outside the candidate catalogue (training items + items table): never recommendable."""
    outside = data.items.index(test["item_id"].to_numpy()) < 0
    n_items = int(test.loc[outside, "item_id"].nunique())
    if n_items:
        _log.info("%d test item(s) (%d rows) are neither training items nor in the items table: not candidates",
                  n_items, int(outside.sum()))
    return {"catalog_items": int(data.n_items), "test_items_outside_catalog": n_items,
            "test_rows_outside_catalog": int(outside.sum())}
