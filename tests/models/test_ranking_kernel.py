"""The ranking kernels (recsys.models.ranking.topk, topk_static) against brute-force oracles, and thread-count
invariance.

The oracles sort each whole row by (score desc, index asc) with Python's own sort: no code of the kernels.
Scores are drawn from a handful of values so ties are everywhere, including across the K-th position.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.experiment import run_experiment
from recsys.models import ranking
from recsys.models.ranking import factor_scores, factor_topk, topk, topk_static


def oracle(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> tuple[list[list[int]], list[list]]:
    ids, vals = [], []
    for r, row in enumerate(scores.tolist()):
        banned = set(exclude[r].indices.tolist()) if exclude is not None else set()
        cand = [(-v, j) for j, v in enumerate(row) if j not in banned and not np.isnan(v) and v != -np.inf]
        cand.sort()
        top = cand[:k]
        width = min(k, scores.shape[1])
        ids.append([j for _, j in top] + [-1] * (width - len(top)))
        vals.append([-v for v, _ in top] + [-np.inf] * (width - len(top)))
    return ids, vals


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(6))
def test_tied_scores_match_the_oracle_for_every_thread_count(dtype, seed) -> None:
    rng = np.random.default_rng(seed)
    n, m = 40, int(rng.integers(5, 80))
    scores = rng.integers(0, 4, size=(n, m)).astype(dtype)  # four values: ties across rank K in most rows
    scores[rng.random((n, m)) < 0.1] = -np.inf
    scores[rng.random((n, m)) < 0.05] = np.nan
    scores[rng.random((n, m)) < 0.05] = np.inf  # an infinite score above a tie at rank K: the tie is still repaired
    exclude = sp.random(n, m, density=0.2, format="csr", random_state=seed)
    for k in (1, 3, 10, m, m + 5):
        want_ids, want_vals = oracle(scores, k, exclude)
        got = [topk(scores.copy(), k, exclude=exclude, num_threads=t) for t in (1, 2, 0)]
        for ids, vals in got:
            assert ids.tolist() == want_ids
            assert vals.tolist() == want_vals
            assert vals.dtype == dtype


def test_float64_near_ties_are_ranked_by_their_float64_values() -> None:
    # values that collapse to one float32 number: the kernel selects in float32 but must rank in float64
    base = np.float64(0.3)
    row = np.array([base, base + 1e-12, base + 2e-12, base, base + 1e-12, 0.1, 0.9])
    assert len(set(row.astype(np.float32)[:5].tolist())) == 1
    ids, vals = topk(row[None, :].copy(), 4)
    assert ids.tolist() == [[6, 2, 1, 4]]
    assert vals.tolist() == [[0.9, base + 2e-12, base + 1e-12, base + 1e-12]]


def test_an_infinite_score_above_a_float32_tie_at_rank_k_leaves_the_tie_ranked_in_float64() -> None:
    # k = 2: rank 1 is +inf, ranks 2 and 3 share one float32 value; the best float64 of the tie comes last
    row = np.array([[np.inf, 0.3, 0.3 + 1e-12, 0.3 + 2e-12]])
    ids, vals = topk(row.copy(), 2)
    assert ids.tolist() == [[0, 3]]
    assert vals.tolist() == [[np.inf, 0.3 + 2e-12]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_k_zero_and_no_rows_give_empty_results_in_the_input_dtype(dtype) -> None:
    ids, vals = topk(np.ones((3, 4), dtype=dtype), 0)
    assert ids.shape == vals.shape == (3, 0)
    assert ids.dtype == np.int64 and vals.dtype == dtype
    ids, vals = topk(np.ones((0, 4), dtype=dtype), 2)
    assert len(ids) == len(vals) == 0
    assert ids.dtype == np.int64 and vals.dtype == dtype


def test_rows_with_fewer_candidates_than_k_are_padded() -> None:
    scores = np.array([[1.0, -np.inf, 2.0], [-np.inf, -np.inf, -np.inf]], dtype=np.float32)
    ids, vals = topk(scores, 3, exclude=sp.csr_matrix(np.array([[0, 0, 1], [0, 0, 0]])))
    assert ids.tolist() == [[0, -1, -1], [-1, -1, -1]]
    assert vals.tolist() == [[1.0, -np.inf, -np.inf], [-np.inf] * 3]


def test_large_batch_with_planted_ties_matches_per_row_sort() -> None:
    # many rows, a catalogue larger than the kernel's parallel threshold, a tie planted exactly at rank 10
    rng = np.random.default_rng(1)
    scores = rng.random((300, 2000)).astype(np.float32)
    tied = rng.choice(2000, size=(300, 6))
    scores[np.arange(300)[:, None], tied] = 2.0  # six tied at the top ...
    scores[:, ::97] = 1.5  # ... and 21 more tied across ranks 7..27
    want = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    for t in (1, 2):
        ids, _ = topk(scores.copy(), 10, num_threads=t)
        np.testing.assert_array_equal(ids, want)


def static_oracle(values: list[float], seen: list[list[int]], k: int) -> tuple[list[list[int]], list[list[float]]]:
    ranked = sorted(range(len(values)), key=lambda j: (-values[j], j))
    width = min(k, len(values))
    ids, vals = [], []
    for row in seen:
        kept = [j for j in ranked if j not in set(row)][:width]
        ids.append(kept + [-1] * (width - len(kept)))
        vals.append([values[j] for j in kept] + [-np.inf] * (width - len(kept)))
    return ids, vals


def csr_as_given(seen: list[list[int]], m: int) -> sp.csr_matrix:
    """The rows' items stored in the order given, repeats kept (a non-canonical CSR when there are any)."""
    indptr = np.cumsum([0] + [len(r) for r in seen])
    indices = np.array([j for r in seen for j in r], dtype=np.int32)
    return sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(seen), m))


