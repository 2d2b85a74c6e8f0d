"""Load the models that hold an alias into one immutable `ServingState` (built fully, then swapped in by the app).

For each configured registered model: resolve the alias in the configured registry, download the saved model folder
through `recsys.tracking.model_store`, build the predictor for the folder's task. Recommend models are precomputed at
load: top-K items for every known user, top-K neighbours for every item, and pre-serialised JSON per user for the
cached k values, so the hot path never scores a model.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys.errors import ConfigError
from recsys.logging import get_logger
from recsys.serving.predictor import Predictor, RecommendPredictor, load_predictor

_log = get_logger(__name__)

JSON_HEADERS = [(b"content-type", b"application/json")]


class ServeConfig(BaseModel):
    """What `recsys serve` loads and how much it precomputes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str = Field(description="registry to load from (the only one ever read)")
    models: tuple[str, ...] = Field(min_length=1, description="registered model names to serve")
    alias: str = Field("champion", min_length=1, description="alias whose versions are served")
    max_k: int = Field(100, ge=1, le=1000, description="top-K precomputed per user / item; the largest k served")
    cache_k: tuple[int, ...] = Field((10,), description="k values answered from pre-serialised JSON per user")
    poll_interval: float = Field(30.0, ge=0, description="seconds between alias checks; 0 disables polling")
    batch_size: int = Field(2048, ge=1, description="users / items scored per batch while precomputing")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="largest request body; larger ones get 413 before "
                                                              "a byte of them is parsed")

    @field_validator("models")
    @classmethod
    def _names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(n.strip() for n in v if n.strip())
        if not names:
            raise ConfigError("`models` must name at least one registered model, e.g. --models recsys-quickstart")
        return names

    @field_validator("cache_k")
    @classmethod
    def _cache_k(cls, v: tuple[int, ...], info) -> tuple[int, ...]:
        max_k = info.data.get("max_k", 100)
        bad = [k for k in v if not 1 <= k <= max_k]
        if bad:
            raise ConfigError(f"`cache_k` values must be in [1, max_k={max_k}], but got {bad}")
        return tuple(sorted(set(v)))


