"""The statistics behind decisions, against textbook references, hand-worked examples and scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recsys.evaluation import statistics as S
from recsys.evaluation.decision import BootstrapCache, Candidate, decide, metric_intervals
from recsys.evaluation.significance import paired_test

# Student's sleep data (Cushny & Peebles 1905): extra hours of sleep, drug 2 minus drug 1, ten patients.
SLEEP_DIFF = np.array([1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4])


def textbook_percentile_bootstrap(x, n_resamples, seed, confidence=0.95):
    """Efron's percentile bootstrap, one resample at a time."""
    r = np.random.default_rng(seed)
    means = []
    for _ in range(n_resamples):
        idx = r.integers(0, len(x), len(x))
        means.append(float(np.mean(x[idx])))
    a = 1 - confidence
    return np.quantile(means, [a / 2, 1 - a / 2])


@pytest.mark.parametrize("n,chunk", [(1, 7), (37, 7), (500, 200), (64, 1000)])
def test_bootstrap_equals_textbook_percentile_bootstrap(rng, n, chunk):
    x = rng.exponential(1.0, n)
    boot = S.PairedBootstrap(n, n_resamples=301, random_state=11, chunk=chunk)
    assert np.array_equal(boot.indices(), np.random.default_rng(11).integers(0, n, (301, n)))
    low, high = boot.interval(x, 0.95)
    ref = textbook_percentile_bootstrap(x, 301, 11)
    assert (low, high) == pytest.approx(tuple(ref), abs=1e-12)
    # a block of metrics at once gives each column's own interval
    block = np.column_stack([x, 2 * x + 1])
    lo2, hi2 = boot.interval(block, 0.9)
    ref2 = textbook_percentile_bootstrap(2 * x + 1, 301, 11, confidence=0.9)
    assert (lo2[1], hi2[1]) == pytest.approx(tuple(ref2), abs=1e-12)


def test_bootstrap_agrees_with_t_interval_and_scipy_on_normal_data():
    x = np.random.default_rng(3).normal(10.0, 2.0, 4000)
    low, high = S.PairedBootstrap(len(x), 2000, random_state=5).interval(x)
    t_low, t_high = S.t_interval(x)
    half = (t_high - t_low) / 2
    assert abs(low - t_low) < 0.1 * half and abs(high - t_high) < 0.1 * half
    ref = stats.bootstrap((x,), np.mean, n_resamples=2000, method="percentile", random_state=1).confidence_interval
    assert abs(low - ref.low) < 0.1 * half and abs(high - ref.high) < 0.1 * half


def test_t_interval_and_paired_t_test_on_the_sleep_data():
    # R: t.test(extra ~ group, data = sleep, paired = TRUE): t = -4.0621, df = 9, p-value = 0.002833,
    # 95 percent confidence interval -2.4598858 -0.7001142, mean difference -1.58
    low, high = S.t_interval(SLEEP_DIFF)
    assert (low, high) == pytest.approx((0.7001142, 2.4598858), abs=1e-6)
    stat, p = S.ttest(SLEEP_DIFF)
    assert stat == pytest.approx(4.0621, abs=1e-4) and p == pytest.approx(0.002833, abs=1e-6)
    # hand formula: mean ± t(.975, 9) · s / √n
    s = np.sqrt(np.sum((SLEEP_DIFF - 1.58) ** 2) / 9)
    assert high - 1.58 == pytest.approx(2.2621571628 * s / np.sqrt(10), abs=1e-8)


def test_wilcoxon_hand_worked_and_scipy():
    # five positive differences, no ties: W- = 0; exact two-sided p = 2 · (1 / 2^5) = 0.0625
    stat, p = S.wilcoxon(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert stat == 0.0 and p == pytest.approx(0.0625)
    assert S.wilcoxon(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), "greater")[1] == pytest.approx(1 / 32)
    d = np.random.default_rng(8).normal(0.1, 1.0, 300)
    assert S.wilcoxon(d)[1] == pytest.approx(stats.wilcoxon(d).pvalue)
    assert S.wilcoxon(np.zeros(40)) == (0.0, 1.0)


def test_cohens_d_hand_worked():
    assert S.cohens_d(np.array([1.0, 2.0, 3.0])) == pytest.approx(2.0)  # mean 2, sd 1
    assert S.cohens_d(SLEEP_DIFF) == pytest.approx(1.58 / SLEEP_DIFF.std(ddof=1))
    assert S.cohens_d(np.zeros(5)) == 0.0


def test_holm_step_down_hand_worked():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> max so far 0.06
    adj = S.holm([0.01, 0.04, 0.03, 0.005])
    assert adj == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert list(adj <= 0.05) == [True, False, False, True]
    assert S.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1, monotone
    assert S.holm([0.02]) == pytest.approx([0.02])  # one comparison: no correction
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        S.holm([0.1, 1.5])


