"""One registry of metrics: name, function, direction, what it needs, which tasks log it.

Everything that needs to know about a metric reads it from here: the recommend evaluator computes every registered
recommend metric with its function; tuning's default direction and the comparison chart's highlight use
`direction`; the per-task metric lists (`metric_keys`, the evaluators' name tuples) and the champion
re-evaluation (which drops metrics that need item categories it does not have) read `needs`; docs/metrics.md is
generated from it (`recsys metrics > docs/metrics.md`, checked by a test).

Adding a recommend metric is one registration::

    register(Metric("first_hit_rank", "minimize", ("recommend",), "rank of the first relevant item (K + 1 if none)",
                    per_user=lambda ctx, k: ...))

Metric keys are ``<name>_at_<k>`` for metrics with a cut-off (`at_k`), else the name itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from recsys.evaluation import metrics as M

Direction = Literal["maximize", "minimize"]
# what a metric may need beyond ranked lists, relevance and train popularity
NEEDS = ("categories",)
# keys that are measurements rather than registered metrics (fit/evaluate timings, resources): lower is better
_UNREGISTERED_LOWER = ("latency", "seconds", "memory", "build_")


@dataclass
class RankingContext:
    """What a recommend metric function sees: the ranked lists of the evaluated users and their relevance.

    ranked: (n_users, K_max) item indices (-1 = padding); hits: (n_users, K_max) bool; n_relevant: (n_users,);
    popularity: training users per item; categories: category code per item, or None when the data has none.
    """

    ranked: np.ndarray
    hits: np.ndarray
    n_relevant: np.ndarray
    ks: list[int]
    popularity: np.ndarray
    n_users: int
    n_items: int
    categories: np.ndarray | None = None

    @cached_property
    def accuracy(self) -> dict[str, np.ndarray]:
        return M.accuracy_metrics(self.hits, self.n_relevant, self.ks)

    @cached_property
    def beyond(self) -> dict[str, np.ndarray]:
        return M.beyond_accuracy(self.ranked, self.ks, self.popularity, self.n_users, self.categories)

    def available(self) -> set[str]:
        return {"categories"} if self.categories is not None else set()


PerUser = Callable[[RankingContext, int], np.ndarray]  # (context, k) -> one value per evaluated user
Aggregate = Callable[[RankingContext, int], float]  # (context, k) -> one value for the whole list set


@dataclass(frozen=True)
class Metric:
    """One metric. `per_user` / `aggregate` compute it for the recommend evaluator (other tasks' evaluators compute
    theirs and register name, direction and needs only). `group` orders the recommend per-user columns
    (accuracy, then beyond-accuracy, then the rest) and names the evaluators' lists (segment `criteria`, `drift`);
    `pattern` matches keys that are not `<name>[_at_<k>]`."""

    name: str
    direction: Direction
    tasks: tuple[str, ...]
    description: str
    at_k: bool = True
    needs: frozenset[str] = field(default_factory=frozenset)
    per_user: PerUser | None = None
    aggregate: Aggregate | None = None
    group: str = ""
    pattern: str | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"metric {self.name!r}: direction must be 'maximize' or 'minimize', "
                             f"got {self.direction!r}")
        unknown = sorted(set(self.needs) - set(NEEDS))
        if unknown:
            raise ValueError(f"metric {self.name!r}: needs {unknown} unknown (allowed: {', '.join(NEEDS)})")
        if self.per_user is not None and self.aggregate is not None:
            raise ValueError(f"metric {self.name!r}: give either per_user or aggregate, not both")

    def key(self, k: int | None = None) -> str:
        return f"{self.name}_at_{k}" if self.at_k else self.name


_METRICS: dict[str, Metric] = {}
_GROUP_ORDER = {"accuracy": 0, "beyond": 1}


def register(metric: Metric) -> Metric:
    """Add a metric; its name must be new."""
    if metric.name in _METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    _METRICS[metric.name] = metric
    return metric


def unregister(name: str) -> None:
    _METRICS.pop(name, None)


def metrics(task: str | None = None) -> list[Metric]:
    """Registered metrics (of one task), in registration order."""
    return [m for m in _METRICS.values() if task is None or task in m.tasks]


def names(task: str, at_k: bool | None = None, group: str | None = None) -> tuple[str, ...]:
    """Names of a task's metrics, in registration order (only those with / without a cut-off when `at_k` is
    given, only one `group` when given)."""
    return tuple(m.name for m in metrics(task)
                 if (at_k is None or m.at_k == at_k) and (group is None or m.group == group))


def metric_keys(task: str, ks: list[int]) -> list[str]:
    """Every key a task logs for cut-offs `ks` (sorted), e.g. ndcg_at_10 ... for recommend."""
    return sorted({m.key(k) for m in metrics(task) for k in ks} if ks else {m.name for m in metrics(task)})


_AT_K = re.compile(r"^(?P<name>.+)_at_\d+$")


def lookup(key: str) -> Metric | None:
    """The metric a logged key belongs to (``ndcg_at_10`` -> ndcg), or None for an unregistered key."""
    match = _AT_K.match(key)
    stem = match.group("name") if match else key
    found = _METRICS.get(stem) or _METRICS.get(key)
    if found is not None:
        return found
    return next((m for m in _METRICS.values() if m.pattern and re.fullmatch(m.pattern, stem)), None)


def direction(key: str) -> Direction:
    """Which way is better for a key: the registered metric's direction; measurements that are not metrics
    (timings, memory, build time) are lower-is-better; any other key is higher-is-better."""
    found = lookup(key)
    if found is not None:
        return found.direction
    return "minimize" if any(token in key for token in _UNREGISTERED_LOWER) else "maximize"


def lower_is_better(key: str) -> bool:
    return direction(key) == "minimize"


def needs(key: str, what: str) -> bool:
    """Whether the metric of `key` needs `what` (e.g. "categories")."""
    found = lookup(key)
    return found is not None and what in found.needs


def compute_recommend(ctx: RankingContext) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every registered recommend metric for cut-offs ctx.ks: (per-user columns, list-level values).

    Metrics whose `needs` the context lacks (no categories) are skipped. Columns come group by group (accuracy,
    beyond-accuracy, the rest), each group K by K in registration order.
    """
    have = ctx.available()
    usable = [m for m in metrics("recommend") if m.needs <= have]
    per: dict[str, np.ndarray] = {}
    for rank in sorted({_GROUP_ORDER.get(m.group, 2) for m in usable if m.per_user is not None}):
        for k in ctx.ks:
            for m in usable:
                if _GROUP_ORDER.get(m.group, 2) == rank and m.per_user is not None:
                    per[m.key(k)] = m.per_user(ctx, k)
    agg = {m.key(k): m.aggregate(ctx, k) for k in ctx.ks for m in usable if m.aggregate is not None}
    return per, agg


