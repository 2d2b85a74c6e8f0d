"""MLflow side of tuning: a tuning run under the model run and one nested run per trial.

Takes plain data only (no optuna here; `recsys.tuning` calls these methods). Replaces optuna-integration's
deprecated MLflowCallback. Trial runs carry `role=trial`, `optuna.study_name`, `optuna.trial_number` and a
`state` tag (COMPLETE / PRUNED / FAIL); they are created RUNNING and always closed: by the worker when the
trial ends, or by `close_dead_worker` when a heartbeat shows the worker died.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from recsys.logging import get_logger

_log = get_logger(__name__)

# Optuna trial state -> MLflow run status (a pruned trial ended normally, by design)
STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}


class TuningLog:
    """Creates and closes tuning/trial runs through an `MlflowTracker`'s client (no active-run state touched)."""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self.client: MlflowClient = tracker.client
        self.host = socket.gethostname()
        self.pid = os.getpid()

    # runs -------------------------------------------------------------------------------------------------
    def start_run(self, parent_run_id: str, name: str, params: dict | None = None,
                  tags: dict | None = None) -> str:
        """A RUNNING run nested under `parent_run_id` (same experiment)."""
        parent = self.client.get_run(parent_run_id)
        # every tag in the creating call: a worker killed right after it leaves a run that reconciliation finds
        # (it searches by role / study / worker tags), never an untagged RUNNING run
        worker = {"worker.host": self.host, "worker.pid": str(self.pid)}
        tags = {MLFLOW_PARENT_RUN_ID: parent_run_id, MLFLOW_RUN_NAME: name, **worker,
                **{k: str(v) for k, v in (tags or {}).items()}}
        run = self.client.create_run(parent.info.experiment_id, run_name=name, tags=tags)
        if params:
            self.tracker._batch(run.info.run_id, params=params)
        return run.info.run_id

    def log(self, run_id: str, metrics: dict[str, float] | None = None, params: dict | None = None,
            tags: dict | None = None, step: int = 0) -> None:
        from mlflow.entities import Metric

        if metrics and step > 0:
            import time

            now = int(time.time() * 1000)
            self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])
            metrics = None
        self.tracker._batch(run_id, metrics=metrics, params=params, tags=tags)

    def log_files(self, run_id: str, files: dict[str, Path] | None = None,
                  tables: dict[str, pd.DataFrame] | None = None) -> None:
        self.tracker._log_files(run_id, tables or {}, files or {})

    def log_validation(self, tuning_run_id: str, model_run_id: str | None, vctx: Any) -> None:
        """Evidence that tuning was blind to the test part: the validation split's fingerprint (tuning and model
        run) and the validation data as dataset inputs of the tuning run (holdout: context `validation`)."""
        from mlflow.data.pandas_dataset import from_pandas
        from mlflow.entities import DatasetInput, InputTag

        tags = {"validation_fingerprint": vctx.split_fingerprint}
        self.tracker._batch(tuning_run_id, params={"validation_fingerprint": vctx.split_fingerprint}, tags=tags)
        if model_run_id:
            self.tracker._batch(model_run_id, tags=tags)
        inputs = []
        for name, frame, context in vctx.inputs:
            ctx_name = "validation" if context == "testing" else context
            try:
                ds = from_pandas(frame.reset_index(drop=True), name=f"{name}-validation"
                                             if ctx_name == "validation" else f"{name}-validation-train")
                inputs.append(DatasetInput(ds._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", ctx_name)]))
            except Exception as exc:  # dataset metadata is evidence, never fatal
                _log.warning("could not build the validation dataset %s: %s", name, exc)
        if inputs:
            self._log_inputs_retrying(tuning_run_id, inputs)

    def _log_inputs_retrying(self, run_id: str, inputs: list, attempts: int = 3) -> None:
        """Workers sharing a study log the same validation dataset at once: the store's get-or-create may lose
        the race (a unique-key violation); a retry then finds the row the other worker created."""
        for attempt in range(1, attempts + 1):
            try:
                self.client.log_inputs(run_id, datasets=inputs)
                return
            except Exception as exc:  # noqa: BLE001 - any store error; the last one is reported
                if attempt == attempts:
                    _log.warning("could not log the validation datasets of run %s: %s", run_id, exc)

    def end(self, run_id: str, status: str = "FINISHED", tags: dict | None = None) -> None:
        if tags:
            self.tracker._batch(run_id, tags=tags)
        self.client.set_terminated(run_id, status)

    def end_trial(self, run_id: str, state: str, metrics: dict[str, float] | None = None,
                  tags: dict | None = None) -> None:
        """Close a trial run with its Optuna state (COMPLETE/PRUNED -> FINISHED, FAIL -> FAILED)."""
        self.log(run_id, metrics=metrics, tags={"state": state, **(tags or {})})
        self.client.set_terminated(run_id, STATUS.get(state, "FAILED"))

    # reconciliation ---------------------------------------------------------------------------------------
    def running_runs(self, study_name: str, role: str) -> list[Any]:
        """RUNNING runs of `role` (trial/tuning) for this study, in any experiment."""
        exp_ids = [e.experiment_id for e in self.client.search_experiments()]
        flt = (f"tags.role = '{role}' and tags.`optuna.study_name` = '{study_name}' "
               "and attributes.status = 'RUNNING'")
        return list(self.client.search_runs(exp_ids, filter_string=flt, max_results=5000)) if exp_ids else []

    def trial_runs(self, study_name: str) -> list[Any]:
        """Every trial run of this study (any state), in any experiment."""
        exp_ids = [e.experiment_id for e in self.client.search_experiments()]
        flt = f"tags.role = 'trial' and tags.`optuna.study_name` = '{study_name}'"
        return list(self.client.search_runs(exp_ids, filter_string=flt, max_results=50000)) if exp_ids else []

    def is_dead_local(self, run: Any) -> bool:
        """A run started on this host by a process that no longer exists."""
        tags = run.data.tags
        if tags.get("worker.host") != self.host or not tags.get("worker.pid", "").isdigit():
            return False
        pid = int(tags["worker.pid"])
        if pid == self.pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return _is_zombie(pid)

    def close_dead_worker(self, tuning_run_id: str, reason: str, settled: dict[int, str] | None = None) -> None:
        """Close a dead worker's tuning run as FAILED with its RUNNING trial runs and its RUNNING ancestors.

        `settled` maps trial numbers to the final Optuna state (COMPLETE / PRUNED) the storage already holds: a worker
        killed after Optuna recorded the trial but before it closed the trial's run leaves that run RUNNING; it is
        closed with the recorded state (FINISHED), not as a failure.
        """
        run = self.client.get_run(tuning_run_id)
        exp = run.info.experiment_id
        children = self.client.search_runs(
            [exp], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{tuning_run_id}' and attributes.status = 'RUNNING'",
            max_results=5000)
        for child in children:
            number = child.data.tags.get("optuna.trial_number", "")
            state = (settled or {}).get(int(number)) if number.lstrip("-").isdigit() else None
            if state in ("COMPLETE", "PRUNED"):
                self.end_trial(child.info.run_id, state, tags={"closed_by": f"reconciliation ({reason})"})
            else:
                self.end(child.info.run_id, "FAILED", tags={"state": "FAIL", "failure": reason})
        run_id: str | None = tuning_run_id
        while run_id:
            r = self.client.get_run(run_id)
            if r.info.status == "RUNNING":
                self.end(run_id, "FAILED", tags={"failure": reason})
                _log.warning("closed run %s (%s) of a dead tuning worker as FAILED: %s", run_id,
                             r.data.tags.get(MLFLOW_RUN_NAME, ""), reason)
            run_id = r.data.tags.get(MLFLOW_PARENT_RUN_ID)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")
    except OSError:
        return False
