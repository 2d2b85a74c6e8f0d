"""An experiment's decision: `decision_files` draws the Markdown description, the tests table, decision.json, the
comparison chart and `report.html` (matplotlib and HTML, no MLflow call); `log_decision` logs Δ / corrected p on
each model run and ties, rule, reason, the description (`mlflow.note.content`) and those files on the experiment
run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from recsys.data.stats import feasibility
from recsys.evaluation.decision import Decision
from recsys.evaluation.report import build_report, decision_markdown, headline_metrics
from recsys.logging import get_logger
from recsys.tasks.base import ModelResult, TaskContext

if TYPE_CHECKING:
    from recsys.tracking.mlflow_tracker import MlflowTracker

_log = get_logger(__name__)
MAX_TAG = 7900  # MLflow caps tag values at 8000 characters


def log_decision(tracker: MlflowTracker, decision: Decision, results: list[ModelResult], comparison: pd.DataFrame,
                 run_ids: dict[str, str], ctx: TaskContext, files: dict[str, Path]) -> None:
    """Δ / corrected p and the tie and selection tags on each model run; the rule, the reason and the Markdown
    description on the experiment run, with `files` (from `decision_files`) as its artifacts, in one upload."""
    for r in results:
        label = r.entry.run_name
        tracker._batch(run_ids.get(label), metrics=decision.model_metrics(label),
                       tags={"tied_with_best": str(decision.is_tied(label)).lower(),
                             "selected": str(label == decision.selected).lower()})
    written = files.get("comparison_description.md")  # decision_files wrote it already: the same text
    md = written.read_text(encoding="utf-8") if written is not None else description(decision, results, comparison, ctx)
    tags = {"tied_with_best": ",".join(decision.tied), "selection.rule": decision.rule,
            "selected_because": decision.reason[:MAX_TAG], "selection.best_point_estimate": decision.best,
            "mlflow.note.content": md}
    tracker._batch(tracker.parent_id, tags=tags)
    if tracker.parent_id is not None and files:
        tracker._log_files(tracker.parent_id, {}, files)


def description(decision: Decision, results: list[ModelResult], comparison: pd.DataFrame, ctx: TaskContext) -> str:
    """The experiment run's Markdown description, within MLflow's tag limit."""
    cfg = ctx.cfg
    best = next((r for r in results if r.entry.run_name == decision.best), results[0])
    n_units = len(best.per_user) if best.per_user is not None else None
    title = f"{cfg.name}: {len(results)} models on {decision.metric}"
    md = decision_markdown(comparison, decision, title, n_units, cfg.evaluation.bootstrap, cfg.evaluation.confidence)
    if len(md) > MAX_TAG:
        md = md[:MAX_TAG - 60] + "\n\n… (truncated; see comparison.md and report.html)\n"
    return md


def decision_files(decision: Decision, results: list[ModelResult], comparison: pd.DataFrame, ctx: TaskContext,
                   folder: Path) -> dict[str, Path]:
    """comparison_description.md, paired_tests.csv, decision.json, comparison.png and report.html in `folder`
    (artifact path -> local file)."""
    from recsys.evaluation.plots import plot_comparison

    cfg = ctx.cfg
    folder.mkdir(parents=True, exist_ok=True)
    t = folder
    tests = decision.tests_table()
    verdict = feasibility(ctx.stats) if ctx.stats else None
    (t / "comparison_description.md").write_text(description(decision, results, comparison, ctx), encoding="utf-8")
    names = ["comparison_description.md", "decision.json", "comparison.png", "report.html"]
    if not tests.empty:
        tests.to_csv(t / "paired_tests.csv", index=False)
        names.append("paired_tests.csv")
    (t / "decision.json").write_text(json.dumps(
        {"metric": decision.metric, "rule": decision.rule, "best": decision.best, "selected": decision.selected,
         "tied_with_best": decision.tied, "alpha": decision.alpha, "test": decision.test,
         "selected_because": decision.reason, "verdict": verdict,
         "tests": tests.to_dict(orient="records")}, indent=2, default=_json_default))
    plot_comparison(comparison, decision.metric, t / "comparison.png", selected=decision.selected)
    plots = {"comparison (95% CI error bars, ties hatched)": t / "comparison.png"}
    for r in results:
        for path, local in r.files.items():
            if path.endswith("slices.png"):
                plots[f"slices: {r.entry.run_name}"] = local
    html = build_report(f"{cfg.name}: which model should we ship?", comparison, decision, ctx.stats, verdict,
                        plots, slice_tables(results, decision.metric), fold_table(results, comparison,
                                                                                 decision.metric), tests)
    (t / "report.html").write_text(html, encoding="utf-8")
    return {name: t / name for name in names}


def slice_tables(results: list[ModelResult], metric: str) -> dict[str, pd.DataFrame]:
    """Slice × model tables of the selection metric (and recall by item popularity) for the report."""
    found = {r.entry.run_name: r.tables.get("slices.parquet") for r in results}
    frames = {k: v for k, v in found.items() if v is not None and not v.empty}
    if not frames:
        return {}
    out: dict[str, pd.DataFrame] = {}
    user_rows = []
    for label, f in frames.items():
        f = f[f["kind"] != "item_popularity"] if "kind" in f.columns else f
        if metric in f.columns:
            user_rows.append(f.set_index("slice")[[metric]].rename(columns={metric: label}))
    if user_rows:
        first = next(iter(frames.values()))
        sizes = first[first["kind"] != "item_popularity"].set_index("slice")["users"] if "kind" in first.columns \
            else first.set_index("slice")["users"]
        table = pd.concat([sizes.rename("users"), *user_rows], axis=1).reset_index().rename(columns={"index": "slice"})
        out[f"{metric} by user slice"] = table
    recall_rows = []
    for label, f in frames.items():
        if "kind" not in f.columns:
            continue
        pop = f[f["kind"] == "item_popularity"]
        rec = [c for c in pop.columns if c.startswith("recall_at")]
        if len(pop) and rec:
            recall_rows.append(pop.set_index("slice")[[rec[0]]].rename(columns={rec[0]: label}))
    if recall_rows:
        out["recall by popularity of the relevant items"] = pd.concat(recall_rows, axis=1).reset_index()
    return out


def fold_table(results: list[ModelResult], comparison: pd.DataFrame, metric: str) -> pd.DataFrame | None:
    """One row per (model, fold) with the headline metrics; None without repeated splits."""
    cols = headline_metrics(comparison, metric)
    rows: list[dict[str, Any]] = []
    for r in results:
        for child in r.children:
            if child.tags.get("role") != "fold":
                continue
            rows.append({"model": r.entry.run_name, "fold": child.tags.get("fold", child.name),
                         **{c: child.metrics.get(c) for c in cols if c in child.metrics},
                         **{k: child.metrics[k] for k in ("train_rows", "test_rows") if k in child.metrics}})
    if not rows:
        return None
    return pd.DataFrame(rows)


def _json_default(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)
