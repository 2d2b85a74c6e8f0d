"""Every model of the zoo end to end as an MLflow pyfunc: logged by a real run to a temporary SQLite store, loaded
with mlflow.pyfunc.load_model, and answering exactly what the in-process model answers (known users, a history
folded in, a cold-start user; SASRec's `similar` too)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import isolated_store

from recsys.experiment import experiment_config_from_dict, run_experiment
from recsys.tracking import MlflowTracker

pytestmark = pytest.mark.slow  # two whole tracked experiments (six models fitted and logged)

SASREC = {"factors": 16, "n_blocks": 1, "max_len": 20, "epochs": 3, "batch_size": 64, "learning_rate": 0.01,
          "dropout": 0.1, "random_state": 3, "num_threads": 1}
MODELS = [
    {"name": "ease", "params": {"regularization": 50.0, "num_threads": 1}},
    {"name": "bpr", "params": {"factors": 8, "iterations": 10, "random_state": 1, "num_threads": 1}},
    {"name": "rp3beta", "params": {"alpha": 1.0, "beta": 0.5, "k_neighbors": 20}},
    {"name": "multvae", "params": {"hidden": 32, "latent": 8, "epochs": 3, "batch_size": 64,
                                   "early_stopping_patience": 0, "random_state": 3, "num_threads": 1}},
    {"name": "sasrec", "params": SASREC},
    {"name": "hybrid", "params": {"components": [
        {"name": "ease", "params": {"regularization": 50.0, "num_threads": 1}, "weight": 0.7},
        {"name": "content", "params": {"index": "flat"}, "weight": 0.3}]}},
]
DATA = {"source": "synthetic", "synthetic": {"n_users": 300, "n_items": 120, "n_categories": 6,
                                             "mean_interactions": 12}}


def _tracked(tmp, name: str, task: str, models: list[dict]):
    with isolated_store(tmp) as uri:
        cfg = experiment_config_from_dict({"name": name, "seed": 7, "task": task, "data": DATA,
                                           "split": {"method": "temporal", "test_size": 0.2},
                                           "metrics": {"k": [10]}, "models": models})
        return uri, run_experiment(cfg, tracker=MlflowTracker(uri), config_path=f"{name}.yaml")


@pytest.fixture(scope="module")
def recommend_runs(tmp_path_factory):
    return _tracked(tmp_path_factory.mktemp("zoo-pyfunc"), "zoo-pyfunc", "recommend", MODELS)


@pytest.fixture
def pyfunc_of(monkeypatch):
    """Loads a run's logged model through the store that logged it (`models:/` URIs resolve through the global one)."""
    import mlflow

    def load(uri: str, model_uri: str):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        return mlflow.pyfunc.load_model(model_uri)

    return load


def _listed(out: pd.DataFrame, key: str, value: str, item_col: str = "item_id") -> list[str]:
    return out[out[key] == value].sort_values("rank")[item_col].tolist()


@pytest.mark.parametrize("name", [m["name"] for m in MODELS])
def test_pyfunc_recommends_what_the_in_process_model_recommends(recommend_runs, pyfunc_of, name):
    uri, result = recommend_runs
    res = next(r for r in result.results if r.entry.name == name)
    model = res.model
    served = pyfunc_of(uri, res.extra["model_uri"])
    users = res.per_user["user_id"].to_numpy()[:30]
    out = served.predict(pd.DataFrame({"user_id": users}), params={"k": 7})
    items, scores = model.recommend(model.users_.index(users), k=7)
    assert len(out) == 7 * len(users) and (out["reason"] == "model").all()
    for row, user in enumerate(users):
        assert _listed(out, "user_id", str(user)) == [str(i) for i in model.items_.id(items[row])], (name, user)
        np.testing.assert_allclose(out[out["user_id"] == str(user)].sort_values("rank")["score"], scores[row],
                                   rtol=1e-6)
    # a user given only by a history: folded in exactly as in process (or popular items when the model cannot)
    hist_ids = model.items_.id(np.array([0, 3, 5]))
    folded = served.predict(pd.DataFrame({"items": [list(hist_ids)]}), params={"k": 5})
    history = sp.csr_matrix((np.ones(3, np.float32), ([0, 0, 0], [0, 3, 5])), shape=(1, model.seen_.shape[1]))
    try:
        expect, _ = model.recommend_history(history, 5)
        reason = "folded_in"
    except NotImplementedError:
        expect, _ = model.fallback(1, 5)
        reason = "cold_start"
    assert (folded["reason"] == reason).all(), (name, folded["reason"].unique())
    assert _listed(folded, "user_id", "0") == [str(i) for i in model.items_.id(expect[0][expect[0] >= 0])]
    cold = served.predict(pd.DataFrame({"user_id": ["never-seen-user"]}), params={"k": 3})
    expect, _ = model.fallback(1, 3)
    assert (cold["reason"] == "cold_start").all()
    assert _listed(cold, "user_id", "never-seen-user") == [str(i) for i in model.items_.id(expect[0])]


def test_sasrec_pyfunc_answers_similar_like_the_in_process_model(tmp_path, pyfunc_of):
    uri, result = _tracked(tmp_path, "zoo-pyfunc-similar", "similar", [{"name": "sasrec", "params": SASREC}])
    res = result.results[0]
    model = res.model
    served = pyfunc_of(uri, res.extra["model_uri"])
    item_ids = model.items_.id(np.arange(20))
    out = served.predict(pd.DataFrame({"item_id": item_ids}), params={"k": 6})
    items, scores = model.similar(model.items_.index(item_ids), 6)
    assert len(out) > 0
    for row, item in enumerate(item_ids):
        keep = (items[row] >= 0) & np.isfinite(scores[row])
        expect = [str(i) for i in model.items_.id(items[row][keep])]
        assert _listed(out, "item_id", str(item), "similar_item_id") == expect
        assert str(item) not in expect  # the query itself is never its own next item
