"""The promotion decision, pure: evidence in, checks and a verdict out. No MLflow.

`recsys.tracking.registry` gathers the evidence (run metrics, per-user tables, re-evaluations) from the tracking
store, calls these functions, and records what they return on the model version. Everything here works on plain
dicts and DataFrames, so a policy can be tested by hand-computed numbers without a store.

Example:
    >>> a = Evidence("v2", "run-a", {"ndcg_at_10": 0.30})
    >>> b = Evidence("v1", "run-b", {"ndcg_at_10": 0.25})
    >>> checks, _ = compare(a, b, "ndcg_at_10", "maximize", UpliftRule(), [], PolicyConfig())  # doctest: +SKIP
    >>> checks[0].passed  # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsys.config.policy import FirstChampion, Guardrail, PolicyConfig, UpliftRule
from recsys.errors import PromotionError
from recsys.evaluation.significance import paired_frame_test

PER_USER = "per_user_metrics.parquet"
FINGERPRINT_TAGS = ("dataset_fingerprint", "split_fingerprint")


@dataclass
class Evidence:
    """What one side of a comparison brings: aggregate metrics and (optionally) per-user metric vectors."""

    label: str
    run_id: str
    metrics: dict[str, float]
    per_user: pd.DataFrame | None = None
    version: str | None = None
    reevaluated: bool = False
    logged_value: float | None = None  # re-evaluated champion: the primary value its own run logged


@dataclass
class Check:
    """One criterion of a policy, with the numbers it was decided on."""

    name: str
    passed: bool
    metric: str | None = None
    challenger: float | None = None
    reference: float | None = None
    threshold: float | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.passed, np.bool_):  # comparisons of numpy metrics give numpy bools, which JSON refuses
            self.passed = bool(self.passed)

    def to_dict(self) -> dict[str, Any]:
        return {k: json_number(v) for k, v in asdict(self).items()}


def same_evaluation_data(champion_tags: Mapping[str, str], challenger_tags: Mapping[str, str], *,
                         champion_version: str, challenger_version: str) -> bool:
    """True when both versions were scored on the same dataset and split (their fingerprint tags agree).

    Raises PromotionError when they belong to different tasks: such versions are never comparable.
    """
    ct, ht = champion_tags or {}, challenger_tags or {}
    if ct.get("task", ht.get("task")) != ht.get("task", ct.get("task")):
        raise PromotionError(f"champion v{champion_version} is a {ct.get('task')!r} model but v{challenger_version} "
                             f"is {ht.get('task')!r}; register different tasks under different model names")
    return all(ct.get(k) == ht.get(k) for k in FINGERPRINT_TAGS)


def metrics_needed(primary: str, policy: PolicyConfig) -> set[str]:
    """Every metric a policy reads: the primary, the guardrails and the significance metric."""
    out = {primary, *(g.metric for g in policy.guardrails)}
    if policy.significance and policy.significance.metric:
        out.add(policy.significance.metric)
    return out


def cutoffs_needed(primary: str, policy: PolicyConfig) -> list[int]:
    """The K values a re-evaluation must compute for the policy's metrics (``ndcg_at_10`` -> 10); 10 by default."""
    return sorted({int(m.rsplit("_at_", 1)[1]) for m in metrics_needed(primary, policy) if "_at_" in m} or {10})


def first_champion_checks(challenger: Evidence, baseline: Evidence | None, primary: str, policy: PolicyConfig, *,
                          missing_baseline: str = "", baseline_is_candidate: bool = False
                          ) -> tuple[list[Check], dict | None]:
    """Checks for a model with no champion to beat: the policy's baseline model (if any) and metric floors.

    `baseline` is the evidence of the baseline sibling run, or None with `missing_baseline` saying why; with
    `baseline_is_candidate` the candidate is the baseline itself (and cannot beat it).
    """
    fc: FirstChampion = policy.first_champion
    checks: list[Check] = []
    significance = None
    if fc.baseline_model:
        if baseline_is_candidate:
            checks.append(Check("beats_baseline", False, primary, challenger.metrics.get(primary),
                                challenger.metrics.get(primary), None,
                                f"the candidate is the {fc.baseline_model!r} baseline itself"))
        elif baseline is None:
            checks.append(Check("beats_baseline", False, primary, challenger.metrics.get(primary), None, None,
                                missing_baseline))
        else:
            base_checks, significance = compare(challenger, baseline, primary, policy.direction, fc.min_uplift, [],
                                                policy)
            for c in base_checks:
                if c.name == "uplift":
                    c.name = "beats_baseline"
            checks.extend(base_checks)
    for metric, floor in fc.min_metrics.items():
        value = challenger.metrics.get(metric)
        ok = value is not None and value >= floor
        checks.append(Check("min_metric", ok, metric, value, None, floor,
                            f"{metric}={fmt(value)} {'>=' if ok else '<'} floor {floor}"))
    if not checks:
        checks.append(Check("first_champion", True, detail="no first-champion criteria in the policy"))
    return checks, significance


