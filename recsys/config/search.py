"""Search spaces and tuning objectives of a model entry: pure pydantic schema (no optuna, no model catalog).

A model entry's `search` maps a model parameter to a distribution::

    search:
      factors: {type: int, low: 16, high: 256, log: true}
      regularization: {type: float, low: 1.0e-4, high: 1.0, log: true}
      similarity: {type: categorical, choices: [cosine, bm25]}
      num_threads: [1, 2]            # a bare list is shorthand for categorical choices
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SAMPLERS = ("tpe", "random", "nsga2")


class ParamSpec(BaseModel):
    """One searched parameter: `int`/`float` with bounds (optionally log-scaled or stepped), or `categorical`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["int", "float", "categorical"]
    low: float | None = Field(None, description="lower bound, inclusive (int/float)")
    high: float | None = Field(None, description="upper bound, inclusive (int/float)")
    log: bool = Field(False, description="sample on a log scale (needs low > 0)")
    step: float | None = Field(None, gt=0, description="grid step (int/float, not with log)")
    choices: list[Any] | None = Field(None, description="values of a categorical parameter")

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty `choices` list")
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("a categorical parameter takes only `choices` (remove low/high/log/step)")
            if len({json.dumps(c, sort_keys=True, default=str) for c in self.choices}) != len(self.choices):
                raise ValueError(f"categorical choices must be distinct, got {self.choices}")
            return self
        if self.choices is not None:
            raise ValueError(f"`choices` is only for type categorical, not {self.type}")
        if self.low is None or self.high is None:
            raise ValueError(f"type {self.type} needs both `low` and `high`")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"bounds must be finite, got low={self.low}, high={self.high}")
        if self.low >= self.high:
            raise ValueError(f"`low` must be < `high`, but got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log=true needs low > 0, but got low={self.low}")
        if self.log and self.step is not None:
            raise ValueError("`step` cannot be combined with log=true")
        if self.type == "int":
            for key in ("low", "high", "step"):
                v = getattr(self, key)
                if v is not None and float(v) != int(v):
                    raise ValueError(f"type int needs integer `{key}`, but got {key}={v}")
        return self

    def as_dict(self) -> dict[str, Any]:
        """Normalised plain form (int bounds stay ints), as stored back into the model entry."""
        out = self.model_dump(exclude_defaults=True)
        if self.type == "int":
            out.update({k: int(v) for k, v in out.items() if k in ("low", "high", "step")})
        return out

    def edge_values(self) -> list[Any]:
        """Values that must all be accepted by the model's config (bounds or every choice)."""
        if self.type == "categorical":
            return list(self.choices or [])
        assert self.low is not None and self.high is not None  # checked by _consistent for int/float
        cast = int if self.type == "int" else float
        return [cast(self.low), cast(self.high)]


class Constraint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None


class SelectRule(BaseModel):
    """How one trial is picked from the Pareto front of a multi-objective study.

    Exactly one of: `metric` (best Pareto trial on that objective) or `weights` (best weighted sum, each
    objective's sign following its direction); `constraints` first keep only Pareto trials within bounds.
    """

    model_config = ConfigDict(extra="forbid")

    metric: str | None = None
    weights: dict[str, float] | None = None
    constraints: dict[str, Constraint] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_rule(self) -> SelectRule:
        if (self.metric is None) == (self.weights is None):
            raise ValueError("select needs exactly one of `metric` (e.g. select: {metric: ndcg_at_10}) "
                             "or `weights` (e.g. select: {weights: {ndcg_at_10: 1.0, catalog_coverage_at_10: 0.2}})")
        return self

    def metrics(self) -> set[str]:
        return {*([self.metric] if self.metric else []), *(self.weights or {}), *self.constraints}


