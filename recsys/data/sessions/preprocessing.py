"""Session features -> model space: winsorise, optional log1p, standardise (fitted on training sessions)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data.sessions.config import PreprocessConfig
from recsys.data.validation import require_columns
from recsys.errors import DataError


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
    def fit(cls, frame: pd.DataFrame, features: list[str], cfg: PreprocessConfig) -> SessionPreprocessor:
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
    def from_dict(cls, d: dict) -> SessionPreprocessor:
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
