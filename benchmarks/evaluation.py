"""Accuracy metrics of our evaluator (`hits_matrix` + `accuracy_metrics`) against ranx on identical inputs.

Both sides start from what an evaluator holds after ranking: ours from the ranked index array (n, K) and the
relevant CSR matrix; ranx from `Qrels`/`Run` built beforehand (building them is not timed). Timings:

  ours          hits_matrix + accuracy_metrics (six metrics, per user)
  ranx          ranx.evaluate(qrels, run, metrics), numba warmed up (includes its typed-list conversion)
  ranx kernels  ranx.evaluate on pre-converted numba typed lists (the metric kernels alone)
  numpy isin    a per-user np.isin loop for the hits, then our accuracy_metrics (the naive numpy peer)

Values are checked per user: all metrics must agree, MAP directly where |rel| <= K and everywhere after
rescaling ours to ranx's |rel| denominator.

    python benchmarks/evaluation.py --users 100000 --items 20000 --k 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from timing import best_of
import scipy.sparse as sp

from recsys.evaluation import metrics as M

METRICS = M.ACCURACY  # precision, recall, ndcg, map, mrr, hit_rate: ranx uses the same names


def make_inputs(n_users: int, n_items: int, k: int, seed: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """1-20 relevant items per user; ranked lists of K distinct items, about a third of slots planted from the
    user's relevant set (so every metric is far from zero), 5% of lists shorter than K (padded with -1)."""
    rng = np.random.default_rng(seed)
    drawn = rng.integers(1, 21, size=n_users)
    rows = np.repeat(np.arange(n_users), drawn)
    relevant = sp.csr_matrix((np.ones(rows.size), (rows, rng.integers(0, n_items, rows.size))),
                             shape=(n_users, n_items))
    relevant.sum_duplicates()
    relevant.data[:] = 1.0
    n_rel = np.diff(relevant.indptr)
    ranked = rng.integers(0, n_items, size=(n_users, k))
    plant = rng.random((n_users, k)) < 0.3
    pick = relevant.indptr[:-1, None] + (rng.random((n_users, k)) * n_rel[:, None]).astype(np.int64)
    ranked = np.where(plant, relevant.indices[pick], ranked)
    while True:  # re-draw lists holding a duplicate item
        srt = np.sort(ranked, axis=1)
        dup = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))
        if not len(dup):
            break
        ranked[dup] = rng.integers(0, n_items, size=(len(dup), k))
    short = np.flatnonzero(rng.random(n_users) < 0.05)
    lengths = rng.integers(0, k, size=len(short))
    ranked[short] = np.where(np.arange(k)[None, :] < lengths[:, None], ranked[short], -1)
    return ranked.astype(np.int64), relevant


def ours(ranked: np.ndarray, relevant: sp.csr_matrix, n_rel: np.ndarray, k: int) -> dict[str, np.ndarray]:
    return M.accuracy_metrics(M.hits_matrix(ranked, relevant), n_rel, [k])


def numpy_isin(ranked: np.ndarray, relevant: sp.csr_matrix, n_rel: np.ndarray,
               k: int) -> dict[str, np.ndarray]:
    ptr, ind = relevant.indptr, relevant.indices
    hits = np.stack([np.isin(row, ind[ptr[u]:ptr[u + 1]]) for u, row in enumerate(ranked)])
    return M.accuracy_metrics(hits & (ranked >= 0), n_rel, [k])


