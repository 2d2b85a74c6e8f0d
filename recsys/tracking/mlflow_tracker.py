"""MLflow tracking: one parent run per experiment, one child per model, batched logging, pyfunc models."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import Dataset as DatasetEntity
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from recsys.config.loader import config_hash
from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.evaluation.decision import Decision, fmt
from recsys.logging import get_logger
from recsys.tasks.base import ModelResult, TaskContext
from recsys.tracking.orphans import close_orphans, process_tags
from recsys.tracking.store import resolve_tracking_uri

_log = get_logger(__name__)

PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
MAX_PARAM_LEN = 6000


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The checkout's commit (one `git` subprocess per process, however many runs are logged)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parents[2])
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class MlflowTracker:
    """Turns experiment events into MLflow runs. Every run that raises is closed as FAILED."""

    def __init__(self, tracking_uri: str | None = None, log_models: bool = True) -> None:
        from recsys.tracking.store import check_tracking_store

        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        check_tracking_store(self.tracking_uri)  # one clear line before any work; fresh SQLite schema under a lock
        mlflow.set_tracking_uri(self.tracking_uri)
        self.client = MlflowClient(self.tracking_uri)
        self.log_models = log_models
        self.parent_id: str | None = None
        self.experiment_id: str | None = None
        self._datasets: list[Any] = []
        self._ctx_tags: dict[str, str] = {}

    # parent -----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def experiment_run(self, cfg: ExperimentConfig, config_path: str | None = None) -> Iterator[str]:
        env_run = os.environ.get("MLFLOW_RUN_ID")  # set by `mlflow run`: that run is the parent
        run_name = parent_run_name(cfg.name)
        if env_run:
            run = mlflow.start_run(run_id=env_run)
            self._warn_default_experiment(run.info.experiment_id, cfg.name)
            os.environ.pop("MLFLOW_RUN_ID", None)  # else the next nested start_run resumes this run
            # mlflow resumes $MLFLOW_RUN_ID on the next start_run(): without this the first model run would be
            # the parent run itself (no nesting, its tags and metrics overwritten)
            os.environ.pop("MLFLOW_RUN_ID", None)
        else:
            exp = mlflow.set_experiment(cfg.name)
            run = mlflow.start_run(run_name=run_name, experiment_id=exp.experiment_id)
        self.parent_id = run.info.run_id
        self.experiment_id = run.info.experiment_id
        try:  # from here on, any failure (a full disk while logging the config, a signal) closes the run
            self._close_orphans()
            commit = git_commit()
            tags = {"role": "experiment", "task": cfg.task, "experiment_name": cfg.name, "mlflow.runName": run_name,
                    "config_hash": config_hash(cfg), **process_tags(), **cfg.experiment.tags}
            if config_path:
                tags["config_path"] = str(config_path)
            if commit:
                tags["git_commit"] = commit
            params = {"seed": cfg.seed, "task": cfg.task, "metrics.k": json.dumps(cfg.metrics.k),
                      "metrics.primary": cfg.metrics.primary, "selection.metric": cfg.selection_metric,
                      "models": json.dumps([m.run_name for m in cfg.models])}
            self._batch(self.parent_id, tags=tags, params=params)
            mlflow.log_text(json.dumps(cfg.model_dump(mode="json"), indent=2), "config.json")
            yield self.parent_id
        except BaseException as exc:
            status = end_status(exc)
            self._close_open_children(status)
            mlflow.end_run(status)
            raise
        mlflow.end_run("FINISHED")

    def _close_orphans(self) -> None:
        """Runs of this experiment left RUNNING by a dead process on this host: FAILED (see orphans.py)."""
        try:
            close_orphans(self.client, str(self.experiment_id))
        except mlflow.exceptions.MlflowException as exc:  # tidying up; never a reason not to run
            _log.warning("could not look for runs left RUNNING by a dead process: %s", exc)

    _warned_default = False

    def _warn_default_experiment(self, experiment_id: str, name: str) -> None:
        """`mlflow run` without --experiment-name logs into "Default": say so once, and how to name it."""
        try:
            exp_name = self.client.get_experiment(experiment_id).name
        except mlflow.exceptions.MlflowException:
            return
        if exp_name == "Default" and not MlflowTracker._warned_default:
            MlflowTracker._warned_default = True
            _log.warning('the runs go to the MLflow experiment "Default"; name it with `mlflow run . '
                         '--experiment-name %s` (or MLFLOW_EXPERIMENT_NAME=%s)', name, name)

    def log_context(self, ctx: TaskContext) -> None:
        self._ctx_tags = {"dataset": ctx.dataset_name, "split": str(ctx.params.get("split.method", "")),
                          "dataset_fingerprint": ctx.fingerprint, "split_fingerprint": ctx.split_fingerprint}
        self._batch(self.parent_id, params=ctx.params, tags=self._ctx_tags)
        if self.parent_id is not None:
            self.client.log_dict(self.parent_id, ctx.stats, "data_statistics.json")
        self._log_tables(self.parent_id, ctx.parent_artifacts)
        self._datasets = []
        for name, frame, context in ctx.inputs:
            try:  # computed once per experiment (not once per run), from a sample: see dataset_entity
                self._datasets.append(DatasetInput(dataset_entity(frame, name),
                                                   tags=[InputTag("mlflow.data.context", context)]))
            except Exception as exc:  # dataset metadata is nice to have, never fatal
                _log.warning("could not build MLflow dataset %s: %s", name, exc)
        self._log_inputs(self.parent_id)

    def _log_inputs(self, run_id: str | None) -> None:
        """Every dataset of the experiment as an input of `run_id`, in one round trip."""
        if run_id is None or not self._datasets:
            return
        try:
            self.client.log_inputs(run_id, datasets=self._datasets)
        except mlflow.exceptions.MlflowException as exc:  # e.g. two workers registering one dataset at once
            _log.warning("could not log the datasets %s as inputs: %s",
                         ", ".join(d.dataset.name for d in self._datasets), exc)

    # children ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def model_run(self, entry: ModelEntry, ctx: TaskContext) -> Iterator[str]:
        run = mlflow.start_run(run_name=entry.run_name, nested=True)
        run_id = run.info.run_id
        tags = {"role": "model", "task": ctx.cfg.task, "model": entry.name, "label": entry.run_name,
                **self._ctx_tags, **process_tags()}
        commit = git_commit()
        if commit:
            tags["git_commit"] = commit
        try:
            self._batch(run_id, tags=tags, params=ctx.params)
            self._log_inputs(run_id)
            yield run_id
        except BaseException as exc:
            mlflow.end_run(end_status(exc))
            raise
        mlflow.end_run("FINISHED")

    def log_model_result(self, run_id: str | None, result: ModelResult, ctx: TaskContext) -> None:
        if run_id is None:
            return
        metrics = {k: v for k, v in result.metrics.items() if v is not None}
        metrics.update(result.seconds)
        tags = dict(result.tags)
        model_id = None
        if self.log_models and ctx.cfg.tracking.log_models == "all" and result.model_dir is not None:
            # the model first: its metrics are then logged once, linked to it (logged after the metrics, MLflow
            # would read every metric's history back and log it again to link it: two round trips per metric)
            info = self.log_pyfunc(result)
            tags["model_uri"] = info.model_uri
            result.extra["model_uri"] = info.model_uri
            model_id = getattr(info, "model_id", None)
        self._batch(run_id, metrics=metrics, params=result.params, tags=tags, model_id=model_id)
        self._log_files(run_id, result.tables, result.files)
        for child in result.children:
            self.log_child_run(run_id, child.name, params=child.params, metrics=child.metrics, tags=child.tags,
                               files=child.files, tables=child.tables)

    def log_child_run(self, parent_run_id: str, name: str, params: dict | None = None, metrics: dict | None = None,
                      tags: dict | None = None, files: dict[str, Path] | None = None,
                      tables: dict[str, pd.DataFrame] | None = None, status: str = "FINISHED") -> str:
        """Create a finished nested run under `parent_run_id` in one go (no active-run state touched)."""
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

        parent = self.client.get_run(parent_run_id)
        run = self.client.create_run(parent.info.experiment_id, run_name=name,
                                     tags={MLFLOW_PARENT_RUN_ID: parent_run_id, MLFLOW_RUN_NAME: name})
        run_id = run.info.run_id
        try:
            self._batch(run_id, metrics=metrics, params=params, tags=tags)
            self._log_files(run_id, tables or {}, files or {})
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, status)
        return run_id

    def log_selected_model(self, best: ModelResult, run_id: str | None, ctx: TaskContext) -> None:
        """`tracking.log_models: selected`: the chosen model's pyfunc, logged to its (finished) run afterwards."""
        if run_id is None or not self.log_models or ctx.cfg.tracking.log_models != "selected" or best.model_dir is None:
            return
        try:
            info = self.log_pyfunc(best, run_id=run_id)
            best.extra["model_uri"] = info.model_uri
            self._batch(run_id, tags={"model_uri": info.model_uri})
        except BaseException:  # the run whose model could not be logged is FAILED, as it is when logged in-run
            self.client.set_terminated(run_id, "FAILED")
            raise

    def log_pyfunc(self, result: ModelResult, run_id: str | None = None):
        """The model as an MLflow pyfunc (model from code + the saved folder), in the active run or in `run_id`."""
        from mlflow.models import Model, infer_signature

        from recsys.serving.predictor import load_predictor

        example = result.input_example
        params = result.pyfunc_params or None
        signature = None
        if example is not None and result.model_dir is not None:
            output = load_predictor(result.model_dir).predict(example, params)
            signature = infer_signature(example, output, params=params)
            if result.extra.get("history_input"):
                signature = _with_history_input(signature)
        kwargs = dict(name="model", python_model=str(PYFUNC_CODE), artifacts={"model": str(result.model_dir)},
                      signature=signature, input_example=example, pip_requirements=_requirements())
        if run_id is None:
            return mlflow.pyfunc.log_model(**kwargs)
        # a run that has ended: Model.log takes its id (pyfunc.log_model only logs to the active run) and leaves
        # its status and end time alone; the flavor name is the one pyfunc.log_model gives a model from code
        return Model.log(artifact_path=None, flavor=mlflow.pyfunc, run_id=run_id, flavor_name="pyfunc.ModelFromCode",
                         **kwargs)

    def log_comparison(self, comparison: pd.DataFrame, best: ModelResult, run_ids: dict[str, str],
                       ctx: TaskContext) -> None:
        metric = ctx.cfg.selection_metric
        table = comparison.copy()
        table.insert(0, "run_id", [run_ids.get(m, "") for m in table.index])
        with tempfile.TemporaryDirectory() as tmp:  # comparison.png: log_decision (it marks the ties)
            t = Path(tmp)
            table.to_csv(t / "comparison.csv")
            (t / "comparison.md").write_text(to_markdown(table) + _not_computed_note(ctx.stats))
            if self.parent_id is not None:
                self.client.log_artifacts(self.parent_id, tmp)
        tags = {"best_model": best.entry.run_name, "best_run_id": run_ids.get(best.entry.run_name, "")}
        self._batch(self.parent_id, tags=tags,
                    metrics={f"best_{metric}": best.metrics[metric]} if metric in best.metrics else {})

    def render_decision(self, decision: Decision, results: list[ModelResult], comparison: pd.DataFrame,
                        ctx: TaskContext, folder: Path) -> dict[str, Path]:
        """The decision's files (description, tests, decision.json, comparison chart, report.html) drawn in
        `folder` for `log_decision` to upload (matplotlib and HTML: no MLflow call)."""
        from recsys.tracking.report import decision_files

        return decision_files(decision, results, comparison, ctx, folder)

    def log_decision(self, decision: Decision, results: list[ModelResult], comparison: pd.DataFrame,
                     run_ids: dict[str, str], ctx: TaskContext, files: dict[str, Path] | None = None) -> None:
        """Δ and corrected p vs the best on each model run; ties, rule, reason and the Markdown description as
        tags, and the files of `render_decision`, on the experiment run."""
        from recsys.tracking.report import log_decision

        log_decision(self, decision, results, comparison, run_ids, ctx, files or {})

    def register_best(self, best: ModelResult, run_id: str | None, ctx: TaskContext) -> dict[str, Any]:
        if run_id is None or "model_uri" not in best.extra:
            return {}
        from recsys.tracking.registry import register_challenger

        info = register_challenger(self.client, ctx.cfg, best, run_id, ctx)
        if ctx.cfg.experiment.auto_promote:
            from recsys.tracking.registry import promote

            info["promotion"] = promote(self.client, ctx.cfg.registered_model_name, policy_path=ctx.cfg.registry.policy)
        return info

    # helpers ----------------------------------------------------------------------------------------------
    def _batch(self, run_id: str | None, metrics: dict | None = None, params: dict | None = None,
               tags: dict | None = None, model_id: str | None = None) -> None:
        """One round trip for many values (MLflow caps a batch at 1000 metrics / 100 params / 100 tags);
        `model_id` links the metrics to a logged model of the run as well."""
        if run_id is None:
            return
        now = int(time.time() * 1000)
        m = [Metric(k, float(v), now, 0, model_id=model_id) for k, v in (metrics or {}).items()]
        p = [Param(k, _param_value(v)) for k, v in (params or {}).items()]
        t = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        chunks = max(-(-len(m) // 1000), -(-len(p) // 100), -(-len(t) // 100), 1)
        for c in range(chunks):
            self.client.log_batch(run_id, metrics=m[c * 1000:(c + 1) * 1000], params=p[c * 100:(c + 1) * 100],
                                  tags=t[c * 100:(c + 1) * 100])

    def _log_tables(self, run_id: str | None, tables: dict[str, pd.DataFrame]) -> None:
        self._log_files(run_id, tables, {})

    def _log_files(self, run_id: str | None, tables: dict[str, pd.DataFrame], files: dict[str, Path]) -> None:
        """Tables (as Parquet) and files under their artifact paths, staged in one folder and uploaded with one
        `log_artifacts` call (files are hard-linked into it where the file system allows, else copied)."""
        if run_id is None or not (tables or files):
            return
        with tempfile.TemporaryDirectory() as tmp:
            for path, frame in tables.items():
                local = Path(tmp) / path
                local.parent.mkdir(parents=True, exist_ok=True)
                frame.to_parquet(local, index=False)
            for path, src in files.items():
                local = Path(tmp) / path
                local.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, local)
                except OSError:
                    shutil.copyfile(src, local)
            self.client.log_artifacts(run_id, tmp)

    def _close_open_children(self, status: str) -> None:
        while (active := mlflow.active_run()) is not None and active.info.run_id != self.parent_id:
            mlflow.end_run(status)


DATASET_SAMPLE_ROWS = 10_000  # MLflow's digest reads this many rows
SCHEMA_SAMPLE_ROWS = 1_000  # rows the schema's column types are inferred from (see schema_sample)


def dataset_entity(frame: pd.DataFrame, name: str) -> DatasetEntity:
    """The MLflow dataset of `frame` (name, digest, schema, profile) in time independent of its length.

    `from_pandas(frame)` reads every cell in Python twice (the digest checks each value's type, the schema
    inference each object column): 20 s for 2M rows, most of the logging time of a large experiment. MLflow's
    digest hashes only the first 10,000 rows (plus the row count and the column names) anyway; here the digest
    follows the same recipe over all their columns, and the profile counts the whole frame. The schema's types
    come from `schema_sample`, `SCHEMA_SAMPLE_ROWS` rows (MLflow checks the type of every value of an object
    column in Python, a tenth of a second per 10,000 rows), where a column that starts empty still shows the
    type of its values."""
    head = frame.head(DATASET_SAMPLE_ROWS).reset_index(drop=True)
    md5 = hashlib.md5(usedforsecurity=False)
    md5.update(pd.util.hash_pandas_object(head, index=False).to_numpy().tobytes())
    md5.update(np.int64(len(frame)).tobytes())
    for col in frame.columns:
        md5.update(str(col).encode())
    d = from_pandas(schema_sample(frame), name=name, digest=md5.hexdigest()[:8]).to_dict()
    d["profile"] = json.dumps({"num_rows": len(frame), "num_elements": int(frame.size)})
    return DatasetEntity(name=d["name"], digest=d["digest"], source_type=d["source_type"], source=d["source"],
                         schema=d.get("schema"), profile=d["profile"])


def schema_sample(frame: pd.DataFrame, rows: int = SCHEMA_SAMPLE_ROWS) -> pd.DataFrame:
    """The first `rows` rows of `frame`, except that a column with nulls among them is replaced by its first
    non-null values and one null (so its type is that of its values, wherever they start, and it is optional)."""
    head = frame.head(rows).reset_index(drop=True)
    for col in frame.columns:
        if not head[col].isna().any():
            continue
        s = frame[col]
        present = s.notna().to_numpy()
        keep = np.flatnonzero(present)[:len(head) - 1]
        first_null = np.flatnonzero(~present)[:1]
        head[col] = s.iloc[np.concatenate([keep, first_null])].reset_index(drop=True).reindex(range(len(head)))
    return head


def end_status(exc: BaseException) -> str:
    """KILLED for a signal (SIGTERM/SIGINT, see `recsys.faults.Interrupted`), FAILED for anything else."""
    return "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"


def parent_run_name(name: str) -> str:
    """`<config name> <yyyy-mm-dd hh:mm>` (local time), never a random name."""
    import datetime as dt

    return f"{name} {dt.datetime.now():%Y-%m-%d %H:%M}"


def _with_history_input(signature):
    """The signature with every input column optional plus an optional `items` column (a list of item-id
    strings): recommend pyfuncs answer users given by their history (fold-in) as well as known user ids."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Schema

    cols = [ColSpec(c.type, c.name, required=False) for c in signature.inputs.inputs if c.name != "items"]
    inputs = Schema([*cols, ColSpec(Array("string"), "items", required=False)])
    return ModelSignature(inputs=inputs, outputs=signature.outputs, params=signature.params)


def _param_value(v: Any) -> str:
    s = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return s if len(s) <= MAX_PARAM_LEN else s[: MAX_PARAM_LEN - 3] + "..."


def _requirements() -> list[str]:
    import importlib.metadata as md

    pkgs = ["mlflow", "numpy", "pandas", "scipy", "pyarrow", "pydantic", "implicit", "scikit-learn"]
    out = []
    for p in pkgs:
        try:
            out.append(f"{p}=={md.version(p)}")
        except md.PackageNotFoundError:
            pass
    return out


def _not_computed_note(stats: dict) -> str:
    """One line saying which metrics are absent and why (e.g. diversity without item categories)."""
    missing = stats.get("metrics_not_computed") or {}
    by_reason: dict[str, list[str]] = {}
    for metric, reason in missing.items():
        by_reason.setdefault(reason, []).append(metric)
    return "".join(f"\nNot computed, so not logged for any model: {', '.join(ms)} ({reason}).\n"
                   for reason, ms in by_reason.items())


def to_markdown(df: pd.DataFrame) -> str:
    cols = [df.index.name or ""] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        cells = [str(idx)] + [fmt(v) if isinstance(v, float) else str(v) for v in row.to_numpy()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