def compare(challenger: Evidence, reference: Evidence, primary: str, direction: str, uplift: UpliftRule,
            guardrails: list[Guardrail], policy: PolicyConfig) -> tuple[list[Check], dict | None]:
    """Uplift on the primary metric, guardrails, and the optional paired test."""
    checks: list[Check] = []
    sign = 1.0 if direction == "maximize" else -1.0
    a, b = challenger.metrics.get(primary), reference.metrics.get(primary)
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        checks.append(Check("uplift", False, primary, a, b, None,
                            f"{primary} missing on {'challenger' if a is None or math.isnan(a) else reference.label}"))
    else:
        gain = sign * (a - b)
        need = max(uplift.absolute, uplift.relative * abs(b))
        ok = gain > 0 and gain >= need
        rel = gain / abs(b) if b else math.inf
        checks.append(Check("uplift", ok, primary, a, b, need,
                            f"{primary} {fmt(a)} vs {reference.label} {fmt(b)}: uplift {gain:+.4g} "
                            f"({rel:+.2%}) {'meets' if ok else 'is below'} the required "
                            f"{'> 0' if need == 0 else f'>= {need:.4g}'}"))
    for g in guardrails:
        ga, gb = challenger.metrics.get(g.metric), reference.metrics.get(g.metric)
        if ga is None or gb is None:
            checks.append(Check("guardrail", False, g.metric, ga, gb, None,
                                f"{g.metric} missing on {'challenger' if ga is None else reference.label}; "
                                "cannot check the guardrail"))
            continue
        drop = (gb - ga) if g.direction == "maximize" else (ga - gb)
        limits = []
        if g.max_drop_absolute is not None:
            limits.append(g.max_drop_absolute)
        if g.max_drop_relative is not None:
            limits.append(g.max_drop_relative * abs(gb))
        allowed = min(limits)
        ok = drop <= allowed + 1e-12
        checks.append(Check("guardrail", ok, g.metric, ga, gb, allowed,
                            f"{g.metric} {fmt(ga)} vs {fmt(gb)}: drop {drop:+.4g} "
                            f"{'within' if ok else 'exceeds'} the allowed {allowed:.4g}"))
    significance = None
    if policy.significance is not None:
        s = policy.significance
        metric = s.metric or primary
        if challenger.per_user is None or reference.per_user is None:
            checks.append(Check("significance", False, metric, detail=f"no {PER_USER} for "
                                f"{'challenger' if challenger.per_user is None else reference.label}"))
        else:
            try:
                # per-user tables are keyed by user_id (recommend), item_id (audience) or query (search)
                both = set(challenger.per_user.columns) & set(reference.per_user.columns)
                key = next((k for k in ("user_id", "item_id", "query") if k in both), "user_id")
                # repeated splits: one user can be evaluated in several folds, so a unit is (fold, user)
                keys = ["fold", key] if "fold" in both else [key]
                res = paired_frame_test(challenger.per_user, reference.per_user, metric, s.test,
                                        "greater" if direction == "maximize" else "less", key=keys)
            except (KeyError, ValueError) as exc:
                checks.append(Check("significance", False, metric, detail=str(exc)))
            else:
                significance = {**res.to_dict(), "alpha": s.alpha, "metric": metric}
                ok = res.n >= s.min_users and res.p_value < s.alpha
                why = (f"only {res.n} paired users (< min_users {s.min_users})" if res.n < s.min_users else
                       f"{s.test} p={res.p_value:.4g} {'<' if res.p_value < s.alpha else '>='} alpha {s.alpha} "
                       f"on {res.n} paired users")
                checks.append(Check("significance", ok, metric, res.mean_a, res.mean_b, s.alpha, why))
    return checks, significance


def summarize(decision: dict[str, Any], checks: list[Check], significance: dict | None,
              challenger: Evidence, primary: str) -> list[Check]:
    """Write the checks' outcome into `decision` (checks, significance, values); return the failed checks."""
    decision["checks"] = [c.to_dict() for c in checks]
    decision["significance"] = significance
    decision["challenger_value"] = json_number(challenger.metrics.get(primary))
    first = next((c for c in checks if c.metric == primary and c.name in ("uplift", "beats_baseline")), None)
    decision["reference_value"] = json_number(first.reference) if first else None
    return [c for c in checks if not c.passed]


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def json_number(v: Any) -> Any:
    """Non-finite floats become None (JSON has no NaN)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