def to_ranx(ranked: np.ndarray, relevant: sp.csr_matrix):  # -> tuple[ranx.Qrels, ranx.Run]
    """Zero-padded query ids (ranx reports queries in sorted id order); strictly decreasing scores
    K - rank, so ranx's own tie-breaking never matters."""
    import ranx

    k = ranked.shape[1]
    width = len(str(len(ranked)))
    qids = [f"q{u:0{width}d}" for u in range(len(ranked))]
    ptr, ind = relevant.indptr, relevant.indices
    qrels = ranx.Qrels({q: {f"d{i}": 1 for i in ind[ptr[u]:ptr[u + 1]].tolist()} for u, q in enumerate(qids)})
    run = ranx.Run({q: {f"d{i}": float(k - r) for r, i in enumerate(row) if i >= 0}
                    for q, row in zip(qids, ranked.tolist())})
    return qrels, run




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "evaluation.json")
    args = parser.parse_args()

    import numba
    import ranx
    from ranx.meta.evaluate import convert_qrels, convert_run

    warnings.filterwarnings("ignore", category=numba.core.errors.NumbaTypeSafetyWarning)
    k = args.k
    names = [f"{m}@{k}" for m in METRICS]
    ranked, relevant = make_inputs(args.users, args.items, k, args.seed)
    n_rel = np.diff(relevant.indptr)
    t0 = time.perf_counter()
    qrels, run = to_ranx(ranked, relevant)
    build_s = time.perf_counter() - t0

    # warm up: numba compilation / cache loading for every metric, and our code paths
    small_q, small_r = to_ranx(ranked[:50], relevant[:50])
    ranx.evaluate(small_q, small_r, names)
    ours(ranked[:50], relevant[:50], n_rel[:50], k)

    t_ours, per_ours = best_of(lambda: ours(ranked, relevant, n_rel, k), args.repeat)
    t_ranx, _ = best_of(lambda: ranx.evaluate(qrels, run, names), args.repeat)
    typed_q, typed_r = convert_qrels(qrels), convert_run(run)
    t_kern, _ = best_of(lambda: ranx.evaluate(typed_q, typed_r, names, return_mean=False), args.repeat)
    t_isin, per_isin = best_of(lambda: numpy_isin(ranked, relevant, n_rel, k), 1)
    per_ranx = ranx.evaluate(qrels, run, names, return_mean=False)  # untimed, for the value checks

    fits = n_rel <= k
    checks: dict[str, float] = {}
    for m in METRICS:
        a, b = per_ours[f"{m}_at_{k}"], np.asarray(per_ranx[f"{m}@{k}"])
        assert np.array_equal(a, per_isin[f"{m}_at_{k}"]), m
        if m == "map":
            checks["map (|rel| <= K users)"] = float(np.abs(a[fits] - b[fits]).max())
            rescaled = a * np.minimum(n_rel, k) / n_rel
            checks["map (all users, ours rescaled to /|rel|)"] = float(np.abs(rescaled - b).max())
        else:
            checks[m] = float(np.abs(a - b).max())
    agree = all(v <= 1e-9 for v in checks.values())
    means = {m: {"ours": float(per_ours[f"{m}_at_{k}"].mean()), "ranx": float(np.mean(per_ranx[f"{m}@{k}"]))}
             for m in METRICS}

    print(f"users={args.users} items={args.items} K={k} seed={args.seed} relevant pairs={relevant.nnz} "
          f"users with |rel| > K: {int((~fits).sum())}  cpus={os.cpu_count()} "
          f"numba threads={numba.get_num_threads()}")
    print(f"(ranx Qrels/Run construction, not timed below: {build_s:.2f} s)\n")
    print(f"{'implementation':<34}{'seconds':>10}{'ratio vs ours':>16}")
    rows = [("ours: hits_matrix + accuracy_metrics", t_ours), ("ranx.evaluate(qrels, run, metrics)", t_ranx),
            ("ranx kernels on typed lists", t_kern), ("numpy isin per user + ours", t_isin)]
    for label, t in rows:
        print(f"{label:<34}{t:>10.4f}{t / t_ours:>15.1f}x")
    print(f"\n{'metric':<12}{'ours mean':>12}{'ranx mean':>12}")
    for m in METRICS:
        print(f"{m:<12}{means[m]['ours']:>12.6f}{means[m]['ranx']:>12.6f}")
    print("  (map differs by definition: ours / min(|rel|, K), ranx / |rel|)")
    print("\nmax |ours - ranx| per user:")
    for name, v in checks.items():
        print(f"  {name:<44}{v:.2e}")
    print(f"values agree: {agree}")

    result = {
        "config": {"users": args.users, "items": args.items, "k": k, "seed": args.seed, "repeat": args.repeat,
                   "relevant_pairs": int(relevant.nnz), "users_rel_gt_k": int((~fits).sum())},
        "machine": {"cpus": os.cpu_count(), "numba_threads": numba.get_num_threads(),
                    "python": platform.python_version(),
                    "numpy": np.__version__, "ranx": getattr(ranx, "__version__", "unknown")},
        "seconds": {"ours": t_ours, "ranx_evaluate": t_ranx, "ranx_kernels": t_kern, "numpy_isin": t_isin,
                    "ranx_build_untimed": build_s},
        "ratio_vs_ours": {"ranx_evaluate": t_ranx / t_ours, "ranx_kernels": t_kern / t_ours,
                          "numpy_isin": t_isin / t_ours},
        "max_abs_diff": checks,
        "values_agree": agree,
        "means": means,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
