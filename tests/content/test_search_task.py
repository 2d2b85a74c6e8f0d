"""The `search` task end to end: flat / ivf / hnsw child runs in a real SQLite MLflow store, cache reuse, pyfunc."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.errors import ConfigError, RecsysError
from recsys.evaluation.search import recall_vs_exact
from recsys.experiment import experiment_config_from_dict, run_experiment
from recsys.tasks import get_task

INDEX_METRICS = ["ndcg_at_10", "recall_at_10", "recall_vs_exact_at_10", "query_latency_p50_ms",
                 "query_latency_p99_ms", "index_build_seconds", "index_memory_mb", "embeddings_encoded",
                 "embeddings_cached"]


def search_raw(**task_params) -> dict:
    return {
        "name": "search-tiny", "task": "search", "seed": 3,
        "data": {"source": "synthetic", "synthetic": {"n_users": 60, "n_items": 120, "n_categories": 5,
                                                      "mean_interactions": 5}},
        "metrics": {"k": [5, 10]},
        "task_params": {"latency_queries": 20, **task_params},
        "models": [{"name": "content", "label": "flat", "params": {"index": "flat"}},
                   {"name": "content", "label": "ivf", "params": {"index": "ivf", "nlist": 8, "nprobe": 8}},
                   {"name": "content", "label": "hnsw", "params": {"index": "hnsw", "hnsw_m": 16}}],
    }


@pytest.mark.slow
def test_search_runs_log_index_metrics_reuse_cache_and_serve(mlflow_uri, tmp_path, monkeypatch):
    import mlflow

    from recsys.tracking import MlflowTracker

    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    cfg = experiment_config_from_dict(search_raw())
    first = run_experiment(cfg, tracker=MlflowTracker(mlflow_uri))
    client = mlflow.tracking.MlflowClient(mlflow_uri)
    n_items = first.context.state["data"].n_items
    for label, kind in (("flat", "flat"), ("ivf", "ivf"), ("hnsw", "hnsw")):
        run = client.get_run(first.run_ids[label])
        missing = [m for m in INDEX_METRICS if m not in run.data.metrics]
        assert not missing, f"{label} lacks {missing}"
        assert run.data.params["model.index"] == kind
        assert run.data.metrics["index_memory_mb"] > 0
        assert run.data.metrics["embeddings_encoded"] + run.data.metrics["embeddings_cached"] == n_items
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "index")}
        assert "index/index.faiss" in artifacts
    flat = client.get_run(first.run_ids["flat"]).data.metrics
    assert flat["recall_vs_exact_at_10"] == pytest.approx(1.0)
    assert flat["embeddings_encoded"] == n_items  # the first model encodes, the next ones hit the cache
    assert client.get_run(first.run_ids["ivf"]).data.metrics["embeddings_encoded"] == 0
    assert client.get_run(first.run_ids["hnsw"]).data.metrics["recall_vs_exact_at_10"] >= 0.95
    queries = client.get_run(first.parent_run_id)
    assert "data/queries.parquet" in {a.path for a in client.list_artifacts(queries.info.run_id, "data")}

    # the logged pyfunc answers text queries: an item's own title finds that item first
    model_uri = client.get_run(first.run_ids["hnsw"]).data.tags["model_uri"]
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    titles = first.context.state["data"].item_table["title"].tolist()[:3]
    out = pyfunc.predict(pd.DataFrame({"query": titles}), params={"k": 4})
    assert list(out.columns) == ["query", "rank", "item_id", "title", "score"]
    assert len(out) == 12
    top = out[out["rank"] == 1]
    assert top["title"].tolist() == titles
    with pytest.raises(Exception, match="query"):
        pyfunc.predict(pd.DataFrame({"text": ["x"]}))

    # a second run of the same config encodes nothing
    second = run_experiment(cfg)
    for result in second.results:
        assert result.metrics["embeddings_encoded"] == 0
        assert result.metrics["embeddings_cached"] == n_items
        assert result.metrics["ndcg_at_10"] == pytest.approx(
            next(r for r in first.results if r.entry.run_name == result.entry.run_name).metrics["ndcg_at_10"])


def test_queries_have_known_relevant_items_and_validation_is_disjoint():
    cfg = experiment_config_from_dict(search_raw(min_relevant=2, validation_share=0.3))
    task = get_task("search")
    ctx = task.prepare(cfg)
    data, queries = ctx.state["data"], ctx.state["queries"]
    assert set(queries.kinds) == {"categories", "attributes"}
    assert (queries.n_relevant >= 2).all()
    table = data.item_table
    for text, kind, row in zip(queries.texts, queries.kinds, queries.relevant):
        rel = table.iloc[row.indices]
        if kind == "categories":
            assert (rel["category"] == text).all() and len(rel) == (table["category"] == text).sum()
        else:
            for word in text.split():
                assert rel["title"].str.lower().str.contains(word).all()
    vctx = task.validation_context(ctx)
    assert vctx.is_validation and len(vctx.state["queries"]) > 0
    assert not set(zip(vctx.state["queries"].texts, vctx.state["queries"].kinds)) & set(
        zip(queries.texts, queries.kinds))


@pytest.mark.realdata
def test_movielens_tags_are_queries(tmp_path):
    from conftest import shared_data

    folder = shared_data("ml-latest-small")
    cfg = experiment_config_from_dict({**search_raw(min_relevant=3),
                            "data": {"source": "movielens", "movielens": {"name": "ml-latest-small",
                                                                          "path": str(folder), "download": False}}})
    ctx = get_task("search").prepare(cfg)
    data, queries = ctx.state["data"], ctx.state["queries"]
    tags = pd.read_csv(folder / "tags.csv")
    tags["q"] = tags["tag"].str.strip().str.lower().str.replace(r"\s+", " ", regex=True)
    assert set(queries.kinds) == {"tags"}
    for i in range(0, len(queries), max(1, len(queries) // 25)):
        expected = set(tags.loc[tags["q"] == queries.texts[i], "movieId"])
        assert set(data.items.id(queries.relevant[i].indices)) == expected
    assert ctx.stats["items"] == len(pd.read_csv(folder / "movies.csv"))  # untagged, unrated movies are searchable


def test_recall_vs_exact_counts_ties_as_found():
    exact_scores = np.array([[0.9, 0.8, 0.7], [0.9, 0.5, 0.5]])
    ids = np.array([[4, 2, 9], [1, 7, -1]])
    scores = np.array([[0.9, 0.8, 0.6], [0.9, 0.5, -np.inf]])
    got = recall_vs_exact(ids, scores, exact_scores, k=3)
    np.testing.assert_allclose(got, [2 / 3, 2 / 3])
    np.testing.assert_allclose(recall_vs_exact(ids, scores, exact_scores, k=2), [1.0, 1.0])


@pytest.mark.parametrize("params, fragment", [
    ({"querys": ["tags"]}, "did you mean `task_params.queries`"),
    ({"queries": ["titles"]}, "task_params.queries.0"),
    ({"validation_share": 1.5}, "task_params.validation_share"),
])
def test_bad_task_params_name_the_key(params, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        experiment_config_from_dict({**search_raw(), "task_params": params})


def test_primary_metric_must_be_computed():
    with pytest.raises(ConfigError, match="recall_vs_exact_at_10"):
        experiment_config_from_dict({**search_raw(), "metrics": {"k": [10], "primary": "recall_vs_exact_at_100"}})


def test_only_search_models_are_accepted():
    with pytest.raises(ConfigError, match="unknown model 'als' for task 'search'"):
        experiment_config_from_dict({**search_raw(), "models": [{"name": "als"}]})


def test_predictor_rejects_missing_queries(tmp_path, monkeypatch):
    from recsys.models.catalog import create
    from recsys.serving.predictor import load_predictor
    from recsys.tasks.recommend import write_pyfunc_meta
    from recsys.testing import checkerboard

    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    train, _ = checkerboard(n_users=4, n_items=6)
    create("content").fit(train).save(tmp_path / "m")
    write_pyfunc_meta(tmp_path / "m", task="search", k=2)
    pred = load_predictor(tmp_path / "m")
    with pytest.raises(RecsysError, match="missing"):
        pred.predict(pd.DataFrame({"query": ["item 1", None]}))
    with pytest.raises(RecsysError, match="k must be > 0"):
        pred.predict(pd.DataFrame({"query": ["item 1"]}), {"k": -1})
    out = pred.predict(pd.DataFrame({"query": ["item 1"]}))
    assert len(out) == 2 and out["score"].is_monotonic_decreasing
