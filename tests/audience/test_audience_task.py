"""The audience task end to end: exclusion, cold-start fallback, the cache-backed pyfunc, registry promotion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.config import config_from_dict
from recsys.experiment import run_experiment
from recsys.models.activity import Activity
from recsys.serving.predictor import load_predictor

POLICY = str(Path(__file__).resolve().parents[2] / "configs" / "policies" / "audience.yaml")
MODELS = [{"name": "random"}, {"name": "activity"}, {"name": "activity_affinity"},
          {"name": "als", "params": {"factors": 8, "iterations": 5, "num_threads": 1}}]


def audience_config(**over):
    raw = {
        "name": "tiny-audience", "task": "audience", "seed": 5,
        "data": {"source": "synthetic", "synthetic": {"n_users": 1500, "n_items": 120, "n_categories": 6,
                                                      "one_time_share": 0.6, "mean_interactions": 15,
                                                      "new_item_share": 0.3}},
        "split": {"method": "temporal", "test_size": 0.25},
        "metrics": {"k": [5, 20], "primary": "precision_at_20"},
        "task_params": {"cache_n": 30},
        "models": MODELS,
        "registry": {"policy": POLICY},
    }
    raw.update(over)
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """One in-memory experiment (no tracking) with the saved model folders kept."""
    workdir = tmp_path_factory.mktemp("audience")
    return run_experiment(audience_config(), workdir=workdir), workdir


def test_excluded_users_never_appear(offline):
    result, workdir = offline
    train = result.context.state["split"].train
    seen = set(zip(train["item_id"].astype(str), train["user_id"].astype(str)))
    for res in result.results:
        served = res.tables["audiences.parquet"]
        cache = pd.read_parquet(workdir / res.entry.run_name / "model" / "audience_cache.parquet")
        for frame in (served, cache):
            pairs = set(zip(frame["item_id"].astype(str), frame["user_id"].astype(str)))
            assert frame["user_id"].notna().all() and len(frame) > 0
            assert not pairs & seen, f"{res.entry.run_name} targets users who already had the product"
        assert set(cache["user_id"].astype(str)) <= set(train["user_id"].astype(str))


def test_exclusion_can_be_turned_off():
    cfg = audience_config(models=[{"name": "activity"}], task_params={"exclude_interacted": False})
    result = run_experiment(cfg)
    train = result.context.state["split"].train
    seen = set(zip(train["item_id"].astype(str), train["user_id"].astype(str)))
    served = result.results[0].tables["audiences.parquet"]
    assert set(zip(served["item_id"].astype(str), served["user_id"].astype(str))) & seen
    assert (result.context.state["target"].pool_size == result.context.state["data"].n_users).all()


def test_every_model_reports_metrics_for_each_n(offline):
    result, _ = offline
    for res in result.results:
        for n in (5, 20):
            for m in ("precision", "recall", "ndcg", "lift", "top1pct_share"):
                assert np.isfinite(res.metrics[f"{m}_at_{n}"]), (res.entry.run_name, m, n)
        per = res.per_user
        assert per["item_id"].is_unique and len(per) == len(result.context.state["target"].item_idx)
    by = {r.entry.run_name: r.metrics for r in result.results}
    assert by["activity"]["top1pct_share_at_20"] > by["random"]["top1pct_share_at_20"]
    assert by["random"]["product_coverage"] == 1.0


def test_cold_start_products_get_the_most_engaged_users(offline):
    result, workdir = offline
    data = result.context.state["data"]
    expected = data.users.id(np.argsort(-Activity().fit(data).engagement_, kind="stable")[:10]).astype(str)
    for name in ("als", "activity"):
        pred = load_predictor(workdir / name / "model")
        out = pred.predict(pd.DataFrame({"product_id": ["no-such-product", "also-new"]}), {"n": 10})
        assert (out["reason"] == "cold_start").all() and len(out) == 20
        assert list(out.loc[out["item_id"] == "no-such-product", "user_id"]) == list(expected)
        # products with training history are answered by the model, in rank order
        known = data.items.id(np.flatnonzero(np.diff(data.matrix.tocsc().indptr) > 0)[:3])
        out = pred.predict(pd.DataFrame({"item_id": known}), {"n": 7})
        assert (out["reason"] == "model").all() and len(out) == 21
        assert (out.groupby("item_id")["rank"].apply(list) == [list(range(1, 8))] * 3).all()
        with pytest.raises(Exception, match="n must be in"):
            pred.predict(pd.DataFrame({"item_id": known}), {"n": 31})
    # new products in the evaluation: ALS falls back, the category-aware model answers them itself
    tables = {r.entry.run_name: r.tables["audiences.parquet"] for r in result.results}
    new = set(result.context.state["target"].item_ids[result.context.state["target"].new_product])
    assert new, "the tiny config should evaluate some products launched after the cutoff"
    als_new = tables["als"][tables["als"]["item_id"].isin(new)]
    assert (als_new["reason"] == "cold_start").all()
    assert (tables["activity_affinity"][tables["activity_affinity"]["item_id"].isin(new)]["reason"] == "model").all()


@pytest.mark.slow
def test_mlflow_runs_pyfunc_and_promotion(mlflow_uri, tmp_path):
    import mlflow

    from recsys.tracking import MlflowTracker
    from recsys.tracking.registry import promote
    cfg = audience_config(registry={"policy": POLICY, "model_name": "aud-test"})
    result = run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
    client = mlflow.MlflowClient(mlflow_uri)
    for run_id in result.run_ids.values():
        run = client.get_run(run_id)
        assert {"precision_at_5", "precision_at_20", "lift_at_20", "product_coverage"} <= set(run.data.metrics)
        assert float(run.data.params["diagnostics.one_time_user_share"]) > 0.3
        per = pd.read_parquet(client.download_artifacts(run_id, "per_user_metrics.parquet", str(tmp_path)))
        assert per.columns[0] == "item_id" and per["item_id"].is_unique
    assert result.registry["alias"] == "challenger"
    model = mlflow.pyfunc.load_model("models:/aud-test@challenger")
    known = result.best.per_user["item_id"].iloc[:2].tolist()
    out = model.predict(pd.DataFrame({"item_id": known + ["brand-new"]}), params={"n": 4})
    assert list(out.columns) == ["item_id", "user_id", "rank", "score", "reason"]
    assert out.groupby("item_id").size().tolist() == [4, 4, 4]
    assert set(out.loc[out["item_id"] == "brand-new", "reason"]) == {"cold_start"}
    decision = promote(client, "aud-test", POLICY)
    random_value = result.results[0].metrics["precision_at_20"]
    assert decision["mode"] == "first_champion"
    assert decision["reference_value"] == pytest.approx(random_value)
    assert (decision["decision"] == "promoted") == (result.best.metrics["precision_at_20"] > random_value)