@pytest.mark.parametrize("seed", range(8))
def test_topk_static_matches_the_oracle_for_every_seen_pattern(seed) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(25):
        m = int(rng.integers(1, 12))
        values = rng.integers(0, 4, size=m).astype(np.float64)  # ties everywhere
        order = np.array(sorted(range(m), key=lambda j: (-values[j], j)), dtype=np.int64)
        n = int(rng.integers(0, 6))
        seen = [rng.choice(m, size=int(rng.integers(0, m + 1)), replace=True).tolist()  # repeats, any order
                for _ in range(n)]
        if n >= 2 and rng.random() < 0.5:  # a row with nothing seen, then one that saw the best item
            seen[0], seen[1] = [], [int(order[0])]
        exclude = csr_as_given(seen, m)
        for k in (1, m - 1, m, m + 3):
            want_ids, want_vals = static_oracle(values.tolist(), seen, k)
            ids, vals = topk_static(order, values, k, exclude)
            assert ids.dtype == np.int64
            assert ids.tolist() == want_ids and vals.tolist() == want_vals


def test_topk_static_with_one_seen_item_or_none() -> None:
    values = np.array([3.0, 1.0, 2.0, 2.0])
    order = np.array([0, 2, 3, 1])
    one = sp.csr_matrix(([1.0], ([0], [2])), shape=(2, 4))  # user 0 saw item 2; user 1 nothing
    ids, vals = topk_static(order, values, 3, one)
    assert ids.tolist() == [[0, 3, 1], [0, 2, 3]]
    assert vals.tolist() == [[3.0, 2.0, 1.0], [3.0, 2.0, 2.0]]
    for exclude in (None, sp.csr_matrix((1, 4))):
        ids, vals = topk_static(order, values, 5, exclude)
        assert ids.tolist() == [[0, 2, 3, 1]] and vals.tolist() == [[3.0, 2.0, 2.0, 1.0]]


