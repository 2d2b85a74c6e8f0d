"""Paired tests on per-user metric vectors agree with scipy and handle the degenerate cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recsys.evaluation.significance import paired_frame_test, paired_test


@pytest.mark.parametrize("test", ["wilcoxon", "ttest"])
def test_paired_test_matches_scipy_and_is_one_sided(rng, test):
    b = rng.random(200)
    a = b + rng.normal(0.02, 0.1, 200)
    res = paired_test(a, b, test=test, alternative="greater")
    ref = (stats.wilcoxon(a, b, alternative="greater") if test == "wilcoxon"
           else stats.ttest_rel(a, b, alternative="greater"))
    assert res.p_value == pytest.approx(ref.pvalue) and res.n == 200
    assert res.mean_diff == pytest.approx(float(np.mean(a - b)))
    # the opposite direction of the same data is not significant
    assert paired_test(a, b, test=test, alternative="less").p_value > 0.5 > res.p_value


def test_identical_vectors_give_p_one_and_bad_shapes_raise(rng):
    a = rng.random(50)
    assert paired_test(a, a.copy()).p_value == 1.0
    with pytest.raises(ValueError, match="equal length"):
        paired_test(a, a[:-1])
    with pytest.raises(ValueError, match="wilcoxon"):
        paired_test(a, a, test="sign")  # type: ignore[arg-type]


def test_frame_test_joins_on_user_id_whatever_the_order(rng):
    users = np.array([f"u{i}" for i in range(80)])
    a = pd.DataFrame({"user_id": users, "ndcg": rng.random(80) + 0.1})
    b = pd.DataFrame({"user_id": users, "ndcg": rng.random(80)})
    shuffled = b.sample(frac=1.0, random_state=3).iloc[5:]  # reordered, 5 users missing
    res = paired_frame_test(a, shuffled, "ndcg")
    kept = a.set_index("user_id").loc[shuffled["user_id"], "ndcg"].to_numpy()
    assert res.n == 75
    assert res.p_value == pytest.approx(paired_test(kept, shuffled["ndcg"].to_numpy()).p_value)
    with pytest.raises(KeyError, match="recall"):
        paired_frame_test(a, b, "recall")
