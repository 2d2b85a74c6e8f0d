"""Predictor of the `segment` task: session features -> cluster, name and distance."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from recsys.errors import RecsysError
from recsys.models.base import Model
from recsys.serving.predictor import Predictor, predictor


@predictor("segment")
class SegmentPredictor(Predictor):
    """Session features -> (session_id, cluster, cluster_name, distance); `session_id` is optional."""

    task = "segment"

    def __init__(self, model_dir: Path, meta: dict) -> None:
        self.model: Any = cast(Any, Model.load(model_dir))  # a fitted Segmenter (k_, features, distances)
        self.names = list(meta.get("cluster_names") or [f"cluster {i}" for i in range(int(self.model.k_))])

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        features = self.model.features
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise RecsysError(f"input is missing session feature column(s) {missing}; expected {features}")
        dist = self.model.distances(frame)
        cluster = dist.argmin(axis=1).astype(np.int64)
        out = pd.DataFrame({"cluster": cluster, "cluster_name": np.array(self.names, dtype=object)[cluster],
                            "distance": dist[np.arange(len(cluster)), cluster].astype(np.float64)})
        if "session_id" in frame.columns:
            out.insert(0, "session_id", frame["session_id"].astype(str).to_numpy())
        return out
