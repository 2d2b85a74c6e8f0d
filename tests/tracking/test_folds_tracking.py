"""`recsys run --set split.folds=3`: one nested fold run per model, fold means and `<metric>_std` on the model run."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it


@pytest.mark.parametrize("method", ["temporal", "leave_last"])
def test_three_folds_give_three_fold_runs_per_model(tmp_path, method):
    cfg = tmp_path / "folds.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": f"folds-{method}", "seed": 2,
        "data": {"synthetic": {"n_users": 300, "n_items": 100, "n_categories": 4}},
        "split": {"method": method, "test_size": 0.15},
        "evaluation": {"bootstrap": 200},
        "models": [{"name": "popularity"}, {"name": "item_knn", "params": {"k_neighbors": 10}}],
        "registry": {"enabled": False}}))
    db = tmp_path / "mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}", "RECSYS_PROGRESS": "0"}
    env.pop("MLFLOW_RUN_ID", None)
    proc = subprocess.run([sys.executable, "-m", "recsys.cli", "--log-level", "WARNING", "run", str(cfg),
                           "--set", "split.folds=3"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name(f"folds-{method}")
    runs = client.search_runs([exp.experiment_id])
    models = [r for r in runs if r.data.tags.get("role") == "model"]
    assert len(models) == 2
    for run in models:
        folds = [r for r in runs if r.data.tags.get("role") == "fold"
                 and r.data.tags.get("mlflow.parentRunId") == run.info.run_id]
        assert sorted(r.data.tags["fold"] for r in folds) == ["0", "1", "2"]
        values = [r.data.metrics["ndcg_at_10"] for r in folds]
        m = run.data.metrics
        assert m["ndcg_at_10"] == pytest.approx(np.mean(values), abs=1e-12)
        assert m["ndcg_at_10_std"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        assert m["ndcg_at_10_ci_low"] <= m["ndcg_at_10_ci_high"]
        assert sum(r.data.metrics["evaluated_users"] for r in folds) > 0
        assert run.data.params["split.folds"] == "3"
    parent = next(r for r in runs if r.data.tags.get("role") == "experiment")
    with open(client.download_artifacts(parent.info.run_id, "report.html", str(tmp_path)), encoding="utf-8") as f:
        html = f.read()
    assert "<h2>Folds</h2>" in html
