"""FAISS inner-product indexes over L2-normalised vectors: `flat` (exact), `ivf` (nlist, nprobe), `hnsw`
(M, efConstruction, efSearch). Search-time knobs (`nprobe`, `ef_search`) are plain params with bounds so tuning
can trade recall for latency.

    >>> index = build_index(vectors, IndexConfig(index="hnsw", ef_search=128))  # doctest: +SKIP
    >>> ids, scores = search(index, queries, k=10)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from recsys.logging import get_logger
from recsys.models.base import ModelConfig

_log = get_logger(__name__)

IndexKind = Literal["flat", "ivf", "hnsw"]


class IndexConfig(ModelConfig):
    """Which FAISS index holds the item vectors, and its build/search parameters."""

    index: IndexKind = Field("flat", description="flat = exact inner product; ivf = inverted lists; hnsw = graph")
    nlist: int = Field(64, ge=1, le=65536,
                       description="ivf: number of k-means cells (clamped to the number of vectors)")
    nprobe: int = Field(8, ge=1, le=65536, description="ivf: cells visited per query (clamped to nlist)")
    hnsw_m: int = Field(32, ge=4, le=256, description="hnsw: neighbours per node (M)")
    ef_construction: int = Field(200, ge=8, le=4096, description="hnsw: candidate list size while building")
    ef_search: int = Field(64, ge=1, le=4096, description="hnsw: candidate list size per query (>= k is used)")
    random_state: int = Field(42, description="seed of the ivf k-means")
    num_threads: int = Field(0, ge=0, description="FAISS OpenMP threads while building/searching; 0 = all cores")


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("vector indexes need FAISS: pip install faiss-cpu") from exc
    return faiss


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Limit FAISS' OpenMP threads to `n` (0 = leave as is) inside the block."""
    if n <= 0:
        yield
        return
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def build_index(vectors: np.ndarray, cfg: IndexConfig) -> Any:
    """A FAISS index (inner-product metric) holding `vectors` (n, d) float32, row i = id i."""
    faiss = _faiss()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"vectors must be a non-empty 2-D array, but got shape {x.shape}")
    n, d = x.shape
    with threads(cfg.num_threads):
        if cfg.index == "flat":
            index = faiss.IndexFlatIP(d)
        elif cfg.index == "ivf":
            nlist = min(cfg.nlist, n)
            if nlist < cfg.nlist:
                _log.warning("ivf: nlist=%d exceeds the %d vectors; using nlist=%d", cfg.nlist, n, nlist)
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = int(cfg.random_state) % (2**31)
            index.cp.min_points_per_centroid = 1  # small catalogs: no warning spam, cells may be sparse
            index.train(x)  # faiss' Python wrapper keeps `quantizer` alive with the index
        else:
            index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = cfg.ef_construction
        index.add(x)
    configure_search(index, cfg)
    return index


def configure_search(index: Any, cfg: IndexConfig) -> None:
    """Apply the search-time knobs (`nprobe`, `ef_search`) of `cfg` to a built or loaded index."""
    faiss = _faiss()
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = min(cfg.nprobe, ivf.nlist)
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = cfg.ef_search


def search(index: Any, queries: np.ndarray, k: int, num_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Top-k ids (n, k) int64 and inner-product scores (n, k) float32 per query row, best first; -1 pads."""
    if k <= 0:
        raise ValueError(f"k must be > 0, but got k={k}")
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim != 2 or q.shape[1] != index.d:
        raise ValueError(f"queries must have shape (n, {index.d}), but got {q.shape}")
    k = min(k, index.ntotal)
    with threads(num_threads):
        scores, ids = index.search(q, k)
    return ids.astype(np.int64), scores


def memory_bytes(index: Any) -> int:
    """Bytes of the serialised index (vectors, lists/graph and metadata): what it occupies on disk and in RAM."""
    return int(_faiss().serialize_index(index).nbytes)


def save_index(index: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _faiss().write_index(index, str(path))
    return path


def load_index(path: str | Path, cfg: IndexConfig | None = None) -> Any:
    index = _faiss().read_index(str(path))
    if cfg is not None:
        configure_search(index, cfg)
    return index
