"""`kmeans`: session segmentation with scikit-learn KMeans over a K range and a configurable K-selection rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from recsys.data.sessions import PreprocessConfig, SessionPreprocessor
from recsys.errors import ConfigError, DataError
from recsys.logging import get_logger
from recsys.models.base import Model, ModelConfig, ProgressCallback
from recsys.models.catalog import register
from recsys.random import derive_seed
from recsys.random import rng as make_rng

if TYPE_CHECKING:
    from sklearn.cluster import KMeans

_log = get_logger(__name__)

Rule = Literal["vote", "elbow", "silhouette", "davies_bouldin", "calinski_harabasz", "stability", "fixed"]
VoteCriterion = Literal["elbow", "silhouette", "davies_bouldin", "calinski_harabasz", "stability"]


def _default_vote() -> list[VoteCriterion]:
    return ["elbow", "silhouette", "davies_bouldin", "calinski_harabasz"]


class KSelector(Protocol):
    """How a segmenter scores each K and chooses one; the project's is `recsys.evaluation.segment.K_SELECTION`
    (models do not import evaluation: the segment task hands it to `fit`)."""

    def criteria(self, X: np.ndarray, labels: np.ndarray, inertia: float, silhouette_sample: int,
                 random_state: Any) -> dict[str, float]: ...

    def select(self, scores: pd.DataFrame, rule: str, criteria: list[str], fixed_k: int | None
               ) -> tuple[int, dict]: ...


class Segmenter(Model):
    """Segment task base: `fit(frame)` on session features, `assign(frame)` -> cluster index per session."""

    tasks: ClassVar[tuple[str, ...]] = ("segment",)

    def fit(self, frame: pd.DataFrame, features: list[str], callback: ProgressCallback | None = None) -> Segmenter:
        raise NotImplementedError

    def assign(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError


@register
class KMeansSegmenter(Segmenter):
    """Winsorise/log/standardise the features, fit KMeans for every K in [k_min, k_max], score each K
    (inertia, silhouette, Davies-Bouldin, Calinski-Harabasz, bootstrap stability) and keep the chosen K.

    After fit: `k_` (chosen K), `scores_` (DataFrame indexed by K), `selection_` (rule evidence),
    `centroids_` (k, d) in model space, `labels_` (training assignments), `preprocessor_`, `labels_by_k_`.
    """

    name = "kmeans"

    config: Config

    class Config(ModelConfig):
        k_min: int = Field(2, ge=2, description="smallest K tried")
        k_max: int = Field(10, ge=2, le=50, description="largest K tried")
        selection: Rule = Field("vote", description="K-selection rule: vote across criteria, one criterion, or fixed")
        vote_criteria: list[VoteCriterion] = Field(
            default_factory=_default_vote, min_length=1,
            description="criteria that each nominate a K when selection=vote")
        k: int | None = Field(None, ge=2, description="the K when selection=fixed")
        n_init: int = Field(10, ge=1, description="KMeans restarts per K")
        max_iter: int = Field(300, ge=10)
        silhouette_sample: int = Field(4000, ge=100, description="silhouette on a seeded sample above this size")
        stability_bootstraps: int = Field(5, ge=0, description="bootstrap refits per K for stability (0 = off)")
        preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
        random_state: int = Field(0, description="seed of KMeans, sampling and bootstraps")
        num_threads: int = Field(1, ge=0, description="OpenMP/BLAS threads while fitting (0 = library default)")

        @model_validator(mode="after")
        def _range(self) -> KMeansSegmenter.Config:
            if self.k_max < self.k_min:
                raise ValueError(f"k_max must be >= k_min, but got k_min={self.k_min}, k_max={self.k_max}")
            if self.selection == "fixed" and (self.k is None or not self.k_min <= self.k <= self.k_max):
                raise ValueError(f"selection=fixed needs k in [k_min, k_max]=[{self.k_min}, {self.k_max}], "
                                 f"but got k={self.k}")
            if self.selection == "stability" and self.stability_bootstraps == 0:
                raise ValueError("selection=stability needs stability_bootstraps > 0")
            return self

    k_: int
    centroids_: np.ndarray

    def fit(self, frame: pd.DataFrame, features: list[str], callback: ProgressCallback | None = None,
            selector: KSelector | None = None) -> KMeansSegmenter:
        """Fit every K in [k_min, k_max]; `selector` scores each K and picks one (the segment task passes
        `recsys.evaluation.segment.K_SELECTION`)."""
        c = self.config
        if len(frame) < c.k_max + 1:
            raise DataError(f"kmeans needs more sessions than k_max={c.k_max}, but got {len(frame)}")
        self.preprocessor_ = SessionPreprocessor.fit(frame, features, c.preprocess)
        X = self.preprocessor_.transform(frame)
        if selector is None:
            raise ConfigError("kmeans.fit needs a K selector to score and choose K: pass "
                              "selector=recsys.evaluation.segment.K_SELECTION (the segment task does)")
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=c.num_threads or None):
            self._fit_range(X, callback, selector)
        return self

    def _fit_range(self, X: np.ndarray, callback: ProgressCallback | None, selector: KSelector) -> None:
        c = self.config
        rows, fits = [], {}
        for step, k in enumerate(range(c.k_min, c.k_max + 1)):
            km = self._kmeans(k, c.random_state).fit(X)
            labels = km.labels_.astype(np.int64)
            row = {"k": k, **selector.criteria(X, labels, km.inertia_, c.silhouette_sample,
                                               derive_seed(c.random_state, "silhouette", k))}
            row["stability"] = self._stability(X, labels, k)
            rows.append(row)
            fits[k] = (km.cluster_centers_, labels)
            _log.debug("k=%d %s", k, {m: round(v, 4) for m, v in row.items() if m != "k"})
            if callback is not None:
                callback(step, row)
        self.scores_ = pd.DataFrame(rows).set_index("k")
        criteria: list[str] = list(c.vote_criteria)
        if c.stability_bootstraps == 0 and "stability" in criteria:
            criteria.remove("stability")
        self.k_, self.selection_ = selector.select(self.scores_, c.selection, criteria, c.k)
        self.centroids_, self.labels_ = fits[self.k_]
        self.labels_by_k_ = {k: v[1] for k, v in fits.items()}
        _log.info("kmeans: chose K=%d by %s (%s)", self.k_, c.selection, self.selection_.get("nominees"))

    def _kmeans(self, k: int, seed: int, n_init: int | None = None) -> KMeans:
        from sklearn.cluster import KMeans  # imported on use: the catalog imports this module to validate configs

        return KMeans(n_clusters=k, n_init=n_init or self.config.n_init, max_iter=self.config.max_iter,
                      random_state=seed)

    def _stability(self, X: np.ndarray, labels: np.ndarray, k: int) -> float:
        """Mean ARI between the full-data labels and those of KMeans refitted on bootstrap samples."""
        from sklearn.metrics import adjusted_rand_score

        c = self.config
        if c.stability_bootstraps == 0:
            return float("nan")
        r = make_rng(derive_seed(c.random_state, "bootstrap", k))
        aris = []
        for b in range(c.stability_bootstraps):
            idx = r.integers(0, len(X), size=len(X))
            km = self._kmeans(k, derive_seed(c.random_state, "refit", k, b), n_init=max(1, c.n_init // 2)).fit(X[idx])
            aris.append(adjusted_rand_score(labels, km.predict(X)))
        return float(np.mean(aris))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw session features -> model space (n, d)."""
        self._check_fitted("centroids_")
        return self.preprocessor_.transform(frame)

    def assign(self, frame: pd.DataFrame) -> np.ndarray:
        """Cluster index (n,) int64 of each session (nearest centroid in model space)."""
        return self.distances(frame).argmin(axis=1).astype(np.int64)

    def distances(self, frame: pd.DataFrame) -> np.ndarray:
        """Euclidean distance (n, k) of each session to each centroid in model space."""
        Z = self.transform(frame)
        d2 = (Z**2).sum(1)[:, None] - 2 * Z @ self.centroids_.T + (self.centroids_**2).sum(1)[None, :]
        return np.sqrt(np.maximum(d2, 0.0))

    def centroids_original(self) -> pd.DataFrame:
        """Centroids in the features' original units (k rows)."""
        self._check_fitted("centroids_")
        vals = self.preprocessor_.inverse(self.centroids_)
        vals[np.abs(vals) < 1e-9] = 0.0  # float noise around zero (e.g. expm1 of -1e-17)
        out = pd.DataFrame(vals, columns=self.preprocessor_.features)
        out.insert(0, "cluster", np.arange(len(out)))
        return out

    @property
    def features(self) -> list[str]:
        self._check_fitted("centroids_")
        return list(self.preprocessor_.features)

    # persistence (npz + json, no pickle) ---------------------------------------------------------------------
    def _save(self, path: Path) -> None:
        self._check_fitted("centroids_")
        np.savez(path / "state.npz", centroids=self.centroids_)
        scores = self.scores_.reset_index().to_dict("records")
        (path / "preprocessor.json").write_text(json.dumps(self.preprocessor_.to_dict(), indent=2))
        (path / "selection.json").write_text(json.dumps(
            {"k": self.k_, "evidence": self.selection_, "scores": scores}, indent=2, default=_json_default))

    def _load(self, path: Path) -> None:
        with np.load(path / "state.npz", allow_pickle=False) as npz:
            self.centroids_ = npz["centroids"]
        self.preprocessor_ = SessionPreprocessor.from_dict(json.loads((path / "preprocessor.json").read_text()))
        sel = json.loads((path / "selection.json").read_text())
        self.k_ = int(sel["k"])
        self.selection_ = sel["evidence"]
        self.scores_ = pd.DataFrame(sel["scores"]).set_index("k")


def _json_default(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")
