"""Configs of the session sources (synthetic, hits file, GA export, session table) and of preprocessing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from recsys.config.schema import StrictModel

SESSION_TYPES = ("bounce", "browse", "research", "cart_abandon", "purchase")


class SyntheticSessionsConfig(StrictModel):
    """Seeded sessions of five known behavioural types (ground truth returned as `true_type`)."""

    n_sessions: int = Field(4000, ge=20, description="number of sessions")
    n_users: int = Field(2500, ge=1, description="visitors the sessions are spread over")
    days: int = Field(60, ge=2, description="length of the simulated period in days")
    start: str = Field("2024-01-01", description="first day (ISO date)")
    mix: dict[str, float] = Field(
        default_factory=lambda: {"bounce": 0.3, "browse": 0.25, "research": 0.15, "cart_abandon": 0.15,
                                 "purchase": 0.15},
        description="share of each type (normalised); keys among bounce, browse, research, cart_abandon, purchase")
    later_mix: dict[str, float] | None = Field(
        None, description="type mix of the last `later_share` of the period (simulates drift); default = mix")
    later_share: float = Field(0.25, gt=0, lt=1, description="share of the period that uses `later_mix`")

    @field_validator("mix", "later_mix")
    @classmethod
    def _known_types(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        unknown = sorted(set(v) - set(SESSION_TYPES))
        if unknown:
            raise ValueError(f"unknown session type(s) {unknown}; allowed: {list(SESSION_TYPES)}")
        if any(x < 0 for x in v.values()) or sum(v.values()) <= 0:
            raise ValueError(f"shares must be >= 0 with a positive sum, got {v}")
        return v


class HitsFileConfig(StrictModel):
    """A hit-level CSV/Parquet file (one row per hit)."""

    path: str = Field(..., description="file; relative paths are resolved against cwd, the repo and $RECSYS_DATA_HOME")
    columns: dict[str, str] = Field(default_factory=dict, description="canonical hit column -> file column")
    timestamp_unit: Literal["auto", "s", "ms", "us", "ns", "datetime"] = Field(
        "auto", description="auto: dates as such, numbers by magnitude (logged); or force s/ms/us/ns/datetime")
    sep: str = ","


class GAExportConfig(StrictModel):
    """A Google-Analytics-style export: several rows per (fullVisitorId, visitId), session totals repeated."""

    path: str = Field(..., description="file; relative paths are resolved against cwd, the repo and $RECSYS_DATA_HOME")
    columns: dict[str, str] = Field(default_factory=dict,
                                    description="GA field -> file column, overriding the BigQuery export names")
    money_scale: float = Field(1e6, gt=0, description="divide money columns by this (GA stores micros)")
    sep: str = ","

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(GA_DEFAULT_COLUMNS))
        if unknown:
            raise ValueError(f"unknown GA field(s) {unknown}; allowed: {sorted(GA_DEFAULT_COLUMNS)}")
        return v


class SessionTableConfig(StrictModel):
    """A file that already holds one row per session (no hits)."""

    path: str = Field(..., description="file; relative paths are resolved against cwd, the repo and $RECSYS_DATA_HOME")
    features: dict[str, str | list[str]] = Field(
        ..., min_length=1, description="feature name -> file column, or a list of columns that are summed")
    session_id: str | None = Field(None, description="session key column; default the row number")
    user_id: str | None = None
    timestamp: str | None = Field(None, description="session start column (dates or unix seconds)")
    period: str | None = Field(None, description="coarse ordered time column (e.g. Month) when there is no timestamp")
    period_order: list[str] | None = Field(None, description="order of `period` values, earliest first")
    converted: str | None = Field(None, description="column that is true when the session converted")
    revenue: str | None = None
    sep: str = ","


class SessionSourceConfig(StrictModel):
    """Where sessions come from (task_params.sessions of a segment experiment)."""

    source: Literal["synthetic", "hits", "ga", "table"] = "synthetic"
    synthetic: SyntheticSessionsConfig = Field(default_factory=SyntheticSessionsConfig)
    hits: HitsFileConfig | None = None
    ga: GAExportConfig | None = None
    table: SessionTableConfig | None = None

    @model_validator(mode="after")
    def _section_present(self) -> SessionSourceConfig:
        if self.source != "synthetic" and getattr(self, self.source) is None:
            raise ValueError(f"sessions.source is {self.source!r} but the `sessions.{self.source}` section is missing; "
                             f"add sessions.{self.source}.path: <file>")
        return self


GA_DEFAULT_COLUMNS = {
    "fullVisitorId": "fullVisitorId",
    "visitId": "visitId",
    "visitStartTime": "visitStartTime",
    "hitNumber": "hits.hitNumber",
    "hitTime": "hits.time",
    "page": "hits.page.pagePath",
    "action": "hits.eCommerceAction.action_type",
    "totals.hits": "totals.hits",
    "totals.pageviews": "totals.pageviews",
    "totals.timeOnSite": "totals.timeOnSite",
    "totals.transactions": "totals.transactions",
    "totals.transactionRevenue": "totals.transactionRevenue",
}




class PreprocessConfig(StrictModel):
    """Winsorise -> optional log1p -> standardise, fitted on the training sessions only."""

    winsorize: tuple[float, float] | None = Field((0.01, 0.99), description="lower/upper quantiles; null = off")
    log_features: list[str] | Literal["auto", "none"] = Field(
        "auto", description="log1p these features; auto = non-negative features with skewness > 1")
    standardize: bool = True

    @field_validator("winsorize")
    @classmethod
    def _quantiles(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (0.0 <= v[0] < v[1] <= 1.0):
            raise ValueError(f"winsorize quantiles must satisfy 0 <= lower < upper <= 1, but got {list(v)}")
        return v
