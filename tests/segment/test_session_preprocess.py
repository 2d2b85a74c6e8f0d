"""Winsorisation bounds, log transforms and standardisation of session features (fit on training only)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recsys.data.sessions import PreprocessConfig, SessionPreprocessor
from recsys.errors import DataError


@pytest.fixture
def frame(rng) -> pd.DataFrame:
    n = 1000
    pages = rng.poisson(5, n).astype(float)
    pages[:5] = [500, 800, 1000, 2000, 5000]  # bots
    return pd.DataFrame({"pageviews": pages, "revenue": rng.lognormal(3, 1.5, n), "delta": rng.normal(0, 1, n)})


def test_winsorisation_clips_at_the_configured_quantiles(frame):
    cfg = PreprocessConfig(winsorize=(0.05, 0.95), log_features="none", standardize=False)
    pre = SessionPreprocessor.fit(frame, ["pageviews", "revenue", "delta"], cfg)
    expected_hi = np.quantile(frame["pageviews"], 0.95)
    assert pre.upper[0] == pytest.approx(expected_hi)
    assert pre.lower[2] == pytest.approx(np.quantile(frame["delta"], 0.05))
    out = pre.transform(frame)
    assert out[:, 0].max() == pytest.approx(expected_hi) and out[:, 0].max() < 500
    assert (out >= pre.lower - 1e-12).all() and (out <= pre.upper + 1e-12).all()
    inside = (frame["delta"] > pre.lower[2]) & (frame["delta"] < pre.upper[2])
    np.testing.assert_allclose(out[inside.to_numpy(), 2], frame.loc[inside, "delta"])  # untouched inside the bounds
    # bounds are fitted once: a later outlier is clipped to the training bound
    later = pd.DataFrame({"pageviews": [10_000.0], "revenue": [1.0], "delta": [-50.0]})
    assert pre.transform(later)[0, 0] == pytest.approx(expected_hi) and pre.transform(later)[0, 2] == pre.lower[2]


def test_no_winsorisation_keeps_extremes(frame):
    pre = SessionPreprocessor.fit(frame, ["pageviews"], PreprocessConfig(winsorize=None, log_features="none",
                                                                         standardize=False))
    assert pre.transform(frame)[:, 0].max() == 5000


def test_auto_log_picks_skewed_non_negative_features_and_standardises(frame):
    pre = SessionPreprocessor.fit(frame, ["pageviews", "revenue", "delta"], PreprocessConfig())
    assert pre.log[1] and not pre.log[2]  # lognormal revenue is skewed; delta has negative values
    z = pre.transform(frame)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-9)
    # inverse of the model space is the (winsorised) original units
    clipped = np.clip(frame[["pageviews", "revenue", "delta"]].to_numpy(), pre.lower, pre.upper)
    np.testing.assert_allclose(pre.inverse(z), clipped, rtol=1e-9, atol=1e-9)


def test_json_round_trip_and_errors(frame):
    pre = SessionPreprocessor.fit(frame, ["pageviews", "revenue"], PreprocessConfig(log_features=["revenue"]))
    back = SessionPreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(back.transform(frame), pre.transform(frame))
    with pytest.raises(DataError, match="delta"):
        SessionPreprocessor.fit(frame, ["delta"], PreprocessConfig(log_features=["delta"]))
    with pytest.raises(DataError, match="missing column"):
        pre.transform(frame[["pageviews"]])
    with pytest.raises(ValueError, match="0 <= lower < upper <= 1"):
        PreprocessConfig(winsorize=(0.9, 0.1))
