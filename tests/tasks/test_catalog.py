"""The candidate catalogue is the training items plus the items table; unmeasurable metrics are not logged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.config import config_from_dict
from recsys.experiment import run_experiment

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
DAY = 86_400
CUTOFF = T0 + 30 * DAY
NEW = [f"new{i}" for i in range(6)]  # appear only after the cutoff


def _events(tmp_path) -> None:
    """40 users; items old0..old24 before and after the cutoff, new0..new5 only after it (popular there)."""
    r = np.random.default_rng(11)
    rows = []
    for u in range(40):
        for _ in range(12):
            rows.append((f"u{u}", f"old{r.integers(0, 25)}", T0 + int(r.integers(0, 30 * DAY))))
        for _ in range(4):
            item = NEW[r.integers(0, len(NEW))] if r.random() < 0.6 else f"old{r.integers(0, 25)}"
            rows.append((f"u{u}", item, CUTOFF + int(r.integers(0, 10 * DAY))))
    pd.DataFrame(rows, columns=["customer", "sku", "ts"]).to_csv(tmp_path / "events.csv", index=False)


def _config(items: str | None = None):
    tab = {"interactions": "events.csv", "columns": {"user_id": "customer", "item_id": "sku", "timestamp": "ts"}}
    if items:
        tab.update(items=items, item_columns={"item_id": "sku", "category": "kind"})
    return config_from_dict({
        "name": "catalog", "seed": 3,
        "data": {"source": "tabular", "tabular": tab},
        "split": {"method": "temporal", "cutoff": "2023-12-14T22:13:20Z", "unknown_items": "keep"},
        "metrics": {"k": [5, 10]},
        "models": [{"name": "random"}, {"name": "popularity"}, {"name": "item_knn", "params": {"k_neighbors": 10}},
                   {"name": "als", "params": {"factors": 4, "iterations": 3, "num_threads": 1}}],
        "registry": {"enabled": False}})


def test_items_only_after_the_cutoff_are_never_recommended_and_are_counted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _events(tmp_path)
    res = run_experiment(_config(), workdir=tmp_path / "work")
    events = pd.read_csv(tmp_path / "events.csv")
    new_in_test = set(events.loc[events["ts"] >= CUTOFF, "sku"]) - set(events.loc[events["ts"] < CUTOFF, "sku"])
    assert new_in_test == set(NEW)  # the fixture really has test-only items
    audit = res.context.stats["split"]["audit"]
    assert audit["cutoff"] == CUTOFF
    assert audit["test_items_outside_catalog"] == len(NEW)
    assert audit["test_rows_outside_catalog"] == int(events["sku"].isin(NEW).sum())
    assert audit["catalog_items"] == 25
    for r in res.results:
        recs = r.tables["recommendations.parquet"]
        assert len(recs) and not set(recs["item_id"]) & set(NEW), r.entry.name
        # coverage is measured against the 25 candidates, not the 31 ids of the file
        top10 = recs[recs["rank"] <= 10]
        assert r.metrics["catalog_coverage_at_10"] == pytest.approx(top10["item_id"].nunique() / 25)


def test_items_table_adds_candidates_and_categories_make_diversity_measurable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _events(tmp_path)
    listed = [f"old{i}" for i in range(25)] + NEW[:2]
    pd.DataFrame({"sku": listed, "kind": [f"c{i % 3}" for i in range(len(listed))]}).to_csv(
        tmp_path / "items.csv", index=False)
    res = run_experiment(_config("items.csv"), workdir=tmp_path / "work")
    audit = res.context.stats["split"]["audit"]
    assert audit["catalog_items"] == 27 and audit["test_items_outside_catalog"] == len(NEW) - 2
    rand = next(r for r in res.results if r.entry.name == "random").tables["recommendations.parquet"]
    assert not set(rand["item_id"]) & set(NEW[2:])
    assert all("diversity_at_10" in r.metrics for r in res.results)
    assert "metrics_not_computed" not in res.context.stats


@pytest.mark.slow  # a whole experiment through MLflow
def test_without_categories_no_run_logs_diversity(tmp_path, mlflow_uri):
    from mlflow.tracking import MlflowClient

    from recsys.tracking import MlflowTracker

    _events(tmp_path)
    res = run_experiment(_config(), tracker=MlflowTracker(mlflow_uri))
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("catalog").experiment_id])
    assert len(runs) >= 1 + len(res.results)
    for run in runs:
        assert not [k for k in run.data.metrics if k.startswith("diversity")], run.info.run_name
    model_runs = [run for run in runs if run.data.tags.get("role") == "model"]
    assert len(model_runs) == 4 and all("ndcg_at_10" in run.data.metrics for run in model_runs)
    assert "diversity" not in " ".join(res.comparison.columns)
    assert set(res.context.stats["metrics_not_computed"]) == {"diversity_at_5", "diversity_at_10"}
    import mlflow

    with open(mlflow.artifacts.download_artifacts(run_id=res.parent_run_id, artifact_path="comparison.md",
                                                  dst_path=str(tmp_path / "dl"))) as fh:
        md = fh.read()
    assert md.count("Not computed") == 1 and "diversity_at_5, diversity_at_10 (items have no categories" in md
