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


@pytest.mark.parametrize("key", [("fold", "user_id"), ["fold", "user_id"]])
def test_frame_test_pairs_fold_and_user_under_repeated_splits(rng, key):
    """Under repeated splits a user is a unit once per fold: the pairs are (fold, user_id), matched by hand here
    (a dict per side), whatever the row order and with pairs missing on either side."""
    units = [(f, f"u{u}") for f in range(3) for u in range(40)]
    a = pd.DataFrame({"fold": [f for f, _ in units], "user_id": [u for _, u in units],
                      "ndcg": rng.random(len(units)) + 0.05})
    b = pd.DataFrame({"fold": [f for f, _ in units], "user_id": [u for _, u in units],
                      "ndcg": rng.random(len(units))})
    a = a.drop(index=[0, 41]).sample(frac=1.0, random_state=1)  # two units only the reference has
    b = b.drop(index=[2, 85, 119]).sample(frac=1.0, random_state=2)
    left = {(f, u): v for f, u, v in zip(a["fold"], a["user_id"], a["ndcg"])}
    right = {(f, u): v for f, u, v in zip(b["fold"], b["user_id"], b["ndcg"])}
    common = sorted(set(left) & set(right))
    res = paired_frame_test(a, b, "ndcg", key=key)
    assert res.n == len(common) == len(units) - 5
    x, y = np.array([left[c] for c in common]), np.array([right[c] for c in common])
    assert res.p_value == pytest.approx(stats.wilcoxon(x, y, alternative="greater").pvalue)
    assert res.mean_diff == pytest.approx(float(np.mean(x - y)))


def test_frame_test_names_duplicate_units_and_the_missing_fold_key():
    a = pd.DataFrame({"fold": [0, 0, 1, 1], "user_id": ["u0", "u1", "u0", "u1"], "ndcg": [0.1, 0.2, 0.3, 0.4]})
    with pytest.raises(ValueError) as err:
        paired_frame_test(a, a, "ndcg")  # keyed by user_id alone: each user twice
    assert str(err.value) == ("challenger per-user table has 2 duplicate row(s) of ['user_id'], e.g. ['u0']: "
                              "cannot pair units (rows from several folds: both tables need the `fold` column)")
    no_fold = a.drop(columns="fold")
    with pytest.raises(ValueError) as err:
        paired_frame_test(a.iloc[:2], no_fold, "ndcg")
    assert str(err.value) == ("reference per-user table has 2 duplicate row(s) of ['user_id'], e.g. ['u0']: "
                              "cannot pair units")
