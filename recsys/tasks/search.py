"""The `search` task: which items match the text q? Text queries with known relevant items, answered top-K.

Queries come from the data: MovieLens user tags (a tag is a query; the movies it was applied to are relevant),
item categories (all items of the category are relevant), and, for the synthetic marketplace, attribute words
of the titles ("kettle", "portable kettle"). A seeded share of the queries is held out for tuning
(`validation_context`); the rest is evaluated once. Besides NDCG/Recall@K, each run measures the index:
agreement with an exact search (`recall_vs_exact_at_K`), single-query latency p50/p99, batch throughput,
build time and memory.

Task options live in `task_params` (validated by `SearchParams`), e.g.::

    task: search
    task_params: {queries: [tags], min_relevant: 2}
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from recsys.config.loader import flatten
from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.data import Dataset, TrainData, load_dataset
from recsys.data.tables import frame_fingerprint
from recsys.errors import DataError
from recsys.evaluation.search import (
    QuerySet,
    evaluate_search,
    metric_names,
    results_frame,
)
from recsys.logging import get_logger
from recsys.random import rng as make_rng
from recsys.tasks.base import ModelResult, Task, TaskContext, TaskState, parse_task_params, write_pyfunc_meta
from recsys.tasks.recommend import _other_sources

_log = get_logger(__name__)

QueryKind = Literal["tags", "categories", "attributes"]


class SearchParams(BaseModel):
    """`task_params` of a search experiment. Cut-offs K come from `metrics.k`."""

    model_config = ConfigDict(extra="forbid")

    queries: list[QueryKind] | None = Field(
        None, min_length=1, description="query sources; default: tags for MovieLens, categories + attributes for "
                                        "the synthetic marketplace, categories otherwise")
    min_relevant: int = Field(1, ge=1, description="keep queries with at least this many relevant items")
    max_queries: int | None = Field(None, gt=0, description="seeded sample of at most this many queries")
    validation_share: float = Field(0.2, gt=0, lt=1, description="share of queries held out for tuning only")
    latency_queries: int = Field(200, ge=1, le=100_000, description="queries timed one at a time for p50/p99")


def search_params(cfg: ExperimentConfig) -> SearchParams:
    return parse_task_params(SearchParams, cfg, "search")


def query_kinds(cfg: ExperimentConfig, params: SearchParams) -> list[str]:
    if params.queries:
        return list(dict.fromkeys(params.queries))
    return {"movielens": ["tags"], "synthetic": ["categories", "attributes"]}.get(cfg.data.source, ["categories"])


# queries --------------------------------------------------------------------------------------------------
def tag_queries(dataset: Dataset) -> pd.DataFrame:
    """MovieLens tags.csv: one query per distinct (lower-cased) tag; relevant = movies it was applied to."""
    from recsys.data.movielens import read_tags

    folder = dataset.extras.get("folder")
    tags = read_tags(Path(folder)) if folder else None
    if tags is None:
        raise DataError(f"search queries `tags` need tags.csv next to the ratings of {dataset.name!r} "
                        f"(looked in {folder}); use task_params.queries: [categories] instead")
    text = tags["tag"].astype(str).str.strip().str.lower().str.replace(r"\s+", " ", regex=True)
    return pd.DataFrame({"query": text, "item_id": tags["item_id"]}).assign(kind="tags")


def category_queries(items: pd.DataFrame) -> pd.DataFrame:
    """One query per item category; relevant = the items of that category."""
    cat = items["category"].astype(str)
    keep = ~cat.isin(["", "unknown"])
    return pd.DataFrame({"query": cat[keep].str.lower(), "item_id": items.loc[keep, "item_id"]}).assign(
        kind="categories")


def attribute_queries(items: pd.DataFrame) -> pd.DataFrame:
    """Synthetic marketplace: product nouns ("kettle") and adjective + noun pairs ("portable kettle") found in the
    titles; relevant = the items whose title holds every word of the query."""
    from recsys.data.synthetic import ADJECTIVES, CATEGORIES

    titles = items["title"].astype(str).str.lower()
    ids = items["item_id"].to_numpy()

    def has(word: str) -> np.ndarray:
        return titles.str.contains(rf"\b{re.escape(word)}\b", regex=True).to_numpy()

    adj_masks = {a: has(a) for a in ADJECTIVES}
    rows = []
    for noun in sorted({n for _, nouns in CATEGORIES for n in nouns}):
        noun_mask = has(noun)
        if not noun_mask.any():
            continue
        rows.append(pd.DataFrame({"query": noun, "item_id": ids[noun_mask]}))
        for adj, adj_mask in adj_masks.items():
            both = noun_mask & adj_mask
            if both.any():
                rows.append(pd.DataFrame({"query": f"{adj} {noun}", "item_id": ids[both]}))
    if not rows:
        raise DataError("search queries `attributes` found no synthetic product words in the item titles; "
                        "use task_params.queries: [categories] for this data")
    return pd.concat(rows, ignore_index=True).assign(kind="attributes")


QUERY_BUILDERS = {"tags": lambda ds: tag_queries(ds), "categories": lambda ds: category_queries(ds.items),
                  "attributes": lambda ds: attribute_queries(ds.items)}


def build_queries(dataset: Dataset, data: TrainData, kinds: list[str], params: SearchParams,
                  random_state: int) -> tuple[QuerySet, QuerySet]:
    """(evaluation queries, validation queries): every query with >= `min_relevant` relevant catalog items,
    optionally sampled down to `max_queries`, then split at random (seeded) by `validation_share`."""
    pairs = pd.concat([QUERY_BUILDERS[k](dataset) for k in kinds], ignore_index=True)
    pairs["item_idx"] = data.items.index(pairs["item_id"].to_numpy())
    pairs = pairs[(pairs["item_idx"] >= 0) & (pairs["query"].str.len() > 0)]
    pairs = pairs.drop_duplicates(["kind", "query", "item_idx"])
    size = pairs.groupby(["kind", "query"])["item_idx"].transform("size")
    pairs = pairs[size >= params.min_relevant].sort_values(["kind", "query", "item_idx"], kind="stable")
    keys = pairs[["kind", "query"]].drop_duplicates().reset_index(drop=True)
    r = make_rng(random_state)
    if params.max_queries is not None and len(keys) > params.max_queries:
        keys = keys.iloc[np.sort(r.choice(len(keys), params.max_queries, replace=False))].reset_index(drop=True)
    row = pd.MultiIndex.from_frame(keys).get_indexer(pd.MultiIndex.from_frame(pairs[["kind", "query"]]))
    pairs, row = pairs[row >= 0], row[row >= 0]
    relevant = sp.csr_matrix((np.ones(len(row), np.float32), (row, pairs["item_idx"].to_numpy())),
                             shape=(len(keys), data.n_items))
    full = QuerySet(keys["query"].to_numpy(dtype=object), keys["kind"].to_numpy(dtype=object), relevant)
    order = r.permutation(len(full))
    n_val = round(params.validation_share * len(full)) if len(full) > 1 else 0
    return full.subset(np.sort(order[n_val:])), full.subset(np.sort(order[:n_val]))


# task -----------------------------------------------------------------------------------------------------
@dataclass
class SearchState(TaskState):
    """Search: the whole catalog as training data, evaluation and validation queries, the parsed task_params."""

    data: TrainData
    queries: QuerySet
    validation_queries: QuerySet
    search: SearchParams
    dataset: Dataset


class SearchTask(Task):
    name = "search"

    def validate(self, cfg: ExperimentConfig) -> None:
        search_params(cfg)
        self.check_metrics(cfg)

    def metric_names(self, cfg: ExperimentConfig) -> list[str]:
        return metric_names(cfg.metrics.k)

    def prepare(self, cfg: ExperimentConfig) -> TaskContext:
        t0 = time.perf_counter()
        params = search_params(cfg)
        dataset = load_dataset(cfg.data, cfg.seed)
        data = TrainData.build(dataset.interactions, dataset.items)  # every catalog item is searchable
        kinds = query_kinds(cfg, params)
        queries, validation = build_queries(dataset, data, kinds, params, cfg.seed)
        if len(queries) == 0:
            raise DataError(f"search: no query of kinds {kinds} has >= {params.min_relevant} relevant catalog "
                            "items; lower task_params.min_relevant or choose other task_params.queries")
        frame = pd.concat([queries.frame().assign(part="test"), validation.frame().assign(part="validation")],
                          ignore_index=True)
        run_params = {**flatten(cfg.data.model_dump(mode="json"), "data."),
                      **flatten(params.model_dump(mode="json"), "task_params."),
                      "task_params.queries": ",".join(kinds)}
        run_params = {k: v for k, v in run_params.items() if not k.startswith(_other_sources(cfg.data.source))}
        ctx = TaskContext(cfg=cfg, dataset_name=dataset.name, fingerprint=dataset.fingerprint(),
                          split_fingerprint=frame_fingerprint(frame[["query", "kind", "part"]]), params=run_params)
        ctx.state = SearchState(data=data, queries=queries, validation_queries=validation, search=params,
                                dataset=dataset)
        ctx.stats = {"items": int(data.n_items),
                     "items_without_interactions": int((data.item_popularity() == 0).sum()),
                     "queries": len(queries), "validation_queries": len(validation),
                     "queries_by_kind": frame[frame["part"] == "test"]["kind"].value_counts().to_dict(),
                     "relevant_per_query": {"mean": float(queries.n_relevant.mean()),
                                            "median": float(np.median(queries.n_relevant))},
                     "seconds_prepare": time.perf_counter() - t0}
        ctx.parent_artifacts["data/queries.parquet"] = frame
        ctx.inputs = [(f"{dataset.name}-items", dataset.items.reset_index(drop=True), "training"),
                      (f"{dataset.name}-queries", queries.frame(), "testing")]
        _log.info("search on %s: %d items (%d without interactions), %d evaluation + %d validation queries (%s)",
                  dataset.name, data.n_items, ctx.stats["items_without_interactions"], len(queries), len(validation),
                  ", ".join(kinds))
        return ctx

    def validation_context(self, ctx: TaskContext) -> TaskContext:
        """Same catalog, the held-out validation queries only (the evaluation queries are never read)."""
        validation: QuerySet = ctx.state.validation_queries
        if len(validation) == 0:
            raise DataError("search: no validation queries to tune on; raise task_params.validation_share")
        vctx = TaskContext(cfg=ctx.cfg, dataset_name=ctx.dataset_name, fingerprint=ctx.fingerprint,
                           split_fingerprint=frame_fingerprint(validation.frame()[["query", "kind"]]),
                           params=dict(ctx.params), is_validation=True)
        vctx.state = dataclasses.replace(ctx.state, queries=validation,
                                         validation_queries=validation.subset(np.arange(0)))
        return vctx

    def evaluate(self, ctx: TaskContext, entry: ModelEntry, model: Any, store: bool = True) -> ModelResult:
        state: SearchState = ctx.state
        metrics, per_query, ids, scores = evaluate_search(model, state.queries, ctx.cfg.metrics.k,
                                                          state.search.latency_queries)
        result = ModelResult(entry=entry, params=flatten(model.params, "model."), metrics=metrics, model=model,
                             per_user=per_query,
                             tags={"per_user_key": "query", "index": str(model.params.get("index", ""))})
        result.extra.update(ids=ids, scores=scores)
        return result

    def describe(self, ctx: TaskContext, result: ModelResult) -> str:
        m, primary, kmax = result.metrics, ctx.cfg.metrics.primary, max(ctx.cfg.metrics.k)
        return (f"{primary}={m.get(primary, float('nan')):.4f} recall_vs_exact_at_{kmax}="
                f"{m[f'recall_vs_exact_at_{kmax}']:.4f} p50={m['query_latency_p50_ms']:.3f}ms "
                f"p99={m['query_latency_p99_ms']:.3f}ms build={m.get('index_build_seconds', float('nan')):.2f}s")

    def package(self, ctx: TaskContext, result: ModelResult, model_dir: Path) -> None:
        state: SearchState = ctx.state
        kmax = max(ctx.cfg.metrics.k)
        write_pyfunc_meta(model_dir, task=self.name, k=kmax)
        index = model_dir / "index.faiss"
        result.files = {"index/index.faiss": index} if index.exists() else {}
        ids, scores = result.extra.pop("ids"), result.extra.pop("scores")
        result.tables = {"per_query_metrics.parquet": result.per_user,
                         "search_results.parquet": results_frame(state.queries, ids, scores, state.data)}
        result.input_example = pd.DataFrame({"query": state.queries.texts[:3].astype(str)})
        result.pyfunc_params = {"k": int(kmax)}


TASK = SearchTask()
