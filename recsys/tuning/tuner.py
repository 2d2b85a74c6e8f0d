"""Tune one model entry: create or resume its study, run the missing trials, pick and log the best.

Layout in MLflow: model run -> tuning run (`role=tuning`) -> one run per trial (`role=trial`). Any number of
workers may run `tune_model` on one study at once (shared RDB storage); together they run `n_trials`
COMPLETE + PRUNED trials. A worker that dies leaves a RUNNING trial whose heartbeat goes stale: the next
worker fails it, re-queues its params, and closes the dead worker's MLflow runs as FAILED.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from recsys.config.schema import ModelEntry
from recsys.errors import ConfigError
from recsys.faults import interrupted
from recsys.logging import get_logger
from recsys.tasks.base import Task, TaskContext
from recsys.tuning import report
from recsys.tuning.objective import PREFIX, Objective, SurplusTrial
from recsys.tuning.space import check_objectives, objective_metrics, parse_space
from recsys.tuning.storage import (
    Heartbeat,
    directions,
    make_pruner,
    make_sampler,
    open_storage,
    redact,
    resolve_storage,
    study_name,
)

_log = get_logger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _not_interrupted(record: logging.LogRecord) -> bool:
    """Optuna's 'Trial N failed' warning (with a traceback) is noise once a signal stopped the trial on purpose."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (isinstance(exc, KeyboardInterrupt) or (interrupted() and "failed" in record.getMessage()))


logging.getLogger("optuna.study._optimize").addFilter(_not_interrupted)

DONE = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class TuneResult:
    """Outcome of one worker's call: the study's chosen trial (over all workers) and what this worker ran."""

    entry: ModelEntry  # the input entry with the chosen params merged in
    study_name: str
    storage: str  # redacted
    best_trial: int
    best_params: dict[str, Any]
    best_values: dict[str, float]
    baseline_values: dict[str, float]
    trials_by_state: dict[str, int]
    selected: str = "best_trial"  # or "defaults": the best trial did not beat the default params on validation
    validation_fingerprint: str = ""
    completed_here: list[int] = field(default_factory=list)
    tuning_run_id: str | None = None


