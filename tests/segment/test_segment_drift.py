"""Drift: a later period with a shifted type mix raises cluster-mix PSI past the threshold; an unchanged mix
does not."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.config import config_from_dict
from recsys.evaluation.segment import cluster_mix_drift, feature_shift, js_divergence, population_stability_index
from recsys.experiment import run_experiment

MIX = {"bounce": 0.3, "browse": 0.25, "research": 0.15, "cart_abandon": 0.15, "purchase": 0.15}
SHIFTED = {"bounce": 0.6, "browse": 0.2, "research": 0.1, "cart_abandon": 0.05, "purchase": 0.05}
THRESHOLD = 0.1


def _config(later_mix: dict | None):
    return config_from_dict({
        "name": "drift", "task": "segment", "seed": 5,
        "metrics": {"primary": "silhouette"},
        "models": [{"name": "kmeans", "params": {"k_min": 5, "k_max": 5, "selection": "fixed", "k": 5, "n_init": 3,
                                                 "stability_bootstraps": 0, "random_state": 5}}],
        "registry": {"enabled": False},
        "task_params": {
            "sessions": {"synthetic": {"n_sessions": 2400, "mix": MIX, "later_mix": later_mix, "later_share": 0.5}},
            "features": ["pageviews", "time_on_site", "product_views", "cart_adds", "transactions", "revenue"],
            "drift": {"later_share": 0.5, "psi_threshold": THRESHOLD},
        },
    })


@pytest.mark.parametrize("later_mix, drifted", [(SHIFTED, True), (None, False)])
def test_shifted_type_mix_raises_drift_past_threshold(later_mix, drifted):
    result = run_experiment(_config(later_mix)).best
    psi = result.metrics["drift_psi"]
    assert (psi > THRESHOLD) is drifted
    assert result.tags["drift_warning"] == str(drifted).lower()
    assert (result.metrics["drift_js_divergence"] > 0.02) is drifted
    mix = result.tables["drift/cluster_mix.parquet"]
    bounce = mix.loc[mix["name"].str.startswith("bouncers"), "share_change"].sum()
    assert bool(bounce > 0.15) is drifted  # the bounce segment grows in the later period only when the mix shifts


def test_psi_and_js_properties(rng):
    ref = rng.integers(0, 4, 5000)
    same = rng.integers(0, 4, 5000)
    mix, table = cluster_mix_drift(ref, same, 4)
    assert mix["psi"] < 0.01 and mix["js_divergence"] < 0.01
    assert table["reference_share"].sum() == pytest.approx(1) and len(table) == 4
    assert population_stability_index(np.array([10, 0]), np.array([10, 0])) == pytest.approx(0)
    small, large = population_stability_index([50, 50], [45, 55]), population_stability_index([50, 50], [10, 90])
    assert 0 < small < large
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)


def test_feature_shift_flags_the_moved_feature(rng):
    import pandas as pd

    ref = pd.DataFrame({"a": rng.normal(0, 1, 2000), "b": rng.normal(0, 1, 2000)})
    cur = pd.DataFrame({"a": rng.normal(0, 1, 2000), "b": rng.normal(1, 1, 2000)})
    shift = feature_shift(ref, cur, ["a", "b"]).set_index("feature")
    assert abs(shift.loc["a", "smd"]) < 0.15 and shift.loc["b", "smd"] == pytest.approx(1, abs=0.15)
    assert shift.loc["b", "psi"] > 0.25 > shift.loc["a", "psi"]
