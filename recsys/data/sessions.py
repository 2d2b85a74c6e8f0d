"""Sessions (visits) as the unit of segmentation: Hits -> one row per session -> model-ready features.

Canonical hit table: ``Hits(session_id, user_id, hit_number, timestamp, page, event, revenue)``.
Sources: a seeded synthetic generator with five known behavioural types, a hit-level file, a
Google-Analytics-style export (fullVisitorId, visitId, visitStartTime, totals.*; several rows per visit), and a
file that already holds one row per session (e.g. UCI Online Shoppers Intention). Grain is enforced, not
assumed: hits are unique per (session_id, hit_number), sessions per session_id, and every source is aggregated
to one row per session before any join.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from recsys.config.schema import StrictModel
from recsys.data.tables import frame_fingerprint
from recsys.data.timestamps import to_epoch_seconds
from recsys.data.validation import require_columns
from recsys.errors import DataError
from recsys.logging import get_logger
from recsys.random import RandomState, rng as make_rng

_log = get_logger(__name__)

HIT_COLUMNS = ["session_id", "user_id", "hit_number", "timestamp", "page", "event", "revenue"]
SESSION_TYPES = ("bounce", "browse", "research", "cart_abandon", "purchase")
# hit events that are not page views (GA "event" hits)
NON_PAGE_EVENTS = frozenset({"add_to_cart", "remove_from_cart"})
HIT_FEATURES = ["hits", "pageviews", "unique_pages", "time_on_site", "product_views", "cart_adds", "checkouts",
                "transactions", "revenue", "product_view_rate", "cart_rate", "seconds_per_page"]
GA_ACTIONS = {0: "pageview", 1: "product_list_click", 2: "product_view", 3: "add_to_cart", 4: "remove_from_cart",
              5: "checkout", 6: "purchase"}
REPO = Path(__file__).resolve().parents[2]


# configs ------------------------------------------------------------------------------------------------------
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
    def _section_present(self) -> "SessionSourceConfig":
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


# the session table --------------------------------------------------------------------------------------------
@dataclass
class SessionTable:
    """One row per session: session_id, user_id, timestamp (unix s or period rank; may be absent), converted,
    revenue, optional true_type (synthetic ground truth), plus the numeric `features` columns."""

    name: str
    sessions: pd.DataFrame
    features: list[str]
    info: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        return frame_fingerprint(self.sessions[["session_id", *self.features]])

    @property
    def has_time(self) -> bool:
        return "timestamp" in self.sessions.columns and self.sessions["timestamp"].notna().all()


def check_unique(frame: pd.DataFrame, keys: list[str], where: str, grain: str) -> None:
    """Raise DataError naming duplicated key values (grain is enforced, not assumed)."""
    dup = frame.duplicated(keys, keep=False)
    if not dup.any():
        return
    rows = frame.loc[dup, keys].drop_duplicates()
    shown = rows.head(5).to_dict("records")
    raise DataError(f"{where}: {len(rows)} duplicated {grain} key(s) on {keys} ({int(dup.sum())} rows), e.g. "
                    f"{shown}; the table must hold one row per {grain}: deduplicate the file or fix the key mapping")


def validate_hits(hits: pd.DataFrame, where: str) -> pd.DataFrame:
    """Check canonical hits: required columns, no null keys, one row per (session_id, hit_number),
    one user per session. Returns a copy with canonical dtypes."""
    require_columns(hits, ["session_id", "hit_number", "timestamp"], where,
                    "map your columns to the canonical hit columns " + ", ".join(HIT_COLUMNS))
    hits = hits.copy()
    for col in ("session_id", "hit_number", "timestamp"):
        nulls = int(hits[col].isna().sum())
        if nulls:
            raise DataError(f"{where}, column {col!r}: {nulls} null value(s); drop or fill those rows")
    if "user_id" not in hits.columns:
        hits["user_id"] = hits["session_id"]
    hits["page"] = hits["page"].astype(str) if "page" in hits.columns else ""
    hits["event"] = hits["event"].astype(str) if "event" in hits.columns else "pageview"
    hits["revenue"] = pd.to_numeric(hits["revenue"], errors="coerce").fillna(0.0) if "revenue" in hits.columns else 0.0
    check_unique(hits, ["session_id", "hit_number"], where, "hit")
    users = hits.groupby("session_id", sort=False)["user_id"].nunique()
    multi = users[users > 1]
    if len(multi):
        raise DataError(f"{where}: {len(multi)} session(s) belong to more than one user_id, e.g. "
                        f"{multi.index[:5].tolist()}; a session key must identify one visit of one visitor")
    return hits[HIT_COLUMNS].reset_index(drop=True)


def aggregate_hits(hits: pd.DataFrame, where: str = "hits") -> pd.DataFrame:
    """Canonical hits -> one row per session with the visit-level features in `HIT_FEATURES`.

    time_on_site = last - first hit timestamp (0 for single-hit visits, as in GA); rates are per page view.
    """
    hits = validate_hits(hits, where)
    ev = hits["event"].to_numpy()
    hits = hits.assign(
        _page=~np.isin(ev, list(NON_PAGE_EVENTS)), _product=ev == "product_view", _cart=ev == "add_to_cart",
        _checkout=ev == "checkout", _purchase=ev == "purchase",
    )
    g = hits.groupby("session_id", sort=True)
    out = pd.DataFrame({
        "user_id": g["user_id"].first(),
        "timestamp": g["timestamp"].min(),
        "hits": g.size(),
        "pageviews": g["_page"].sum(),
        "unique_pages": g["page"].nunique(),
        "time_on_site": g["timestamp"].max() - g["timestamp"].min(),
        "product_views": g["_product"].sum(),
        "cart_adds": g["_cart"].sum(),
        "checkouts": g["_checkout"].sum(),
        "transactions": g["_purchase"].sum(),
        "revenue": g["revenue"].sum(),
    }).reset_index()
    return add_rates(out)


def add_rates(sessions: pd.DataFrame) -> pd.DataFrame:
    """Per-page-view rates (page views floored at 1) and the `converted` flag."""
    out = sessions.copy()
    for col in ("hits", "pageviews", "unique_pages", "time_on_site", "product_views", "cart_adds", "checkouts",
                "transactions", "revenue"):
        out[col] = out[col].astype(np.float64)
    pv = np.maximum(out["pageviews"].to_numpy(), 1.0)
    out["product_view_rate"] = out["product_views"] / pv
    out["cart_rate"] = out["cart_adds"] / pv
    out["seconds_per_page"] = out["time_on_site"] / pv
    out["converted"] = (out["transactions"] > 0) | (out["revenue"] > 0)
    check_unique(out, ["session_id"], "aggregated sessions", "session")
    return out


# sources ------------------------------------------------------------------------------------------------------
def load_sessions(cfg: SessionSourceConfig, random_state: RandomState = 0) -> SessionTable:
    """Any configured source -> a validated SessionTable (one row per session)."""
    if cfg.source == "synthetic":
        hits, truth = generate_hits(cfg.synthetic, random_state)
        sessions = aggregate_hits(hits, "synthetic hits")
        sessions = sessions.merge(truth, on="session_id", how="left", validate="one_to_one")
        return SessionTable("synthetic-sessions", sessions, list(HIT_FEATURES), {"n_hits": len(hits)})
    if cfg.source == "hits":
        assert cfg.hits is not None
        return load_hits_file(cfg.hits)
    if cfg.source == "ga":
        assert cfg.ga is not None
        return load_ga_export(cfg.ga)
    assert cfg.table is not None
    return load_session_table(cfg.table)


def resolve_data_path(path: str) -> Path:
    """An absolute path as is; a relative one from cwd, then the repo root, then $RECSYS_DATA_HOME
    (also with leading folders dropped, so `../shared/data/x/y.csv` finds `$RECSYS_DATA_HOME/x/y.csv`)."""
    p = Path(os.path.expanduser(os.path.expandvars(path)))
    if p.is_absolute():
        candidates = [p]
    else:
        candidates = [Path.cwd() / p, REPO / p]
        home = os.environ.get("RECSYS_DATA_HOME")
        if home:
            parts = [x for x in p.parts if x not in ("..", ".")]
            candidates += [Path(home).expanduser().joinpath(*parts[i:]) for i in range(len(parts))]
    for c in candidates:
        if c.exists():
            return c.resolve()
    raise DataError(f"data file {path!r} not found (looked in {[str(c) for c in candidates]}); "
                    "fix the path or set RECSYS_DATA_HOME to the folder holding the data")


def read_frame(path: Path, sep: str = ",", dtype: dict | None = None) -> pd.DataFrame:
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, sep=sep, dtype=dtype)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read: {exc}") from None


def load_hits_file(cfg: HitsFileConfig) -> SessionTable:
    path = resolve_data_path(cfg.path)
    raw = read_frame(path, cfg.sep)
    missing = [v for v in cfg.columns.values() if v not in raw.columns]
    if missing:
        raise DataError(f"{path}: column(s) {missing} named in sessions.hits.columns are missing; "
                        f"found {list(raw.columns)}")
    hits = raw.rename(columns={v: k for k, v in cfg.columns.items()})
    if "timestamp" in hits.columns:
        hits["timestamp"] = to_epoch_seconds(hits["timestamp"], str(path), column=cfg.columns.get("timestamp", "timestamp"),
                                             unit=cfg.timestamp_unit, option="sessions.hits.timestamp_unit")
    sessions = aggregate_hits(hits, str(path))
    return SessionTable(path.stem, sessions, list(HIT_FEATURES), {"n_hits": len(hits), "file": str(path)})


def load_ga_export(cfg: GAExportConfig) -> SessionTable:
    """GA-style rows -> Hits (one per row) + session totals (aggregated per visit) -> one row per visit.

    Session key: (fullVisitorId, visitId). `totals.*` (repeated on every row of a visit) take precedence over
    what the hit rows imply, since exports often keep only some hits; money is divided by `money_scale`.
    """
    path = resolve_data_path(cfg.path)
    mapping = {**GA_DEFAULT_COLUMNS, **cfg.columns}
    raw = read_frame(path, cfg.sep, dtype={mapping["fullVisitorId"]: str})
    where = str(path)
    explicit_missing = [v for k, v in cfg.columns.items() if v not in raw.columns]
    if explicit_missing:
        raise DataError(f"{where}: column(s) {explicit_missing} named in sessions.ga.columns are missing; "
                        f"found {list(raw.columns)}")
    require_columns(raw, [mapping["fullVisitorId"], mapping["visitId"]], where,
                    "map them with sessions.ga.columns (fullVisitorId, visitId)")
    col = {k: v for k, v in mapping.items() if v in raw.columns}
    visitor = raw[col["fullVisitorId"]].astype(str)
    visit = raw[col["visitId"]].astype(str)
    sid = visitor + ":" + visit
    start_col = col.get("visitStartTime", col["visitId"])
    start = to_epoch_seconds(raw[start_col], where, column=start_col, unit="auto",
                             option="sessions.ga.columns.visitStartTime (unix seconds)")
    offset = (pd.to_numeric(raw[col["hitTime"]], errors="coerce").fillna(0).to_numpy(np.float64) // 1000
              if "hitTime" in col else 0)
    hits = pd.DataFrame({"session_id": sid, "user_id": visitor, "timestamp": (start + offset).astype(np.int64)})
    if "hitNumber" in col:
        hits["hit_number"] = pd.to_numeric(raw[col["hitNumber"]], errors="coerce")
    else:  # order of rows within a visit by hit time
        order = np.lexsort((np.arange(len(raw)), hits["timestamp"].to_numpy(), sid.to_numpy()))
        num = np.empty(len(raw), np.int64)
        num[order] = hits.iloc[order].groupby("session_id", sort=False).cumcount().to_numpy() + 1
        hits["hit_number"] = num
    hits["page"] = raw[col["page"]].astype(str) if "page" in col else ""
    if "action" in col:
        act = pd.to_numeric(raw[col["action"]], errors="coerce").fillna(0).astype(int)
        hits["event"] = act.map(GA_ACTIONS).fillna("pageview")
    else:
        hits["event"] = "pageview"
    hits["revenue"] = 0.0
    sessions = aggregate_hits(hits, where)
    # session totals: aggregated to one row per visit before the join
    totals = {k.split(".", 1)[1]: v for k, v in col.items() if k.startswith("totals.")}
    if totals:
        tot = pd.DataFrame({f"total_{name}": pd.to_numeric(raw[c], errors="coerce") for name, c in totals.items()})
        tot["session_id"] = sid.to_numpy()
        tot = tot.groupby("session_id", sort=True).max().fillna(0.0).reset_index()
        check_unique(tot, ["session_id"], f"{where} (session totals)", "session")
        sessions = sessions.merge(tot, on="session_id", how="left", validate="one_to_one")
        ours = {"hits": "hits", "pageviews": "pageviews", "timeOnSite": "time_on_site",
                "transactions": "transactions", "transactionRevenue": "revenue"}
        for ga_name in totals:
            value = sessions.pop(f"total_{ga_name}").astype(np.float64)
            if ga_name == "transactionRevenue":
                value = value / cfg.money_scale
            sessions[ours[ga_name]] = value
        sessions = add_rates(sessions)
    info = {"n_rows": len(raw), "n_hits": len(hits), "n_visitor_visit_pairs": int(sid.nunique()), "file": where}
    _log.info("%s: %d rows -> %d sessions (visit grain)", where, len(raw), len(sessions))
    return SessionTable(path.stem, sessions, list(HIT_FEATURES), info)


def load_session_table(cfg: SessionTableConfig) -> SessionTable:
    """A file with one row per session; features are columns (or sums of columns)."""
    path = resolve_data_path(cfg.path)
    raw = read_frame(path, cfg.sep)
    where = str(path)
    named = [c for v in cfg.features.values() for c in ([v] if isinstance(v, str) else v)]
    named += [c for c in (cfg.session_id, cfg.user_id, cfg.timestamp, cfg.period, cfg.converted, cfg.revenue) if c]
    require_columns(raw, sorted(set(named)), where, "fix the column names in task_params.sessions.table")
    out = pd.DataFrame({"session_id": raw[cfg.session_id] if cfg.session_id else np.arange(len(raw))})
    check_unique(out, ["session_id"], where, "session")
    out["user_id"] = raw[cfg.user_id].to_numpy() if cfg.user_id else out["session_id"].to_numpy()
    if cfg.timestamp:
        out["timestamp"] = to_epoch_seconds(raw[cfg.timestamp], where, column=cfg.timestamp, unit="auto",
                                            option="sessions.table.timestamp (dates or unix time)")
    elif cfg.period:
        order = cfg.period_order or sorted(raw[cfg.period].astype(str).unique())
        rank = raw[cfg.period].astype(str).map({v: i for i, v in enumerate(order)})
        if rank.isna().any():
            bad = sorted(raw.loc[rank.isna(), cfg.period].astype(str).unique())
            raise DataError(f"{where}, column {cfg.period!r}: value(s) {bad} are not in sessions.table.period_order")
        out["timestamp"] = rank.astype(np.int64).to_numpy()
    for name, cols in cfg.features.items():
        cols = [cols] if isinstance(cols, str) else cols
        values = raw[cols].apply(pd.to_numeric, errors="coerce")
        bad = int(values.isna().any(axis=1).sum())
        if bad:
            raise DataError(f"{where}, feature {name!r} (columns {cols}): {bad} row(s) are not numbers")
        out[name] = values.sum(axis=1).astype(np.float64).to_numpy()
    out["converted"] = _to_bool(raw[cfg.converted], where, cfg.converted) if cfg.converted else False
    if "revenue" not in cfg.features:  # revenue per session for profiles; unknown (NaN) without a column
        out["revenue"] = pd.to_numeric(raw[cfg.revenue], errors="coerce").fillna(0.0) if cfg.revenue else np.nan
    return SessionTable(path.stem, out, list(cfg.features), {"n_rows": len(raw), "file": where})


def _to_bool(values: pd.Series, where: str, column: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(bool)
    if pd.api.types.is_numeric_dtype(values):
        return values.fillna(0).to_numpy() > 0
    s = values.astype(str).str.strip().str.lower()
    ok = s.isin(["true", "false", "1", "0", "yes", "no"])
    if not ok.all():
        raise DataError(f"{where}, column {column!r}: {int((~ok).sum())} value(s) are not booleans, "
                        f"e.g. {values[~ok].iloc[0]!r}")
    return s.isin(["true", "1", "yes"]).to_numpy()


# synthetic hits -----------------------------------------------------------------------------------------------
# per type: (min pages, extra pages ~ Poisson, share of product pages, mean seconds per hit,
#            cart adds (min, Poisson extra), P(checkout), purchase)
TYPE_PARAMS = {
    "bounce": (1, 0.0, 0.3, 10.0, (0, 0.0), 0.0, False),
    "browse": (3, 2.5, 0.15, 25.0, (0, 0.0), 0.0, False),
    "research": (10, 6.0, 0.75, 70.0, (0, 0.0), 0.0, False),
    "cart_abandon": (4, 3.0, 0.6, 35.0, (1, 0.5), 0.3, False),
    "purchase": (5, 4.0, 0.5, 40.0, (1, 0.7), 1.0, True),
}
CONTENT_PAGES = np.array(["/home", "/search", "/category/apparel", "/category/bags", "/category/office",
                          "/category/drinkware", "/sale", "/help", "/about", "/blog"])


def generate_hits(cfg: SyntheticSessionsConfig, random_state: RandomState = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded canonical hits of `n_sessions` visits; returns (hits, truth[session_id, true_type]).

    Example:
        >>> hits, truth = generate_hits(SyntheticSessionsConfig(n_sessions=100), 0)
    """
    r = make_rng(random_state)
    n = cfg.n_sessions
    start = int(pd.Timestamp(cfg.start, tz="UTC").timestamp())
    period = cfg.days * 86400
    t0 = np.sort(r.integers(0, period, size=n))
    later = t0 >= int(period * (1 - cfg.later_share))
    kinds = np.empty(n, dtype=np.int64)
    for mask, mix in ((~later, cfg.mix), (later, cfg.later_mix or cfg.mix)):
        p = np.array([mix.get(t, 0.0) for t in SESSION_TYPES])
        kinds[mask] = r.choice(len(SESSION_TYPES), size=int(mask.sum()), p=p / p.sum())
    users = r.integers(0, cfg.n_users, size=n)
    params = [TYPE_PARAMS[t] for t in SESSION_TYPES]
    min_p, lam_p, p_prod, dwell, cart_min, cart_lam, p_chk, buys = _columns(params)
    k = kinds
    n_pages = min_p[k] + r.poisson(lam_p[k])
    n_cart = cart_min[k] + r.poisson(cart_lam[k])
    n_chk = (r.random(n) < p_chk[k]).astype(np.int64)
    n_buy = buys[k].astype(np.int64)
    n_hits = n_pages + n_cart + n_chk + n_buy
    sess = np.repeat(np.arange(n), n_hits)
    pos = np.arange(len(sess)) - np.repeat(np.cumsum(n_hits) - n_hits, n_hits)  # 0-based position in visit
    # layout of a visit: pages, then cart adds, then checkout, then purchase
    b1 = n_pages[sess]
    b2 = b1 + n_cart[sess]
    b3 = b2 + n_chk[sess]
    is_product = r.random(len(sess)) < p_prod[k][sess]
    event = np.where(pos < b1, np.where(is_product, "product_view", "pageview"),
                     np.where(pos < b2, "add_to_cart", np.where(pos < b3, "checkout", "purchase")))
    product = r.integers(0, 300, size=len(sess))
    page = np.where(event == "product_view", np.char.add("/product/", product.astype(str)),
                    CONTENT_PAGES[r.integers(0, len(CONTENT_PAGES), size=len(sess))])
    page = np.where(event == "add_to_cart", "/cart", page)
    page = np.where(event == "checkout", "/checkout", page)
    page = np.where(event == "purchase", "/confirmation", page)
    gaps = r.exponential(dwell[k][sess])
    gaps[pos == 0] = 0.0
    csum = np.cumsum(gaps)
    offs = csum - np.repeat(csum[np.cumsum(n_hits) - n_hits], n_hits)
    ts = start + t0[sess] + offs.astype(np.int64)
    revenue = np.where(event == "purchase", np.round(r.lognormal(np.log(60.0), 0.6, size=len(sess)), 2), 0.0)
    ids = np.array([f"s{i:07d}" for i in range(n)])
    hits = pd.DataFrame({
        "session_id": ids[sess], "user_id": np.char.add("u", users[sess].astype(str)), "hit_number": pos + 1,
        "timestamp": ts.astype(np.int64), "page": page, "event": event, "revenue": revenue,
    })
    truth = pd.DataFrame({"session_id": ids, "true_type": np.array(SESSION_TYPES)[kinds]})
    return hits, truth


