"""Engagement-based audience models: `activity` (who is most engaged) and `activity_affinity` (engaged and into
the product's category). The honest baseline for high-churn marketplaces where collaborative filtering starves.

Engagement of user u = sum_c w_c * minmax(component_c(u)) over five components computed on training rows:
  interactions   number of interactions                      (default weight 0.35)
  unique_products number of distinct products                (0.25)
  event_score    mean event weight (purchase 5, cart 3, ...) (0.20)
  frequency      interactions per active (UTC) day           (0.15)
  recency        exp(-days_since_last / recency_days)        (0.05), days counted to the last training instant
A component that is constant over users normalises to 0 (it cannot rank anybody).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, model_validator

from recsys.data.tables import TrainData
from recsys.models.audience import AudienceModel
from recsys.models.base import ModelConfig
from recsys.models.catalog import register

DEFAULT_EVENT_WEIGHTS = {"purchase": 5.0, "cart": 3.0, "rating": 2.5, "wishlist": 2.0, "search": 1.0, "view": 0.5}
COMPONENTS = ("interactions", "unique_products", "event_score", "frequency", "recency")
DAY = 86400.0


def engagement_components(user_idx: np.ndarray, item_idx: np.ndarray, timestamp: np.ndarray, events: np.ndarray,
                          n_users: int, event_weights: dict[str, float], unknown_event_weight: float = 1.0,
                          recency_days: float = 90.0, reference_time: float | None = None) -> dict[str, np.ndarray]:
    """Raw (unnormalised) engagement components per user index, each an array of shape (n_users,).

    One entry per interaction row; users without rows get zeros (recency 0). `reference_time` defaults to the
    latest timestamp (unix seconds).
    """
    user_idx = np.asarray(user_idx, dtype=np.int64)
    ts = np.asarray(timestamp, dtype=np.int64)
    count = np.bincount(user_idx, minlength=n_users).astype(np.float64)
    pairs = np.unique(np.stack([user_idx, np.asarray(item_idx, dtype=np.int64)]), axis=1)
    unique = np.bincount(pairs[0], minlength=n_users).astype(np.float64)
    ev = pd.Series(np.asarray(events, dtype=object)).map(event_weights).fillna(unknown_event_weight)
    ev_sum = np.bincount(user_idx, weights=ev.to_numpy(dtype=np.float64), minlength=n_users)
    days = np.unique(np.stack([user_idx, ts // int(DAY)]), axis=1)
    active_days = np.bincount(days[0], minlength=n_users).astype(np.float64)
    last = np.full(n_users, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, user_idx, ts)
    ref = float(ts.max()) if reference_time is None else float(reference_time)
    has = count > 0
    since = np.where(has, (ref - last.astype(np.float64)) / DAY, np.inf)
    return {
        "interactions": count,
        "unique_products": unique,
        "event_score": np.divide(ev_sum, count, out=np.zeros(n_users), where=has),
        "frequency": np.divide(count, active_days, out=np.zeros(n_users), where=active_days > 0),
        "recency": np.where(has, np.exp(-np.maximum(since, 0.0) / recency_days), 0.0),
    }


def minmax(x: np.ndarray) -> np.ndarray:
    """(x - min) / (max - min); all zeros when x is constant."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def engagement_score(components: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted sum of min-max normalised components (keys of `weights` must be in `components`)."""
    total = None
    for name, w in weights.items():
        part = w * minmax(components[name])
        total = part if total is None else total + part
    if total is None:
        raise ValueError("engagement_score needs at least one weighted component")
    return total


class ActivityConfig(ModelConfig):
    weight_interactions: float = Field(0.35, ge=0, description="weight of the number of interactions")
    weight_unique_products: float = Field(0.25, ge=0, description="weight of the number of distinct products")
    weight_event_score: float = Field(0.20, ge=0, description="weight of the mean event weight")
    weight_frequency: float = Field(0.15, ge=0, description="weight of interactions per active day")
    weight_recency: float = Field(0.05, ge=0, description="weight of exp(-days_since_last / recency_days)")
    event_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS),
                                            description="score per event type for the mean event score")
    unknown_event_weight: float = Field(1.0, ge=0, description="score of events not in event_weights")
    recency_days: float = Field(90.0, gt=0, description="decay scale (days) of the recency component")

    @model_validator(mode="after")
    def _some_weight(self) -> ActivityConfig:
        if sum(self.weights().values()) <= 0:
            raise ValueError("at least one weight_* must be > 0, but all are 0")
        return self

    def weights(self) -> dict[str, float]:
        return {c: float(getattr(self, f"weight_{c}")) for c in COMPONENTS}


def fit_engagement(data: TrainData, cfg: ActivityConfig) -> tuple[np.ndarray, float]:
    """Engagement per training user index and the reference time used for recency."""
    rows = data.interactions
    ref = float(rows["timestamp"].max())
    comps = engagement_components(rows["user_idx"].to_numpy(), rows["item_idx"].to_numpy(),
                                  rows["timestamp"].to_numpy(), rows["event"].to_numpy(), data.n_users,
                                  cfg.event_weights, cfg.unknown_event_weight, cfg.recency_days, ref)
    return engagement_score(comps, cfg.weights()), ref


