"""The `kmeans` segmenter: recovers known session types, K selection rules, save/load without pickle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from recsys.data.sessions import SessionSourceConfig, SyntheticSessionsConfig, load_sessions
from recsys.errors import ConfigError, DataError, NotFittedError
from recsys.evaluation.segment import K_SELECTION, select_k
from recsys.models.base import Model
from recsys.models.catalog import available, create

FEATURES = ["pageviews", "time_on_site", "product_views", "cart_adds", "transactions", "revenue"]
FAST = {"k_min": 2, "k_max": 7, "n_init": 3, "stability_bootstraps": 2, "random_state": 1}


@pytest.fixture(scope="module")
def sessions() -> pd.DataFrame:
    cfg = SessionSourceConfig(synthetic=SyntheticSessionsConfig(n_sessions=1500, n_users=900))
    return load_sessions(cfg, random_state=11).sessions


@pytest.fixture(scope="module")
def fitted(sessions):
    return create("kmeans", FAST, task="segment").fit(sessions, FEATURES, selector=K_SELECTION)


def test_registered_for_segment_only():
    assert "kmeans" in available("segment") and "kmeans" not in available("recommend")


def test_vote_recovers_the_five_generated_types(fitted, sessions):
    assert fitted.k_ == 5
    assert adjusted_rand_score(sessions["true_type"], fitted.labels_) >= 0.8
    assert list(fitted.scores_.index) == list(range(2, 8))
    assert {"inertia", "silhouette", "davies_bouldin", "calinski_harabasz", "stability"} <= set(fitted.scores_)
    assert fitted.scores_["inertia"].is_monotonic_decreasing
    assert fitted.selection_["votes"][5] == max(fitted.selection_["votes"].values())


def test_assign_matches_training_labels_and_batch_equals_single(fitted, sessions):
    labels = fitted.assign(sessions)
    assert (labels == fitted.labels_).mean() > 0.99
    one = np.concatenate([fitted.assign(sessions.iloc[[i]]) for i in range(20)])
    np.testing.assert_array_equal(one, labels[:20])


def test_save_load_round_trip_without_pickle(fitted, sessions, tmp_path):
    fitted.save(tmp_path / "m")
    assert not list((tmp_path / "m").glob("*.pkl"))
    back = Model.load(tmp_path / "m")
    np.testing.assert_array_equal(back.assign(sessions), fitted.assign(sessions))
    pd.testing.assert_frame_equal(back.centroids_original(), fitted.centroids_original())
    assert back.k_ == fitted.k_ and back.params == fitted.params


def test_centroids_are_in_original_units(fitted, sessions):
    cents = fitted.centroids_original()
    buyers = cents.loc[cents["transactions"].idxmax()]
    assert buyers["transactions"] == pytest.approx(1, abs=0.05) and buyers["revenue"] > 20
    assert cents["pageviews"].min() == pytest.approx(1, abs=0.2)  # the bounce segment


def test_fixed_rule_and_config_errors(sessions):
    m = create("kmeans", {**FAST, "selection": "fixed", "k": 3, "stability_bootstraps": 0}, task="segment")
    m.fit(sessions, FEATURES, selector=K_SELECTION)
    assert m.k_ == 3 and m.scores_["stability"].isna().all()
    with pytest.raises(ValueError, match="k_max must be >= k_min"):
        create("kmeans", {"k_min": 5, "k_max": 3})
    with pytest.raises(ValueError, match="selection=fixed needs k"):
        create("kmeans", {"selection": "fixed", "k": 20})
    with pytest.raises(NotFittedError):
        create("kmeans").assign(sessions)
    with pytest.raises(DataError, match="missing column"):
        create("kmeans", FAST).fit(sessions.drop(columns="revenue"), FEATURES)


def test_select_k_vote_tie_break_and_single_criteria():
    scores = pd.DataFrame({"inertia": [100.0, 40.0, 30.0, 25.0], "silhouette": [0.3, 0.6, 0.5, 0.4],
                           "davies_bouldin": [1.0, 0.9, 0.5, 0.8], "calinski_harabasz": [10.0, 30.0, 20.0, 15.0],
                           "stability": [1.0, 0.9, 0.8, 0.7]}, index=pd.Index([2, 3, 4, 5], name="k"))
    assert select_k(scores, "silhouette")[0] == 3
    assert select_k(scores, "davies_bouldin")[0] == 4
    assert select_k(scores, "stability")[0] == 2
    k, ev = select_k(scores, "vote", ["silhouette", "davies_bouldin", "calinski_harabasz", "elbow"])
    assert ev["nominees"]["elbow"] == 3 and k == 3
    k, ev = select_k(scores, "vote", ["silhouette", "davies_bouldin"])  # 1 vote each: best mean rank wins
    assert k == min((3, 4), key=lambda x: ev["mean_rank"][x])


def test_fit_without_a_k_selector_names_the_one_to_pass(sessions):
    with pytest.raises(ConfigError, match="selector=recsys.evaluation.segment.K_SELECTION"):
        create("kmeans", FAST, task="segment").fit(sessions, FEATURES)

