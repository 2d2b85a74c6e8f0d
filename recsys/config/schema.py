"""The experiment config: one YAML file validated by pydantic (unknown keys are errors)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from recsys.config.search import check_objectives, parse_space
from recsys.config.urls import mask_url

# the task is a module of recsys.tasks (recommend, similar, audience, search, segment, ...): the experiment loader
# checks the name against the task catalog (the pure schema does not import the tasks)
Task = str


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SyntheticConfig(StrictModel):
    """Seeded synthetic marketplace (the offline default)."""

    n_users: int = Field(3000, gt=0, description="number of users")
    n_items: int = Field(1000, gt=1, description="number of items in the final catalog")
    n_categories: int = Field(20, gt=0, description="item categories (users have latent tastes over them)")
    mean_interactions: float = Field(25.0, gt=0, description="mean interactions of a returning user")
    activity_alpha: float = Field(1.6, gt=1.0, description="Pareto exponent of user activity (power law)")
    one_time_share: float = Field(0.2, ge=0.0, lt=1.0, description="share of users with exactly one interaction")
    taste_concentration: float = Field(0.15, gt=0,
                                       description="Dirichlet concentration of user tastes (lower = pickier)")
    popularity_exponent: float = Field(1.0, ge=0, description="Zipf exponent of item popularity within a category")
    days: int = Field(180, gt=1, description="length of the simulated period in days")
    new_item_share: float = Field(0.2, ge=0, lt=1, description="share of items released during the period")
    start: str = Field("2024-01-01", description="first day of the period (ISO date)")
    sequential_strength: float = Field(0.0, ge=0, le=1, description="share of a returning user's next interactions "
                                       "drawn from the items that follow the previous one (a sequential signal); "
                                       "0 leaves the data as without it")


class MovieLensConfig(StrictModel):
    name: Literal["ml-latest-small", "ml-100k", "ml-1m", "ml-20m", "ml-25m"] = "ml-latest-small"
    path: str | None = Field(None,
                             description="local copy of the extracted archive folder; default $RECSYS_DATA_HOME/<name>")
    download: bool = Field(True, description="download the official archive (checksummed) when no local copy exists")


class TabularConfig(StrictModel):
    interactions: str = Field(..., description="CSV or Parquet file of interactions")
    items: str | None = Field(None, description="optional CSV or Parquet file of items")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="canonical name -> column in the file (user_id, item_id, timestamp, event, rating, weight)",
    )
    item_columns: dict[str, str] = Field(default_factory=dict, description="canonical -> file column for items")
    @field_validator("columns", "item_columns")
    @classmethod
    def _canonical_keys(cls, v: dict[str, str], info: Any) -> dict[str, str]:
        allowed = (["user_id", "item_id", "timestamp", "event", "rating", "weight"] if info.field_name == "columns"
                   else ["item_id", "title", "text", "category"])
        unknown = sorted(set(v) - set(allowed))
        if unknown:
            raise ValueError(f"unknown canonical column(s) {unknown} in data.tabular.{info.field_name} (the keys are "
                             f"canonical names, the values your file's columns); allowed keys: {allowed}")
        return v

    timestamp_unit: Literal["auto", "s", "ms", "us", "ns", "datetime"] = Field(
        "auto", description="auto: dates/datetimes as such, numbers by magnitude (s/ms/us/ns, logged); "
                            "or force s, ms, us, ns (numbers) or datetime (strings)")
    sep: str = ","
    test: str | None = Field(None, description="split.method predefined: CSV/Parquet file of the test part "
                                               "(`interactions` is then the training part)")
    validation: str | None = Field(None, description="split.method predefined: optional file of the validation part "
                                                     "(for tuning; default: carved from training by time)")


class SqlConfig(StrictModel):
    """Interactions (and optionally items) read from a database through SQLAlchemy, in chunks.

    The URL's password is never logged (masked in log lines and MLflow params); put it in the environment:
    `url: postgresql+psycopg2://app:${PGPASSWORD}@db/shop` (`${VAR}` is expanded when the source is read).
    """

    url: str | None = Field(None, description="SQLAlchemy URL (sqlite:///shop.db, postgresql+psycopg2://...); "
                                              "default $RECSYS_SQL_URL; ${VAR} expands from the environment")
    interactions_table: str | None = Field(None, description="table (or schema.table) of interactions")
    interactions_query: str | None = Field(None, description="SELECT returning interactions (instead of a table)")
    items_table: str | None = Field(None, description="optional table of items")
    items_query: str | None = Field(None, description="optional SELECT returning items")
    test_table: str | None = Field(None, description="split.method predefined: table of the test part")
    test_query: str | None = Field(None, description="split.method predefined: SELECT of the test part")
    validation_table: str | None = Field(None, description="split.method predefined: optional validation table")
    validation_query: str | None = Field(None, description="split.method predefined: optional validation SELECT")
    columns: dict[str, str] = Field(default_factory=dict, description="canonical name -> column of the result")
    item_columns: dict[str, str] = Field(default_factory=dict, description="canonical -> column for items")
    timestamp_unit: Literal["auto", "s", "ms", "us", "ns", "datetime"] = Field(
        "auto", description="as data.tabular.timestamp_unit (database timestamps are read as datetimes)")
    chunksize: int = Field(50_000, gt=0, description="rows fetched per round trip")

    @model_validator(mode="after")
    def _one_of_each(self) -> SqlConfig:
        for part, required in (("interactions", True), ("items", False), ("test", False), ("validation", False)):
            table, query = getattr(self, f"{part}_table"), getattr(self, f"{part}_query")
            if table and query:
                raise ValueError(f"data.sql: set either {part}_table or {part}_query, not both")
            if required and not (table or query):
                raise ValueError("data.sql needs interactions_table or interactions_query")
        return self

    def part(self, name: str) -> tuple[str, str] | None:
        """('table', name) or ('query', sql) of a part (interactions, items, test, validation); None when unset."""
        table, query = getattr(self, f"{name}_table"), getattr(self, f"{name}_query")
        return ("table", table) if table else ("query", query) if query else None

    @field_serializer("url")
    def _masked(self, url: str | None) -> str | None:
        return None if url is None else mask_url(url)  # never dump a password into params, config.json or logs


class ImplicitConfig(StrictModel):
    """How raw feedback becomes positive, weighted interactions."""

    rating_threshold: float | None = Field(None, description="ratings >= this are positives (explicit data)")
    rating_weight: Literal["binary", "rating"] = "binary"
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "view": 0.5, "search": 1.0, "wishlist": 2.0, "cart": 3.0, "rating": 2.5, "purchase": 5.0,
        },
        description="weight per event type (events not listed are dropped)",
    )


class DataConfig(StrictModel):
    source: Literal["synthetic", "movielens", "tabular", "sql"] = "synthetic"
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    movielens: MovieLensConfig = Field(default_factory=MovieLensConfig)
    tabular: TabularConfig | None = None
    sql: SqlConfig | None = None
    implicit: ImplicitConfig = Field(default_factory=ImplicitConfig)
    duplicates: Literal["keep", "drop", "error"] = "drop"
    rating_range: tuple[float, float] | None = Field(None, description="allowed [min, max] of ratings")
    min_user_interactions: int = Field(1, ge=1)
    min_item_interactions: int = Field(1, ge=1)
    allow_future: bool = Field(False, description="accept timestamps later than now")
    allow_drop: bool = Field(False, description="accept coercions that drop more than 1% of the rows "
                                                "(non-numeric weights, events without a weight); always warned")

    @model_validator(mode="after")
    def _tabular_needs_section(self) -> DataConfig:
        if self.source == "tabular" and self.tabular is None:
            raise ValueError("data.source is 'tabular' but the `data.tabular` section is missing; "
                             "add data.tabular.interactions: <file>")
        if self.source == "sql" and self.sql is None:
            raise ValueError("data.source is 'sql' but the `data.sql` section is missing; "
                             "add data.sql.url and data.sql.interactions_table (or interactions_query)")
        return self

    def predefined_parts(self) -> list[str]:
        """Parts the source gives beyond training (`test`, `validation`) for split.method predefined."""
        if self.source == "tabular" and self.tabular is not None:
            return [p for p in ("test", "validation") if getattr(self.tabular, p)]
        if self.source == "sql" and self.sql is not None:
            return [p for p in ("test", "validation") if self.sql.part(p)]
        return []


class SplitConfig(StrictModel):
    method: Literal["temporal", "leave_last", "random", "predefined"] = Field(
        "temporal", description="predefined: train/test (and validation) parts as the source gives them")
    test_size: float = Field(0.2, gt=0, lt=1,
                             description="share of interactions (temporal/random) or of each user's history")
    test_n: int | None = Field(None, gt=0, description="leave_last: hold out each user's last N instead of a share")
    cutoff: str | None = Field(None, description="temporal: explicit cutoff timestamp (ISO); overrides test_size")
    validation_size: float = Field(0.1, gt=0, lt=1, description="share carved from training for tuning, same method")
    unknown_users: Literal["drop", "fallback"] = Field("drop", description="test users unseen in training")
    unknown_items: Literal["drop", "keep"] = Field("drop", description="test items unseen in training")
    folds: int = Field(1, ge=1, le=50, description="repeated splits: temporal = rolling origins walking back in "
                                                   "time; leave_last/random = user-disjoint folds of evaluation users")

    @model_validator(mode="after")
    def _options_apply(self) -> SplitConfig:
        if self.test_n is not None and self.method != "leave_last":
            raise ValueError(f"split.test_n={self.test_n} only applies to method leave_last, but method is "
                             f"{self.method!r}; remove test_n or use split.test_size")
        if self.cutoff is not None and self.method != "temporal":
            raise ValueError(f"split.cutoff={self.cutoff!r} only applies to method temporal, but method is "
                             f"{self.method!r}; remove the cutoff")
        return self


class MetricsConfig(StrictModel):
    k: list[int] = Field(default_factory=lambda: [10], min_length=1)
    primary: str = "ndcg_at_10"
    batch_size: int = Field(2048, gt=0, description="users scored per batch in evaluation")
    max_batch_mb: float | None = Field(None, gt=0, description="cap (MiB) on the dense score buffer of one "
                                       "evaluation batch; the batch then holds at most max_batch_mb / (n_items x 12 "
                                       "bytes) users (float64 scores + their float32 copy), never more than batch_size")
    max_users: int | None = Field(None, gt=0, description="evaluate a seeded sample of this many test users (each "
                                  "still ranked over all items); logged as param evaluation.users_sampled")

    @field_validator("k")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        bad = [x for x in v if x <= 0]
        if bad:
            raise ValueError(f"every K must be > 0, but got {bad}")
        return sorted(set(v))


class SignificanceTestsConfig(StrictModel):
    """Paired tests of every model against the best one (per-user differences, Holm-corrected across models)."""

    metrics: list[str] = Field(default_factory=list, description="metrics tested besides the selection metric")
    alpha: float = Field(0.05, gt=0, lt=1, description="models not significantly different at alpha are tied")
    test: Literal["wilcoxon", "ttest"] = Field("wilcoxon", description="the test behind p_value_vs_best")


class EvaluationConfig(StrictModel):
    """Uncertainty of every per-user metric: a seeded paired bootstrap over evaluation users."""

    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples for the confidence intervals; 0 = off")
    confidence: float = Field(0.95, gt=0, lt=1, description="confidence level of the intervals")
    tests: SignificanceTestsConfig = Field(default_factory=SignificanceTestsConfig)


class ModelEntry(StrictModel):
    name: str = Field(..., description="catalog name of the model (see `recsys models`)")
    label: str | None = Field(None,
                              description="run name; defaults to `name` (use to compare two configs of one model)")
    params: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, Any] | None = Field(None,
                                          description="Optuna search space: param -> {type, low, high, log, choices}")
    n_trials: int = Field(20, ge=1)
    timeout: float | None = Field(None, gt=0)
    sampler: dict[str, Any] | Literal["tpe", "random"] = "tpe"
    pruner: Literal["median", "none"] = "median"
    metric: str | list[str] | None = Field(None, description="tuning metric(s); defaults to metrics.primary")
    directions: list[Literal["maximize", "minimize"]] | None = None
    select: dict[str, Any] | None = Field(None, description="multi-objective: rule that picks one Pareto trial")

    @field_validator("search")
    @classmethod
    def _search_space(cls, v: dict[str, Any] | None, info: Any) -> dict[str, Any] | None:
        # the model-dependent part (names and bounds against the model's config) is checked by the experiment
        # loader, which knows the catalog: `recsys.experiment.validate_config`
        return None if v is None else {name: spec.as_dict() for name, spec in parse_space(v).items()}

    @model_validator(mode="after")
    def _tuning_objectives(self) -> ModelEntry:
        check_objectives(self.metric, self.directions, self.select, self.sampler, self.search is not None)
        return self

    @property
    def run_name(self) -> str:
        return self.label or self.name


class SelectionConfig(StrictModel):
    metric: str | None = Field(None, description="defaults to metrics.primary")
    direction: Literal["maximize", "minimize"] = "maximize"
    rule: Literal["best", "simplest_tied"] = Field(
        "best", description="best = highest point estimate; simplest_tied = the fastest to fit among the models "
                            "tied with the best (not significantly different at evaluation.tests.alpha)")


class RegistryConfig(StrictModel):
    model_name: str | None = Field(None, description="registered model name; default recsys-<experiment name>")
    policy: str = Field("configs/policies/default.yaml", description="promotion policy file")
    enabled: bool = Field(True, description="register the selected model as a new version (alias challenger)")


class TrackingConfig(StrictModel):
    log_models: Literal["all", "selected", "none"] = Field(
        "all", description="pyfunc models logged to MLflow: every model's (all); only the selected model's, once the "
                           "comparison has chosen it (selected: a fraction of the logging time and of the artifact "
                           "disk, e.g. EASE's dense item x item matrix per model); none (then registry.enabled must "
                           "be false: there is no model to register)")


class ExperimentMeta(StrictModel):
    auto_promote: bool = False
    tags: dict[str, str] = Field(default_factory=dict)


class ExperimentConfig(StrictModel):
    name: str = Field(..., min_length=1, description="MLflow experiment name")
    task: Task = "recommend"
    seed: int = Field(42, ge=0, le=2**32 - 1, description="seed of every random step (0 .. 2**32-1)")
    description: str = ""
    data: DataConfig = Field(default_factory=DataConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    models: list[ModelEntry] = Field(..., min_length=1)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    experiment: ExperimentMeta = Field(default_factory=ExperimentMeta)
    task_params: dict[str, Any] = Field(default_factory=dict,
                                        description="task-specific options (audience, search, segment)")

    @model_validator(mode="after")
    def _predefined_parts(self) -> ExperimentConfig:
        parts = self.data.predefined_parts()
        src = self.data.source
        if self.split.method == "predefined" and "test" not in parts:
            where = {"tabular": "data.tabular.test: <file>", "sql": "data.sql.test_table (or test_query)"}
            raise ValueError(f"split.method is 'predefined' but data.source {src!r} gives no test part; "
                             + (f"set {where[src]}" if src in where else "use source tabular or sql"))
        if self.split.method == "predefined" and self.split.folds > 1:
            raise ValueError("split.folds > 1 repeats the platform's own splits; a predefined split is one fixed "
                             "split: set split.folds: 1 or another split.method")
        if self.split.method != "predefined" and parts:
            raise ValueError(f"data.{src} sets a {' and a '.join(parts)} part, which only split.method "
                             f"'predefined' reads (split.method is {self.split.method!r}); "
                             "set split.method: predefined")
        return self

    @model_validator(mode="after")
    def _registry_has_a_model(self) -> ExperimentConfig:
        if self.registry.enabled and self.tracking.log_models == "none":
            raise ValueError("tracking.log_models is 'none' but registry.enabled is true: the selected model must be "
                             "logged to be registered; set tracking.log_models: selected (or all), or "
                             "registry.enabled: false")
        return self

    @model_validator(mode="after")
    def _labels_unique(self) -> ExperimentConfig:
        labels = [m.run_name for m in self.models]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"model labels must be unique, but {dupes} repeat; give each a distinct `label`")
        return self

    @property
    def selection_metric(self) -> str:
        return self.selection.metric or self.metrics.primary

    @property
    def registered_model_name(self) -> str:
        return self.registry.model_name or f"recsys-{self.name}"