def markdown() -> str:
    """The docs/metrics.md table, one row per registered metric."""
    lines = ["# Metrics", "", "Generated from the metric registry, `recsys/evaluation/metric_registry.py` "
             "(`recsys metrics > docs/metrics.md`); a test checks it is current.",
             "Keys are `<name>_at_<k>` where the metric has a cut-off.", "",
             "| metric | key | tasks | better | needs | what it measures |", "|---|---|---|---|---|---|"]
    for m in metrics():
        key = f"`{m.name}_at_<k>`" if m.at_k else f"`{m.name}`"
        better = "higher" if m.direction == "maximize" else "lower"
        lines.append(f"| {m.name} | {key} | {', '.join(m.tasks)} | {better} | {', '.join(sorted(m.needs)) or '-'} "
                     f"| {m.description} |")
    return "\n".join(lines) + "\n"


# ---- the project's metrics ---------------------------------------------------------------------------------
def _acc(name: str) -> PerUser:
    return lambda ctx, k: ctx.accuracy[f"{name}_at_{k}"]


def _beyond(name: str) -> PerUser:
    return lambda ctx, k: ctx.beyond[f"{name}_at_{k}"]


_R, _S, _SIM, _A, _SEG = "recommend", "search", "similar", "audience", "segment"
for _name, _tasks, _desc in (
        ("precision", (_R, _S, _A), "relevant share of the top K"),
        ("recall", (_R, _S, _A), "share of the relevant items found in the top K"),
        ("ndcg", (_R, _S, _SIM, _A), "discounted cumulative gain over the ideal ordering"),
        ("map", (_R, _S), "mean average precision (divided by min(#relevant, K))"),
        ("mrr", (_R, _S, _SIM), "reciprocal rank of the first relevant item"),
        ("hit_rate", (_R, _S, _SIM), "share of users with a relevant item in the top K")):
    register(Metric(_name, "maximize", _tasks, _desc, per_user=_acc(_name), group="accuracy"))
