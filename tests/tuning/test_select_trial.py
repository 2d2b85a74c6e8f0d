"""Which trial tuning picks, on in-memory Optuna studies with hand-made trial values whose answer is read off
by hand: the single best in the objective's direction, the Pareto pick by metric or weights, constraints, and ties
to the lowest trial number."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from recsys.errors import RecsysError
from recsys.tuning.report import select_trial
from recsys.tuning.space import SelectRule

DIST = {"x": FloatDistribution(0, 100)}


@pytest.fixture(scope="module", autouse=True)
def _quiet_optuna():
    """Hush "Trial n finished" lines for this module only (set at import, it changed every test collected after)."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    yield
    optuna.logging.set_verbosity(before)


def study_of(values: list, directions: list[str], states: list[TrialState] | None = None) -> optuna.Study:
    study = optuna.create_study(directions=directions)
    for n, v in enumerate(values):
        state = states[n] if states else TrialState.COMPLETE
        vals = None if state != TrialState.COMPLETE else (v if isinstance(v, list) else [v])
        study.add_trial(create_trial(params={"x": float(n)}, distributions=DIST, values=vals, state=state))
    return study


@pytest.mark.parametrize("direction, expected", [("maximize", 2), ("minimize", 1)])
def test_single_objective_best_in_its_direction(direction, expected) -> None:
    study = study_of([0.30, 0.10, 0.50, 0.20], [direction])
    assert select_trial(study, ["ndcg"], [direction], None).number == expected


def test_no_complete_trial_is_an_error_naming_the_way_out() -> None:
    study = study_of([0.1, 0.2], ["maximize"], [TrialState.FAIL, TrialState.PRUNED])
    with pytest.raises(RecsysError, match=r"no COMPLETE trial to pick from; run more trials \(--n-trials\) or check "
                                          "the FAILED trial runs for the error"):
        select_trial(study, ["ndcg"], ["maximize"], None)


# (ndcg maximised, latency minimised); Pareto front: 0 (0.30, 10), 1 (0.40, 30), 2 (0.50, 80), 4 (0.40, 30)
# trial 3 (0.35, 40) is dominated by 1
TRIALS = [[0.30, 10.0], [0.40, 30.0], [0.50, 80.0], [0.35, 40.0], [0.40, 30.0]]
DIRS = ["maximize", "minimize"]
METRICS = ["ndcg", "latency"]


def test_pick_by_one_metric_follows_its_direction_and_ties_go_to_the_lowest_number() -> None:
    study = study_of(TRIALS, DIRS)
    assert select_trial(study, METRICS, DIRS, SelectRule(metric="ndcg")).number == 2
    assert select_trial(study, METRICS, DIRS, SelectRule(metric="latency")).number == 0
    # ndcg <= 0.45 leaves 0, 1, 4 on the front; 1 and 4 tie on ndcg: the lower number wins
    rule = SelectRule(metric="ndcg", constraints={"ndcg": {"max": 0.45}})
    assert select_trial(study, METRICS, DIRS, rule).number == 1


def test_weights_sign_each_objective_by_its_direction() -> None:
    study = study_of(TRIALS, DIRS)
    # score = 100 * ndcg - latency (latency minimised): 0 -> 20, 1 -> 10, 2 -> -30
    assert select_trial(study, METRICS, DIRS, SelectRule(weights={"ndcg": 100.0, "latency": 1.0})).number == 0
    # score = 1000 * ndcg - latency: 0 -> 290, 1 -> 370, 2 -> 420
    assert select_trial(study, METRICS, DIRS, SelectRule(weights={"ndcg": 1000.0, "latency": 1.0})).number == 2
    # score = 150 * ndcg - latency: 0 -> 35, 1 -> 30, 2 -> -5 (a maximised metric counts once, not twice)
    assert select_trial(study, METRICS, DIRS, SelectRule(weights={"ndcg": 150.0, "latency": 1.0})).number == 0


def test_constraints_are_inclusive_bounds_and_an_empty_result_falls_back_to_the_front(caplog) -> None:
    study = study_of(TRIALS, DIRS)
    # latency <= 30 keeps 0, 1, 4 (30 included); best ndcg among them: 1 (tie with 4)
    rule = SelectRule(metric="ndcg", constraints={"latency": {"max": 30.0}})
    assert select_trial(study, METRICS, DIRS, rule).number == 1
    # ndcg >= 0.40 keeps 1, 2, 4 (0.40 included); lowest latency among them: 1
    rule = SelectRule(metric="latency", constraints={"ndcg": {"min": 0.40}})
    assert select_trial(study, METRICS, DIRS, rule).number == 1
    # nothing meets ndcg >= 0.9: the whole front is used (best ndcg: 2)
    rule = SelectRule(metric="ndcg", constraints={"ndcg": {"min": 0.9}})
    with caplog.at_level("WARNING", logger="recsys"):
        assert select_trial(study, METRICS, DIRS, rule).number == 2
    # the whole message, word for word (a fragment would still be found in a mangled one)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("recsys.tuning")] == [
        "no Pareto trial meets select.constraints {'ndcg': {'min': 0.9}}; choosing among the whole front"]


def test_dominated_trials_are_never_picked_and_multi_objective_needs_a_rule() -> None:
    study = study_of(TRIALS, DIRS)
    # trial 3 is off the Pareto front: no weighting picks it
    for weights in ({"ndcg": 1.0}, {"latency": 1.0}, {"ndcg": 10.0, "latency": 0.1}):
        assert select_trial(study, METRICS, DIRS, SelectRule(weights=weights)).number != 3
    with pytest.raises(RecsysError, match="needs a `select` rule"):
        select_trial(study, METRICS, DIRS, None)
