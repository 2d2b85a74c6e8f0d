"""`recsys serve`: the HTTP service over the models holding an alias.

    RECSYS_ADMIN_TOKEN=secret recsys serve --models recsys-quickstart --alias champion --port 8000
"""

from __future__ import annotations

import argparse
import os


def cmd_serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from recsys.errors import ConfigError
    from recsys.serving.app import serve
    from recsys.serving.loader import ServeConfig
    from recsys.tracking import resolve_tracking_uri

    try:
        config = ServeConfig(tracking_uri=resolve_tracking_uri(args.tracking_uri),
                             models=tuple(args.models.split(",")), alias=args.alias, max_k=args.max_k,
                             cache_k=tuple(int(k) for k in args.cache_k.split(",") if k.strip()),
                             poll_interval=args.poll_interval, max_body_bytes=args.max_body_bytes)
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"invalid `recsys serve` options: {exc}") from exc
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
