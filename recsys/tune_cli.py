"""`recsys tune CONFIG --model LABEL`: tune one model entry (resumable; run it on many machines at once).

An entry point (top layer, beside `recsys.cli`): it calls the experiment runner with a tuner from `recsys.tuning`.
"""

from __future__ import annotations

import argparse
import json


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from recsys.cli import _add_config_args

    p = subparsers.add_parser("tune", help="tune one model entry with Optuna, then refit it and evaluate on test",
                              description=__doc__)
    _add_config_args(p)
    p.add_argument("--model", required=True, help="label (or name) of the model entry to tune, e.g. als")
    p.add_argument("--n-trials", type=_count, default=None,
                   help="COMPLETE+PRUNED trials the study should hold in total "
                        "(default: the entry's n_trials; 0 = same)")
    p.add_argument("--timeout", type=float, default=None, help="seconds this worker keeps starting trials")
    p.add_argument("--storage", default=None,
                   help="Optuna storage URL (default $RECSYS_OPTUNA_STORAGE or sqlite:///optuna.db)")
    p.add_argument("--heartbeat-interval", type=int, default=30, help="seconds between a trial's heartbeats")
    p.add_argument("--grace-period", type=int, default=None,
                   help="seconds without heartbeat after which a trial's worker counts as dead (default 3x interval)")
    p.add_argument("--register", action="store_true", help="register the tuned model as challenger")
    p.add_argument("--no-log-model", action="store_true", help="skip logging the refitted model as a pyfunc")
    p.set_defaults(func=cmd_tune)


def _count(value: str) -> int:
    try:
        n = int(float(value))  # MLproject passes parameters as strings ("20" or "20.0")
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, but got {value!r}") from None
    if n < 0 or n != float(value):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0 (0 = the entry's n_trials), but got {value!r}")
    return n


def cmd_tune(args: argparse.Namespace) -> int:
    from recsys.cli import _overrides
    from recsys.errors import ConfigError
    from recsys.experiment import load_experiment_config, run_experiment
    from recsys.tracking import MlflowTracker
    from recsys.tuning.storage import Heartbeat
    from recsys.tuning.tuner import make_tuner

    cfg = load_experiment_config(args.config, _overrides(args))
    matches = [m for m in cfg.models if m.run_name == args.model] or [m for m in cfg.models if m.name == args.model]
    if len(matches) != 1:
        labels = [m.run_name for m in cfg.models]
        raise ConfigError(f"--model {args.model!r} must name exactly one model entry of {args.config} "
                          f"(labels: {', '.join(labels)})")
    entry = matches[0]
    if not entry.search:
        tunable = [m.run_name for m in cfg.models if m.search]
        raise ConfigError(f"model {entry.run_name!r} has no `search` space in {args.config}; "
                          f"tunable entries: {', '.join(tunable) or 'none'}")
    if args.register and (args.no_log_model or cfg.tracking.log_models == "none"):
        why = "--no-log-model" if args.no_log_model else "tracking.log_models is 'none'"
        raise ConfigError(f"--register needs the tuned model logged, but {why}; drop one of the two")
    registry = cfg.registry.model_copy(update={"enabled": bool(args.register)})
    cfg = cfg.model_copy(update={"models": [entry], "registry": registry})
    interval = max(1, args.heartbeat_interval)
    heartbeat = Heartbeat(interval=interval, grace_period=args.grace_period or 3 * interval)
    tracker = MlflowTracker(args.tracking_uri, log_models=not args.no_log_model)
    result = run_experiment(cfg, tracker=tracker, config_path=args.config, tune_models={entry.run_name},
                            tuner=make_tuner(storage=args.storage, n_trials=args.n_trials or None,
                                             timeout=args.timeout, heartbeat=heartbeat))
    final = result.results[0]
    print(json.dumps({"model": entry.run_name, "params": final.entry.params,
                      "test": {k: final.metrics.get(k) for k in (cfg.metrics.primary,)},
                      "model_run_id": result.run_ids.get(entry.run_name), "parent_run_id": result.parent_run_id},
                     default=str))
    return 0