def parse_space(search: dict[str, Any]) -> dict[str, ParamSpec]:
    """`search` dict -> validated specs; a bare list means categorical choices. Errors name the parameter."""
    if not isinstance(search, dict) or not search:
        raise ValueError(f"`search` must be a non-empty mapping of parameter -> spec, got {search!r}")
    out: dict[str, ParamSpec] = {}
    for name, raw in search.items():
        if isinstance(raw, list):
            raw = {"type": "categorical", "choices": raw}
        if not isinstance(raw, dict):
            raise ValueError(f"search parameter `{name}` must be a mapping like {{type: float, low: 0.001, high: 1, "
                             f"log: true}} or a list of choices, got {raw!r}")
        try:
            out[name] = ParamSpec.model_validate(raw)
        except ValidationError as exc:
            rules = "; ".join(_err_text(e) for e in exc.errors())
            raise ValueError(f"search parameter `{name}`: {rules}") from None
    return out


def check_search(search: dict[str, Any], model_name: str, config_cls: type[BaseModel],
                 params: dict[str, Any] | None) -> None:
    """Check a (normalised) search space against the model's own config class: names and bounds.

    Raises ValueError naming the parameter. The experiment loader calls this with the class from the catalog.
    """
    fields = config_cls.model_fields
    for name, spec in parse_space(search).items():
        if name not in fields:
            raise ValueError(f"search parameter `{name}` is not a parameter of model {model_name!r} "
                             f"(allowed: {', '.join(sorted(fields))})")
        for value in spec.edge_values():
            try:
                config_cls.model_validate({**(params or {}), name: value})
            except ValidationError as exc:
                bad = [e for e in exc.errors() if e["loc"] and e["loc"][0] == name]
                if bad:
                    raise ValueError(f"search parameter `{name}`: value {value!r} is outside what model "
                                     f"{model_name!r} accepts ({_err_text(bad[0])})") from None


def objective_metrics(metric: str | list[str] | None, primary: str) -> list[str]:
    if metric is None:
        return [primary]
    return [metric] if isinstance(metric, str) else list(metric)


def check_objectives(metric: str | list[str] | None, directions: Sequence[str] | None, select: dict | None,
                     sampler: Any, has_search: bool) -> SelectRule | None:
    """Consistency of metric(s), directions, select rule and sampler; errors name the key and the rule."""
    metrics = objective_metrics(metric, "<primary>")
    if isinstance(metric, list) and not metric:
        raise ValueError("`metric` list must not be empty")
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"`metric` lists a metric twice: {metrics}")
    if directions is not None and len(directions) != len(metrics):
        raise ValueError(f"`directions` has {len(directions)} entries but `metric` has {len(metrics)} ({metrics}); "
                         "give one direction per metric")
    if isinstance(sampler, dict):
        name = sampler.get("name", "tpe")
        if name not in SAMPLERS:
            raise ValueError(f"`sampler.name` {name!r} is unknown (allowed: {', '.join(SAMPLERS)})")
    multi = len(metrics) > 1
    if not multi:
        if select is not None:
            raise ValueError("`select` picks a trial from a Pareto front and needs 2+ metrics in `metric`; "
                             "remove it or list several metrics")
        return None
    if has_search and select is None:
        raise ValueError(f"multi-objective tuning on {metrics} needs an explicit `select` rule, "
                         "e.g. select: {metric: " + metrics[0] + "}")
    if select is None:
        return None
    try:
        rule = SelectRule.model_validate(select)
    except ValidationError as exc:
        raise ValueError("`select`: " + "; ".join(_err_text(e) for e in exc.errors())) from None
    unknown = sorted(rule.metrics() - set(metrics))
    if unknown:
        raise ValueError(f"`select` refers to {unknown}, which are not tuning metrics {metrics}")
    return rule


def space_hash(payload: dict[str, Any]) -> str:
    """Short stable hash of everything that defines a study's objective (space, metrics, data, split)."""
    blob = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _err_text(err: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = err["msg"].removeprefix("Value error, ")
    return f"`{loc}` {msg}" if loc else msg
