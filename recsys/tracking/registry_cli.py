"""`recsys registry promote|rollback|status`: the promotion gate from the command line.

    recsys registry promote --config configs/quickstart.yaml            # policy from the config's registry.policy
    recsys registry promote -m recsys-quickstart --policy configs/policies/strict.yaml
    recsys registry rollback -m recsys-quickstart --reason "conversion dropped"
    recsys registry status -m recsys-quickstart
"""

from __future__ import annotations

import argparse
import json

from recsys.errors import ConfigError

DEFAULT_POLICY = "configs/policies/default.yaml"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    reg = subparsers.add_parser("registry", help="promote / roll back / inspect registered model versions")
    sub = reg.add_subparsers(dest="registry_command", required=True)
    p = sub.add_parser("promote", help="gate the challenger against @champion with a promotion policy")
    _target_args(p)
    p.add_argument("--policy", default=None, help=f"policy YAML (default: the config's registry.policy, "
                                                  f"else {DEFAULT_POLICY})")
    p.add_argument("--version", default=None, help="version to consider (default: the one holding @challenger)")
    p.add_argument("--fail-if-kept", action="store_true", help="exit 1 when the champion is kept")
    p.set_defaults(func=cmd_promote)
    r = sub.add_parser("rollback", help="move @champion back to the previous champion")
    _target_args(r)
    r.add_argument("--reason", default="", help="why (recorded with the rollback)")
    r.set_defaults(func=cmd_rollback)
    s = sub.add_parser("status", help="table of versions, aliases, key metrics and decisions")
    _target_args(s)
    s.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    s.set_defaults(func=cmd_status)


def _target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model-name", default=None, help="registered model name")
    p.add_argument("-c", "--config", default=None, help="experiment YAML: model name (and policy) from its registry")


def _target(args: argparse.Namespace) -> tuple[str, str | None]:
    """(model name, policy path from the config or None)."""
    if args.config:
        from recsys.config import load_config

        cfg = load_config(args.config)
        return args.model_name or cfg.registered_model_name, cfg.registry.policy
    if not args.model_name:
        raise ConfigError("registry commands need --model-name NAME or --config configs/<experiment>.yaml")
    return args.model_name, None


def _client(args: argparse.Namespace):
    import mlflow
    from mlflow.tracking import MlflowClient

    from recsys.tracking.store import check_tracking_store, resolve_tracking_uri

    uri = resolve_tracking_uri(getattr(args, "tracking_uri", None))
    check_tracking_store(uri)
    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri)


def cmd_promote(args: argparse.Namespace) -> int:
    from recsys.tracking.registry import promote

    name, cfg_policy = _target(args)
    policy = args.policy or cfg_policy or DEFAULT_POLICY
    decision = promote(_client(args), name, policy_path=policy, version=args.version)
    print(f"{decision['decision']}: {name} v{decision['version']} "
          f"(champion before: {decision.get('previous_champion') or 'none'}; policy {decision['policy']['name']!r})")
    for check in decision.get("checks", []):
        print(f"  [{'pass' if check['passed'] else 'FAIL'}] {check['name']}: {check['detail']}")
    if decision.get("artifact"):
        print(f"decision recorded: {decision['artifact']}")
    return 1 if args.fail_if_kept and decision["decision"] != "promoted" else 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from recsys.tracking.registry import rollback

    name, _ = _target(args)
    record = rollback(_client(args), name, reason=args.reason)
    print(f"rolled back {name}: champion v{record['from_version']} -> v{record['to_version']}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from recsys.tracking.registry import status

    name, _ = _target(args)
    table = status(_client(args), name)
    if args.json:
        print(json.dumps(table.to_dict(orient="records"), indent=2, default=str))
    else:
        print(f"registered model {name}")
        print(table.drop(columns=["run_id"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0
