"""The promotion decision itself (uplift, guardrails, significance gate), on plain numbers, against the rules as
written in configs/policies/*.yaml and docs/registry.md, worked out by hand; p-values from scipy directly.

The end-to-end branches on real MLflow runs are in test_promotion_policy.py; these are fast and exact.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recsys.config.policy import Guardrail, PolicyConfig, SignificanceConfig, UpliftRule
from recsys.evaluation.promotion import Evidence
from recsys.evaluation.promotion import compare as _compare

P = "ndcg_at_10"


def decide(a: dict, b: dict, *, direction: str = "maximize", uplift: UpliftRule | None = None,
           guardrails: list[Guardrail] | None = None, significance: SignificanceConfig | None = None,
           per_a: pd.DataFrame | None = None, per_b: pd.DataFrame | None = None):
    policy = PolicyConfig(direction=direction, significance=significance)
    checks, sig = _compare(Evidence("challenger", "run-a", a, per_a), Evidence("champion", "run-b", b, per_b), P,
                           direction, uplift or UpliftRule(), guardrails or [], policy)
    return {c.name if c.name != "guardrail" else f"guardrail:{c.metric}": c for c in checks}, sig


@pytest.mark.parametrize("a, b, ok", [(0.30, 0.20, True), (0.20, 0.20, False), (0.19, 0.20, False),
                                      (0.2000001, 0.2, True)])
def test_any_strict_gain_wins_when_no_minimum_and_a_tie_never_does(a, b, ok) -> None:
    checks, _ = decide({P: a}, {P: b})
    c = checks["uplift"]
    assert c.passed is ok
    assert (c.challenger, c.reference, c.threshold) == (a, b, 0.0)
    assert ("meets" if ok else "is below") in c.detail and "> 0" in c.detail


@pytest.mark.parametrize("a, ok", [(0.219, False), (0.2199999, False), (0.2200001, True), (0.25, True)])
def test_relative_minimum_is_a_share_of_the_reference(a, ok) -> None:
    # 10% of 0.2 = 0.02: the challenger needs >= 0.22
    checks, _ = decide({P: a}, {P: 0.2}, uplift=UpliftRule(relative=0.1))
    assert checks["uplift"].passed is ok
    assert checks["uplift"].threshold == pytest.approx(0.02, abs=1e-15)
    assert ">= 0.02" in checks["uplift"].detail


@pytest.mark.parametrize("absolute, relative, need", [(0.05, 0.1, 0.05), (0.01, 0.1, 0.02), (0.0, 0.0, 0.0)])
def test_the_larger_of_absolute_and_relative_minimum_applies(absolute, relative, need) -> None:
    checks, _ = decide({P: 0.2 + need + 1e-9}, {P: 0.2}, uplift=UpliftRule(absolute=absolute, relative=relative))
    assert checks["uplift"].threshold == pytest.approx(need, abs=1e-15) and checks["uplift"].passed
    if need:
        checks, _ = decide({P: 0.2 + need - 1e-9}, {P: 0.2}, uplift=UpliftRule(absolute=absolute, relative=relative))
        assert not checks["uplift"].passed


def test_relative_minimum_uses_the_size_of_a_negative_reference() -> None:
    # reference -0.5 (e.g. a log-likelihood), 10% of |-0.5| = 0.05
    checks, _ = decide({P: -0.44}, {P: -0.5}, uplift=UpliftRule(relative=0.1))
    assert checks["uplift"].passed and checks["uplift"].threshold == pytest.approx(0.05)
    checks, _ = decide({P: -0.46}, {P: -0.5}, uplift=UpliftRule(relative=0.1))
    assert not checks["uplift"].passed
    assert "+8.00%" in decide({P: -0.46}, {P: -0.5})[0]["uplift"].detail  # 0.04 / |-0.5|


@pytest.mark.parametrize("a, b, ok", [(0.8, 1.0, True), (1.2, 1.0, False), (1.0, 1.0, False)])
def test_minimize_primary_wins_by_going_down(a, b, ok) -> None:
    checks, _ = decide({P: a}, {P: b}, direction="minimize", uplift=UpliftRule(relative=0.1))
    assert checks["uplift"].passed is ok


@pytest.mark.parametrize("a, b, missing", [(None, 0.2, "challenger"), (0.2, None, "champion"),
                                           (math.nan, 0.2, "challenger"), (0.2, math.nan, "champion")])
def test_missing_or_nan_primary_never_promotes(a, b, missing) -> None:
    ma = {} if a is None else {P: a}
    mb = {} if b is None else {P: b}
    checks, _ = decide(ma, mb)
    assert not checks["uplift"].passed and f"missing on {missing}" in checks["uplift"].detail


@pytest.mark.parametrize("ga, gb, ok", [(0.40, 0.50, False), (0.449, 0.50, False), (0.46, 0.50, True),
                                        (0.60, 0.50, True)])
def test_maximize_guardrail_allows_the_relative_drop_of_the_reference(ga, gb, ok) -> None:
    # 20% of 0.5 = 0.1 allowed (0.40 is exactly at it); with absolute 0.05 as well, the tighter 0.05 applies
    g = Guardrail(metric="coverage", direction="maximize", max_drop_relative=0.2)
    checks, _ = decide({P: 0.3, "coverage": ga}, {P: 0.2, "coverage": gb}, guardrails=[g])
    assert checks["guardrail:coverage"].passed is (gb - ga <= 0.1 + 1e-12)
    tight = Guardrail(metric="coverage", max_drop_relative=0.2, max_drop_absolute=0.05)
    checks, _ = decide({P: 0.3, "coverage": ga}, {P: 0.2, "coverage": gb}, guardrails=[tight])
    assert checks["guardrail:coverage"].threshold == pytest.approx(0.05)
    assert checks["guardrail:coverage"].passed is ok
    assert ("within" if ok else "exceeds") in checks["guardrail:coverage"].detail


@pytest.mark.parametrize("ga, gb, ok", [(1.1, 1.0, True), (1.3, 1.0, False), (0.5, 1.0, True)])
def test_minimize_guardrail_is_breached_by_an_increase(ga, gb, ok) -> None:
    # latency may grow by at most 20%: 1.3 s vs 1.0 s breaches it, going down never does
    g = Guardrail(metric="latency", direction="minimize", max_drop_relative=0.2)
    checks, _ = decide({P: 0.3, "latency": ga}, {P: 0.2, "latency": gb}, guardrails=[g])
    assert checks["guardrail:latency"].passed is ok
    assert checks["guardrail:latency"].threshold == pytest.approx(0.2)


def test_guardrail_exactly_at_the_limit_passes_and_missing_metric_fails() -> None:
    g = Guardrail(metric="coverage", max_drop_absolute=0.25)
    checks, _ = decide({P: 0.3, "coverage": 0.25}, {P: 0.2, "coverage": 0.5}, guardrails=[g])
    assert checks["guardrail:coverage"].passed
    checks, _ = decide({P: 0.3}, {P: 0.2, "coverage": 0.5}, guardrails=[g])
    c = checks["guardrail:coverage"]
    assert not c.passed and "missing on challenger" in c.detail
    checks, _ = decide({P: 0.3, "coverage": 0.5}, {P: 0.2}, guardrails=[g])
    assert not checks["guardrail:coverage"].passed and "missing on champion" in checks["guardrail:coverage"].detail


def _per_user(n: int, shift: float, seed: int, key: str = "user_id") -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    base = rng.random(n)
    users = [f"u{i}" for i in range(n)]
    return (pd.DataFrame({key: users, P: base + shift + rng.normal(0, 0.05, n)}),
            pd.DataFrame({key: users, P: base}))


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_significance_p_value_is_scipys_one_sided_wilcoxon_and_alpha_is_strict(direction) -> None:
    shift = 0.02 if direction == "maximize" else -0.02
    pa, pb = _per_user(60, shift, seed=4)
    alt = "greater" if direction == "maximize" else "less"
    p = float(stats.wilcoxon(pa[P], pb[P], alternative=alt).pvalue)
    assert p < 0.05
    sc = SignificanceConfig(test="wilcoxon", alpha=0.05, min_users=20)
    checks, sig = decide({P: 0.3}, {P: 0.2}, direction=direction, significance=sc, per_a=pa, per_b=pb)
    assert sig["p_value"] == pytest.approx(p, rel=1e-12) and sig["n"] == 60 and sig["alternative"] == alt
    assert checks["significance"].passed and (sig["alpha"], sig["metric"]) == (0.05, P)
    assert checks["significance"].challenger == pytest.approx(pa[P].mean())
    assert checks["significance"].reference == pytest.approx(pb[P].mean())
    # alpha equal to the p-value is not significant (p < alpha is required)
    checks, _ = decide({P: 0.3}, {P: 0.2}, direction=direction, per_a=pa, per_b=pb,
                       significance=SignificanceConfig(test="wilcoxon", alpha=p, min_users=20))
    assert not checks["significance"].passed and ">= alpha" in checks["significance"].detail


def test_significance_t_test_and_the_wrong_direction() -> None:
    pa, pb = _per_user(50, 0.03, seed=5)
    p = float(stats.ttest_rel(pa[P], pb[P], alternative="greater").pvalue)
    sc = SignificanceConfig(test="ttest", alpha=0.05, min_users=20)
    checks, sig = decide({P: 0.3}, {P: 0.2}, significance=sc, per_a=pa, per_b=pb)
    assert sig["p_value"] == pytest.approx(p, rel=1e-12) and sig["test"] == "ttest" and checks["significance"].passed
    # the challenger is worse per user: not significant even though the aggregate claims a gain
    checks, sig = decide({P: 0.3}, {P: 0.2}, significance=sc, per_a=pb, per_b=pa)
    assert not checks["significance"].passed and sig["p_value"] > 0.5


@pytest.mark.parametrize("n, ok", [(19, False), (20, True)])
def test_significance_needs_min_users_pairs(n, ok) -> None:
    pa, pb = _per_user(n, 0.5, seed=6)  # a huge, clearly significant gain
    assert float(stats.wilcoxon(pa[P], pb[P], alternative="greater").pvalue) < 1e-3
    sc = SignificanceConfig(alpha=0.05, min_users=20)
    checks, sig = decide({P: 0.3}, {P: 0.2}, significance=sc, per_a=pa, per_b=pb)
    assert checks["significance"].passed is ok and sig["n"] == n
    if not ok:
        assert "only 19 paired users (< min_users 20)" in checks["significance"].detail


def test_significance_pairs_users_by_key_not_by_row_order() -> None:
    pa, pb = _per_user(40, 0.05, seed=7, key="item_id")
    shuffled = pb.sample(frac=1.0, random_state=1).iloc[3:]  # reordered, 3 missing
    joined = pa.merge(shuffled, on="item_id", suffixes=("_a", "_b"))
    p = float(stats.wilcoxon(joined[f"{P}_a"], joined[f"{P}_b"], alternative="greater").pvalue)
    _, sig = decide({P: 0.3}, {P: 0.2}, significance=SignificanceConfig(min_users=20), per_a=pa,
                         per_b=shuffled)
    assert sig["n"] == 37 and sig["p_value"] == pytest.approx(p, rel=1e-12)


def test_significance_without_per_user_metrics_fails_and_names_the_side() -> None:
    pa, _ = _per_user(30, 0.1, seed=8)
    checks, sig = decide({P: 0.3}, {P: 0.2}, significance=SignificanceConfig(), per_a=pa, per_b=None)
    assert sig is None and not checks["significance"].passed and "champion" in checks["significance"].detail
    checks, _ = decide({P: 0.3}, {P: 0.2}, significance=SignificanceConfig(), per_a=None, per_b=pa)
    assert not checks["significance"].passed and "challenger" in checks["significance"].detail
    checks, _ = decide({P: 0.3}, {P: 0.2}, significance=SignificanceConfig(metric="recall_at_10"), per_a=pa,
                       per_b=pa)
    assert not checks["significance"].passed and "recall_at_10" in checks["significance"].detail
    _, sig = decide({P: 0.3}, {P: 0.2})
    assert sig is None


def _two_folds(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """The same 30 users evaluated in two folds; fold 1's values sit far above fold 0's, so pairing a user's
    fold-0 row with its fold-1 row (a join on user_id alone) gives very different differences."""
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(30)]
    base = {0: 0.1 + rng.random(30) * 0.05, 1: 0.8 + rng.random(30) * 0.05}
    gain = {0: 0.01 + rng.normal(0, 0.01, 30), 1: -0.002 + rng.normal(0, 0.01, 30)}
    a = pd.concat([pd.DataFrame({"fold": f, "user_id": users, P: base[f] + gain[f]}) for f in (0, 1)])
    b = pd.concat([pd.DataFrame({"fold": f, "user_id": users, P: base[f]}) for f in (0, 1)])
    # the oracle: differences of the same (fold, user), built before any shuffling
    return a, b, np.concatenate([base[0] + gain[0], base[1] + gain[1]]), np.concatenate([base[0], base[1]])


@pytest.mark.parametrize("test", ["wilcoxon", "ttest"])
def test_significance_under_repeated_splits_pairs_fold_and_user(test) -> None:
    a, b, va, vb = _two_folds(seed=11)
    p = float((stats.wilcoxon(va, vb, alternative="greater") if test == "wilcoxon"
               else stats.ttest_rel(va, vb, alternative="greater")).pvalue)
    shuffled = b.sample(frac=1.0, random_state=2)  # row order must not matter
    _, sig = decide({P: 0.5}, {P: 0.4}, significance=SignificanceConfig(test=test, min_users=20), per_a=a,
                    per_b=shuffled)
    assert sig["n"] == 60  # 30 users x 2 folds, not the 120 rows of a user-only cross join
    assert sig["p_value"] == pytest.approx(p, rel=1e-12)
    assert sig["mean_a"] == pytest.approx(va.mean()) and sig["mean_b"] == pytest.approx(vb.mean())


def test_significance_refuses_rows_of_several_folds_without_the_fold_key() -> None:
    a, b, _, _ = _two_folds(seed=12)
    checks, sig = decide({P: 0.5}, {P: 0.4}, significance=SignificanceConfig(min_users=20), per_a=a,
                         per_b=b.drop(columns=["fold"]))
    assert sig is None and not checks["significance"].passed
    assert "duplicate" in checks["significance"].detail and "`fold` column" in checks["significance"].detail