@dataclass
class LoadedModel:
    """One registered model version in memory."""

    name: str
    alias: str
    version: str
    run_id: str | None
    task: str
    predictor: Predictor
    folder: Path
    loaded_at: float = field(default_factory=time.time)

    @property
    def info(self) -> dict[str, Any]:
        """The `model` object every response carries."""
        return {"name": self.name, "version": self.version, "alias": self.alias}

    def describe(self) -> dict[str, Any]:
        return {**self.info, "run_id": self.run_id, "task": self.task,
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at))}

    def predict(self, frame: pd.DataFrame, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Per-request scoring for tasks without a precomputed cache: DataFrame rows as JSON-ready records."""
        out = self.predictor.predict(frame, params)
        return orjson.loads(orjson.dumps(out.to_dict("records"), option=orjson.OPT_SERIALIZE_NUMPY
                                         | orjson.OPT_NON_STR_KEYS, default=str))


class RecommendIndex:
    """Precomputed answers of a recommend model: top-K per user and per item, JSON bytes per (k, user)."""

    def __init__(self, entry: LoadedModel, max_k: int, cache_k: tuple[int, ...], batch_size: int) -> None:
        model = getattr(entry.predictor, "model", None)
        if model is None or not hasattr(model, "recommend"):
            raise ConfigError(f"predictor of {entry.name} v{entry.version} exposes no `model` with `recommend`")
        t0 = time.perf_counter()
        self.entry = entry
        n_users, n_items = len(model.users_), len(model.items_)
        self.k_max = min(max_k, n_items)
        self.default_k = max(1, min(int(getattr(entry.predictor, "default_k", 10)), self.k_max))
        self.item_ids: list[Any] = model.items_.ids.tolist()
        self.user_pos = {str(u): i for i, u in enumerate(model.users_.ids.tolist())}
        self.item_pos = {str(i): j for j, i in enumerate(self.item_ids)}
        self.top_items, self.top_scores = _batched(lambda idx: model.recommend(idx, self.k_max), n_users, batch_size)
        fb_items, fb_scores = model.fallback(1, self.k_max)
        self.fallback_items, self.fallback_scores = fb_items[0], fb_scores[0]
        self.sim_items: np.ndarray | None
        self.sim_scores: np.ndarray | None
        try:
            self.sim_items, self.sim_scores = _batched(lambda idx: model.similar(idx, self.k_max), n_items, batch_size)
        except NotImplementedError:
            self.sim_items = self.sim_scores = None
        self.fallback_tails: dict[int, bytes] = {}
        # complete ASGI messages for the cached k values: {k: {user_id: (response.start, response.body)}}
        self.cache: dict[int, dict[str, tuple[dict, dict]]] = {
            k: {uid: asgi_messages(self.render_user(uid, pos, k)) for uid, pos in self.user_pos.items()}
            for k in sorted({*cache_k, self.default_k}) if k <= self.k_max}
        # unknown users: the answer is '{"user_id":' + the id + one tail per k (the same popular items for all)
        self.fallback_tails.update({k: self._fallback_tail(k) for k in self.cache})
        _log.info("precomputed %s v%s: %d users x top-%d, %d items%s, cached k=%s in %.1fs", entry.name,
                  entry.version, n_users, self.k_max, n_items, "" if self.sim_items is not None else " (no similar)",
                  sorted(self.cache), time.perf_counter() - t0)

    def items_json(self, items: np.ndarray, scores: np.ndarray, k: int) -> list[dict[str, Any]]:
        keep = items[:k] >= 0
        ids, vals = items[:k][keep].tolist(), scores[:k][keep].tolist()
        return [{"item_id": self.item_ids[i], "score": s} for i, s in zip(ids, vals)]

    def render_user(self, user_id: str, pos: int, k: int) -> bytes:
        if pos < 0:
            tail = self.fallback_tails.get(k) or self._fallback_tail(k)
            return b'{"user_id":' + orjson.dumps(user_id) + tail
        return orjson.dumps({"user_id": user_id, "k": k, "reason": "personalised", "fallback": False,
                             "model": self.entry.info,
                             "items": self.items_json(self.top_items[pos], self.top_scores[pos], k)})

    def _fallback_tail(self, k: int) -> bytes:
        rest = orjson.dumps({"k": k, "reason": "popular_items", "fallback": True, "model": self.entry.info,
                             "items": self.items_json(self.fallback_items, self.fallback_scores, k)})
        return b"," + rest[1:]

    def cold_start_messages(self, user_id: str, k: int) -> tuple[dict, dict] | None:
        """ASGI messages of the popular-items answer for an unknown user at a cached k (None otherwise)."""
        tail = self.fallback_tails.get(k)
        if tail is None:
            return None
        return asgi_messages(b'{"user_id":' + orjson.dumps(user_id) + tail)

    def recommendations(self, user_id: str, k: int) -> bytes:
        """JSON for user `user_id` (unknown users get the most popular items with reason `popular_items`)."""
        cached = self.cache.get(k)
        if cached is not None and (messages := cached.get(user_id)) is not None:
            return messages[1]["body"]
        return self.render_user(user_id, self.user_pos.get(user_id, -1), min(k, self.k_max))

    def fold_in(self, user_id: str | None, items: list, k: int) -> bytes:
        """JSON for a user given by the items they had (fold-in, reason `folded_in`); a known `user_id`'s
        training history is added. No usable history: the user's own list, or the popular items."""
        k = min(k, self.k_max)
        pred = self.entry.predictor
        assert isinstance(pred, RecommendPredictor)  # a RecommendIndex is built for recommend models only
        ranked, scores, reason, unknown = pred.answer([user_id if user_id is not None else ""], [items], k)
        if reason[0] != "folded_in":
            pos = self.user_pos.get(user_id, -1) if user_id is not None else -1
            body = orjson.loads(self.render_user(user_id or "", pos, k))
            body["user_id"] = user_id
        else:
            body = {"user_id": user_id, "k": k, "reason": "folded_in", "fallback": False, "model": self.entry.info,
                    "items": self.items_json(ranked[0], scores[0], k)}
        body["unknown_items"] = [str(i) for i in unknown[0]]
        return orjson.dumps(body)

    def similar(self, item_id: str, k: int) -> bytes | None:
        """JSON of the k nearest items, or None when `item_id` is unknown."""
        pos = self.item_pos.get(item_id)
        if pos is None or self.sim_items is None or self.sim_scores is None:
            return None
        k = min(k, self.k_max)
        return orjson.dumps({"item_id": item_id, "k": k, "reason": "neighbours", "fallback": False,
                             "model": self.entry.info,
                             "items": self.items_json(self.sim_items[pos], self.sim_scores[pos], k)})


def asgi_messages(body: bytes) -> tuple[dict, dict]:
    """The two ASGI messages of a 200 JSON response from the fast path (built once; servers only read them)."""
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), (b"x-recsys-cache", b"hit")]
    return ({"type": "http.response.start", "status": 200, "headers": headers},
            {"type": "http.response.body", "body": body})


