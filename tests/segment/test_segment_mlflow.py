"""End to end on a real temp MLflow store: nested run per K, chosen_k, ari_vs_truth, artifacts, registered pyfunc."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.errors import ConfigError
from recsys.experiment import experiment_config_from_dict, run_experiment

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it

CRITERIA = {"inertia", "silhouette", "davies_bouldin", "calinski_harabasz", "stability"}


def _raw(**over) -> dict:
    raw = {
        "name": "seg-e2e", "task": "segment", "seed": 3,
        "metrics": {"primary": "silhouette"}, "selection": {"metric": "silhouette"},
        "models": [{"name": "kmeans", "params": {"k_min": 2, "k_max": 7, "n_init": 3, "stability_bootstraps": 2,
                                                 "random_state": 3}}],
        "task_params": {"sessions": {"synthetic": {"n_sessions": 1500, "n_users": 1000}},
                        "features": ["pageviews", "time_on_site", "product_views", "cart_adds", "transactions",
                                     "revenue"]},
    }
    raw.update(over)
    return raw


def test_segment_experiment_logs_nested_runs_and_a_served_model(mlflow_uri):
    import mlflow
    from mlflow.tracking import MlflowClient

    from recsys.tracking import MlflowTracker

    cfg = experiment_config_from_dict(_raw())
    result = run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
    client = MlflowClient(mlflow_uri)
    model_run = client.get_run(result.run_ids["kmeans"])
    k = int(model_run.data.params["chosen_k"])
    assert k == 5 and model_run.data.metrics["ari_vs_truth"] >= 0.8
    assert CRITERIA <= set(model_run.data.metrics)
    # the tag follows the logged cluster-mix PSI and the default threshold 0.2
    psi = model_run.data.metrics["drift_psi"]
    assert model_run.data.tags["drift_warning"] == ("true" if psi > 0.2 else "false")

    children = client.search_runs([model_run.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{model_run.info.run_id}'")
    assert sorted(int(c.data.params["k"]) for c in children) == list(range(2, 8))
    for child in children:
        assert CRITERIA <= set(child.data.metrics), child.info.run_name
    chosen = [c for c in children if c.data.tags["chosen"] == "true"]
    assert len(chosen) == 1 and int(chosen[0].data.params["k"]) == k
    assert chosen[0].data.metrics["silhouette"] == pytest.approx(model_run.data.metrics["silhouette"])
    model_files = {a.path for a in client.list_artifacts(chosen[0].info.run_id, "model")}
    assert {"model/state.npz", "model/preprocessor.json", "model/pyfunc.json"} <= model_files

    plots = {a.path for a in client.list_artifacts(model_run.info.run_id, "plots")}
    assert {f"plots/{c}_vs_k.png" for c in CRITERIA} <= plots
    local = mlflow.artifacts.download_artifacts(run_id=model_run.info.run_id, artifact_path="segments")
    profile = pd.read_parquet(f"{local}/profile.parquet")
    assert len(profile) == k and profile["share"].sum() == pytest.approx(1)
    assert profile["name"].is_unique and (profile["name"] == "high-intent buyers").sum() == 1
    assert profile["conversion_rate"].max() - profile["conversion_rate"].min() > 0.5
    labels = pd.read_parquet(f"{local}/session_clusters.parquet")
    assert labels["session_id"].is_unique and set(labels["period"]) == {"reference", "later"}

    # the registered challenger is a pyfunc: session features -> cluster id and name
    version = result.registry["version"]
    model = mlflow.pyfunc.load_model(f"models:/{cfg.registered_model_name}/{version}")
    query = pd.DataFrame({"session_id": ["bounce", "buyer"], "pageviews": [1.0, 11.0],
                          "time_on_site": [0.0, 450.0], "product_views": [0.0, 4.0], "cart_adds": [0.0, 2.0],
                          "transactions": [0.0, 1.0], "revenue": [0.0, 70.0]})
    out = model.predict(query)
    assert list(out["session_id"]) == ["bounce", "buyer"]
    assert out.loc[1, "cluster_name"] == "high-intent buyers"
    assert out.loc[0, "cluster_name"].startswith("bouncers")
    assert out["cluster"].between(0, k - 1).all()

    # ... and is promoted like the other tasks' models, under the segment policy
    from conftest import REPO

    from recsys.tracking.registry import promote

    decision = promote(client, cfg.registered_model_name, REPO / "configs" / "policies" / "segment.yaml")
    assert decision["decision"] == "promoted", decision
    assert str(client.get_model_version_by_alias(cfg.registered_model_name, "champion").version) == str(version)


def test_segment_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="selection.metric.*ndcg_at_10.*silhouette"):
        experiment_config_from_dict(_raw(metrics={"primary": "silhouette"}, selection={"metric": "ndcg_at_10"}))
    with pytest.raises(ConfigError, match=r"task_params\.sessions\.synthetic\.n_sesions"):
        experiment_config_from_dict(_raw(task_params={"sessions": {"synthetic": {"n_sesions": 10}}}))
    with pytest.raises(ConfigError, match="sessions.table"):
        experiment_config_from_dict(_raw(task_params={"sessions": {"source": "table"}}))
    with pytest.raises(ConfigError, match="ari_vs_truth"):  # no ground truth on a real file
        experiment_config_from_dict(_raw(metrics={"primary": "ari_vs_truth"}, selection={"metric": "ari_vs_truth"},
                              task_params={"sessions": {"source": "table", "table": {
                                  "path": "x.csv", "features": {"pageviews": "p"}}}}))