register(Metric("novelty", "maximize", (_R,), "mean self-information of the recommended items",
                per_user=_beyond("novelty"), group="beyond"))
register(Metric("popularity_bias", "minimize", (_R,), "mean training-user share of the recommended items",
                per_user=_beyond("popularity_bias"), group="beyond"))
register(Metric("diversity", "maximize", (_R,), "intra-list diversity: share of item pairs in different categories",
                needs=frozenset({"categories"}), per_user=_beyond("diversity"), group="beyond"))
register(Metric("catalog_coverage", "maximize", (_R, _SIM), "share of the catalogue recommended to anyone",
                aggregate=lambda ctx, k: M.catalog_coverage(ctx.ranked, k, ctx.n_items)))
# search: quality at K and index measurements
register(Metric("recall_vs_exact", "maximize", (_S,), "overlap of the approximate index's top K with exact search"))
_SEARCH_INDEX: tuple[tuple[str, Direction, str], ...] = (
        ("query_latency_p50_ms", "minimize", "median query latency"),
        ("query_latency_p99_ms", "minimize", "99th-percentile query latency"),
        ("queries_per_second", "maximize", "query throughput"),
        ("index_build_seconds", "minimize", "time to build the index"),
        ("index_memory_mb", "minimize", "memory held by the index"),
        ("embeddings_encoded", "maximize", "texts embedded (not found in the cache)"),
        ("embeddings_cached", "maximize", "texts whose embedding came from the cache"),
        ("embedding_seconds", "minimize", "time spent embedding texts"),
        ("n_queries", "maximize", "evaluated queries"))
for _name, _dir, _desc in _SEARCH_INDEX:
    register(Metric(_name, _dir, (_S,), _desc, at_k=False, group="index"))
# audience
register(Metric("expected_precision", "maximize", (_A,), "precision a random audience of N would reach"))
register(Metric("lift", "maximize", (_A,), "precision over the random audience's expected precision"))
register(Metric("user_coverage", "maximize", (_A,), "share of users in any product's audience"))
register(Metric("top_share", "minimize", (_A,), "share of audience slots taken by the most active users "
                "(key top<pct>pct_share_at_<n>)", pattern=r"top[0-9.]+pct_share"))
register(Metric("product_coverage", "maximize", (_A,), "share of products with an audience", at_k=False))
# segment: cluster criteria (this order is the order of the criteria table), truth and drift
_SEGMENT: tuple[tuple[str, Direction, str, str], ...] = (
        ("inertia", "minimize", "within-cluster sum of squares", "criteria"),
        ("silhouette", "maximize", "mean silhouette coefficient", "criteria"),
        ("davies_bouldin", "minimize", "Davies-Bouldin index", "criteria"),
        ("calinski_harabasz", "maximize", "Calinski-Harabasz index", "criteria"),
        ("stability", "maximize", "bootstrap stability (mean adjusted Rand index)", "criteria"),
        ("min_cluster_share", "maximize", "share of the smallest cluster (size balance)", "criteria"),
        ("n_clusters", "maximize", "the K chosen", ""),
        ("ari_vs_truth", "maximize", "adjusted Rand index against the synthetic sessions' true types", ""),
        ("drift_psi", "minimize", "population stability index of the cluster mix, train vs test period", "drift"),
        ("drift_js_divergence", "minimize", "Jensen-Shannon divergence of the cluster mix", "drift"),
        ("drift_max_abs_smd", "minimize", "largest standardised mean difference of a feature", "drift"),
        ("drift_max_feature_psi", "minimize", "largest population stability index of a feature", "drift"))
for _name, _dir, _desc, _group in _SEGMENT:
    register(Metric(_name, _dir, (_SEG,), _desc, at_k=False, group=_group))

