"""The session grain: hits validated and aggregated to one row per session (`SessionTable`), time split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.data.tables import frame_fingerprint
from recsys.data.validation import require_columns
from recsys.errors import DataError

HIT_COLUMNS = ["session_id", "user_id", "hit_number", "timestamp", "page", "event", "revenue"]
# hit events that are not page views (GA "event" hits)
NON_PAGE_EVENTS = frozenset({"add_to_cart", "remove_from_cart"})
HIT_FEATURES = ["hits", "pageviews", "unique_pages", "time_on_site", "product_views", "cart_adds", "checkouts",
                "transactions", "revenue", "product_view_rate", "cart_rate", "seconds_per_page"]


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