def _batched(fn, n: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    items, scores = [], []
    for start in range(0, n, batch_size):
        i, s = fn(np.arange(start, min(n, start + batch_size)))
        items.append(i.astype(np.int32))
        scores.append(s.astype(np.float32))
    if not items:
        return np.empty((0, 0), np.int32), np.empty((0, 0), np.float32)
    return np.concatenate(items), np.concatenate(scores)


@dataclass(frozen=True)
class ServingState:
    """Everything a request reads; replaced as a whole on reload (never mutated)."""

    models: tuple[LoadedModel, ...] = ()
    by_task: dict[str, LoadedModel] = field(default_factory=dict)
    recommend: RecommendIndex | None = None
    missing: tuple[str, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)
    loaded: bool = False

    @property
    def loaded_names(self) -> set[str]:
        return {m.name for m in self.models}

    def key(self) -> tuple[tuple[str, str], ...]:
        return tuple((m.name, m.version) for m in self.models)


class ModelLoader:
    """Builds `ServingState`s from the registry; reuses models whose version did not change."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._dir = Path(tempfile.mkdtemp(prefix="recsys-serve-"))
        self._lock = threading.Lock()

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def load(self, previous: ServingState | None = None) -> ServingState:
        """Resolve the alias for every configured name and build a new state (the previous one stays valid)."""
        from recsys.tracking.model_store import download_model_folder, resolve_alias

        cfg = self.config
        with self._lock:
            prev = {m.name: m for m in (previous.models if previous else ())}
            prev_index = previous.recommend if previous else None
            models: list[LoadedModel] = []
            missing: list[str] = []
            errors: dict[str, str] = {}
            for name in cfg.models:
                try:
                    ref = resolve_alias(cfg.tracking_uri, name, cfg.alias)
                    if ref is None:
                        missing.append(name)
                        continue
                    old = prev.get(name)
                    if old is not None and old.version == ref.version:
                        models.append(old)
                        continue
                    folder = download_model_folder(cfg.tracking_uri, ref, self._dir / name / f"v{ref.version}")
                    pred = load_predictor(folder)
                    models.append(LoadedModel(name=name, alias=cfg.alias, version=ref.version, run_id=ref.run_id,
                                              task=getattr(pred, "task", "recommend"), predictor=pred, folder=folder))
                except Exception as exc:  # noqa: BLE001 - one broken version must not take the others (or the old one) down
                    _log.exception("could not load %s@%s", name, cfg.alias)
                    errors[name] = public_error(exc)
                    if name in prev:
                        models.append(prev[name])
            by_task: dict[str, LoadedModel] = {}
            for m in models:
                if m.task in by_task:
                    _log.warning("%s v%s also serves task %r; %s v%s answers it (first in --models)", m.name,
                                 m.version, m.task, by_task[m.task].name, by_task[m.task].version)
                    continue
                by_task[m.task] = m
            index = None
            rec = by_task.get("recommend")
            if rec is not None:
                if prev_index is not None and prev_index.entry is rec:
                    index = prev_index
                else:
                    try:
                        index = RecommendIndex(rec, cfg.max_k, cfg.cache_k, cfg.batch_size)
                    except Exception as exc:  # noqa: BLE001 - keep serving the previous version
                        _log.exception("could not precompute %s v%s", rec.name, rec.version)
                        errors[rec.name] = public_error(exc)
                        index = prev_index
                        if prev_index is not None:
                            by_task["recommend"] = prev_index.entry
                            models = [prev_index.entry if m is rec else m for m in models]
                        else:
                            by_task.pop("recommend")
                            models = [m for m in models if m is not rec]
            self._drop_folders_except({m.folder for m in models})
            return ServingState(models=tuple(models), by_task=by_task, recommend=index, missing=tuple(missing),
                                errors=errors, loaded=True)

    def _drop_folders_except(self, keep: set[Path]) -> None:
        """Delete downloaded versions no longer served (their predictors live in memory until unreferenced)."""
        keep_roots = {folder.relative_to(self._dir).parts[:2] for folder in keep if folder.is_relative_to(self._dir)}
        for version_dir in self._dir.glob("*/v*"):
            if version_dir.relative_to(self._dir).parts[:2] not in keep_roots:
                shutil.rmtree(version_dir, ignore_errors=True)


def public_error(exc: BaseException) -> str:
    """Error text for unauthenticated endpoints: credentials in URLs are masked (details go to the log)."""
    import re

    text = re.sub(r"://[^/@\s]+@", "://***@", f"{type(exc).__name__}: {exc}")
    return hide_paths(text)[:500]


def hide_paths(text: str) -> str:
    """Local file-system paths (temporary model folders, the store's directory) as `<path>/<file name>`.

    Public responses (/ready, /models, error bodies) never show where the service keeps its files.
    """
    import re

    text = re.sub(r"sqlite:/{3,4}(?:[^\s'\"]*/)?([^\s'\"/]+)", r"sqlite:///<path>/\1", text)
    text = re.sub(r"file://", "", text)
    return re.sub(r"(?<![\w.:/-])/(?:[^\s'\"/,;()<>]+/)+([^\s'\"/,;()<>]*)", r"<path>/\1", text)
