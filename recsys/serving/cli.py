"""`recsys serve`: the HTTP service over the models holding an alias.

    RECSYS_ADMIN_TOKEN=secret recsys serve --models recsys-quickstart --alias champion --port 8000
"""

from __future__ import annotations

import argparse
import os


def cmd_serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from recsys.errors import ConfigError
    from recsys.serving.loader import ServeConfig
    from recsys.tracking.store import check_tracking_store, resolve_tracking_uri

    try:
        config = ServeConfig(tracking_uri=resolve_tracking_uri(args.tracking_uri),
                             models=tuple(args.models.split(",")), alias=args.alias, max_k=args.max_k,
                             cache_k=tuple(int(k) for k in args.cache_k.split(",") if k.strip()),
                             poll_interval=args.poll_interval, max_body_bytes=args.max_body_bytes)
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"invalid `recsys serve` options: {exc}") from exc
    # one line and exit 2 before listening, instead of a logged traceback and a service that serves nothing
    check_tracking_store(config.tracking_uri, create=False, write=False)
    from recsys.serving.app import serve  # FastAPI, uvicorn and mlflow: after the store check, which fails fast

    serve(config, host=args.host, port=args.port, port_file=args.port_file)
    return 0


def _bounded(low: int, high: int):
    """argparse type: an int in [low, high] (a port 99999 would otherwise be taken modulo 65536 by the OS)."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer in {low}..{high}, but got {value!r}") from None
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"must be in {low}..{high}, but got {n}")
        return n

    return parse


def add_commands(sub: argparse._SubParsersAction) -> None:
    _add_serve(sub)
    _add_score(sub)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the models holding an alias over HTTP (FastAPI + uvicorn)")
    p.add_argument("--models", default=os.environ.get("RECSYS_SERVE_MODELS", "recsys-quickstart"),
                   help="comma-separated registered model names (default $RECSYS_SERVE_MODELS or recsys-quickstart)")
    p.add_argument("--alias", default="champion", help="alias to serve (default champion)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_bounded(0, 65535), default=8000,
                   help="TCP port (default 8000; 0 = any free port)")
    p.add_argument("--port-file", default=None,
                   help="write the bound port to this file once listening (useful with --port 0)")
    p.add_argument("--poll-interval", type=float, default=30.0,
                   help="seconds between alias checks; 0 = only on POST /admin/reload (default 30)")
    p.add_argument("--max-k", type=_bounded(1, 1000), default=100,
                   help="top-K precomputed per user and item; largest k served")
    p.add_argument("--cache-k", default="10",
                   help="comma-separated k values answered from pre-serialised JSON (the model's k is always cached)")
    p.add_argument("--max-body-bytes", type=_bounded(1024, 1 << 30), default=1 << 20,
                   help="largest request body in bytes; larger ones get 413 before parsing (default 1 MiB)")
    p.set_defaults(func=cmd_serve)


def cmd_score(args: argparse.Namespace) -> int:
    from recsys.tracking.store import check_tracking_store, resolve_tracking_uri

    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    check_tracking_store(tracking_uri, create=False)  # unknown scheme, bad file, unreachable server: one line
    # the heavy imports (mlflow, the models) after the check: a bad store is one line at once
    from recsys.errors import RecsysError
    from recsys.serving.batch import make_sink, read_users, score_to
    from recsys.serving.predictor import RecommendPredictor, load_predictor
    from recsys.tracking.model_store import batch_run, fetch_model

    sink = make_sink(args.output, args.table)  # bad output is an error before any download
    with fetch_model(tracking_uri, args.model) as (ref, folder):
        predictor = load_predictor(folder)
        if not isinstance(predictor, RecommendPredictor):
            raise RecsysError(f"{args.model} answers task {predictor.task!r}; batch scoring needs a recommend model")
        users = read_users(args.users, predictor.model.users_.ids)
        with batch_run(tracking_uri, args.experiment, ref, {"k": args.k, "users": args.users,
                                                            "batch_size": args.batch_size,
                                                            "output": sink.target}) as log:
            result = score_to(predictor, users, args.k, sink, args.batch_size)
            log({"users": result.users, "rows": result.rows, "users_cold_start": result.users_cold_start,
                 "seconds": result.seconds})
    print(f"{result.rows} rows for {result.users} users ({result.users_cold_start} cold start) from "
          f"{ref.name} v{ref.version} -> {result.output} in {result.seconds:.1f}s")
    return 0


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="batch top-k for many users to Parquet or a database table (atomic swap)")
    p.add_argument("--model", required=True, help="models:/<name>@<alias> or models:/<name>/<version>")
    p.add_argument("--users", default="all", help="`all` (every user the model knows) or a CSV/Parquet/text file "
                                                  "of user ids")
    p.add_argument("--k", type=int, default=50, help="items per user (default 50)")
    p.add_argument("--output", required=True, help="a .parquet path, or a SQLAlchemy URL (with --table)")
    p.add_argument("--table", default=None, help="table name when --output is a database URL")
    p.add_argument("--batch-size", type=int, default=2000, help="users scored per chunk (default 2000)")
    p.add_argument("--experiment", default="batch-scoring", help="MLflow experiment of the run (default "
                                                                 "batch-scoring; under `mlflow run`: its run)")
    p.set_defaults(func=cmd_score)