@register
class Activity(AudienceModel):
    """Target the most engaged users (the same ranking for every product, minus excluded users)."""

    name = "activity"
    Config: ClassVar[type[ActivityConfig]] = ActivityConfig
    config: ActivityConfig

    engagement_: np.ndarray
    reference_time_: float

    def _fit(self, data, callback) -> None:
        self.engagement_, self.reference_time_ = fit_engagement(data, self.config)

    def _scores(self, item_idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.engagement_, (len(item_idx), len(self.engagement_)))

    def _state(self):
        return {"engagement": self.engagement_, "reference_time": np.array(self.reference_time_)}

    def _set_state(self, state) -> None:
        self.engagement_, self.reference_time_ = state["engagement"], float(state["reference_time"])


class ActivityAffinityConfig(ActivityConfig):
    smoothing: float = Field(5.0, ge=0, description="pseudo-interactions pulling a user's category share to the "
                                                    "global share (0 = raw shares)")
    affinity_power: float = Field(1.0, ge=0, description="score = (engagement + engagement_floor) * affinity ** "
                                                         "affinity_power")
    engagement_floor: float = Field(0.01, ge=0, description="added to engagement so the least engaged users "
                                                            "(normalised to 0) are still ranked by affinity")


@register
class ActivityAffinity(Activity):
    """(Engagement + engagement_floor) times the user's smoothed affinity to the product's category:
    affinity(u, c) = (n_uc + smoothing * share_c) / (n_u + smoothing). Products without a known category get plain
    engagement; products nobody interacted with are still answered when their catalog category is known."""

    name = "activity_affinity"
    Config: ClassVar[type[ActivityAffinityConfig]] = ActivityAffinityConfig
    config: ActivityAffinityConfig

    item_category_: np.ndarray
    user_category_: sp.csr_matrix
    category_share_: np.ndarray

    def _fit(self, data, callback) -> None:
        super()._fit(data, callback)
        cats = data.item_table["category"].astype(str)
        unknown = cats.str.lower().isin(["unknown", "", "nan", "(no genres listed)"]).to_numpy()
        codes, _ = pd.factorize(cats)
        codes = np.where(unknown, -1, codes).astype(np.int64)
        n_cats = int(codes.max()) + 1 if (codes >= 0).any() else 0
        rows = data.interactions
        u, c = rows["user_idx"].to_numpy(), codes[rows["item_idx"].to_numpy()]
        ok = c >= 0
        counts = sp.csr_matrix((np.ones(int(ok.sum())), (u[ok], c[ok])), shape=(data.n_users, max(n_cats, 1)))
        counts.sum_duplicates()
        totals = np.asarray(counts.sum(axis=0)).ravel()
        self.item_category_ = codes
        self.user_category_ = counts
        self.category_share_ = totals / max(totals.sum(), 1.0)
        # a catalog category seen in training makes a product answerable even before anyone interacted with it
        cat_seen = np.zeros(len(codes), dtype=bool)
        cat_seen[codes >= 0] = self.category_share_[codes[codes >= 0]] > 0
        self.known_items_ = self.known_items_ | cat_seen

    def affinity(self, item_idx: np.ndarray) -> np.ndarray:
        """Smoothed category affinity (len(item_idx), n_users); 1 where the product's category is unknown."""
        self._check_fitted("user_category_")
        item_idx = np.asarray(item_idx, dtype=np.int64)
        cats = self.item_category_[item_idx]
        out = np.ones((len(item_idx), self.user_category_.shape[0]))
        has = np.flatnonzero(cats >= 0)
        if len(has):
            s = self.config.smoothing
            n_u = np.asarray(self.user_category_.sum(axis=1)).ravel()
            n_uc = self.user_category_[:, cats[has]].toarray().T
            denom = n_u[None, :] + s
            prior = self.category_share_[cats[has]][:, None]
            aff = np.divide(n_uc + s * prior, denom, out=np.broadcast_to(prior, n_uc.shape).copy(), where=denom > 0)
            out[has] = aff
        return out

    def _scores(self, item_idx: np.ndarray) -> np.ndarray:
        eng = self.engagement_ + self.config.engagement_floor
        return eng[None, :] * self.affinity(item_idx) ** self.config.affinity_power

    def _state(self):
        uc = self.user_category_
        return {**super()._state(), "item_category": self.item_category_, "category_share": self.category_share_,
                "uc_data": uc.data, "uc_indices": uc.indices, "uc_indptr": uc.indptr, "uc_shape": np.array(uc.shape)}

    def _set_state(self, state) -> None:
        super()._set_state(state)
        self.item_category_, self.category_share_ = state["item_category"], state["category_share"]
        self.user_category_ = sp.csr_matrix((state["uc_data"], state["uc_indices"], state["uc_indptr"]),
                                            shape=tuple(int(x) for x in state["uc_shape"]))
