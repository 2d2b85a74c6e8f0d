"""A tracked experiment answers "which model, and is the difference real?" on its runs (real SQLite store)."""

from __future__ import annotations

import json
import re
from html import escape

import pytest
from conftest import isolated_store
from mlflow.tracking import MlflowClient

from recsys.data.stats import feasibility
from recsys.experiment import run_experiment
from recsys.tracking import MlflowTracker

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it

TINY = {
    "name": "tiny-decision", "seed": 5,
    "data": {"source": "synthetic", "synthetic": {"n_users": 400, "n_items": 150, "n_categories": 6,
                                                  "mean_interactions": 15}},
    "metrics": {"k": [5, 10]},
    "evaluation": {"bootstrap": 300, "tests": {"metrics": ["recall_at_10"]}},
    "models": [{"name": "random"}, {"name": "popularity"}, {"name": "item_knn", "params": {"k_neighbors": 20}},
               {"name": "popularity", "label": "popularity_twin"},
               {"name": "als", "params": {"factors": 8, "iterations": 5, "num_threads": 1}}],
    "registry": {"enabled": False},
}


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    from recsys.config import config_from_dict

    with isolated_store(tmp_path_factory.mktemp("decision")) as uri:
        cfg = config_from_dict(TINY)
        result = run_experiment(cfg, tracker=MlflowTracker(uri))
        client = MlflowClient(uri)
        runs = client.search_runs([client.get_experiment_by_name(cfg.name).experiment_id])
        yield cfg, result, client, runs


def _models(runs):
    return [r for r in runs if r.data.tags.get("role") == "model"]


def _parent(runs):
    return next(r for r in runs if r.data.tags.get("role") == "experiment")


def test_every_model_run_has_an_interval_around_its_metric(tracked):
    cfg, result, client, runs = tracked
    for run in _models(runs):
        m = run.data.metrics
        for metric in ("ndcg_at_10", "recall_at_5", "hit_rate_at_10", "novelty_at_10"):
            assert m[f"{metric}_ci_low"] <= m[metric] <= m[f"{metric}_ci_high"], (run.data.tags["label"], metric)
        assert "catalog_coverage_at_10_ci_low" not in m  # not a per-user mean: no interval


def test_every_run_but_the_selected_one_has_a_corrected_p_value(tracked):
    cfg, result, client, runs = tracked
    parent = _parent(runs)
    selected = parent.data.tags["best_model"]
    for run in _models(runs):
        m, label = run.data.metrics, run.data.tags["label"]
        if label == selected:
            assert "p_value_vs_best" not in m and run.data.tags["selected"] == "true"
            continue
        assert 0.0 <= m["p_value_vs_best"] <= 1.0 and 0.0 <= m["recall_at_10_p_value_vs_best"] <= 1.0
        assert m["delta_vs_best"] == pytest.approx(m["ndcg_at_10"] - result.decision.comparisons["ndcg_at_10"][
            label].mean_b, abs=1e-12)
        assert m["delta_vs_best_ci_low"] <= m["delta_vs_best"] <= m["delta_vs_best_ci_high"]
        assert run.data.tags["tied_with_best"] == str(label in result.decision.tied).lower()


def test_identical_configurations_are_tied_and_listed_on_the_parent(tracked):
    cfg, result, client, runs = tracked
    parent = _parent(runs)
    tied = parent.data.tags["tied_with_best"].split(",") if parent.data.tags["tied_with_best"] else []
    assert tied == result.decision.tied
    twin = next(r for r in _models(runs) if r.data.tags["label"] == "popularity_twin")
    if result.decision.best == "popularity":
        assert twin.data.metrics["p_value_vs_best"] == 1.0 and "popularity_twin" in tied
    assert parent.data.tags["selection.rule"] == "best"
    assert parent.data.tags["selected_because"].startswith(f"highest {cfg.selection_metric}")


def test_parent_description_is_the_comparison_in_markdown(tracked):
    cfg, result, client, runs = tracked
    parent = _parent(runs)
    note = parent.data.tags["mlflow.note.content"]
    assert re.fullmatch(rf"{cfg.name} \d{{4}}-\d\d-\d\d \d\d:\d\d", parent.data.tags["mlflow.runName"])
    lines = [ln for ln in note.splitlines() if ln.startswith("| ")]
    assert "ndcg_at_10 [95% CI]" in lines[0] and "p vs best" in lines[0] and "tie" in lines[0]
    assert len(lines) == 1 + len(cfg.models)
    selected = parent.data.tags["best_model"]
    bold = [ln for ln in lines if ln.startswith(f"| **{selected}**")]
    assert len(bold) == 1
    value = result.best.metrics["ndcg_at_10"]
    assert f"**{value:.4g} [" in bold[0]  # 4 significant digits, with its interval
    for label in result.decision.tied:
        assert any(ln.startswith(f"| {label} ") and "tied" in ln for ln in lines)


def test_parent_description_is_the_logged_comparison_description(tracked, tmp_path):
    """The run's note and its comparison_description.md artifact are one text (the note is read from the file)."""
    cfg, result, client, runs = tracked
    parent = _parent(runs)
    local = client.download_artifacts(parent.info.run_id, "comparison_description.md", str(tmp_path))
    with open(local, encoding="utf-8") as f:
        assert f.read() == parent.data.tags["mlflow.note.content"]


def test_parent_has_report_and_decision_artifacts(tracked, tmp_path):
    cfg, result, client, runs = tracked
    parent = _parent(runs)
    files = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"report.html", "decision.json", "paired_tests.csv", "comparison.png"} <= files
    with open(client.download_artifacts(parent.info.run_id, "report.html", str(tmp_path)), encoding="utf-8") as f:
        html = f.read()
    assert "[95% CI]" in html and "data:image/png;base64," in html and "Verdict" in html
    assert "<script" not in html and "src=\"http" not in html  # self-contained
    # the data diagnostics carry the verdict of `recsys data describe` (one function computes both)
    verdict = feasibility(result.context.stats)
    assert f"Verdict: {verdict['verdict']}</b>" in html
    assert verdict["reasons"] and all(escape(r) in html for r in verdict["reasons"])
    assert "one-time users" in html and "retention" in html and "cold users" in html
    with open(client.download_artifacts(parent.info.run_id, "decision.json", str(tmp_path))) as f:
        decision = json.load(f)
    assert decision["selected"] == parent.data.tags["best_model"]
    p = [t["p_wilcoxon_adjusted"] for t in decision["tests"] if t["metric"] == "ndcg_at_10"]
    assert len(p) == len(cfg.models) - 1  # full precision in JSON


def test_every_model_run_has_slices(tracked):
    cfg, result, client, runs = tracked
    for run in _models(runs):
        slices = [k for k in run.data.metrics if k.startswith("slice/")]
        assert len(slices) >= 6, slices
        assert {"slice/head/recall_at_10", "slice/tail/recall_at_10"} <= set(slices)
        files = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert "slices.parquet" in files
        assert "plots/slices.png" in {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