def _columns(params: list[tuple]) -> tuple[np.ndarray, ...]:
    min_p = np.array([x[0] for x in params])
    lam_p = np.array([x[1] for x in params])
    p_prod = np.array([x[2] for x in params])
    dwell = np.array([x[3] for x in params])
    cart_min = np.array([x[4][0] for x in params])
    cart_lam = np.array([x[4][1] for x in params])
    p_chk = np.array([x[5] for x in params])
    buys = np.array([x[6] for x in params])
    return min_p, lam_p, p_prod, dwell, cart_min, cart_lam, p_chk, buys


# preprocessing ------------------------------------------------------------------------------------------------
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


@dataclass
class SessionPreprocessor:
    """Fitted feature transform; round-trips through JSON (no pickle)."""

    features: list[str]
    lower: np.ndarray
    upper: np.ndarray
    log: np.ndarray  # bool per feature
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, features: list[str], cfg: PreprocessConfig) -> "SessionPreprocessor":
        X = feature_matrix(frame, features, "training sessions")
        if cfg.winsorize is not None:
            lower, upper = np.quantile(X, cfg.winsorize[0], axis=0), np.quantile(X, cfg.winsorize[1], axis=0)
        else:
            lower, upper = np.full(X.shape[1], -np.inf), np.full(X.shape[1], np.inf)
        Xw = np.clip(X, lower, upper)
        if cfg.log_features == "auto":
            from scipy.stats import skew

            with np.errstate(all="ignore"):
                sk = np.nan_to_num(skew(Xw, axis=0), nan=0.0)
            log = (Xw.min(axis=0) >= 0) & (sk > 1.0)
        elif cfg.log_features == "none":
            log = np.zeros(len(features), bool)
        else:
            unknown = sorted(set(cfg.log_features) - set(features))
            if unknown:
                raise DataError(f"log_features {unknown} are not among the features {features}")
            log = np.isin(features, cfg.log_features)
            neg = [f for f, lg, m in zip(features, log, Xw.min(axis=0)) if lg and m < 0]
            if neg:
                raise DataError(f"log_features {neg} have negative values; log1p needs values >= 0")
        Xt = _log1p(Xw, log)
        if cfg.standardize:
            mean, scale = Xt.mean(axis=0), Xt.std(axis=0)
            scale = np.where(scale > 0, scale, 1.0)
        else:
            mean, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
        return cls(list(features), lower, upper, log, mean, scale)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw session features (DataFrame with the feature columns) -> model space (n, d) float64."""
        X = feature_matrix(frame, self.features, "session features")
        return (_log1p(np.clip(X, self.lower, self.upper), self.log) - self.mean) / self.scale

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        """Model space -> original units (winsorisation is not undone)."""
        Xt = np.asarray(Z) * self.scale + self.mean
        return np.where(self.log, np.expm1(Xt), Xt)

    def to_dict(self) -> dict:
        return {"features": self.features, "lower": _listf(self.lower), "upper": _listf(self.upper),
                "log": self.log.tolist(), "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "SessionPreprocessor":
        arr = lambda k: np.array([np.nan if v is None else v for v in d[k]], dtype=np.float64)  # noqa: E731
        lower = np.nan_to_num(arr("lower"), nan=-np.inf)
        upper = np.nan_to_num(arr("upper"), nan=np.inf)
        return cls(list(d["features"]), lower, upper, np.array(d["log"], bool), arr("mean"), arr("scale"))


def feature_matrix(frame: pd.DataFrame, features: list[str], where: str) -> np.ndarray:
    """The feature columns as float64 (n, d); missing columns or non-finite values are a DataError."""
    require_columns(frame, features, where, f"session features must include {features}")
    X = frame[features].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        cols = [f for f, b in zip(features, bad.any(axis=0)) if b]
        raise DataError(f"{where}: {int(bad.any(axis=1).sum())} row(s) have missing or non-finite values in {cols}")
    return X


def _log1p(X: np.ndarray, log: np.ndarray) -> np.ndarray:
    out = X.copy()
    out[:, log] = np.log1p(X[:, log])
    return out


def _listf(a: np.ndarray) -> list:
    return [None if not np.isfinite(v) else float(v) for v in a]


def temporal_split(table: SessionTable, later_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (reference, later): sessions at or after the (1 - later_share) quantile of start time.

    With a coarse period (e.g. month rank) every session of the cutoff period goes to the later part.
    """
    t = table.sessions["timestamp"].to_numpy()
    cutoff = np.sort(t)[int(np.floor(len(t) * (1 - later_share)))]
    later = t >= cutoff
    if later.all():
        later = t > cutoff
    if not later.any() or later.all():
        raise DataError(f"temporal split at later_share={later_share} leaves one side empty "
                        f"(all {len(t)} sessions share the time {cutoff}); lower drift.later_share or disable drift")
    return ~later, later
