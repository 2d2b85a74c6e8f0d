"""Promotion policy: when may a `challenger` model version replace the `champion`? Pure pydantic, no mlflow.

A policy file (configs/policies/*.yaml) is validated like an experiment config: unknown keys are errors.

Example:
    >>> policy = load_policy("configs/policies/default.yaml")  # doctest: +SKIP
    >>> policy.primary_metric, policy.min_uplift.relative  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recsys.config.loader import format_validation, read_yaml_mapping
from recsys.errors import ConfigError

Direction = Literal["maximize", "minimize"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class UpliftRule(_Strict):
    """How much better than the reference the challenger must be (in the metric's direction); both bounds apply.

    A tie is never a win: the uplift must be > 0 even when both minimums are 0.
    """

    absolute: float = Field(0.0, ge=0, description="minimum improvement in metric units (e.g. 0.005 NDCG)")
    relative: float = Field(0.0, ge=0, description="minimum improvement as a share of the reference (0.02 = 2%)")


class Guardrail(_Strict):
    """A secondary metric that must not degrade by more than the allowed drop."""

    metric: str = Field(..., min_length=1, description="metric key logged on the runs, e.g. catalog_coverage_at_10")
    direction: Direction = Field("maximize", description="maximize: a drop is a decrease; minimize: an increase")
    max_drop_relative: float | None = Field(None, ge=0,
                                            description="largest allowed degradation as a share (0.1 = 10%)")
    max_drop_absolute: float | None = Field(None, ge=0, description="largest allowed degradation in metric units")

    @model_validator(mode="after")
    def _one_bound(self) -> Guardrail:
        if self.max_drop_relative is None and self.max_drop_absolute is None:
            raise ValueError(f"guardrail on {self.metric!r} needs max_drop_relative or max_drop_absolute "
                             "(e.g. max_drop_relative: 0.1)")
        return self


class SignificanceConfig(_Strict):
    """Paired test on per-user metric vectors (joined on user_id), one-sided in the policy's direction."""

    test: Literal["wilcoxon", "ttest"] = Field("wilcoxon", description="Wilcoxon signed-rank or paired t-test")
    alpha: float = Field(0.05, gt=0, lt=1, description="the challenger wins only when p-value < alpha")
    metric: str | None = Field(None, description="per-user metric column; defaults to the primary metric")
    min_users: int = Field(20, ge=2, description="fewer paired users than this fails the test")


class FirstChampion(_Strict):
    """Criteria for the first champion (no champion to compare with yet)."""

    baseline_model: str | None = Field(
        "popularity", description="must beat the sibling run with this `model` tag under the same parent run; "
                                  "null disables the check")
    min_uplift: UpliftRule = Field(default_factory=UpliftRule, description="uplift required over the baseline")
    min_metrics: dict[str, float] = Field(default_factory=dict,
                                          description="absolute floors, metric -> minimum value (maximize metrics)")


class PolicyConfig(_Strict):
    """A promotion policy: primary metric + direction, minimum uplift, guardrails, optional significance test."""

    name: str = Field("default", min_length=1, description="recorded with every decision")
    description: str = ""
    primary_metric: str | None = Field(None, description="defaults to the challenger's `primary_metric` tag")
    direction: Direction = "maximize"
    min_uplift: UpliftRule = Field(default_factory=UpliftRule)
    guardrails: list[Guardrail] = Field(default_factory=list)
    significance: SignificanceConfig | None = Field(None, description="optional paired significance test")
    first_champion: FirstChampion = Field(default_factory=FirstChampion)
    reevaluate: bool = Field(True, description="re-evaluate the champion on the challenger's test data when their "
                                               "dataset or split fingerprints differ (otherwise refuse to compare)")


def load_policy(path: str | Path | None) -> PolicyConfig:
    """Read and validate a policy YAML; `None` gives the built-in default policy."""
    if path is None:
        return PolicyConfig()
    path = Path(path)
    project_copy = Path(__file__).resolve().parents[2] / path  # shipped policies, when run outside the repo
    if not path.exists() and not path.is_absolute() and project_copy.exists():
        path = project_copy
    raw = read_yaml_mapping(path, "policy file", "pass e.g. configs/policies/default.yaml")
    try:
        return PolicyConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation(exc, str(path), PolicyConfig, noun="policy key")) from None
