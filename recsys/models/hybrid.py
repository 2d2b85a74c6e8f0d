"""Hybrid: late fusion of collaborative recommenders and the content model.

score(u, i) = sum_c w_c * z_c(u, i), where z_c is component c's score standardised per user over the catalog (mean 0,
sd 1), so components on different scales mix by their weights. An item a component has no evidence for (EASE: an
item nobody interacted with, -inf; an item added after fit with `add_items`) gets that component's lowest z-score for
the user, so only content can lift it: new catalog items can be recommended.

Weights are tuned on validation like any parameter: `content_weight` (a share in [0, 1]) overrides the weights of
`components`, giving the content component w and the collaborative ones 1 - w split by their configured weights.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys.models.base import Model, ModelConfig, ProgressCallback, Recommender
from recsys.models.catalog import create, register


class Component(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., description="catalog name of a recommend-task model")
    params: dict[str, Any] = Field(default_factory=dict, description="that model's params")
    weight: float = Field(1.0, ge=0, description="fusion weight of its standardised scores")


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per row: (s - mean) / sd over finite entries; non-finite entries (no evidence) get the row's lowest z-score;
    a row of equal scores is all 0."""
    s = np.where(np.isfinite(scores), scores, np.nan)
    if not s.shape[1]:
        return s
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        mean = np.nanmean(s, axis=1, keepdims=True)
        sd = np.nanstd(s, axis=1, keepdims=True)
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        z = (s - np.nan_to_num(mean)) / sd
        low = np.nan_to_num(np.nanmin(z, axis=1, keepdims=True), nan=0.0)
    return np.where(np.isnan(z), low, z)


@register
class Hybrid(Recommender):
    """After fit: `components_` (fitted models, in the order of `components`)."""

    name = "hybrid"
    tasks = ("recommend",)

    config: Config

    class Config(ModelConfig):
        components: list[Component] = Field(
            default_factory=lambda: [Component(name="ease", params={"regularization": 500.0}, weight=0.7),
                                     Component(name="content", params={"index": "flat"}, weight=0.3)],
            description="models fused; one of them should be `content` to serve new items")
        content_weight: float | None = Field(None, ge=0, le=1, description="share of the content component "
                                             "(tunable); overrides the component weights")

        @field_validator("components")
        @classmethod
        def _components(cls, v: list[Component]) -> list[Component]:
            if len(v) < 2:
                raise ValueError(f"a hybrid fuses at least 2 components, but got {len(v)}")
            bad = [c.name for c in v if c.name == "hybrid"]
            if bad:
                raise ValueError("a hybrid cannot contain a hybrid")
            return v

    components_: list[Any]  # fitted Recommenders; a `content` one also answers add_items

    def weights(self) -> np.ndarray:
        c = self.config
        w = np.array([comp.weight for comp in c.components], dtype=np.float64)
        if c.content_weight is not None:
            is_content = np.array([comp.name == "content" for comp in c.components])
            if not is_content.any():
                from recsys.errors import ConfigError

                raise ConfigError("hybrid: content_weight is set but no component is `content`; add "
                                  "{name: content} to components or unset content_weight")
            cf = w[~is_content]
            cf = cf / cf.sum() if cf.sum() > 0 else np.full(len(cf), 1.0 / max(len(cf), 1))
            w = np.where(is_content, c.content_weight / is_content.sum(), 0.0)
            w[~is_content] = (1 - c.content_weight) * cf
        if w.sum() <= 0:
            from recsys.errors import ConfigError

            raise ConfigError("hybrid: every component weight is 0; give at least one a weight > 0")
        return w

    def _fit(self, data, callback: ProgressCallback | None) -> None:
        from recsys.errors import ConfigError

        self.weights()  # fail before fitting anything
        fitted = []
        for comp in self.config.components:
            try:
                model = create(comp.name, comp.params, task="recommend")
            except KeyError:
                from recsys.models.catalog import available

                raise ConfigError(f"hybrid component {comp.name!r} is not a recommend model; choose from "
                                  f"{available('recommend')}") from None
            fitted.append(model.fit(data))
        self.components_ = fitted
        if callback is not None:
            callback(0, {})

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted("components_")
        n_items = self.seen_.shape[1]
        total = np.zeros((len(user_idx), n_items))
        for w, model in zip(self.weights(), self.components_):
            if w == 0:
                continue
            z = standardise(model.score(user_idx))
            if z.shape[1] < n_items:  # items added after fit: a component that does not know them has no evidence
                z = np.hstack([z, np.repeat(z.min(axis=1, keepdims=True), n_items - z.shape[1], axis=1)])
            total += w * z
        return total

    def add_items(self, items: pd.DataFrame) -> np.ndarray:
        """Add catalog items that arrived after fit (columns item_id, title, text, category): the content component
        embeds them and they become recommendable at once. Returns their item indices."""
        self._check_fitted("components_")
        content = [m for m in self.components_ if m.name == "content"]
        if not content:
            from recsys.errors import ConfigError

            raise ConfigError("hybrid.add_items needs a `content` component to describe new items")
        new_idx = content[0].add_items(items)
        for other in content[1:]:
            other.add_items(items)
        if len(new_idx):
            self.items_ = content[0].items_
            extra = sp.csr_matrix((self.seen_.shape[0], len(new_idx)), dtype=self.seen_.dtype)
            self.seen_ = sp.hstack([self.seen_, extra], format="csr")
            self.popularity_ = np.concatenate([self.popularity_, np.zeros(len(new_idx))])
        return new_idx

    def _save(self, path: Path) -> None:
        super()._save(path)
        for i, model in enumerate(self.components_):
            model.save(path / f"component_{i}")

    def _load(self, path: Path) -> None:
        super()._load(path)
        self.components_ = [Model.load(path / f"component_{i}") for i in range(len(self.config.components))]