def _candidates(per_users: dict[str, np.ndarray], fit: dict[str, float] | None = None) -> list[Candidate]:
    users = np.arange(len(next(iter(per_users.values()))))
    out = []
    for label, v in per_users.items():
        frame = pd.DataFrame({"user_id": users, "ndcg_at_10": v})
        out.append(Candidate(label, {"ndcg_at_10": float(v.mean())}, frame, (fit or {}).get(label, 1.0)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_two_identical_models_are_always_tied(seed):
    r = np.random.default_rng(seed)
    n = int(r.integers(2, 400))
    v = r.random(n) * (r.random(n) < 0.3)  # many zeros, like per-user NDCG
    other = r.random(n)
    cache = BootstrapCache(200, seed)
    d = decide(_candidates({"a": v, "twin": v.copy(), "other": other}), "ndcg_at_10", cache=cache)
    reference = d.best
    twins = {"a", "twin"}
    if reference in twins:
        twin = (twins - {reference}).pop()
        c = d.comparisons["ndcg_at_10"][twin]
        assert d.is_tied(twin) and c.delta == 0.0 and c.p_wilcoxon == 1.0 and c.p_ttest == 1.0
        assert c.delta_ci_low == 0.0 == c.delta_ci_high and c.cohens_d == 0.0
    else:  # the other model is best: the twins are tied with each other, so both or neither are tied with it
        assert d.is_tied("a") == d.is_tied("twin")


def test_decision_holm_corrects_across_models_and_finds_ties():
    r = np.random.default_rng(0)
    base = r.random(2000)
    noise = r.normal(0, 0.05, 2000)
    per = {"best": base + 0.05, "close": base + 0.05 + noise - noise.mean() - 1e-9,
           "far": base + r.normal(0, 0.05, 2000)}
    d = decide(_candidates(per), "ndcg_at_10", cache=BootstrapCache(300, 1))
    raw = [d.comparisons["ndcg_at_10"][m].p_wilcoxon for m in d.comparisons["ndcg_at_10"]]
    adj = [d.comparisons["ndcg_at_10"][m].p_wilcoxon_adjusted for m in d.comparisons["ndcg_at_10"]]
    assert adj == pytest.approx(list(S.holm(raw)))
    assert d.best == "best" and d.tied == ["close"] and "far" not in d.tied
    metrics = d.model_metrics("far")
    assert metrics["delta_vs_best"] == pytest.approx(per["far"].mean() - per[d.best].mean())
    assert 0.0 <= metrics["p_value_vs_best"] <= 1.0
    assert metrics["delta_vs_best_ci_low"] <= metrics["delta_vs_best"] <= metrics["delta_vs_best_ci_high"]
    assert d.model_metrics(d.best) == {}


def test_simplest_tied_picks_the_fastest_of_the_tied_and_says_so():
    r = np.random.default_rng(4)
    base = r.random(300)
    noise = r.normal(0, 0.02, 300)
    per = {"big": base + 0.001, "small": base + 0.001 + noise - noise.mean(), "weak": base - 0.3}
    fit = {"big": 30.0, "small": 0.5, "weak": 0.1}
    d = decide(_candidates(per, fit), "ndcg_at_10", rule="simplest_tied")
    assert d.best == "big" and d.tied == ["small"] and d.selected == "small"
    assert "fastest to fit" in d.reason and "0.5 s" in d.reason
    assert decide(_candidates(per, fit), "ndcg_at_10", rule="best").selected == "big"


def test_bootstrap_resamples_are_shared_by_every_model(rng):
    cache = BootstrapCache(100, 9)
    a, b = rng.random(50), rng.random(50)
    assert cache.get(50) is cache.get(50)
    boot = cache.get(50)
    diff_low, diff_high = boot.interval(a - b)
    ref = np.quantile(boot.means(a) - boot.means(b), [0.025, 0.975])  # paired: same resample for a and for b
    assert (diff_low, diff_high) == pytest.approx(tuple(ref), abs=1e-12)


def test_metric_intervals_only_for_per_user_means(rng):
    frame = pd.DataFrame({"user_id": np.arange(80), "ndcg_at_10": rng.random(80), "coverage": rng.random(80)})
    metrics = {"ndcg_at_10": float(frame["ndcg_at_10"].mean()), "coverage": 0.9}  # coverage is not a mean
    out = metric_intervals(frame, metrics, BootstrapCache(200, 0))
    assert set(out) == {"ndcg_at_10_ci_low", "ndcg_at_10_ci_high"}
    assert out["ndcg_at_10_ci_low"] <= metrics["ndcg_at_10"] <= out["ndcg_at_10_ci_high"]
    assert metric_intervals(frame, metrics, BootstrapCache(0, 0)) == {}


def test_promotion_gate_runs_the_same_test_functions(monkeypatch, rng):
    a, b = rng.random(30), rng.random(30)
    seen = []

    def spy(diff, alternative="two-sided"):
        seen.append((diff.copy(), alternative))
        return 1.5, 0.123

    monkeypatch.setitem(S.TESTS, "ttest", spy)
    res = paired_test(a, b, test="ttest", alternative="greater")
    assert res.p_value == 0.123 and seen and np.allclose(seen[0][0], a - b) and seen[0][1] == "greater"
