"""End to end on a real temporary MLflow SQLite store: runs, metrics, params, artifacts, pyfunc, failures."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import isolated_store
from mlflow.tracking import MlflowClient

from recsys.evaluation import metric_names
from recsys.experiment import run_experiment
from recsys.tracking import MlflowTracker

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One tracked tiny experiment shared by the read-only tests of this module."""
    from recsys.config import config_from_dict

    with isolated_store(tmp_path_factory.mktemp("tracked")) as uri:
        cfg = config_from_dict(TINY)
        result = run_experiment(cfg, tracker=MlflowTracker(uri), config_path="tiny.yaml")
        yield cfg, result, MlflowClient(uri)


TINY = {
    "name": "tiny-tracked", "seed": 7,
    "data": {"source": "synthetic", "synthetic": {"n_users": 400, "n_items": 150, "n_categories": 6,
                                                  "mean_interactions": 15}},
    "metrics": {"k": [5, 10]},
    "models": [{"name": "random"}, {"name": "popularity"}, {"name": "item_knn", "params": {"k_neighbors": 20}},
               {"name": "als", "params": {"factors": 8, "iterations": 5, "num_threads": 1}}],
}


def test_parent_and_child_runs_with_all_metrics_and_artifacts(tracked):
    cfg, result, client = tracked
    exp = client.get_experiment_by_name(cfg.name)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("role") == "experiment"]
    children = [r for r in runs if r.data.tags.get("role") == "model"]
    assert len(parents) == 1 and len(children) == len(cfg.models)
    parent = parents[0]
    expected = set(metric_names(cfg.metrics.k))
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert expected <= set(run.data.metrics), expected - set(run.data.metrics)
        for tag in ("task", "model", "dataset", "split"):
            assert run.data.tags[tag]
        assert run.data.params["split.method"] == "temporal"
        assert any(k.startswith("model.") for k in run.data.params) or run.data.tags["model"] == "popularity"
        files = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert {"recommendations.parquet", "per_user_metrics.parquet"} <= files
        plots = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
        assert {"plots/per_user_ndcg_at_10.png", "plots/recommended_popularity.png"} <= plots
        assert client.get_run(run.info.run_id).inputs.dataset_inputs, "the dataset is logged with mlflow.log_input"
        assert run.info.status == "FINISHED"
    files = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"comparison.csv", "comparison.md", "comparison.png", "data_statistics.json"} <= files
    assert "data/test_interactions.parquet" in {f.path for f in client.list_artifacts(parent.info.run_id, "data")}
    best = max(children, key=lambda r: r.data.metrics[cfg.metrics.primary])
    assert parent.data.tags["best_model"] == best.data.tags["label"]
    assert parent.data.tags["best_run_id"] == best.info.run_id


def test_logged_metrics_match_in_process_results(tracked):
    cfg, result, client = tracked
    for res in result.results:
        run = client.get_run(result.run_ids[res.entry.run_name])
        for key, value in res.metrics.items():
            assert run.data.metrics[key] == pytest.approx(value, abs=1e-12)


def test_recommendations_artifact_matches_model(tracked, tmp_path):
    cfg, result, client = tracked
    als = next(r for r in result.results if r.entry.name == "als")
    path = client.download_artifacts(result.run_ids["als"], "recommendations.parquet", str(tmp_path))
    recs = pd.read_parquet(path)
    user = recs["user_id"].iloc[0]
    idx = als.model.users_.index([user])
    items, _ = als.model.recommend(idx, k=max(cfg.metrics.k))
    logged = recs[recs["user_id"] == user].sort_values("rank")["item_id"].tolist()
    assert logged == list(als.model.items_.id(items[0]))


def test_pyfunc_gives_same_top_k_as_in_process(tracked, monkeypatch):
    import mlflow

    cfg, result, client = tracked
    # `models:/` URIs resolve through the global store: another test of this module may have pointed it elsewhere
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    mlflow.set_tracking_uri(client.tracking_uri)
    for res in result.results:
        if res.entry.name not in ("als", "item_knn"):
            continue
        model = mlflow.pyfunc.load_model(res.extra["model_uri"])
        users = res.per_user["user_id"].to_numpy()[:25]
        out = model.predict(pd.DataFrame({"user_id": users}), params={"k": 7})
        idx = res.model.users_.index(users)
        items, _ = res.model.recommend(idx, k=7)
        for row, user in enumerate(users):
            got = out[out["user_id"] == str(user)].sort_values("rank")["item_id"].tolist()
            assert got == [str(i) for i in res.model.items_.id(items[row])]
        cold = model.predict(pd.DataFrame({"user_id": ["never-seen-user"]}), params={"k": 3})
        assert (cold["reason"] == "cold_start").all() and len(cold) == 3


def test_same_config_and_seed_give_identical_metrics(tiny_config):
    cfg = tiny_config()
    a = run_experiment(cfg)
    b = run_experiment(cfg)
    for ra, rb in zip(a.results, b.results):
        assert ra.metrics == rb.metrics
    c = run_experiment(tiny_config(seed=8))
    assert any(ra.metrics != rc.metrics for ra, rc in zip(a.results, c.results))


def test_synthetic_data_lets_a_recommender_beat_popularity(tiny_config):
    res = {r.entry.name: r.metrics for r in run_experiment(tiny_config()).results}
    assert res["als"]["ndcg_at_10"] > 1.5 * res["popularity"]["ndcg_at_10"]
    assert res["item_knn"]["ndcg_at_10"] > res["popularity"]["ndcg_at_10"] > res["random"]["ndcg_at_10"]


def test_crash_marks_runs_failed(mlflow_uri, tiny_config, monkeypatch):
    from recsys.models.als import ALS

    def boom(self, data, callback):
        raise RuntimeError("simulated crash in fit")

    monkeypatch.setattr(ALS, "_fit", boom)
    cfg = tiny_config()
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name(cfg.name).experiment_id])
    status = {r.data.tags.get("label", "parent"): r.info.status for r in runs}
    assert status["als"] == "FAILED" and status["parent"] == "FAILED"
    assert "RUNNING" not in status.values()
