"""Load an experiment YAML, apply `key=value` overrides, validate the schema, and turn errors into `ConfigError`.

This is the schema layer only: checks that need the model catalog or a task (model names and params, search spaces
against a model's config, task options, metrics a task computes) are made by the experiment loader above it,
`recsys.experiment.load_experiment_config` / `validate_config`, which every entry point uses.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from recsys.config.schema import ExperimentConfig
from recsys.errors import ConfigError


def load_config(path: str | Path, overrides: Iterable[str] | str | None = None) -> ExperimentConfig:
    """Read `path`, apply overrides (``"metrics.k=[5,10]"``, ``"models.0.params.factors=32"``), validate.

    Example:
        >>> cfg = load_config("configs/quickstart.yaml", ["seed=7"])  # doctest: +SKIP
    """
    path = Path(path)
    raw = read_yaml_mapping(path, "config file", "pass a path like configs/quickstart.yaml")
    return config_from_dict(raw, overrides, source=str(path))


def read_yaml_mapping(path: Path, kind: str, hint: str) -> dict:
    """The mapping at the top of a YAML file; a ConfigError naming the file if it is missing, invalid or no mapping."""
    if not path.exists():
        raise ConfigError(f"{kind} {str(path)!r} does not exist; {hint}")
    if path.is_dir():
        raise ConfigError(f"{kind} {str(path)!r} is a directory, not a file; {hint}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{kind} {str(path)!r} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as "
                          "UTF-8 YAML") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{kind} {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{kind} {str(path)!r} must hold a mapping at the top level, got {type(raw).__name__}")
    return raw


def config_from_dict(raw: dict, overrides: Iterable[str] | str | None = None,
                     source: str = "<dict>") -> ExperimentConfig:
    raw = copy.deepcopy(raw)
    for item in parse_overrides(overrides):
        key, value = item
        apply_override(raw, key, value)
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation(exc, source)) from None
    return cfg


def parse_overrides(overrides: Iterable[str] | str | None) -> list[tuple[str, Any]]:
    """`"a.b=1 c=x"` or `["a.b=1", "c=x"]` -> [("a.b", 1), ("c", "x")] (values parsed as YAML)."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        overrides = split_overrides(overrides)
    out = []
    for item in overrides:
        if not item.strip():
            continue
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. seed=7 or models.0.params.factors=32)")
        key, _, value = item.partition("=")
        try:
            parsed = yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError:
            parsed = value
        out.append((key.strip(), parsed))
    return out


def split_overrides(text: str) -> list[str]:
    """Split `"seed=7 models=[{name: random}, {name: als}]"` into pairs: a new pair starts only where a
    whitespace is followed by `key=`, so YAML values may contain spaces. Outer quotes around a pair are dropped."""
    import re

    parts = [p for p in re.split(r"\s+(?=['\"]?[A-Za-z_][\w.]*=)", text.strip()) if p]
    return [p[1:-1] if len(p) > 1 and p[0] == p[-1] and p[0] in "'\"" else p for p in parts]


def apply_override(raw: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, list):
            idx = _index(part, node, key)
            node = node[idx]
            continue
        if part not in node or node[part] is None:
            node[part] = [] if nxt.isdigit() else {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[_index(last, node, key)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"override {key}={value!r}: {'.'.join(parts[:-1])!r} is not a mapping or list")


def _index(part: str, node: list, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"override {key!r}: {part!r} is not a valid index into a list of {len(node)} entries")
    return int(part)


def format_validation(exc: ValidationError, source: str, model: type[BaseModel] = ExperimentConfig,
                      prefix: tuple = (), noun: str = "config key", owner: str = "") -> str:
    """One line per pydantic error: the key, the value, what is allowed, and a did-you-mean for unknown keys.

    model: the pydantic class validated (for the allowed names); prefix: where it sits in the file;
    owner: appended to "is unknown" (e.g. " for model 'als'").
    """
    lines = []
    for err in exc.errors():
        path = [*prefix, *err["loc"]]
        loc = ".".join(map(str, path)) or "<root>"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_at(model, err["loc"][:-1])
            hint = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1)
            msg = f"{noun} `{loc}` is unknown{owner}"
            if hint:
                msg += f"; did you mean `{'.'.join(map(str, [*path[:-1], hint[0]]))}`?"
            msg += f" (allowed here: {', '.join(sorted(allowed))})"
        elif err["type"] == "missing":
            msg = f"{noun} `{loc}` is required but missing"
        else:
            msg = f"{noun} `{loc}` has invalid value {err.get('input')!r}: {err['msg']}"
        lines.append(msg)
    return f"{source}: " + "; ".join(lines)


def _allowed_at(model: type[BaseModel], loc: tuple) -> list[str]:
    cls: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or part not in cls.model_fields:
            return []
        cls = _unwrap(cls.model_fields[part].annotation)
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return list(cls.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is None:
        return tp
    for arg in typing.get_args(tp):
        inner = _unwrap(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return tp


def config_hash(cfg: ExperimentConfig) -> str:
    """Stable short hash of the validated config (used in tags and study names)."""
    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists become their JSON string."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(v, default=str)
        else:
            out[key] = v
    return out
