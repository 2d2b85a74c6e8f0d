"""The trial objective: sample params, fit on train-minus-validation, score on validation, report per epoch."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from recsys.config.schema import ModelEntry
from recsys.faults import checkpoint
from recsys.logging import get_logger
from recsys.tasks.base import Task, TaskContext
from recsys.tuning.space import ParamSpec

_log = get_logger(__name__)

PREFIX = "val_"  # trial runs log validation metrics as val_<metric>


class SurplusTrial(Exception):
    """The study already had n_trials done or in flight when this trial started (parallel workers raced)."""


def suggest(trial: optuna.Trial, specs: dict[str, ParamSpec]) -> dict[str, Any]:
    """Draw one value per searched parameter."""
    out: dict[str, Any] = {}
    for name, s in specs.items():
        if s.type == "categorical":
            out[name] = trial.suggest_categorical(name, s.choices or [])
            continue
        assert s.low is not None and s.high is not None  # ParamSpec checks int/float bounds
        if s.type == "int":
            out[name] = trial.suggest_int(name, int(s.low), int(s.high), step=int(s.step or 1), log=s.log)
        else:
            out[name] = trial.suggest_float(name, s.low, s.high, step=s.step, log=s.log)
    return out


def epoch_scorer(task: Task, vctx: TaskContext, metric: str) -> Callable[[Any], float] | None:
    """Score a partially fitted model on the validation target (recommend-like tasks), or None."""
    custom = getattr(task, "evaluate_partial", None)
    if custom is not None:
        return lambda model: float(custom(vctx, model)[metric])
    if "target" not in vctx.state or "data" not in vctx.state:
        return None
    from recsys.evaluation.recommend import evaluate_recommender

    cfg = vctx.cfg

    def score(model: Any) -> float:
        res = evaluate_recommender(model, vctx.state["data"], vctx.state["target"], cfg.metrics.k,
                                   cfg.metrics.batch_size, store_lists=False, desc="epoch",
                                   max_batch_mb=cfg.metrics.max_batch_mb)
        return float(res.metrics[metric])

    return score


class Objective:
    """Callable for `study.optimize`; `log` is a `recsys.tracking.optuna_tracking.TuningLog` or None."""

    def __init__(self, task: Task, vctx: TaskContext, entry: ModelEntry, specs: dict[str, ParamSpec],
                 metrics: list[str], n_trials: int, log: Any = None, tuning_run_id: str | None = None,
                 prune: bool = True) -> None:
        self.task, self.vctx, self.entry, self.specs = task, vctx, entry, specs
        self.metrics, self.n_trials, self.log, self.tuning_run_id = metrics, n_trials, log, tuning_run_id
        self.scorer = epoch_scorer(task, vctx, metrics[0]) if prune and len(metrics) == 1 else None
        self.completed_here: list[int] = []
        self._epochs: dict[int, list[int]] = {}

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        if self._surplus(trial):
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"trial {trial.number}: the study already has {self.n_trials} trials done or running")
        params = suggest(trial, self.specs)
        entry = self.entry.model_copy(update={"params": {**self.entry.params, **params}})
        t0 = time.perf_counter()
        run_id = None
        try:  # from the run's start on: a signal or an error closes the trial run
            run_id = self._start_run(trial, params)
            checkpoint(f"trial:{trial.number}")
            with tempfile.TemporaryDirectory(prefix="recsys-trial-") as tmp:
                result = self.task.run_model(self.vctx, entry, Path(tmp), callback=self._callback(trial, run_id),
                                             store=False)
        except optuna.TrialPruned:
            raise  # the study callback closes the run once the storage says PRUNED
        except BaseException as exc:
            if run_id:
                self.log.end_trial(run_id, "FAIL", tags={"error": repr(exc)[:500]})
            raise
        missing = [m for m in self.metrics if m not in result.metrics]
        if missing:
            from recsys.errors import ConfigError

            if run_id:
                self.log.end_trial(run_id, "FAIL", tags={"error": f"metrics {missing} not computed"})
            raise ConfigError(f"tuning metric(s) {missing} are not computed by task {self.task.name!r}; "
                              f"choose from {sorted(result.metrics)} (models.*.metric)")
        if run_id:
            vals = {f"{PREFIX}{k}": v for k, v in result.metrics.items() if v is not None}
            last_epoch = max(self._epochs.get(trial.number, [0]))  # same step as the last epoch's report
            self.log.log(run_id, metrics={**vals, "trial_seconds": time.perf_counter() - t0}, step=last_epoch)
        values = [float(result.metrics[m]) for m in self.metrics]
        if run_id and not all(math.isfinite(v) for v in values):
            # Optuna records a non-finite value as FAIL; close the run here so nobody mistakes it for a dead worker
            self.log.end_trial(run_id, "FAIL", tags={"error": f"objective value(s) {values} are not finite"})
        return values[0] if len(values) == 1 else values

    def on_trial_end(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Study callback: close the trial's run with the state the storage recorded."""
        checkpoint(f"recorded:{trial.number}")  # fault hook: Optuna holds the final state, the run is still open
        run_id = trial.user_attrs.get("mlflow_run_id")
        if trial.state == TrialState.COMPLETE:
            self.completed_here.append(trial.number)
        if not run_id or self.log is None or trial.state == TrialState.FAIL:
            return
        tags: dict[str, str] = {}
        metrics: dict[str, float] = {}
        if trial.state == TrialState.PRUNED and trial.intermediate_values:
            last = max(trial.intermediate_values)
            tags["pruned_at_epoch"] = str(last)
            metrics[f"{PREFIX}{self.metrics[0]}"] = trial.intermediate_values[last]
        self.log.end_trial(run_id, trial.state.name, metrics=metrics, tags=tags)

    # helpers ----------------------------------------------------------------------------------------------
    def _surplus(self, trial: optuna.Trial) -> bool:
        done = 0
        for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                  TrialState.RUNNING)):
            if t.state != TrialState.RUNNING or t.number < trial.number:
                done += 1
        return done >= self.n_trials

    def _start_run(self, trial: optuna.Trial, params: dict[str, Any]) -> str | None:
        if self.log is None or self.tuning_run_id is None:
            return None
        tags = {"role": "trial", "optuna.study_name": trial.study.study_name, "optuna.trial_number": str(trial.number),
                "optuna.trial_id": str(trial._trial_id), "state": "RUNNING", "model": self.entry.name,
                "label": self.entry.run_name, "evaluated_on": "validation"}
        previous = trial.user_attrs.get("mlflow_run_id")  # copied over when a stale trial is re-queued
        if previous:
            tags["optuna.retry_of_run"] = str(previous)
        run_id = self.log.start_run(self.tuning_run_id, f"{self.entry.run_name}-trial-{trial.number}",
                                    params={**params}, tags=tags)
        trial.set_user_attr("mlflow_run_id", run_id)
        trial.set_user_attr("mlflow_tuning_run_id", self.tuning_run_id)
        return run_id

    def _callback(self, trial: optuna.Trial, run_id: str | None):
        if self.scorer is None:
            return None
        metric = self.metrics[0]

        def on_epoch(epoch: int, info: dict) -> None:
            partial = info.get("partial_model")
            if partial is None:
                return
            assert self.scorer is not None  # checked before the callback was made
            value = self.scorer(partial())
            trial.report(value, epoch)
            self._epochs.setdefault(trial.number, []).append(epoch + 1)
            if run_id:
                self.log.log(run_id, metrics={f"{PREFIX}{metric}": value}, step=epoch + 1)
            if trial.should_prune():
                raise optuna.TrialPruned(f"trial {trial.number} pruned at epoch {epoch} ({metric}={value:.4f})")

        return on_epoch
