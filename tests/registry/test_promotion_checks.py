"""Every field of the promotion checks (recsys.evaluation.promotion), from hand-computed numbers.

A decision is recorded with its checks (passed, metric, both values, threshold, detail), so each field is pinned
here, not only the verdict: the first-champion checks, the uplift edge cases, guardrails and the significance gate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recsys.config.policy import FirstChampion, Guardrail, PolicyConfig, SignificanceConfig, UpliftRule
from recsys.errors import PromotionError
from recsys.evaluation.promotion import (
    PER_USER,
    Check,
    Evidence,
    compare,
    first_champion_checks,
    same_evaluation_data,
    summarize,
)

P = "ndcg_at_10"


def fields(c: Check) -> tuple:
    return (c.name, c.passed, c.metric, c.challenger, c.reference, c.threshold, c.detail)


def ev(metrics: dict, label: str = "v1", per_user: pd.DataFrame | None = None) -> Evidence:
    return Evidence(label, f"run-{label}", metrics, per_user)


# --- uplift ---------------------------------------------------------------------------------------------------
def test_uplift_check_fields_and_wording():
    checks, sig = compare(ev({P: 0.3}, "v2"), ev({P: 0.25}, "v1"), P, "maximize", UpliftRule(), [], PolicyConfig())
    assert sig is None
    assert [fields(c) for c in checks] == [
        ("uplift", True, P, 0.3, 0.25, 0.0, "ndcg_at_10 0.3 vs v1 0.25: uplift +0.05 (+20.00%) meets the required > 0")]
    checks, _ = compare(ev({P: 0.26}), ev({P: 0.25}, "v1"), P, "maximize", UpliftRule(absolute=0.02), [],
                        PolicyConfig())
    assert fields(checks[0])[1:] == (False, P, 0.26, 0.25, 0.02,
                                     "ndcg_at_10 0.26 vs v1 0.25: uplift +0.01 (+4.00%) is below the required >= 0.02")


def test_an_uplift_of_exactly_the_minimum_is_enough():
    # binary-exact numbers: gain 0.75 - 0.5 = 0.25 = the absolute minimum
    checks, _ = compare(ev({P: 0.75}), ev({P: 0.5}), P, "maximize", UpliftRule(absolute=0.25), [], PolicyConfig())
    assert checks[0].passed is True and checks[0].threshold == 0.25


def test_minimize_needs_the_minimum_decrease_not_twice_less():
    # error 1.0 -> 0.9: a decrease of 0.1, below the required 0.15
    checks, _ = compare(ev({"rmse": 0.9}), ev({"rmse": 1.0}), "rmse", "minimize", UpliftRule(absolute=0.15), [],
                        PolicyConfig())
    assert checks[0].passed is False
    assert "uplift +0.1 (+10.00%) is below the required >= 0.15" in checks[0].detail
    checks, _ = compare(ev({"rmse": 0.8}), ev({"rmse": 1.0}), "rmse", "minimize", UpliftRule(absolute=0.15), [],
                        PolicyConfig())
    assert checks[0].passed is True


def test_a_zero_reference_has_an_infinite_relative_uplift():
    checks, _ = compare(ev({P: 0.1}), ev({P: 0.0}), P, "maximize", UpliftRule(relative=0.5), [], PolicyConfig())
    assert checks[0].passed is True and checks[0].threshold == 0.0
    assert "(+inf%)" in checks[0].detail


@pytest.mark.parametrize("a,b,side", [(None, 0.2, "challenger"), (0.3, None, "v1"), (float("nan"), 0.2, "challenger"),
                                      (0.3, float("nan"), "v1")])
def test_missing_primary_check_fields(a, b, side):
    ma = {} if a is None else {P: a}
    mb = {} if b is None else {P: b}
    checks, _ = compare(ev(ma, "v2"), ev(mb, "v1"), P, "maximize", UpliftRule(), [], PolicyConfig())
    c = checks[0]
    assert (c.name, c.passed, c.metric, c.threshold) == ("uplift", False, P, None)
    assert c.detail == f"ndcg_at_10 missing on {side}"
    assert (c.challenger is None) == (a is None) and (c.reference is None) == (b is None)
    if a is not None and not np.isnan(a):
        assert c.challenger == a
    if b is not None and not np.isnan(b):
        assert c.reference == b


# --- guardrails -------------------------------------------------------------------------------------------------
def test_guardrail_fields_relative_limit_and_a_missing_one_does_not_stop_the_others():
    guards = [Guardrail(metric="novelty", max_drop_absolute=0.1),  # missing on the challenger
              Guardrail(metric="coverage", max_drop_relative=0.1)]  # 10% of 0.5 = 0.05 allowed
    checks, _ = compare(ev({P: 0.3, "coverage": 0.46}, "v2"), ev({P: 0.2, "novelty": 2.0, "coverage": 0.5}, "v1"),
                        P, "maximize", UpliftRule(), guards, PolicyConfig())
    by = {c.metric: c for c in checks if c.name == "guardrail"}
    assert fields(by["novelty"]) == ("guardrail", False, "novelty", None, 2.0, None,
                                     "novelty missing on challenger; cannot check the guardrail")
    c = by["coverage"]
    assert fields(c)[:5] == ("guardrail", True, "coverage", 0.46, 0.5)
    assert c.threshold == pytest.approx(0.05)
    assert c.detail == "coverage 0.46 vs 0.5: drop +0.04 within the allowed 0.05"
    checks, _ = compare(ev({P: 0.3, "coverage": 0.44}), ev({P: 0.2, "coverage": 0.5}), P, "maximize", UpliftRule(),
                        guards[1:], PolicyConfig())
    assert checks[1].passed is False
    assert checks[1].detail == "coverage 0.44 vs 0.5: drop +0.06 exceeds the allowed 0.05"
    checks, _ = compare(ev({P: 0.3, "novelty": 2.0}), ev({P: 0.2}, "v1"), P, "maximize", UpliftRule(), guards[:1],
                        PolicyConfig())
    assert fields(checks[1]) == ("guardrail", False, "novelty", 2.0, None, None,
                                 "novelty missing on v1; cannot check the guardrail")


# --- significance -------------------------------------------------------------------------------------------------
def test_significance_without_per_user_tables_check_fields():
    policy = PolicyConfig(significance=SignificanceConfig(min_users=2))
    per = pd.DataFrame({"user_id": ["a", "b"], P: [0.1, 0.2]})
    checks, sig = compare(ev({P: 0.3}), ev({P: 0.2}, "v1", per), P, "maximize", UpliftRule(), [], policy)
    assert sig is None
    assert fields(checks[-1]) == ("significance", False, P, None, None, None, f"no {PER_USER} for challenger")
    checks, _ = compare(ev({P: 0.3}, "v2", per), ev({P: 0.2}, "v1"), P, "maximize", UpliftRule(), [], policy)
    assert fields(checks[-1]) == ("significance", False, P, None, None, None, f"no {PER_USER} for v1")


def test_significance_with_a_missing_column_check_fields():
    policy = PolicyConfig(significance=SignificanceConfig(metric="recall_at_10", min_users=2))
    per = pd.DataFrame({"user_id": ["a", "b"], P: [0.1, 0.2]})
    checks, sig = compare(ev({P: 0.3}, "v2", per), ev({P: 0.2}, "v1", per), P, "maximize", UpliftRule(), [], policy)
    assert sig is None
    c = checks[-1]
    assert (c.name, c.passed, c.metric) == ("significance", False, "recall_at_10")
    assert "challenger per-user table lacks columns ['recall_at_10']" in c.detail


def test_search_tables_pair_by_query():
    # the same ten queries in opposite row orders: pairing by row would compare different queries
    q = [f"q{i}" for i in range(10)]
    mine = pd.DataFrame({"query": q, "mrr": np.linspace(0.5, 0.95, 10)})
    theirs = pd.DataFrame({"query": q[::-1], "mrr": (np.linspace(0.5, 0.95, 10) - 0.05)[::-1]})
    policy = PolicyConfig(significance=SignificanceConfig(test="ttest", min_users=5))
    checks, sig = compare(ev({"mrr": 0.7}, "v2", mine), ev({"mrr": 0.65}, "v1", theirs), "mrr", "maximize",
                          UpliftRule(), [], policy)
    assert sig["n"] == 10 and sig["mean_diff"] == pytest.approx(0.05)
    assert sig["p_value"] == 0.0  # every query gains exactly 0.05: a constant difference is certain
    assert checks[-1].passed is True


# --- first champion -------------------------------------------------------------------------------------------
def policy_fc(**kw) -> PolicyConfig:
    return PolicyConfig(first_champion=FirstChampion(**kw))


def test_first_champion_against_the_baseline_renames_the_uplift():
    checks, sig = first_champion_checks(ev({P: 0.3}, "v2"), ev({P: 0.2}, "popularity"), P,
                                        policy_fc(min_uplift=UpliftRule(absolute=0.05)))
    assert sig is None
    assert fields(checks[0])[:6] == ("beats_baseline", True, P, 0.3, 0.2, 0.05)
    assert checks[0].detail.startswith("ndcg_at_10 0.3 vs popularity 0.2: uplift +0.1")
    checks, _ = first_champion_checks(ev({P: 0.22}), ev({P: 0.2}, "popularity"), P,
                                      policy_fc(min_uplift=UpliftRule(absolute=0.05)))
    assert [(c.name, c.passed) for c in checks] == [("beats_baseline", False)]


def test_first_champion_baseline_missing_or_the_candidate_itself():
    checks, _ = first_champion_checks(ev({P: 0.3}), None, P, policy_fc(), missing_baseline="no sibling run")
    assert [fields(c) for c in checks] == [("beats_baseline", False, P, 0.3, None, None, "no sibling run")]
    checks, _ = first_champion_checks(ev({P: 0.3}), None, P, policy_fc(), baseline_is_candidate=True)
    assert [fields(c) for c in checks] == [
        ("beats_baseline", False, P, 0.3, 0.3, None, "the candidate is the 'popularity' baseline itself")]


def test_first_champion_floors_and_no_criteria():
    checks, _ = first_champion_checks(ev({P: 0.3, "recall_at_10": 0.1}), None, P,
                                      policy_fc(baseline_model=None, min_metrics={P: 0.3, "recall_at_10": 0.2,
                                                                                  "mrr_at_10": 0.1}))
    assert [fields(c) for c in checks] == [
        ("min_metric", True, P, 0.3, None, 0.3, "ndcg_at_10=0.3 >= floor 0.3"),  # at the floor passes
        ("min_metric", False, "recall_at_10", 0.1, None, 0.2, "recall_at_10=0.1 < floor 0.2"),
        ("min_metric", False, "mrr_at_10", None, None, 0.1, "mrr_at_10=n/a < floor 0.1"),
    ]
    checks, sig = first_champion_checks(ev({P: 0.3}), None, P, policy_fc(baseline_model=None))
    assert sig is None
    assert [fields(c) for c in checks] == [
        ("first_champion", True, None, None, None, None, "no first-champion criteria in the policy")]


def test_first_champion_significance_against_the_baseline():
    users = [f"u{i}" for i in range(30)]
    rng = np.random.default_rng(3)
    base = rng.random(30)
    mine = pd.DataFrame({"user_id": users, P: base + 0.1})
    theirs = pd.DataFrame({"user_id": users, P: base})
    policy = PolicyConfig(significance=SignificanceConfig(min_users=20))
    checks, sig = first_champion_checks(ev({P: 0.6}, "v1", mine), ev({P: 0.5}, "popularity", theirs), P, policy)
    assert [c.name for c in checks] == ["beats_baseline", "significance"]
    assert sig["n"] == 30 and sig["p_value"] < 1e-6 and sig["alpha"] == 0.05


# --- recording helpers ----------------------------------------------------------------------------------------------
def test_summarize_writes_values_and_returns_the_failed_checks():
    checks = [Check("beats_baseline", True, P, 0.3, 0.2, 0.0, "ok"),
              Check("min_metric", False, "recall_at_10", float("nan"), None, 0.2, "low")]
    decision: dict = {}
    failed = summarize(decision, checks, {"p_value": 0.01}, ev({P: 0.3}), P)
    assert failed == [checks[1]]
    assert decision["challenger_value"] == 0.3 and decision["reference_value"] == 0.2
    assert decision["significance"] == {"p_value": 0.01}
    assert decision["checks"][1]["challenger"] is None  # NaN is not JSON
    decision = {}
    assert summarize(decision, [Check("first_champion", True)], None, ev({}), P) == []
    assert decision["reference_value"] is None and decision["challenger_value"] is None


def test_same_evaluation_data_compares_both_fingerprints_and_refuses_other_tasks():
    tags = {"task": "recommend", "dataset_fingerprint": "d1", "split_fingerprint": "s1"}
    assert same_evaluation_data(tags, dict(tags), champion_version="1", challenger_version="2") is True
    for key in ("dataset_fingerprint", "split_fingerprint"):
        assert same_evaluation_data(tags, {**tags, key: "x"}, champion_version="1", challenger_version="2") is False
    assert same_evaluation_data({}, {"task": "recommend"}, champion_version="1", challenger_version="2") is True
    with pytest.raises(PromotionError, match=r"champion v1 is a 'recommend' model but v2 is 'audience'; register "
                                             r"different tasks under different model names"):
        same_evaluation_data(tags, {**tags, "task": "audience"}, champion_version="1", challenger_version="2")


# --- the decision recorded, field by field, on hand-computed numbers ---------------------------------------------
def test_a_guardrail_drop_of_the_allowed_plus_the_float_tolerance_still_passes():
    # the allowed drop is compared with a tolerance of 1e-12, inclusive: 0.25 + 1e-12 passes, the next float fails
    g = Guardrail(metric="coverage", max_drop_absolute=0.25)
    edge = 0.25 + 1e-12
    checks, _ = compare(ev({P: 0.3, "coverage": 0.0}), ev({P: 0.2, "coverage": edge}), P, "maximize", UpliftRule(),
                        [g], PolicyConfig())
    assert (checks[1].passed, checks[1].threshold) == (True, 0.25) and "within the allowed 0.25" in checks[1].detail
    checks, _ = compare(ev({P: 0.3, "coverage": 0.0}), ev({P: 0.2, "coverage": math.nextafter(edge, 1.0)}), P,
                        "maximize", UpliftRule(), [g], PolicyConfig())
    assert checks[1].passed is False and "exceeds the allowed 0.25" in checks[1].detail


def _paired(n: int, gain: float, seed: int, extra: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(n)]
    base = rng.random(n)
    noise = rng.normal(0, 0.02, n)
    return (pd.DataFrame({"user_id": users, **(extra or {}), P: base + gain + noise}),
            pd.DataFrame({"user_id": users, **(extra or {}), P: base}))


def test_a_significant_gain_check_fields_and_wording():
    mine, theirs = _paired(30, 0.05, seed=21)
    p = float(stats.wilcoxon(mine[P], theirs[P], alternative="greater").pvalue)
    assert p < 0.05
    policy = PolicyConfig(significance=SignificanceConfig(alpha=0.05, min_users=20))
    checks, sig = compare(ev({P: 0.55}, "v2", mine), ev({P: 0.5}, "v1", theirs), P, "maximize", UpliftRule(), [],
                          policy)
    c = checks[-1]
    assert fields(c)[:3] == ("significance", True, P) and c.threshold == 0.05
    assert c.challenger == pytest.approx(mine[P].mean()) and c.reference == pytest.approx(theirs[P].mean())
    assert c.detail == f"wilcoxon p={p:.4g} < alpha 0.05 on 30 paired users"
    assert sig["n"] == 30 and sig["p_value"] == pytest.approx(p, rel=1e-12)


def test_exactly_min_users_pairs_are_enough_and_the_detail_gives_the_p_value():
    mine, theirs = _paired(25, 0.05, seed=22)
    p = float(stats.ttest_rel(mine[P], theirs[P], alternative="greater").pvalue)
    policy = PolicyConfig(significance=SignificanceConfig(test="ttest", alpha=0.01, min_users=25,
                                                          metric="recall_at_10"))
    mine, theirs = mine.rename(columns={P: "recall_at_10"}), theirs.rename(columns={P: "recall_at_10"})
    checks, _ = compare(ev({P: 0.55}, "v2", mine), ev({P: 0.5}, "v1", theirs), P, "maximize", UpliftRule(), [],
                        policy)
    c = checks[-1]
    assert (c.passed, c.metric, c.threshold) == (True, "recall_at_10", 0.01)
    assert c.detail == f"ttest p={p:.4g} < alpha 0.01 on 25 paired users"


def test_per_user_tables_without_a_shared_key_fail_the_test_naming_user_id():
    mine, theirs = _paired(30, 0.05, seed=23)
    theirs = theirs.rename(columns={"user_id": "uid"})
    policy = PolicyConfig(significance=SignificanceConfig(min_users=20))
    checks, sig = compare(ev({P: 0.55}, "v2", mine), ev({P: 0.5}, "v1", theirs), P, "maximize", UpliftRule(), [],
                          policy)
    assert sig is None
    assert fields(checks[-1]) == ("significance", False, P, None, None, None,
                                  "\"reference per-user table lacks columns ['user_id'] (has ['uid', 'ndcg_at_10'])\"")


def test_user_id_is_the_pairing_key_even_when_the_tables_also_carry_item_ids():
    # each row also names an item; items repeat, users do not: paired by user_id, never by item_id
    mine, theirs = _paired(30, 0.05, seed=24, extra={"item_id": ["i0", "i1", "i2"] * 10})
    p = float(stats.wilcoxon(mine[P], theirs[P], alternative="greater").pvalue)
    policy = PolicyConfig(significance=SignificanceConfig(min_users=20))
    checks, sig = compare(ev({P: 0.55}, "v2", mine), ev({P: 0.5}, "v1", theirs.iloc[::-1]), P, "maximize",
                          UpliftRule(), [], policy)
    assert checks[-1].passed is True and sig["n"] == 30 and sig["p_value"] == pytest.approx(p, rel=1e-12)


def test_first_champion_baseline_missing_without_a_reason_has_an_empty_detail():
    checks, _ = first_champion_checks(ev({P: 0.3}), None, P, policy_fc())
    assert [fields(c) for c in checks] == [("beats_baseline", False, P, 0.3, None, None, "")]


def test_summarize_a_refused_challenger_records_the_uplift_reference():
    # 0.26 vs 0.25: uplift 0.01 < the required 0.02 -> refused; a guardrail on the primary itself comes first
    checks, sig = compare(ev({P: 0.26}, "v2"), ev({P: 0.25}, "v1"), P, "maximize", UpliftRule(absolute=0.02), [],
                          PolicyConfig())
    guard = Check("guardrail", True, P, 0.26, 0.4, 0.5, "a guardrail on the primary metric")
    decision: dict = {}
    failed = summarize(decision, [guard, *checks], sig, ev({P: 0.26}, "v2"), P)
    assert [c.name for c in failed] == ["uplift"]
    assert failed[0].detail == "ndcg_at_10 0.26 vs v1 0.25: uplift +0.01 (+4.00%) is below the required >= 0.02"
    assert decision["challenger_value"] == 0.26 and decision["reference_value"] == 0.25
    assert [c["name"] for c in decision["checks"]] == ["guardrail", "uplift"] and decision["significance"] is None
    # a check named uplift on another metric is not the reference either
    decision = {}
    summarize(decision, [Check("uplift", True, "recall_at_10", 0.5, 0.1), *checks], None, ev({P: 0.26}), P)
    assert decision["reference_value"] == 0.25


def test_a_challenger_without_a_task_tag_is_comparable_with_a_tagged_champion():
    tags = {"task": "recommend", "dataset_fingerprint": "d1", "split_fingerprint": "s1"}
    untagged = {"dataset_fingerprint": "d1", "split_fingerprint": "s1"}
    assert same_evaluation_data(tags, untagged, champion_version="1", challenger_version="2") is True
    assert same_evaluation_data(tags, {**untagged, "split_fingerprint": "s2"}, champion_version="1",
                                challenger_version="2") is False
    assert same_evaluation_data(untagged, tags, champion_version="1", challenger_version="2") is True


def test_checks_on_numpy_metrics_are_plain_bools_that_json_can_write():
    # metrics read back from per-user tables are numpy floats; their comparisons are numpy bools
    import json

    guard = Guardrail(metric="coverage", max_drop_absolute=0.1)
    checks, _ = compare(ev({P: np.float64(0.3), "coverage": np.float64(0.5)}, "v2"),
                        ev({P: np.float64(0.25), "coverage": np.float64(0.45)}), P, "maximize", UpliftRule(), [guard],
                        PolicyConfig())
    floors = first_champion_checks(ev({P: np.float64(0.3)}), None, P, PolicyConfig(
        first_champion=FirstChampion(baseline_model=None, min_metrics={P: 0.5})))[0]
    everything = checks + floors
    assert [(c.name, c.passed) for c in everything] == [("uplift", True), ("guardrail", True), ("min_metric", False)]
    assert all(type(c.passed) is bool for c in everything)
    assert json.loads(json.dumps([c.to_dict() for c in everything]))[2]["passed"] is False
    assert Check("x", np.bool_(True)).passed is True and Check("x", np.bool_(False)).passed is False
