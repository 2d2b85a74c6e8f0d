"""The `segment` task: which behavioural type is this session? KMeans over a K range, K selection, profiles, drift.

Options live in `task_params` (validated at load time by `SegmentParams`); the experiment-level `data` section
is for interactions and is ignored here:

    task: segment
    task_params:
      sessions: {source: synthetic, synthetic: {n_sessions: 4000}}
      features: [pageviews, time_on_site, product_views, cart_adds, transactions, revenue]
      drift: {later_share: 0.25, psi_threshold: 0.2}
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from recsys.config.loader import flatten
from recsys.config.schema import ExperimentConfig, ModelEntry, StrictModel
from recsys.data.sessions import SessionSourceConfig, SessionTable, load_sessions, temporal_split
from recsys.data.tables import frame_fingerprint
from recsys.errors import DataError
from recsys.evaluation.plots import plot_criteria
from recsys.evaluation.segment import CRITERIA_METRICS, DRIFT_METRICS, K_SELECTION, evaluate_segments
from recsys.logging import get_logger
from recsys.models.base import ProgressCallback
from recsys.models.catalog import create
from recsys.tasks.base import ChildRun, ModelResult, Task, TaskContext, TaskState, parse_task_params, write_pyfunc_meta

_log = get_logger(__name__)



class DriftConfig(StrictModel):
    """Assign a later period's sessions (temporal split by session start) to the fitted clusters and compare."""

    enabled: bool = Field(True, description="fit on the earlier sessions and measure drift on the later ones")
    later_share: float = Field(0.25, gt=0, lt=1,
                               description="share of the latest sessions held out as the later period")
    psi_threshold: float = Field(0.2, gt=0, description="cluster-mix PSI above this sets tag drift_warning=true")
    js_threshold: float | None = Field(None, gt=0, le=1, description="optional: JS divergence above this also warns")


class SegmentParams(StrictModel):
    """`task_params` of a segment experiment."""

    sessions: SessionSourceConfig = Field(default_factory=SessionSourceConfig)
    features: list[str] | None = Field(None, min_length=1,
                                       description="features to cluster on; default all the source's")
    drift: DriftConfig = Field(default_factory=DriftConfig)


def segment_params(cfg: ExperimentConfig) -> SegmentParams:
    return parse_task_params(SegmentParams, cfg, "segment")


@dataclass
class SegmentState(TaskState):
    """Segment: the session table, its reference (earlier) and later sessions, the features and task_params."""

    table: SessionTable
    reference: pd.DataFrame
    later: pd.DataFrame
    features: list[str]
    params: SegmentParams


