"""FAISS index kinds against numpy brute force on the same vectors."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.models import faiss_index as F
from recsys.models.base import topk
from recsys.models.embeddings import normalize


@pytest.fixture
def vectors(rng):
    centers = rng.normal(size=(20, 32))
    x = centers[rng.integers(0, 20, 2000)] + 0.3 * rng.normal(size=(2000, 32))
    return normalize(x), normalize(centers[rng.integers(0, 20, 50)] + 0.3 * rng.normal(size=(50, 32)))


def test_flat_equals_numpy_brute_force(vectors):
    base, queries = vectors
    ids, scores = F.search(F.build_index(base, F.IndexConfig(index="flat")), queries, k=10)
    exact_ids, exact_scores = topk(queries.astype(np.float64) @ base.T.astype(np.float64), 10)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
    assert (ids == exact_ids).mean() > 0.99  # ids differ only where two scores tie within float32


@pytest.mark.parametrize("cfg", [F.IndexConfig(index="ivf", nlist=16, nprobe=16),
                                 F.IndexConfig(index="hnsw", hnsw_m=16, ef_search=200)], ids=["ivf", "hnsw"])
def test_exhaustive_settings_recover_exact_results(vectors, cfg):
    base, queries = vectors
    exact = F.search(F.build_index(base, F.IndexConfig(index="flat")), queries, k=10)[0]
    ids = F.search(F.build_index(base, cfg), queries, k=10)[0]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)])
    assert recall >= 0.98


def test_nprobe_trades_recall(vectors):
    base, queries = vectors
    exact = F.search(F.build_index(base, F.IndexConfig(index="flat")), queries, k=10)[0]

    def recall(nprobe: int) -> float:
        ids = F.search(F.build_index(base, F.IndexConfig(index="ivf", nlist=64, nprobe=nprobe)), queries, k=10)[0]
        return float(np.mean([len(set(a[a >= 0]) & set(b)) / 10 for a, b in zip(ids, exact)]))

    assert recall(1) < recall(64)


def test_save_load_and_memory(vectors, tmp_path):
    base, queries = vectors
    cfg = F.IndexConfig(index="hnsw", hnsw_m=8, ef_search=40)
    index = F.build_index(base, cfg)
    F.save_index(index, tmp_path / "x" / "index.faiss")
    loaded = F.load_index(tmp_path / "x" / "index.faiss", cfg)
    assert loaded.hnsw.efSearch == 40
    np.testing.assert_array_equal(F.search(loaded, queries, 5)[0], F.search(index, queries, 5)[0])
    flat = F.build_index(base, F.IndexConfig(index="flat"))
    assert F.memory_bytes(flat) >= base.nbytes
    assert F.memory_bytes(index) > F.memory_bytes(flat)  # the graph costs memory on top of the vectors


def test_ivf_clamps_nlist_and_nprobe(rng):
    base = normalize(rng.normal(size=(30, 8)))
    index = F.build_index(base, F.IndexConfig(index="ivf", nlist=100, nprobe=500))
    assert index.nlist == 30 and index.nprobe == 30
    assert F.search(index, base[:2], k=50)[0].shape == (2, 30)


def test_bad_inputs_raise(rng):
    base = normalize(rng.normal(size=(10, 8)))
    index = F.build_index(base, F.IndexConfig())
    with pytest.raises(ValueError, match="k must be > 0"):
        F.search(index, base, k=0)
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        F.search(index, base[:, :4], k=1)
    with pytest.raises(ValueError, match="non-empty 2-D"):
        F.build_index(np.empty((0, 8), np.float32), F.IndexConfig())