def tune_model(task: Task, ctx: TaskContext, entry: ModelEntry, tracker: Any = None, parent_run_id: str | None = None,
               storage: str | None = None, n_trials: int | None = None, timeout: float | None = None,
               heartbeat: Heartbeat | None = None) -> TuneResult:
    """Run (or resume) the study of `entry` on `task.validation_context(ctx)`; the test part is never read.

    n_trials: target number of COMPLETE + PRUNED trials in the study (all workers together); default
    entry.n_trials. timeout: seconds this worker spends starting new trials.

    Example:
        >>> res = tune_model(task, ctx, cfg.models[3], storage="sqlite:///optuna.db", n_trials=20)  # doctest: +SKIP
        >>> res.entry.params  # doctest: +SKIP
    """
    cfg = ctx.cfg
    if not entry.search:
        raise ConfigError(f"model {entry.run_name!r} has no `search` space to tune; add models.*.search "
                          "(e.g. search: {factors: {type: int, low: 16, high: 128, log: true}})")
    specs = parse_space(entry.search)
    metrics = objective_metrics(entry.metric, cfg.metrics.primary)
    known = set(task.metric_names(cfg))
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise ConfigError(f"tuning metric(s) {unknown} of model {entry.run_name!r} are not computed by task "
                          f"{cfg.task!r}; choose from {sorted(known)} (models.*.metric)")
    dirs = directions(cfg, entry)
    rule = check_objectives(entry.metric, entry.directions, entry.select, entry.sampler, True)
    n_target = int(n_trials or entry.n_trials)
    timeout = timeout if timeout is not None else entry.timeout
    heartbeat = heartbeat or Heartbeat()
    url = resolve_storage(storage)
    name = study_name(cfg, entry)
    log = _tuning_log(tracker) if parent_run_id else None

    def on_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        run = trial.user_attrs.get("mlflow_tuning_run_id")
        _log.warning("trial %d of %s: worker heartbeat stale, failing and re-queueing it", trial.number, name)
        if log is not None and run:
            log.close_dead_worker(run, f"heartbeat of trial {trial.number} went stale (worker died)", _settled(study))

    rdb = open_storage(url, heartbeat, on_stale)
    study = optuna.create_study(storage=rdb, study_name=name, directions=dirs, load_if_exists=True,
                                sampler=make_sampler(entry, cfg.seed), pruner=make_pruner(entry, len(metrics) > 1))
    _set_study_attrs(study, cfg.name, entry, metrics)
    _log.info("study %s on %s: %d/%d trials done", name, redact(url), _n_done(study), n_target)

    tuning_run_id = None
    if log is not None:
        params = {f"search.{k}": v for k, v in entry.search.items()}
        params.update({"n_trials": n_target, "metrics": metrics, "directions": dirs, "sampler": entry.sampler,
                       "pruner": entry.pruner, "timeout": timeout, "storage": redact(url), "study_name": name})
        tuning_run_id = log.start_run(parent_run_id, f"{entry.run_name}-tuning", params=params,
                                      tags={"role": "tuning", "optuna.study_name": name, "model": entry.name,
                                            "label": entry.run_name, "optuna.storage": redact(url)})
        log.log(parent_run_id, tags={"tuned": "true", "optuna.study_name": name, "tuning_run_id": tuning_run_id})
    try:
        reconcile(study, log)
        vctx = task.validation_context(ctx)
        if log is not None:
            log.log_validation(tuning_run_id, parent_run_id, vctx)
        baseline = _baseline(task, vctx, entry, metrics)
        if log is not None:
            log.log(tuning_run_id, metrics={f"baseline_{PREFIX}{m}": v for m, v in baseline.items()})
        objective = Objective(task, vctx, entry, specs, metrics, n_target, log, tuning_run_id,
                              prune=entry.pruner != "none")
        run_trials(study, objective, n_target, timeout, heartbeat)
        reconcile(study, log)
        best = report.select_trial(study, metrics, dirs, rule)
        info = report.summary(study, redact(url), metrics, dirs, n_target, best, baseline, rule)
        info["completed_by_this_worker"] = objective.completed_here
        best_values = dict(zip(metrics, best.values))
        selected = "best_trial" if beats(best_values, baseline, metrics, dirs) else "defaults"
        info["selected"] = selected
        if log is not None:
            _log_outcome(log, study, info, metrics, tuning_run_id, parent_run_id)
    except BaseException as exc:
        if log is not None:  # a signal (recsys.faults.Interrupted is a KeyboardInterrupt) closes it as KILLED
            log.end(tuning_run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    if log is not None:
        log.end(tuning_run_id, "FINISHED")
    _log.info("study %s: best trial %d %s (default params: %s); %s", name, best.number, best_values, baseline,
              info["trials_by_state"])
    if selected == "defaults":
        _log.warning("study %s: the best trial %s does not beat the default params %s on validation; "
                     "refitting the defaults (tuning.selected=defaults)", name, best_values, baseline)
        tuned = entry
    else:
        tuned = entry.model_copy(update={"params": {**entry.params, **best.params}})
    return TuneResult(entry=tuned, study_name=name, storage=redact(url), best_trial=best.number,
                      best_params=dict(best.params), best_values=best_values, baseline_values=baseline,
                      trials_by_state=info["trials_by_state"], selected=selected,
                      validation_fingerprint=vctx.split_fingerprint, completed_here=objective.completed_here,
                      tuning_run_id=tuning_run_id)


def beats(best: dict[str, float], baseline: dict[str, float], metrics: list[str], dirs: Sequence[str]) -> bool:
    """Whether the chosen trial is better than the default params on validation.

    One metric: strictly better in its direction. Several: no worse on every metric and strictly better on
    one (Pareto dominance). Without a baseline score (it could not be measured) the trial is kept.
    """
    if any(m not in baseline or baseline[m] != baseline[m] for m in metrics):
        return True
    sign = {m: 1.0 if d == "maximize" else -1.0 for m, d in zip(metrics, dirs)}
    gain = [sign[m] * (best[m] - baseline[m]) for m in metrics]
    return all(g >= 0 for g in gain) and any(g > 0 for g in gain)


def run_trials(study: optuna.Study, objective: Objective, n_trials: int, timeout: float | None,
               heartbeat: Heartbeat) -> None:
    """Run trials until the study holds `n_trials` COMPLETE + PRUNED ones (counted over all workers).

    While peers finish the last trials this worker waits, so it can take over a trial whose worker dies.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        _fail_stale(study)
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state in DONE for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if done >= n_trials:
            return
        if deadline is not None and time.monotonic() >= deadline:
            _log.info("timeout reached with %d/%d trials done; re-run to resume", done, n_trials)
            return
        if done + running >= n_trials:
            time.sleep(max(1.0, heartbeat.interval / 2))  # peers are running the last trials
            continue
        study.optimize(objective, n_trials=1, callbacks=[objective.on_trial_end], catch=(SurplusTrial,))


def reconcile(study: optuna.Study, log: Any) -> None:
    """Fail stale trials (their callback closes the dead worker's runs); close leftover RUNNING MLflow runs."""
    _fail_stale(study)
    if log is None:
        return
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    settled = {n: st.name for n, st in states.items() if st in DONE}  # as _settled, without a second query
    from recsys.tracking.optuna_tracking import MLFLOW_PARENT_RUN_ID

    for run in log.running_runs(study.study_name, "trial"):
        number = int(run.data.tags.get("optuna.trial_number", "-1"))
        state = states.get(number)
        parent = run.data.tags.get(MLFLOW_PARENT_RUN_ID)
        if state in DONE:
            # Optuna recorded the trial, the worker died before its study callback closed the run: close it as
            # recorded, whoever's worker it was (the state is final, so closing it cannot race a live worker)
            log.end_trial(run.info.run_id, state.name, tags={"closed_by": "reconciliation (worker did not close it)"})
        elif state == TrialState.FAIL or log.is_dead_local(run):
            # FAIL + RUNNING run: the worker never got to close it (it closes before Optuna records FAIL)
            log.close_dead_worker(parent, f"trial {number} is {state.name if state else 'missing'} in Optuna "
                                          "but its worker did not close the run", settled)
            if log.client.get_run(run.info.run_id).info.status == "RUNNING":
                log.end_trial(run.info.run_id, "FAIL", tags={"failure": "worker died"})
    for run in log.running_runs(study.study_name, "tuning"):
        if log.is_dead_local(run):
            log.close_dead_worker(run.info.run_id, "worker process is gone")


def make_tuner(storage: str | None = None, n_trials: int | None = None, timeout: float | None = None,
               heartbeat: Heartbeat | None = None):
    """The hook `run_experiment(tuner=...)` calls: tune, then return the entry with the chosen params.

    The storage is checked here, before any data is loaded or model fitted (one line on a bad store).
    """
    from recsys.tuning.storage import check_storage

    check_storage(resolve_storage(storage))

    def tuner(task: Task, ctx: TaskContext, entry: ModelEntry, tracker: Any, model_run_id: str | None) -> ModelEntry:
        return tune_model(task, ctx, entry, tracker, model_run_id, storage=storage, n_trials=n_trials,
                          timeout=timeout, heartbeat=heartbeat).entry

    return tuner


# helpers ------------------------------------------------------------------------------------------------------
def _tuning_log(tracker: Any):
    if tracker is None or getattr(tracker, "client", None) is None:
        return None
    from recsys.tracking.optuna_tracking import TuningLog

    return TuningLog(tracker)


def _settled(study: optuna.Study) -> dict[int, str]:
    """Trial number -> final state name, for the trials Optuna already recorded as COMPLETE or PRUNED."""
    return {t.number: t.state.name for t in study.get_trials(deepcopy=False, states=tuple(DONE))}


def _fail_stale(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
        _fail_unbeaten(study)


def _fail_unbeaten(study: optuna.Study) -> None:
    """Fail (and retry) RUNNING trials that never recorded a heartbeat within the grace period.

    Optuna's `fail_stale_trials` skips trials without a heartbeat row, so a worker killed between creating a
    trial and its first beat would leave that trial RUNNING forever and every peer waiting on it.
    """
    import copy

    import sqlalchemy
    from optuna.storages import RDBStorage
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
    from optuna.storages._rdb import models

    storage = study._storage
    rdb = getattr(storage, "_backend", storage)
    if not isinstance(rdb, RDBStorage) or not isinstance(storage, BaseHeartbeat) or not is_heartbeat_enabled(storage):
        return
    grace = rdb.grace_period if rdb.grace_period is not None else 2 * (rdb.heartbeat_interval or 0)
    session = rdb.scoped_session()
    try:
        now = _utc_naive(session.execute(sqlalchemy.func.now()).scalar_one())
        rows = (session.query(models.TrialModel.trial_id, models.TrialModel.__table__.c.datetime_start)
                .outerjoin(models.TrialHeartbeatModel,
                           models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id)
                .filter(models.TrialModel.study_id == study._study_id,
                        models.TrialModel.state == TrialState.RUNNING,
                        models.TrialHeartbeatModel.trial_heartbeat_id.is_(None))
                .all())
    finally:
        session.close()
    # Optuna stores datetime_start as naive UTC; compare in UTC against both the database clock and ours
    # (never the local wall clock: under TZ=Asia/Tokyo that is 9 h ahead and would fail every live trial),
    # with a generous margin on top of the grace period
    limit = dt.timedelta(seconds=2 * grace + 5)
    ours = _utc_naive(dt.datetime.now(dt.UTC))
    for trial_id, started in rows:
        if started is None or (now - started < limit and ours - started < limit):
            continue
        try:
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # a peer got there first
        _log.warning("trial id %d never sent a heartbeat; its worker died before beating: failed and retried",
                     trial_id)
        callback = storage.get_heartbeat_stale_trial_callback()
        if callback is not None:
            callback(study, copy.deepcopy(storage.get_trial(trial_id)))


def _utc_naive(value: dt.datetime) -> dt.datetime:
    """A datetime as naive UTC, the form Optuna's RDB storage keeps `datetime_start` in.

    Aware values (PostgreSQL's `now()` comes back in the session's time zone) are converted; naive ones are
    taken as UTC already (SQLite's CURRENT_TIMESTAMP is UTC).
    """
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None)


def _n_done(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=DONE))


def _set_study_attrs(study: optuna.Study, experiment: str, entry: ModelEntry, metrics: list[str]) -> None:
    attrs = {"experiment": experiment, "model": entry.name, "label": entry.run_name, "metrics": metrics,
             "search": entry.search}
    if study.user_attrs.get("search") != entry.search:
        for k, v in attrs.items():
            study.set_user_attr(k, v)


def _baseline(task: Task, vctx: TaskContext, entry: ModelEntry, metrics: list[str]) -> dict[str, float]:
    """Validation score of the entry's own (untuned) params: what tuning has to beat."""
    with tempfile.TemporaryDirectory(prefix="recsys-baseline-") as tmp:
        res = task.run_model(vctx, entry, Path(tmp), store=False)
    return {m: float(res.metrics[m]) for m in metrics if m in res.metrics}


def _log_outcome(log: Any, study: optuna.Study, info: dict, metrics: list[str], tuning_run_id: str | None,
                 model_run_id: str | None) -> None:
    by_state = info["trials_by_state"]
    values = info["best_values"]
    m = {f"best_{PREFIX}{k}": v for k, v in values.items()}
    m.update({"n_trials_complete": by_state["COMPLETE"], "n_trials_pruned": by_state["PRUNED"],
              "n_trials_failed": by_state["FAIL"], "n_trials_this_worker": len(info["completed_by_this_worker"])})
    for k, v in values.items():
        base = info["baseline_values"].get(k)
        if base is not None:
            m[f"uplift_{PREFIX}{k}"] = v - base
    params = {f"best.{k}": v for k, v in info["best_params"].items()}
    log.log(tuning_run_id, metrics=m, params=params, tags={"best_trial": str(info["best_trial"])})
    selected = info.get("selected", "best_trial")
    log.log(tuning_run_id, tags={"tuning.selected": selected})
    log.log(model_run_id, metrics={**{f"tuning_best_{PREFIX}{k}": v for k, v in values.items()},
                                   **{f"tuning_baseline_{PREFIX}{k}": v for k, v in info["baseline_values"].items()}},
            tags={"optuna.best_trial": str(info["best_trial"]), "tuning.selected": selected})
    with tempfile.TemporaryDirectory(prefix="recsys-study-") as tmp:
        files = report.write_artifacts(study, info, metrics, Path(tmp))
        log.log_files(tuning_run_id, files=files)