def test_topk_static_counts_a_repeated_seen_item_once() -> None:
    values = np.array([4.0, 3.0, 2.0, 1.0])
    exclude = csr_as_given([[1, 0, 1, 1], [3, 3]], 4)  # unsorted, with repeats: not canonical
    assert not exclude.has_canonical_format
    ids, vals = topk_static(np.arange(4), values, 3, exclude)
    assert ids.tolist() == [[2, 3, -1], [0, 1, 2]]
    assert vals.tolist() == [[2.0, 1.0, -np.inf], [4.0, 3.0, 2.0]]
    assert exclude.indices.tolist() == [1, 0, 1, 1, 3, 3]  # the caller's matrix is left as it was


def test_factor_scores_are_bit_identical_whatever_the_batch_its_order_and_the_thread_count() -> None:
    """A user's float32 scores do not depend on who is scored with it, where it sits in the batch, or how many
    BLAS threads run: a plain float32 sgemm fails all three on OpenBLAS' Haswell kernels (AMD EPYC)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    users = rng.standard_normal((400, 64)).astype(np.float32)
    items = rng.standard_normal((3000, 64)).astype(np.float32)
    with threadpool_limits(1):
        batch = factor_scores(users, items)
    assert batch.dtype == np.float32
    perm = rng.permutation(len(users))
    for threads in (1, 2):
        with threadpool_limits(threads):
            np.testing.assert_array_equal(factor_scores(users[perm], items), batch[perm])
            np.testing.assert_array_equal(np.vstack([factor_scores(users[i:i + 7], items)
                                                     for i in range(0, len(users), 7)]), batch)
            for u in (0, 17, 399):
                np.testing.assert_array_equal(factor_scores(users[[u]], items)[0], batch[u])
    exact = users.astype(np.float64) @ items.T.astype(np.float64)
    np.testing.assert_array_equal(batch, exact.astype(np.float32))  # the float64 sum, rounded once


# every model with a `num_threads` that is reproducible by design, in groups: implicit's kernels (BLAS and
# OpenMP), the BLAS fits (EASE's inverse, RP3beta's products) and torch's intra-op threads (Mult-VAE, SASRec).
# BPR is left out: implicit's BPR fit with more than one thread is Hogwild (not reproducible by design).
THREADED_MODELS = {
    "implicit": [{"name": "item_knn", "params": {"k_neighbors": 20}},
                 {"name": "als", "params": {"factors": 16, "iterations": 5}}],
    "blas": [{"name": "ease", "params": {"regularization": 50.0}}, {"name": "rp3beta", "params": {}}],
    "torch": [{"name": "multvae", "params": {"epochs": 4, "hidden": 64, "latent": 16, "random_state": 3}},
              {"name": "sasrec", "params": {"epochs": 2, "factors": 16, "max_len": 20, "random_state": 3}}],
}


@pytest.mark.slow
@pytest.mark.parametrize("group", sorted(THREADED_MODELS))
def test_same_config_and_seed_give_identical_metrics_with_one_and_two_threads(tiny_config, group) -> None:
    def metrics(threads: int):
        models = [{"name": m["name"], "params": {**m["params"], "num_threads": threads}}
                  for m in THREADED_MODELS[group]]
        res = run_experiment(tiny_config(models=models))
        return {r.entry.run_name: r.metrics for r in res.results}, {
            r.entry.run_name: r.per_user for r in res.results}

    one, one_users = metrics(1)
    two, two_users = metrics(2)
    assert one == two  # every metric, to the last digit
    assert min(m["ndcg_at_10"] for m in one.values()) > 0  # real rankings, not all padding
    for name in one_users:
        assert one_users[name].equals(two_users[name])


def test_random_ranking_is_uniform_unseen_batch_independent_and_its_dense_scores_agree() -> None:
    from scipy import stats

    from recsys.models.ranking import random_ranking

    rng = np.random.default_rng(3)
    n, m, k = 400, 30, 8
    exclude = sp.random(n, m, density=0.5, format="csr", random_state=3)
    exclude[::50] = 1.0  # some users had every item: empty lists
    exclude = sp.csr_matrix(exclude)
    users = rng.permutation(10_000)[:n]
    idx, val = random_ranking(11, users, k, m, exclude)
    for r in range(n):
        row = idx[r][idx[r] >= 0]
        assert len(row) == min(k, m - exclude[r].nnz)  # full lists while unseen items remain, then -1
        assert len(set(row.tolist())) == len(row) and not set(row.tolist()) & set(exclude[r].indices.tolist())
        assert (np.diff(val[r][: len(row)]) < 0).all()
        single = random_ranking(11, users[r:r + 1], k, m, exclude[r])
        np.testing.assert_array_equal(single[0][0], idx[r])  # the batch does not matter
    # the dense scores rank exactly like the list
    full_idx, full_val = random_ranking(11, users, m, m)
    dense = np.zeros((n, m))
    np.put_along_axis(dense, full_idx, full_val, axis=1)
    got, _ = topk(dense, k, exclude=exclude)
    np.testing.assert_array_equal(got, idx)
    # every position is uniform over the items (chi-square over 20k users, fixed seed: deterministic)
    first3, _ = random_ranking(5, np.arange(20_000), 3, 12)
    for pos in range(3):
        counts = np.bincount(first3[:, pos], minlength=12)
        assert stats.chisquare(counts).pvalue > 1e-3
    assert random_ranking(5, np.arange(50), 3, 12)[0].tolist() != random_ranking(6, np.arange(50), 3, 12)[0].tolist()


def test_thread_limit_applies_inside_the_block_only() -> None:
    import faiss
    from threadpoolctl import threadpool_info

    from recsys.models.ranking import thread_limit

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before_blas, before_omp = blas_threads(), faiss.omp_get_max_threads()
    with thread_limit(1):
        assert set(blas_threads()) == {1} and faiss.omp_get_max_threads() == 1
    assert blas_threads() == before_blas and faiss.omp_get_max_threads() == before_omp
    with thread_limit(0):  # 0 = leave as is
        assert blas_threads() == before_blas and faiss.omp_get_max_threads() == before_omp


def test_importing_the_implicit_models_limits_no_thread_pool_process_wide() -> None:
    import os
    import subprocess
    import sys

    code = ("import os, recsys.models.als, recsys.models.bpr, recsys.models.item_knn\n"
            "from threadpoolctl import threadpool_info\n"
            "print(os.environ.get('OPENBLAS_NUM_THREADS'), "
            "min(p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'))")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         timeout=300)
    var, threads = out.stdout.split()
    assert var == "None"
    assert int(threads) == len(os.sched_getaffinity(0))  # BLAS keeps every core the process may use


def test_concurrent_limited_rankings_leave_the_thread_pools_as_they_were() -> None:
    from concurrent.futures import ThreadPoolExecutor

    import faiss
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads(), faiss.omp_get_max_threads()
    scores = np.random.default_rng(0).random((50, 400)).astype(np.float32)
    want = topk(scores.copy(), 5)[0]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: topk(scores.copy(), 5, num_threads=1)[0], range(40)))
    assert all(np.array_equal(r, want) for r in results)
    assert (blas_threads(), faiss.omp_get_max_threads()) == before


def factor_oracle(u: np.ndarray, v: np.ndarray, k: int, exclude: sp.csr_matrix | None) -> tuple[list, list]:
    """The documented formula by hand: Python floats (float64) summed left to right, rounded once to float32,
    then every allowed item sorted by (score desc, index asc)."""
    ids, vals = [], []
    for r in range(u.shape[0]):
        banned = set(exclude[r].indices.tolist()) if exclude is not None else set()
        row = []
        for j in range(v.shape[0]):
            if j in banned:
                continue
            acc = 0.0
            for a, b in zip(u[r].tolist(), v[j].tolist()):
                acc += a * b
            row.append((-float(np.float32(acc)), j))
        row.sort()
        width = min(k, v.shape[0])
        ids.append([j for _, j in row[:k]] + [-1] * (width - len(row[:k])))
        vals.append([-x for x, _ in row[:k]] + [-np.inf] * (width - len(row[:k])))
    return ids, vals


def _factors(seed: int, n: int, m: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian factors with planted ties: a block of identical item vectors (exact ties across the cut, which
    the candidate check cannot settle: those rows take the full exact pass) and users that score near zero."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, d)).astype(np.float32)
    v = rng.normal(size=(m, d)).astype(np.float32)
    v[m // 3: m // 3 + 60] = v[m // 3]  # 60 copies: more tied items than the k + max(k, 16) candidates
    u[: n // 4] = 1e-3 * u[: n // 4]
    u[n // 4] = v[m // 3] * 10  # this user's best items are the 60 copies
    return u, v


@pytest.mark.parametrize("seed", range(3))
def test_factor_topk_equals_the_exact_ranking_of_the_rounded_float64_scores(seed, monkeypatch) -> None:
    n, m, d = 30, 150, 8
    u, v = _factors(seed, n, m, d)
    exclude = sp.random(n, m, density=0.1, format="csr", random_state=seed)
    widths = []
    real = ranking.exact_dots
    monkeypatch.setattr(ranking, "exact_dots", lambda a, b, ids: widths.append(ids.shape[1]) or real(a, b, ids))
    for k in (1, 5, 20, m):
        want_ids, want_vals = factor_oracle(u, v, k, exclude)
        ids, vals = factor_topk(u, v, k, exclude=exclude)
        assert ids.tolist() == want_ids
        assert vals.tolist() == want_vals
        assert vals.dtype == np.float32
    assert m in widths and any(w < m for w in widths)  # both the candidate pass and the full pass ran


def test_factor_topk_is_the_same_whatever_the_batch_and_the_thread_count() -> None:
    u, v = _factors(7, 300, 2000, 32)
    exclude = sp.random(300, 2000, density=0.05, format="csr", random_state=7)
    want = factor_topk(u, v, 10, exclude=exclude, num_threads=1)
    for threads in (2, 0):
        got = factor_topk(u, v, 10, exclude=exclude, num_threads=threads)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    order = np.random.default_rng(1).permutation(300)
    for part in np.array_split(order, 7):
        got = factor_topk(u[part], v, 10, exclude=exclude[part])
        np.testing.assert_array_equal(got[0], want[0][part])
        np.testing.assert_array_equal(got[1], want[1][part])


def test_factor_topk_pads_rows_with_fewer_unexcluded_items_than_k() -> None:
    u, v = _factors(3, 4, 6, 3)
    exclude = sp.csr_matrix(np.array([[1, 1, 1, 1, 0, 0], [1] * 6, [0] * 6, [0, 1, 0, 1, 0, 1]]))
    ids, vals = factor_topk(u, v, 4, exclude=exclude)
    want_ids, want_vals = factor_oracle(u, v, 4, exclude)
    assert ids.tolist() == want_ids and vals.tolist() == want_vals
    assert ids[0, 2:].tolist() == [-1, -1] and ids[1].tolist() == [-1] * 4


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_factor_models_recommend_the_exact_ranking_of_their_factors_without_training_items(name) -> None:
    from recsys.models.catalog import create
    from recsys.testing import checkerboard

    train, _ = checkerboard(n_users=30, n_items=24, n_groups=3)
    model = create(name, {"factors": 6, "iterations": 3}).fit(train)
    users = np.arange(model.seen_.shape[0])
    ids, vals = model.recommend(users, k=7)
    want_ids, want_vals = factor_oracle(model.user_factors_, model.item_factors_, 7, model.seen_)
    assert ids.tolist() == want_ids and vals.tolist() == want_vals
    ids, _ = model.recommend(users, k=7, exclude_seen=False)
    assert ids.tolist() == factor_oracle(model.user_factors_, model.item_factors_, 7, None)[0]


def test_thread_limit_covers_pools_of_libraries_loaded_after_its_first_use() -> None:
    import os
    import subprocess
    import sys

    # scipy.linalg loads its own OpenBLAS after the first `thread_limit`: the limit must reach it too
    code = ("import numpy\n"
            "from recsys.models.ranking import thread_limit\n"
            "with thread_limit(1): pass\n"
            "import scipy.linalg\n"
            "from threadpoolctl import threadpool_info\n"
            "with thread_limit(1):\n"
            "    print(sorted({(p['filepath'], p['num_threads']) for p in threadpool_info()\n"
            "                  if p['user_api'] == 'blas'}))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         timeout=300)
    pools = eval(out.stdout)  # noqa: S307 - our own child's repr of a list of tuples
    assert any("scipy_openblas-" in path for path, _ in pools)  # the late pool is there
    assert {threads for _, threads in pools} == {1}


@pytest.mark.parametrize("shift", [0, 90, -40])
def test_factor_topk_is_exact_where_float32_rounding_errors_exceed_the_gaps_between_scores(shift) -> None:
    # items = one large shared vector + tiny differences: the float32 product's rounding errors (~1e-2) are larger
    # than the gaps between the exact scores (~1e-3), so its candidates miss some of the exact top 5. Users scaled
    # by 2^shift and items by 2^-shift have the same products bit for bit: the bound must scale with |u| and |v|
    # (at shift 90 the items' squared norms are below float32's range)
    rng = np.random.default_rng(0)
    n, m, d = 8, 300, 256
    u = (rng.normal(size=(n, d)) * 2.0 ** shift).astype(np.float32)
    v = ((rng.normal(scale=1000, size=d)[None, :] + rng.normal(scale=2e-4, size=(m, d))) * 2.0 ** -shift)
    v = v.astype(np.float32)
    approx_best = np.argsort(-(u @ v.T), axis=1, kind="stable")[:, :21]
    want_ids, want_vals = factor_oracle(u, v, 5, None)
    assert any(set(want_ids[r]) - set(approx_best[r].tolist()) for r in range(n))  # the trap is set
    ids, vals = factor_topk(u, v, 5)
    assert ids.tolist() == want_ids and vals.tolist() == want_vals


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_lowest_float32_value_is_a_score_like_any_other(dtype) -> None:
    # FAISS' heap marks empty slots with -FLT_MAX: a real score of -FLT_MAX must still be ranked (before -inf)
    low = -np.finfo(np.float32).max
    for row, k in (([low, 1.0, -np.inf], 3), ([low, 1.0, -np.inf, -np.inf], 3), ([low, low, 2.0, low], 2),
                   ([low, -np.inf, low, 5.0, low], 5)):
        scores = np.array([row], dtype=dtype)
        ids, vals = topk(scores.copy(), k)
        want_ids, want_vals = oracle(scores, k)
        assert ids.tolist() == want_ids and vals.tolist() == want_vals


@pytest.mark.parametrize("seed", range(4))
def test_float64_scores_beyond_the_float32_range_are_ranked_by_their_values(seed, recwarn) -> None:
    rng = np.random.default_rng(seed)
    pool = np.array([1e300, 2e300, 3e300, -1e300, -2e300, 1e39, -1e39, 3.4028234663852886e38,
                     -3.4028234663852886e38, 0.0, 1.0, -1.0, np.inf, -np.inf, np.nan])
    scores = rng.choice(pool, size=(30, 12))
    exclude = sp.random(30, 12, density=0.15, format="csr", random_state=seed)
    for k in (1, 2, 5, 12):
        want_ids, want_vals = oracle(scores, k, exclude)
        ids, vals = topk(scores.copy(), k, exclude=exclude)
        assert ids.tolist() == want_ids and vals.tolist() == want_vals
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # no "overflow in cast"
    assert topk(np.array([[1e300, 2e300, 3e300, 1.0]]), 1)[0].tolist() == [[2]]
    assert topk(np.array([[-1e300, 0.0, 1.0]]), 3)[0].tolist() == [[2, 1, 0]]


def test_factor_topk_is_exact_where_products_underflow_to_float32_subnormals() -> None:
    # scores a few times the smallest subnormal q = 2^-149: the float32 product rounds every product to a multiple
    # of q, an absolute error of up to q/2 however small |u| |v| is. Item 0 (products 0.4q + 0.4q: float32 0, exact
    # 0.8q -> q) looks the worst while it ties for the exact best with every other item, and wins by its index
    s, q = 2.0 ** -60, 2.0 ** -149
    u = np.full((1, 2), s, dtype=np.float32)
    v = (np.array([[0.4, 0.4], [0.6, 0.6]] + [[1.0, 0.0]] * 30) * (q / s)).astype(np.float32)
    assert (u @ v.T)[0, :3].tolist() == [0.0, 2 * q, q]  # the trap is set: the float32 order is 1, 2, ..., 0
    for k in (1, 3):
        want_ids, want_vals = factor_oracle(u, v, k, None)
        assert want_ids == [list(range(k))]
        ids, vals = factor_topk(u, v, k)
        assert ids.tolist() == want_ids and vals.tolist() == want_vals


def test_rows_within_the_rounding_bound_of_the_cut_take_the_full_exact_pass(monkeypatch) -> None:
    # The kernel is exact only if its error bound is: a row whose c-th candidate lies within 2e of its k-th, with
    # e = (d + 8) (2^-23 |u| max_j |v_j| + 2^-149) (the documented bound), must be re-scored over every item.
    # sgemm's real errors are far below e on any ordinary data, so a bound made too tight would show in no ranking;
    # this checks which rows take which pass instead, on scores that are exact in float32 (u = 4 e_l).
    n_items, d, k = 36, 64, 1
    c = k + max(k, 16)
    e = (d + 8) * (2.0 ** -23 * 4.0 * np.sqrt(d) + 2.0 ** -149)  # max_j |v_j| = |v_0| = sqrt(d), |u| = 4
    v = np.ones((n_items, d))
    v[:, 0] = 1.0 - 0.9 * 2 * e / 4  # user "near": item 0 first, then a tie of every other item just below it
    v[:, 1] = 1.0 - 100 * e / 4  # user "far": the same, far below
    v[0, :2] = 1.0
    v = v.astype(np.float32)
    u = np.zeros((3, d), dtype=np.float32)
    u[0, 0] = u[1, 1] = u[2, 0] = 4.0
    exclude = sp.csr_matrix(([1] * (n_items - 4), ([2] * (n_items - 4), range(4, n_items))), shape=(3, n_items))
    assert max(np.sqrt(sum(float(x) ** 2 for x in row)) for row in v.tolist()) == np.sqrt(d)
    gaps = [4.0 * (float(v[0, col]) - float(v[1, col])) for col in (0, 1)]
    assert 0.85 < gaps[0] / (2 * e) < 0.95 and gaps[1] / (2 * e) > 20  # near: inside the bound; far: well outside
    passes: list[tuple[int, list]] = []
    real = ranking.exact_dots
    monkeypatch.setattr(ranking, "exact_dots",
                        lambda a, b, ids: passes.append((ids.shape[1], a.tolist())) or real(a, b, ids))
    ids, vals = factor_topk(u, v, k, exclude=exclude)
    assert (ids.tolist(), vals.tolist()) == factor_oracle(u, v, k, exclude)
    full = [row for width, rows in passes if width == n_items for row in rows]
    candidates = [row for width, rows in passes if width == c for row in rows]
    # user 2 has the near user's scores, but only 4 allowed items: its candidates are every item it may get
    assert full == [u[0].tolist()] and candidates == [u[1].tolist(), u[2].tolist()]


def test_infinite_scores_rank_first_tie_by_index_and_raise_no_warning(recwarn) -> None:
    # a diverged factor (inf) gives +inf scores: they are scores like any other, tied and broken by the lower index
    rng = np.random.default_rng(5)
    v = rng.uniform(0.5, 2.0, size=(40, 4)).astype(np.float32)
    u = rng.normal(size=(3, 4)).astype(np.float32)
    u[1] = np.inf
    exclude = sp.csr_matrix(([1, 1], ([1, 1], [0, 3])), shape=(3, 40))
    for k in (1, 5):
        want_ids, want_vals = factor_oracle(u, v, k, exclude)
        assert want_ids[1] == [j for j in range(40) if j not in (0, 3)][:k] and want_vals[1] == [np.inf] * k
        ids, vals = factor_topk(u, v, k, exclude=exclude)
        assert ids.tolist() == want_ids and vals.tolist() == want_vals
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_the_exact_pass_never_picks_a_minus_infinite_or_nan_score() -> None:
    ids = np.array([[4, 7, 9, 2], [1, 2, 3, 5]])
    scores = np.array([[np.nan, -np.inf, np.inf, 1.0], [-np.inf, np.nan, -np.inf, np.nan]], dtype=np.float32)
    best_ids, best = ranking._take_best(ids, scores, 3)
    assert best_ids.tolist() == [[9, 2, -1], [-1, -1, -1]]
    assert best.tolist() == [[np.inf, 1.0, -np.inf], [-np.inf] * 3] and best.dtype == np.float32


@pytest.mark.parametrize(("n", "m", "k"), [(3, 5, 0), (0, 5, 3), (3, 0, 3), (2, 0, 0)])
def test_factor_topk_of_no_user_no_item_or_k_zero_is_empty_and_typed(n, m, k) -> None:
    ids, vals = factor_topk(np.ones((n, 4)), np.ones((m, 4)), k)
    assert ids.shape == vals.shape == (n, 0)
    assert ids.dtype == np.int64 and vals.dtype == np.float32


def test_factor_topk_of_one_user_and_of_float64_factors_ranks_their_float32_rounding() -> None:
    # float64 factors (not float32 numbers) are rounded to float32 first: the documented formula's inputs
    rng = np.random.default_rng(9)
    u, v = rng.normal(size=(4, 6)), rng.normal(size=(50, 6))
    u32, v32 = u.astype(np.float32), v.astype(np.float32)
    assert not np.array_equal(u32.astype(np.float64), u)
    want_ids, want_vals = factor_oracle(u32, v32, 7, None)
    ids, vals = factor_topk(u, v, 7)
    assert ids.tolist() == want_ids and vals.tolist() == want_vals and vals.dtype == np.float32
    one_ids, one_vals = factor_topk(u[2:3], v, 7)  # one user alone: the same list as in the batch
    assert one_ids.tolist() == [want_ids[2]] and one_vals.tolist() == [want_vals[2]]


def test_factor_topk_ranks_every_row_of_batches_larger_than_its_chunks() -> None:
    # more rows than two of the kernel's 4,096-row chunks: the last rows are ranked like the first
    rng = np.random.default_rng(2)
    n = 2 * 4096 + 50
    u, v = rng.normal(size=(n, 3)).astype(np.float32), rng.normal(size=(30, 3)).astype(np.float32)
    ids, vals = factor_topk(u, v, 2)
    assert (ids >= 0).all()
    tail = slice(n - 60, n)
    want_ids, want_vals = factor_oracle(u[tail], v, 2, None)
    assert ids[tail].tolist() == want_ids and vals[tail].tolist() == want_vals
