"""Vector search: FAISS `flat` against numpy brute force, and `ivf` / `hnsw` recall-vs-QPS curves.

Vectors are synthetic but shaped like MiniLM item embeddings: unit-norm, 384-d, drawn around `--clusters`
topic centres (uniform random vectors in 384-d have no neighbourhood structure and flatter every index).

  1. flat vs numpy: the same base and query vectors; numpy = float32 matmul per query batch + argpartition +
     sort (the obvious brute force). Top-K ids must be identical (checked; a differing id counts only if its score
     differs from the other side's by more than 1e-5, i.e. not a float tie). Best of `--repeat`, all threads.
  2. ivf (nlist = --nlist) over nprobe, and hnsw (M = --hnsw-m, efConstruction = --ef-construction) over
     efSearch: recall@K against the exact top-K, batch QPS (all queries in one call, all threads) and the p50
     latency of single-query calls (one thread). Build seconds and index memory per index.

    python benchmarks/search.py --n 200000 --dim 384 --queries 1000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from timing import best_of

from recsys.models import faiss_index as F
from recsys.models.embeddings import normalize


def make_vectors(n: int, n_queries: int, dim: int, clusters: int, spread: float,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around `clusters` Gaussian centres; `spread` = noise norm / centre norm (larger = harder)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), np.float32)
        for s in range(0, m, 50_000):
            e = min(m, s + 50_000)
            out[s:e] = centres[rng.integers(0, clusters, e - s)] + spread * rng.standard_normal((e - s, dim),
                                                                                               dtype=np.float32)
        return normalize(out)

    return draw(n), draw(n_queries)


def numpy_topk(base: np.ndarray, queries: np.ndarray, k: int, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    ids = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    for s in range(0, len(queries), batch):
        sims = queries[s:s + batch] @ base.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        val = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-val, axis=1, kind="stable")
        ids[s:s + batch] = np.take_along_axis(part, order, axis=1)
        scores[s:s + batch] = np.take_along_axis(val, order, axis=1)
    return ids, scores




def recall_at_k(ids: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    hits = (ids[:, :, None] == exact[:, None, :]).any(axis=2) & (ids >= 0)
    return float(hits.sum() / (len(exact) * k))


def single_query_p50_ms(index, queries: np.ndarray, k: int, n: int) -> float:
    with F.threads(1):
        F.search(index, queries[:1], k)
        times = []
        for i in range(min(n, len(queries))):
            t0 = time.perf_counter()
            index.search(queries[i:i + 1], k)
            times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def sweep(index, queries: np.ndarray, exact: np.ndarray, k: int, knob: str, values: list[int],
          cfg: F.IndexConfig, single: int) -> list[dict]:
    points = []
    for v in values:
        F.configure_search(index, cfg.model_copy(update={knob: v}))
        t, (ids, _) = best_of(lambda: F.search(index, queries, k), 2)
        point = {knob: v, "recall_at_k": recall_at_k(ids, exact), "qps": len(queries) / t,
                 "single_query_p50_ms": single_query_p50_ms(index, queries, k, single)}
        print(f"  {knob}={v:<5d} recall@{k}={point['recall_at_k']:.4f}  QPS={point['qps']:>10.0f}  "
              f"single-query p50={point['single_query_p50_ms']:.3f} ms")
        points.append(point)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="base vectors")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--spread", type=float, default=1.5, help="noise / centre norm of the topic clusters")
    parser.add_argument("--threads", type=int, default=0, help="threads for FAISS and numpy's BLAS; 0 = all")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=100)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512])
    parser.add_argument("--single", type=int, default=200, help="queries timed one at a time per point")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "search.json")
    args = parser.parse_args()

    import faiss
    from threadpoolctl import threadpool_limits

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
        threadpool_limits(args.threads, "blas")
    k = args.k
    t0 = time.perf_counter()
    base, queries = make_vectors(args.n, args.queries, args.dim, args.clusters, args.spread, args.seed)
    print(f"n={args.n} dim={args.dim} queries={args.queries} K={k} clusters={args.clusters} spread={args.spread} "
          f"cpus={os.cpu_count()} faiss threads={faiss.omp_get_max_threads()} (data {time.perf_counter() - t0:.1f}s)")

    # 1. flat vs numpy brute force ------------------------------------------------------------------------
    flat_cfg = F.IndexConfig(index="flat")
    t_flat_build, flat = best_of(lambda: F.build_index(base, flat_cfg), 1)
    numpy_topk(base, queries[:8], k)
    F.search(flat, queries[:8], k)
    t_np, (np_ids, np_scores) = best_of(lambda: numpy_topk(base, queries, k), args.repeat)
    t_fl, (fl_ids, fl_scores) = best_of(lambda: F.search(flat, queries, k), args.repeat)
    default_threshold = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = 20  # FAISS' BLAS path for batches of >= 20 queries
    t_fb, (fb_ids, fb_scores) = best_of(lambda: F.search(flat, queries, k), args.repeat)
    faiss.cvar.distance_compute_blas_threshold = default_threshold
    differ = fl_ids != np_ids
    real_diff = differ & (np.abs(fl_scores - np_scores) > 1e-5)
    blas_diff = (fb_ids != np_ids) & (np.abs(fb_scores - np_scores) > 1e-5)
    identical = not real_diff.any() and not blas_diff.any()
    print("\nflat vs numpy brute force (same vectors)")
    print(f"  numpy matmul+argpartition  {t_np:8.3f} s  ({len(queries) / t_np:>9.0f} QPS)")
    print(f"  faiss IndexFlatIP          {t_fl:8.3f} s  ({len(queries) / t_fl:>9.0f} QPS)  "
          f"default distance_compute_blas_threshold={default_threshold}")
    print(f"  faiss IndexFlatIP, BLAS    {t_fb:8.3f} s  ({len(queries) / t_fb:>9.0f} QPS)  threshold=20")
    print(f"  speed ratio numpy/faiss    {t_np / t_fl:8.2f}x (default)  {t_np / t_fb:.2f}x (BLAS path)")
    print(f"  identical top-{k}: {identical} (ids differing at {int(differ.sum())} of {differ.size} slots, "
          f"all within float ties: {not real_diff.any()}); max |score diff| "
          f"{float(np.abs(fl_scores - np_scores).max()):.2e}")
    exact = fl_ids

    # 2. ivf and hnsw ------------------------------------------------------------------------------------------
    results: dict[str, dict] = {}
    ivf_cfg = F.IndexConfig(index="ivf", nlist=args.nlist, random_state=args.seed)
    t_build, ivf = best_of(lambda: F.build_index(base, ivf_cfg), 1)
    print(f"\nivf nlist={args.nlist}: build {t_build:.1f} s, memory {F.memory_bytes(ivf) / 2**20:.1f} MiB")
    results["ivf"] = {"nlist": args.nlist, "build_seconds": t_build, "memory_mb": F.memory_bytes(ivf) / 2**20,
                      "points": sweep(ivf, queries, exact, k, "nprobe", args.nprobe, ivf_cfg, args.single)}
    del ivf
    hnsw_cfg = F.IndexConfig(index="hnsw", hnsw_m=args.hnsw_m, ef_construction=args.ef_construction)
    t_build, hnsw = best_of(lambda: F.build_index(base, hnsw_cfg), 1)
    print(f"\nhnsw M={args.hnsw_m} efConstruction={args.ef_construction}: build {t_build:.1f} s, "
          f"memory {F.memory_bytes(hnsw) / 2**20:.1f} MiB")
    results["hnsw"] = {"M": args.hnsw_m, "ef_construction": args.ef_construction, "build_seconds": t_build,
                       "memory_mb": F.memory_bytes(hnsw) / 2**20,
                       "points": sweep(hnsw, queries, exact, k, "ef_search", args.ef_search, hnsw_cfg, args.single)}
    flat_single = single_query_p50_ms(flat, queries, k, args.single)
    print(f"\nflat single-query p50 {flat_single:.3f} ms (exact, recall 1.0)")

    result = {
        "config": {k_: (str(v) if isinstance(v, Path) else v) for k_, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "faiss_threads": faiss.omp_get_max_threads(),
                    "python": platform.python_version(), "numpy": np.__version__, "faiss": faiss.__version__,
                    "processor": platform.processor() or platform.machine()},
        "flat_vs_numpy": {"numpy_seconds": t_np, "faiss_flat_seconds": t_fl, "speed_ratio_numpy_over_faiss": t_np / t_fl,
                          "numpy_qps": len(queries) / t_np, "faiss_flat_qps": len(queries) / t_fl,
                          "faiss_flat_blas_seconds": t_fb, "speed_ratio_numpy_over_faiss_blas": t_np / t_fb,
                          "faiss_default_blas_threshold": int(default_threshold),
                          "identical_topk": bool(identical), "slots_with_different_ids": int(differ.sum()),
                          "max_abs_score_diff": float(np.abs(fl_scores - np_scores).max()),
                          "flat_build_seconds": t_flat_build, "flat_memory_mb": F.memory_bytes(flat) / 2**20,
                          "flat_single_query_p50_ms": flat_single},
        **results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
