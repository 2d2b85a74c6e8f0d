"""Edge cases of the paired tests, Holm and the t interval, against scipy and hand-worked values.

Each case pins a documented contract (docstrings of recsys.evaluation.statistics / significance): tiny samples,
constant differences in either direction, the Holm cap at 1, defaults, and the error messages that name the fix.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recsys.evaluation import statistics as S
from recsys.evaluation.significance import paired_frame_test, paired_test


# --- the smallest samples that are still tested (n = 2, or one non-zero difference among zeros) ------------------
def test_two_differences_are_tested_like_scipy():
    d = np.array([0.3, 0.5])
    w = stats.wilcoxon(d, alternative="greater")  # exact: ranks 1, 2 both positive -> W+ = 3, p = 1/4
    assert S.wilcoxon(d, "greater") == pytest.approx((3.0, 0.25))
    assert (w.statistic, w.pvalue) == pytest.approx((3.0, 0.25))
    t = stats.ttest_1samp(d, 0.0)
    assert S.ttest(d) == pytest.approx((float(t.statistic), float(t.pvalue)))
    # by hand: mean 0.4, s = 0.1414, t = 0.4 / (0.1414 / sqrt 2) = 4.0
    assert S.ttest(d)[0] == pytest.approx(4.0)


def test_one_nonzero_difference_among_zeros_is_still_tested():
    d = np.array([0.0, 0.0, 0.5])
    ref = stats.wilcoxon(d, alternative="greater", zero_method="wilcox")  # zeros dropped: one positive rank
    assert S.wilcoxon(d, "greater") == pytest.approx((float(ref.statistic), float(ref.pvalue)))
    assert S.wilcoxon(d, "greater") == pytest.approx((1.0, 0.5))
    t = stats.ttest_1samp(d, 0.0)
    assert S.ttest(d) == pytest.approx((float(t.statistic), float(t.pvalue)))


@pytest.mark.parametrize("test", [S.wilcoxon, S.ttest])
@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_a_single_difference_or_all_zero_gives_no_evidence(test, alternative):
    assert test(np.array([0.5]), alternative) == (0.0, 1.0)
    assert test(np.zeros(7), alternative) == (0.0, 1.0)


# --- a constant non-zero difference: certain in its own direction, nothing in the other ---------------------------
@pytest.mark.parametrize("value,alternative,expected", [
    (0.2, "greater", (math.inf, 0.0)), (0.2, "less", (math.inf, 1.0)), (0.2, "two-sided", (math.inf, 0.0)),
    (-0.2, "greater", (-math.inf, 1.0)), (-0.2, "less", (-math.inf, 0.0)), (-0.2, "two-sided", (-math.inf, 0.0)),
])
def test_constant_difference_ttest(value, alternative, expected):
    assert S.ttest(np.full(5, value), alternative) == expected


def test_constant_means_relative_to_the_size_of_the_differences():
    # 1e6 + spread 2e-7: relative spread 2e-13 < 1e-12, so the differences count as constant
    big = 1e6 + np.array([0.0, 2e-7, 1e-7])
    assert S.ttest(big) == (math.inf, 0.0)
    assert S.cohens_d(big) == math.inf
    # below 1 the tolerance is absolute (1e-12): a spread of 1.5e-12 around 0.5 is variance, tested like scipy
    small = 0.5 + np.array([0.0, 1.5e-12, 0.7e-12])
    assert np.ptp(small) > 1e-12
    t = stats.ttest_1samp(small, 0.0)
    assert S.ttest(small) == pytest.approx((float(t.statistic), float(t.pvalue)))
    assert math.isfinite(S.cohens_d(small))
    assert S.cohens_d(small) == pytest.approx(small.mean() / small.std(ddof=1))


def test_a_spread_of_exactly_the_tolerance_counts_as_constant():
    d = np.array([0.0, 1e-12])  # ptp = 1e-12 = 1e-12 * max(1, |d|): the boundary is inclusive
    assert float(np.ptp(d)) == 1e-12 * max(1.0, float(np.abs(d).max()))
    assert S.ttest(d) == (math.inf, 0.0)
    assert S.cohens_d(d) == math.inf


def test_cohens_d_small_and_constant_samples():
    assert S.cohens_d(np.array([1.0, 2.0])) == pytest.approx(1.5 / math.sqrt(0.5))  # mean 1.5, sd sqrt(0.5)
    assert S.cohens_d(np.full(4, 0.3)) == math.inf
    assert S.cohens_d(np.full(4, -0.3)) == -math.inf
    assert S.cohens_d(np.array([0.7])) == 0.0


def test_boolean_differences_are_numbers():
    # hit / miss vectors arrive as booleans: they are 0/1, not a numpy boolean subtraction error
    hits = [True, False, True, True]
    as_float = np.array(hits, dtype=float)
    assert S.ttest(hits) == pytest.approx(S.ttest(as_float))
    assert S.cohens_d(hits) == pytest.approx(S.cohens_d(as_float))
    assert S.t_interval(hits) == pytest.approx(S.t_interval(as_float))


# --- Holm ---------------------------------------------------------------------------------------------------------
def test_holm_caps_at_one_and_accepts_p_equal_to_one():
    # m = 2: 2 * 0.6 = 1.2 -> 1; max(1, min(1, 0.7)) = 1
    assert S.holm([0.6, 0.7]).tolist() == [1.0, 1.0]
    assert S.holm([1.0, 0.01]).tolist() == pytest.approx([1.0, 0.02])
    assert S.holm([0.3]).tolist() == [0.3]
    assert S.holm([]).tolist() == []


def test_holm_rejects_bad_input_with_the_rule():
    with pytest.raises(ValueError, match=r"p_values must be 1-D, got shape \(1, 2\)"):
        S.holm([[0.1, 0.2]])
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        S.holm([0.1, 1.5])


def test_holm_adjust_fills_both_tests():
    rng = np.random.default_rng(4)
    b = rng.random(30)
    comps = [S.paired_comparison(b + rng.normal(shift, 0.05, 30), b, "m") for shift in (0.0, 0.02, 0.05)]
    adjusted = S.holm_adjust(comps)
    expected_w = S.holm([c.p_wilcoxon for c in comps])
    expected_t = S.holm([c.p_ttest for c in comps])
    assert [c.p_wilcoxon_adjusted for c in adjusted] == pytest.approx(expected_w.tolist())
    assert [c.p_ttest_adjusted for c in adjusted] == pytest.approx(expected_t.tolist())
    assert all(isinstance(c.p_ttest_adjusted, float) for c in adjusted)
    assert S.holm_adjust([]) == []


# --- t interval ---------------------------------------------------------------------------------------------------
def test_t_interval_of_two_values_by_hand():
    # mean 2, s = sqrt 2, n = 2: half = t(0.975, 1) * sqrt 2 / sqrt 2 = 12.7062
    low, high = S.t_interval(np.array([1.0, 3.0]))
    assert (low, high) == pytest.approx((2 - 12.7062047, 2 + 12.7062047))
    assert S.t_interval(np.array([4.0])) == (4.0, 4.0)


def test_t_interval_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="^a t-interval needs at least 1 value$"):
        S.t_interval(np.array([]))


# --- defaults and errors that name the fix --------------------------------------------------------------------------
def test_paired_p_value_defaults_to_two_sided_wilcoxon():
    d = np.array([0.4, -0.1, 0.3, 0.2, 0.5, -0.05, 0.25])
    ref = stats.wilcoxon(d, alternative="two-sided")
    assert S.paired_p_value(d) == pytest.approx((float(ref.statistic), float(ref.pvalue)))
    with pytest.raises(ValueError, match=r"test must be one of \['ttest', 'wilcoxon'\], but got 'sign'"):
        S.paired_p_value(d, "sign")  # type: ignore[arg-type]


def test_bad_alternative_and_shape_name_the_rule():
    with pytest.raises(ValueError, match="alternative must be 'greater', 'less' or 'two-sided', but got 'up'"):
        S.wilcoxon(np.ones(3), "up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"differences must be 1-D, got shape \(2, 2\)"):
        S.ttest(np.ones((2, 2)))


# --- paired_test / paired_frame_test -----------------------------------------------------------------------------
def test_paired_test_reports_every_field():
    a = np.array([0.5, 0.7, 0.2, 0.9, 0.4])
    b = np.array([0.1, 0.6, 0.3, 0.5, 0.2])
    res = paired_test(a, b, test="ttest", alternative="less")
    ref = stats.ttest_rel(a, b, alternative="less")
    assert (res.test, res.alternative, res.n) == ("ttest", "less", 5)
    assert (res.mean_a, res.mean_b, res.mean_diff) == pytest.approx((0.54, 0.34, 0.2))
    assert (res.statistic, res.p_value) == pytest.approx((float(ref.statistic), float(ref.pvalue)))
    assert res.to_dict() == {"test": "ttest", "alternative": "less", "n": 5, "mean_a": res.mean_a,
                             "mean_b": res.mean_b, "mean_diff": res.mean_diff, "statistic": res.statistic,
                             "p_value": res.p_value}


def test_paired_test_of_no_users_is_nan_means_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice"
        res = paired_test(np.array([]), np.array([]))
    assert res.n == 0 and res.p_value == 1.0
    assert all(isinstance(v, float) and math.isnan(v) for v in (res.mean_a, res.mean_b, res.mean_diff))


def test_frame_test_passes_the_alternative_and_names_the_table_lacking_a_column():
    users = [f"u{i}" for i in range(12)]
    a = pd.DataFrame({"user_id": users, "ndcg": np.linspace(0.2, 0.8, 12)})
    b = pd.DataFrame({"user_id": users, "ndcg": np.linspace(0.1, 0.6, 12)})
    res = paired_frame_test(a, b, "ndcg", alternative="less")
    assert res.alternative == "less"
    assert res.p_value == pytest.approx(stats.wilcoxon(a["ndcg"], b["ndcg"], alternative="less").pvalue)
    with pytest.raises(KeyError, match=r"challenger per-user table lacks columns \['recall'\]"):
        paired_frame_test(a, b.assign(recall=0.1), "recall")
    with pytest.raises(KeyError, match=r"reference per-user table lacks columns \['recall'\]"):
        paired_frame_test(a.assign(recall=0.1), b, "recall")
