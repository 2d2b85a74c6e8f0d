"""Session sources: any configured source -> a validated `SessionTable` (one row per session)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.sessions.config import (
    GA_DEFAULT_COLUMNS,
    GAExportConfig,
    HitsFileConfig,
    SessionSourceConfig,
    SessionTableConfig,
)
from recsys.data.sessions.synthetic import generate_hits
from recsys.data.sessions.table import HIT_FEATURES, SessionTable, add_rates, aggregate_hits, check_unique
from recsys.data.timestamps import to_epoch_seconds
from recsys.data.validation import require_columns
from recsys.errors import DataError
from recsys.logging import get_logger
from recsys.random import RandomState

_log = get_logger(__name__)

GA_ACTIONS = {0: "pageview", 1: "product_list_click", 2: "product_view", 3: "add_to_cart", 4: "remove_from_cart",
              5: "checkout", 6: "purchase"}
REPO = Path(__file__).resolve().parents[3]


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
        hits["timestamp"] = to_epoch_seconds(hits["timestamp"], str(path),
                                             column=cfg.columns.get("timestamp", "timestamp"),
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
        n_bad = int(values.isna().any(axis=1).sum())
        if n_bad:
            raise DataError(f"{where}, feature {name!r} (columns {cols}): {n_bad} row(s) are not numbers")
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
