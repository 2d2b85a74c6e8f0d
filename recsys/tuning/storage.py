"""Where studies live and what they are called: storage URL, heartbeats, study name, sampler and pruner."""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial

from recsys.config.schema import ExperimentConfig, ModelEntry
from recsys.errors import ConfigError
from recsys.evaluation.direction import metric_direction
from recsys.random import derive_seed
from recsys.tuning.space import SAMPLERS, objective_metrics, space_hash

DEFAULT_STORAGE = "sqlite:///optuna.db"
STORAGE_ENV = "RECSYS_OPTUNA_STORAGE"


@dataclass(frozen=True)
class Heartbeat:
    """Optuna heartbeats: a RUNNING trial whose worker stopped beating for `grace_period` s is failed and retried."""

    interval: int = 30
    grace_period: int = 90
    max_retry: int = 3


def resolve_storage(storage: str | None = None) -> str:
    """--storage > $RECSYS_OPTUNA_STORAGE > sqlite:///optuna.db (in the working directory)."""
    url = storage or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    if "://" not in url:
        raise ConfigError(f"Optuna storage {url!r} is not a database URL; use e.g. sqlite:///optuna.db or "
                          "postgresql://user:password@host:5432/db (--storage or $" + STORAGE_ENV + ")")
    return normalize_url(url)


def normalize_url(url: str) -> str:
    """`postgres://` and `postgresql://` get the psycopg2 driver SQLAlchemy needs (the form a user types)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def check_storage(url: str, connect_timeout: int = 5) -> None:
    """Cheap check before any work: the storage opens, and a SQLite file is a database that can be written.

    Raises `recsys.faults.StoreError` with one line (store, problem, fix; password masked).
    """
    from recsys.faults import StoreError, check_sqlite, describe, sqlite_path

    label = "Optuna storage"
    path = sqlite_path(url)
    if path is not None:
        check_sqlite(path, label)
        return
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": connect_timeout}
                                          if url.startswith("postgresql") else {})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - a URL SQLAlchemy cannot parse, a missing driver, a server that is down
        if isinstance(exc, ModuleNotFoundError):
            raise StoreError(f"{label} {redact(url)}: the database driver {exc.name!r} is not installed; "
                             f"pip install it, or use sqlite:///optuna.db") from None
        raise StoreError(describe(exc, {label: url}) or f"{label} {redact(url)}: {exc}") from None


def redact(url: str) -> str:
    """The URL without its password (safe to log)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str, heartbeat: Heartbeat,
                 on_stale: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> RDBStorage:
    """RDB storage with heartbeats; a stale trial is failed, `on_stale` runs, then it is re-queued (max_retry)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=heartbeat.max_retry)

    def stale(study: optuna.Study, trial: FrozenTrial) -> None:
        if on_stale is not None:
            on_stale(study, trial)
        retry(study, trial)

    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}
    import sqlalchemy.exc

    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat.interval,
                                  grace_period=heartbeat.grace_period, heartbeat_stale_trial_callback=stale)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # workers starting together on an empty database race to create Optuna's tables; the loser retries
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def study_name(cfg: ExperimentConfig, entry: ModelEntry) -> str:
    """`<experiment>.<label>.<hash>`; the hash covers what defines the objective (space, metrics, fixed params,
    data, split, task, seed) so the same command resumes and a changed space starts a new study.
    n_trials, timeout, sampler and pruner are left out: raising n_trials resumes the same study."""
    metrics = objective_metrics(entry.metric, cfg.metrics.primary)
    payload = {
        "search": entry.search, "metrics": metrics, "directions": directions(cfg, entry), "model": entry.name,
        "params": entry.params, "task": cfg.task, "seed": cfg.seed, "k": cfg.metrics.k,
        "data": cfg.data.model_dump(mode="json"), "split": cfg.split.model_dump(mode="json"),
        "task_params": cfg.task_params,
    }
    return f"{cfg.name}.{entry.run_name}.{space_hash(payload)}"


def directions(cfg: ExperimentConfig, entry: ModelEntry) -> list[Direction]:
    metrics = objective_metrics(entry.metric, cfg.metrics.primary)
    if entry.directions is not None:
        return list(entry.directions)
    return [cfg.selection.direction if m == cfg.selection_metric else default_direction(m) for m in metrics]


Direction = Literal["maximize", "minimize"]


def default_direction(metric: str) -> Direction:
    """Direction of a metric a config names without `directions` (the rule of `recsys.evaluation.direction`)."""
    return metric_direction(metric)


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """Re-seeds the wrapped sampler from (seed, trial number) before each trial.

    A single worker is reproducible from the config seed, and concurrent workers on one study (different trial
    numbers) never draw the same random start-up points.
    """

    def __init__(self, factory: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._factory, self._seed = factory, seed
        self._inner = factory(seed)

    def infer_relative_search_space(self, study, trial):
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self._inner = self._factory(derive_seed(self._seed, study.study_name, trial.number))
        self._inner.before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


def make_sampler(entry: ModelEntry, seed: int) -> optuna.samplers.BaseSampler:
    spec = entry.sampler if isinstance(entry.sampler, dict) else {"name": entry.sampler}
    name, kwargs = spec.get("name", "tpe"), {k: v for k, v in spec.items() if k != "name"}
    classes = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
               "nsga2": optuna.samplers.NSGAIISampler}
    if name not in classes:
        raise ConfigError(f"sampler {name!r} is unknown (allowed: {', '.join(SAMPLERS)})")
    cls = classes[name]

    def factory(s: int) -> optuna.samplers.BaseSampler:
        try:
            return cls(seed=s, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"sampler options {kwargs} are not valid for {name!r}: {exc}") from None

    factory(seed)  # fail fast on bad options
    return TrialSeededSampler(factory, seed)


def make_pruner(entry: ModelEntry, multi_objective: bool) -> optuna.pruners.BasePruner:
    if entry.pruner == "none" or multi_objective:  # Optuna cannot prune multi-objective trials
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