class SegmentTask(Task):
    name = "segment"

    def validate(self, cfg: ExperimentConfig) -> None:
        segment_params(cfg)
        self.check_metrics(cfg)

    def prepare(self, cfg: ExperimentConfig) -> TaskContext:
        t0 = time.perf_counter()
        params = segment_params(cfg)
        table = load_sessions(params.sessions, cfg.seed)
        features = params.features or table.features
        unknown = [f for f in features if f not in table.sessions.columns]
        if unknown:
            raise DataError(f"task_params.features {unknown} are not session features of source "
                            f"{params.sessions.source!r}; available: {table.features}")
        sessions = table.sessions
        if params.drift.enabled and table.has_time:
            ref_mask, later_mask = temporal_split(table, params.drift.later_share)
        else:
            if params.drift.enabled:
                _log.warning("source %s has no session time: drift is skipped (map a timestamp or period column)",
                             table.name)
            ref_mask, later_mask = np.ones(len(sessions), bool), np.zeros(len(sessions), bool)
        reference = sessions[ref_mask].reset_index(drop=True)
        later = sessions[later_mask].reset_index(drop=True)
        split_fp = frame_fingerprint(pd.DataFrame({"session_id": sessions["session_id"].astype(str),
                                                   "later": later_mask}))
        source = params.sessions.source
        dumped = params.model_dump(mode="json")
        dumped["sessions"] = {k: v for k, v in dumped["sessions"].items() if k in ("source", source)}
        run_params = {**flatten(dumped, "task_params."), "split.method": "temporal" if later_mask.any() else "none"}
        ctx = TaskContext(cfg=cfg, dataset_name=table.name, fingerprint=table.fingerprint(),
                          split_fingerprint=split_fp, params=run_params)
        ctx.stats = {"n_sessions": len(sessions), "n_reference": len(reference), "n_later": len(later),
                     "conversion_rate": float(sessions["converted"].mean()), "features": features, **table.info}
        if "true_type" in sessions:
            ctx.stats["true_type_shares"] = sessions["true_type"].value_counts(normalize=True).round(4).to_dict()
        cols = ["session_id", *features]
        ctx.inputs = [(table.name, reference[cols], "training")]
        if len(later):
            ctx.inputs.append((f"{table.name}-later", later[cols], "testing"))
        ctx.state = SegmentState(table=table, reference=reference, later=later, features=features, params=params)
        ctx.stats["seconds_prepare"] = time.perf_counter() - t0
        _log.info("sessions %s: %d (%d reference, %d later period), %d features", table.name, len(sessions),
                  len(reference), len(later), len(features))
        return ctx

    def fit_model(self, ctx: TaskContext, entry: ModelEntry, callback: ProgressCallback | None = None
                  ) -> tuple[Any, float]:
        """Segmenters fit on the reference sessions' features; evaluation's K_SELECTION scores and picks K."""
        state: SegmentState = ctx.state
        model = create(entry.name, entry.params, task=self.name)
        t0 = time.perf_counter()
        model.fit(state.reference, state.features, callback=callback, selector=K_SELECTION)
        return model, time.perf_counter() - t0

    def evaluate(self, ctx: TaskContext, entry: ModelEntry, model: Any, store: bool = True) -> ModelResult:
        state: SegmentState = ctx.state
        params = state.params
        k = int(model.k_)
        ev = evaluate_segments(model, state.reference, state.later, state.features, params.drift.psi_threshold,
                               params.drift.js_threshold)
        tags: dict[str, str] = {"chosen_k": str(k), "k_selection": model.config.selection}
        if ev.drift_warning is not None:
            tags["drift_warning"] = str(ev.drift_warning).lower()
            if ev.drift_warning:
                _log.warning("%s: cluster-mix drift in the later period (PSI %.3f > %.3f, JS %.3f)", entry.run_name,
                             ev.metrics["drift_psi"], params.drift.psi_threshold, ev.metrics["drift_js_divergence"])
        result = ModelResult(entry=entry, params={**flatten(model.params, "model."), "chosen_k": k},
                             metrics=ev.metrics, model=model, tags=tags)
        result.extra.update(profile=ev.profile, names=ev.names, later_labels=ev.later_labels, evaluation=ev)
        result.children = [
            ChildRun(name=f"{entry.run_name}-k{kk}", params={"k": int(kk), "model": entry.name},
                     metrics={m: float(v) for m, v in row.items() if v == v}
                     | ({"ari_vs_truth": ev.ari_by_k[kk]} if kk in ev.ari_by_k else {}),
                     tags={"role": "k", "chosen": str(kk == k).lower(), "task": self.name})
            for kk, row in model.scores_.to_dict("index").items()
        ]
        return result

    def describe(self, ctx: TaskContext, result: ModelResult) -> str:
        m = result.metrics
        ari = f" ari_vs_truth={m['ari_vs_truth']:.4f}" if "ari_vs_truth" in m else ""
        return f"K={int(m['n_clusters'])} silhouette={m['silhouette']:.4f}{ari}"

    def package(self, ctx: TaskContext, result: ModelResult, model_dir: Path) -> None:
        state: SegmentState = ctx.state
        reference, later, features = state.reference, state.later, state.features
        model, ev = result.model, result.extra.pop("evaluation")
        k, names, scores, workdir = int(model.k_), ev.names, model.scores_, model_dir.parent
        write_pyfunc_meta(model_dir, task=self.name, cluster_names=names, features=features)
        chosen = next(c for c in result.children if c.params["k"] == k)
        chosen.files = {f"model/{p.name}": p for p in sorted(model_dir.iterdir()) if p.is_file()}
        result.input_example = reference[["session_id", *features]].head(3).assign(
            session_id=lambda d: d["session_id"].astype(str))
        centroids = model.centroids_original()
        centroids.insert(1, "name", names)
        assigned = pd.concat([
            _labels_frame(reference, model.labels_, names, "reference"),
            _labels_frame(later, ev.later_labels, names, "later"),
        ], ignore_index=True)
        result.tables = {"segments/session_clusters.parquet": assigned, "segments/centroids.parquet": centroids,
                         "segments/profile.parquet": ev.profile, "k_selection/scores.parquet": scores.reset_index(),
                         **ev.drift_tables}
        diag = {
            "chosen_k": k, "rule": model.config.selection, "evidence": model.selection_,
            "scores": scores.reset_index().to_dict("records"), "ari_vs_truth_by_k": ev.ari_by_k,
            "features": features, "preprocessor": model.preprocessor_.to_dict(), "clusters": names,
            "profile": ev.profile.to_dict("records"), "drift": ev.drift_info, "n_reference": len(reference),
        }
        files = {"segments/diagnostics.json": _write(workdir / "diagnostics.json", json.dumps(diag, indent=2,
                                                                                             default=_jsonable)),
                 "segments/profile.md": _write(workdir / "profile.md", profile_markdown(ev.profile))}
        files.update(plot_criteria(scores, k, workdir / "plots", ev.ari_by_k))
        result.files = files

    def metric_names(self, cfg: ExperimentConfig, params: SegmentParams | None = None) -> list[str]:
        params = params or segment_params(cfg)
        names = [*CRITERIA_METRICS, "n_clusters"]
        if params.sessions.source == "synthetic":
            names.append("ari_vs_truth")
        if params.drift.enabled:
            names += DRIFT_METRICS
        return names


def _labels_frame(frame: pd.DataFrame, labels: np.ndarray, names: list[str], period: str) -> pd.DataFrame:
    out = pd.DataFrame({"session_id": frame["session_id"].astype(str).to_numpy(),
                        "user_id": frame["user_id"].astype(str).to_numpy(), "period": period,
                        "cluster": labels.astype(np.int64), "cluster_name": np.array(names, dtype=object)[labels]})
    if "timestamp" in frame:
        out.insert(2, "timestamp", frame["timestamp"].to_numpy())
    if "true_type" in frame:
        out["true_type"] = frame["true_type"].to_numpy()
    return out


def profile_markdown(profile: pd.DataFrame) -> str:
    cols = list(profile.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in profile.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "–" if v != v else (f"{v:.4g}" if abs(float(v)) < 1000 else f"{v:,.0f}")  # 4 significant digits
    return str(v)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return None if v != v else float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


TASK = SegmentTask()
