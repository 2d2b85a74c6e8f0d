"""The `recsys` command. Entry points (MLproject, tests) call the same functions.

    recsys run configs/quickstart.yaml --set seed=7
    recsys data describe configs/movielens.yaml
    recsys data load events.csv items.csv --into sqlite:///shop.db
    recsys models
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable

from recsys.logging import configure, get_logger

_log = get_logger(__name__)



def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="experiment YAML (e.g. configs/quickstart.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (repeatable), e.g. --set models.0.params.factors=32")
    p.add_argument("--overrides", dest="overrides_str", default="",
                   help="space-separated KEY=VALUE pairs (the MLproject `overrides` parameter)")


def _overrides(args: argparse.Namespace) -> list[str]:
    from recsys.config.loader import split_overrides

    return [*args.overrides, *split_overrides(args.overrides_str or "")]


def cmd_run(args: argparse.Namespace) -> int:
    from recsys.experiment import load_experiment_config, run_experiment
    from recsys.tracking import MlflowTracker

    cfg = load_experiment_config(args.config, _overrides(args))
    tracker = MlflowTracker(args.tracking_uri)
    tuner, tune_models = None, None
    if args.tune:
        from recsys.tuning import make_tuner

        tuner = make_tuner(storage=args.storage, n_trials=None)
        tune_models = {m.run_name for m in cfg.models if m.search}
    result = run_experiment(cfg, tracker=tracker, config_path=args.config, tuner=tuner, tune_models=tune_models)
    from recsys.evaluation.decision import fmt
    from recsys.evaluation.report import comparison_rows

    if result.decision is not None:
        print(comparison_rows(result.comparison, result.decision).to_string(index=False))
        print(f"\nselected: {result.best.entry.run_name} ({cfg.selection_metric}="
              f"{fmt(result.best.metrics.get(cfg.selection_metric))}) because {result.decision.reason}")
        print(f"tied with the best: {', '.join(result.decision.tied) or 'none'}; parent run {result.parent_run_id}; "
              f"tracking {tracker.tracking_uri}")
    else:
        print(result.comparison.to_string(float_format=fmt))
    if result.registry:
        print(f"registry: {json.dumps(result.registry, default=str)}")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from recsys.data import describe, load_dataset, split_dataset
    from recsys.data.stats import describe_text, feasibility
    from recsys.experiment import load_experiment_config

    cfg = load_experiment_config(args.config, _overrides(args))
    ds = load_dataset(cfg.data, cfg.seed)
    split = split_dataset(ds, cfg.split, cfg.seed)
    stats = describe(ds.all_interactions, split)
    verdict = feasibility(stats)
    if args.json:
        print(json.dumps({**stats, "feasibility": verdict}, indent=2, default=str))  # full precision
    else:
        print(describe_text(stats, verdict))
    return 0


def cmd_data_load(args: argparse.Namespace) -> int:
    from recsys.config.urls import mask_url
    from recsys.data.sql import load_files

    index = [c.strip() for c in args.index.split(",") if c.strip()] if args.index else None
    tables = [t.strip() for t in args.table.split(",") if t.strip()] if args.table else None
    done = load_files(args.files, args.into, tables=tables, index=index, if_exists=args.if_exists,
                      chunksize=args.chunksize, sep=args.sep)
    for t in done:
        print(f"{t['file']} -> {mask_url(args.into)} table {t['table']}: {t['rows']} rows, "
              f"indexes {', '.join(t['indexes']) or 'none'}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from recsys.models.catalog import available, get_model_class

    for name in available():
        cls = get_model_class(name)
        fields = ", ".join(f"{k}={v.get_default(call_default_factory=True)!r}"
                           for k, v in cls.Config.model_fields.items())
        print(f"{name:20s} tasks={','.join(cls.tasks):30s} {fields}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from recsys.evaluation.metric_registry import markdown

    print(markdown(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsys", description=__doc__.split("\n")[0])
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default $MLFLOW_TRACKING_URI "
                                                             "or sqlite:///mlflow.db)")
    parser.add_argument("--log-level", default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run an experiment and log it to MLflow")
    _add_config_args(p)
    p.add_argument("--tune", action="store_true", help="tune entries that have a `search` space before fitting")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default $RECSYS_OPTUNA_STORAGE or sqlite:///optuna.db)")
    p.set_defaults(func=cmd_run)
    data = sub.add_parser("data", help="data utilities").add_subparsers(dest="data_command", required=True)
    d = data.add_parser("describe", help="statistics that tell whether collaborative filtering is feasible")
    _add_config_args(d)
    d.add_argument("--json", action="store_true", help="print the raw numbers and the verdict as JSON (full precision)")
    d.set_defaults(func=cmd_describe)
    ld = data.add_parser("load", help="create indexed database tables from CSV/Parquet files (data.source: sql)")
    ld.add_argument("files", nargs="+", help="CSV or Parquet files; one table each, named after the file")
    ld.add_argument("--into", required=True, help="SQLAlchemy URL, e.g. sqlite:///shop.db (${VAR} expands)")
    ld.add_argument("--table", default=None, help="comma-separated table names, one per file (default: file names)")
    ld.add_argument("--index", default=None, help="comma-separated columns to index where present (default: *_id and "
                                                  "timestamp/ts/time/date columns)")
    ld.add_argument("--if-exists", default="fail", choices=["fail", "replace", "append"])
    ld.add_argument("--chunksize", type=int, default=50_000, help="rows written per batch")
    ld.add_argument("--sep", default=",", help="CSV separator")
    ld.set_defaults(func=cmd_data_load)
    m = sub.add_parser("models", help="list the model catalog")
    m.set_defaults(func=cmd_models)
    sub.add_parser("metrics", help="the metric registry as a markdown table (docs/metrics.md)").set_defaults(
        func=cmd_metrics)
    for add in _command_plugins():
        add(sub)
    return parser


def _command_plugins() -> list[Callable]:
    import importlib

    plugins = []
    for mod in ("recsys.tune_cli", "recsys.tracking.registry_cli", "recsys.serving.cli"):
        try:
            plugins.append(importlib.import_module(mod).add_commands)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
    return plugins


def configure_process() -> None:
    """Process-wide settings of the command line (the library changes none at import): MLflow artifact progress
    bars off unless MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR says otherwise, and MLflow's hint about integer columns
    silenced (ids are never missing in our frames; the hint is noise on every dataset and model log)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)


def main(argv: list[str] | None = None) -> int:
    import os

    from recsys.faults import boundary

    parser = build_parser()
    args = parser.parse_args(argv)
    configure(args.log_level)
    configure_process()
    tracking = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    storage = getattr(args, "storage", None) or os.environ.get("RECSYS_OPTUNA_STORAGE")
    if args.command == "tune" or getattr(args, "tune", False):
        storage = storage or "sqlite:///optuna.db"
    return boundary(lambda: int(args.func(args) or 0),
                    {"MLflow tracking store": tracking, "Optuna storage": storage})


if __name__ == "__main__":
    sys.exit(main())
