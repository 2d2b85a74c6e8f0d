"""The ranking kernel: exact top-K per row of a score matrix, on every core, the excluded items filtered inside.

Selection runs in FAISS' OpenMP heap kernel (float32, one heap per row, rows in parallel); a short exact pass on the
K+1 candidates then orders them by (score desc, item index asc) and repairs the rare rows whose K-th and (K+1)-th
values tie, from the full row. So the result never depends on the kernel's own tie handling or the thread count:
ties are broken by the lower item index, exactly, and float64 scores are ranked by their float64 values.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

_LIMIT_LOCK = threading.RLock()  # re-entrant: recommend() limits, and topk() inside it limits again


def _controller() -> Any:
    """A fresh controller per call: a cached one would miss the pools of libraries loaded after it (scipy's
    OpenBLAS, torch's OpenMP), which then ran unlimited inside `thread_limit`. Building one takes ~1 ms."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def thread_limit(num_threads: int) -> Iterator[None]:
    """Inside the block, BLAS and OpenMP (FAISS) use at most `num_threads` threads (0 = leave as is).

    The limit is set around the call only and restored after it; nothing is limited process-wide. Limited
    blocks of concurrent threads (a server answering requests) take turns, so one block can never restore
    another's limit as the "original" one.
    """
    if num_threads <= 0:
        yield
        return
    from recsys.models.faiss_index import threads

    with _LIMIT_LOCK, _controller().limit(limits=num_threads, user_api="blas"), threads(num_threads):
        yield


def exclude_inplace(scores: np.ndarray, exclude: sp.csr_matrix) -> None:
    """Set scores[r, j] = -inf for every stored (r, j) of `exclude` (rows aligned with `scores`)."""
    if exclude.shape[0] != scores.shape[0]:
        raise ValueError(f"exclude has {exclude.shape[0]} rows but scores has {scores.shape[0]}")
    rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
    scores[rows, exclude.indices] = -np.inf


_FMAX = float(np.finfo(np.float32).max)
_LOWEST = float(np.nextafter(np.float32(-_FMAX), np.float32(0)))  # the lowest value FAISS' heap admits


def _heap_safe(s32: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """`s32` (float32 of `scores`) with every allowed score mapped to a value FAISS' heap ranks.

    The heap marks an empty slot with -FLT_MAX and never admits that value, and float64 scores beyond float32's
    range became +-inf in the cast (-inf means "never chosen"). Those entries move to the nearest admitted value
    (_LOWEST, or FLT_MAX): the order is kept (not strictly), and the float64 re-ranking of the ties at rank K
    (`_repair`) puts such items back in their exact order. A copy is made only when something moves."""
    low = s32 == -_FMAX
    over = None
    if scores.dtype != np.float32:
        inf = np.isinf(s32)
        if inf.any():
            over = inf & np.isfinite(scores)
    if not low.any() and (over is None or not over.any()):
        return s32
    if np.shares_memory(s32, scores):
        s32 = s32.copy()
    s32[low] = _LOWEST
    if over is not None:
        s32[over & (s32 > 0)] = _FMAX
        s32[over & (s32 < 0)] = _LOWEST
    return s32


def _select(scores32: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS min-heap top-k per row (values float32, ids int64); -inf, -FLT_MAX and NaN are never chosen (an
    empty slot is id -1, value -FLT_MAX): pass scores through `_heap_safe` first."""
    import faiss

    n = scores32.shape[0]
    ids = np.empty((n, k), dtype=np.int64)
    vals = np.empty((n, k), dtype=np.float32)
    heap = faiss.float_minheap_array_t()
    heap.ids, heap.val, heap.nh, heap.k = faiss.swig_ptr(ids), faiss.swig_ptr(vals), n, k
    heap.heapify()
    heap.addn(scores32.shape[1], faiss.swig_ptr(scores32))
    return vals, ids


def topk(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None,
         num_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Top-k per row of a dense score matrix, best first; ties broken by the lower column index (exactly).

    scores: (n, m) float32 or float64 (float64 is ranked by its float64 values); overwritten where `exclude` has
    entries. exclude: optional (n, m) CSR, items set to -inf before ranking (the user's training items).
    num_threads: threads for the selection (0 = all cores); the result is the same for every value.
    Returns (indices (n, k) int64, scores (n, k) in the input dtype). Entries of -inf or NaN are never chosen;
    rows with fewer than k such scores are padded with index -1 and score -inf.
    """
    scores = np.asarray(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    n, m = scores.shape
    k = min(k, m)
    if k <= 0 or n == 0:
        return np.empty((n, 0), np.int64), np.empty((n, 0), scores.dtype)
    if exclude is not None:
        exclude_inplace(scores, sp.csr_matrix(exclude))
    with np.errstate(over="ignore"):  # float64 beyond float32's range: +-inf here, moved back by _heap_safe
        s32 = _heap_safe(np.ascontiguousarray(scores, dtype=np.float32), scores)  # NaN never enters a heap
    kk = k + 1 if k < m else k
    with thread_limit(num_threads):
        v32, idx = _select(s32, kk)
    rows = np.arange(n)[:, None]
    valid = idx >= 0
    val = np.where(valid, scores[rows, np.maximum(idx, 0)], -np.inf).astype(scores.dtype)
    order = np.lexsort((np.where(valid, idx, m), -val), axis=1)
    idx, val = np.take_along_axis(idx, order, axis=1), np.take_along_axis(val, order, axis=1)
    v32 = np.take_along_axis(v32, order, axis=1)  # float32 values in the same order (non-increasing)
    if kk > k:
        # exact when the K-th and (K+1)-th float32 values differ (or the (K+1)-th slot is empty: every allowed
        # item was selected); otherwise re-rank that row's float32 tie at K, +inf ties included
        bad = np.flatnonzero((v32[:, k - 1] == v32[:, k]) & (idx[:, k] >= 0))
        idx, val = idx[:, :k].copy(), val[:, :k].copy()
        if len(bad):
            _repair(scores, s32, idx, val, v32, bad, k)
    return idx, val


def _repair(scores: np.ndarray, s32: np.ndarray, idx: np.ndarray, val: np.ndarray, v32: np.ndarray,
            bad: np.ndarray, k: int) -> None:
    """Rows `bad` whose float32 value t at rank K is shared beyond rank K: the `need` slots holding t are refilled
    with the best items of value t in the full row, by (original score desc, index asc)."""
    t = v32[bad, k - 1]
    above = (v32[bad, :k] > t[:, None]).sum(axis=1)
    need = k - above
    for lo in range(0, len(bad), 256):  # bounded memory: 256 rows x m booleans at a time
        b, tb, ab, nb = bad[lo:lo + 256], t[lo:lo + 256], above[lo:lo + 256], need[lo:lo + 256]
        rr, cc = np.nonzero(s32[b] == tb[:, None])
        sv = scores[b[rr], cc]
        order = np.lexsort((cc, -sv, rr))
        rr, cc, sv = rr[order], cc[order], sv[order]
        start = np.searchsorted(rr, np.arange(len(b)))
        rank = np.arange(len(rr)) - start[rr]
        keep = rank < nb[rr]
        rr, cc, sv, rank = rr[keep], cc[keep], sv[keep], rank[keep]
        idx[b[rr], ab[rr] + rank] = cc
        val[b[rr], ab[rr] + rank] = sv


def factor_scores(user_vectors: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """float32 scores user_vectors @ item_vectors.T, accumulated in float64 (dgemm on every core) and rounded once.

    A float32 product (sgemm) rounds each partial sum, and how it splits the sum depends on the kernel OpenBLAS
    picks for the CPU, the batch's shape, a row's place in it and the thread count: measured on OpenBLAS' Haswell
    kernels (an AMD EPYC), 1 against 2 threads changed 1.5M of the 54M float32 scores of one 2000 x 27000 batch, and a
    user scored alone differed from its row in a batch. In float64 those paths differ by ~1e-16 relative, far below
    float32's 6e-8 rounding step, so after the one rounding the scores of a user are the same bit for bit whatever
    the batch, the batch size (`metrics.max_batch_mb`) or `num_threads`. It costs about twice sgemm's time: it is
    `score()` of ALS and BPR; their `recommend` ranks with `factor_topk`, which needs no float64 product.
    """
    u = np.asarray(user_vectors, dtype=np.float64)
    v = np.asarray(item_vectors, dtype=np.float64)
    return (u @ v.T).astype(np.float32)


def factor_topk(user_vectors: np.ndarray, item_vectors: np.ndarray, k: int, exclude: sp.csr_matrix | None = None,
                num_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Top-k items per user of a factor model (score = u . v), best first, without the dense float64 product.

    The scores ranked are `exact_dots`: each dot product summed left to right in float64 (the float32 x float32
    products are exact there) and rounded once to float32 -- a fixed formula, so a user's list is the same bit for
    bit whatever the batch or the thread count. Computing it for every item would be slow, so:

    1. a float32 product (sgemm, every core) scores all items; excluded items are set to -inf;
    2. FAISS keeps the c = k + max(k, 16) best per row;
    3. sgemm's error against the exact formula is at most e = (d + 8) (2^-23 |u| max_j |v_j| + 2^-149) (the
       textbook bound d 2^-24 sum_l |u_l v_jl| for any summation order, twice over, plus the final rounding; the
       2^-149 terms cover products that underflow to float32 subnormals, whose error is absolute). When the c-th
       candidate lies below the k-th by more than 2e, no other item can reach the top k, so only the c
       candidates are re-scored exactly; the other rows (near-ties across the whole cut) are re-scored in full.
    4. the exact scores are ordered by (score desc, item index asc) and cut at k.

    exclude: (n, m) CSR of items never recommended (the users' training items).
    Returns (indices (n, k) int64, scores (n, k) float32); rows with fewer than k allowed items are padded with
    index -1 and score -inf.
    """
    u32 = np.ascontiguousarray(user_vectors, dtype=np.float32)
    v32 = np.ascontiguousarray(item_vectors, dtype=np.float32)
    n, m, d = u32.shape[0], v32.shape[0], u32.shape[1]
    k = min(k, m)
    if k <= 0 or n == 0:
        return np.empty((n, 0), np.int64), np.empty((n, 0), np.float32)
    exclude = sp.csr_matrix(exclude) if exclude is not None else None
    c = min(m, k + max(k, 16))
    with thread_limit(num_threads):
        approx = u32 @ v32.T
        if exclude is not None:
            exclude_inplace(approx, exclude)
        cval, cand = _select(_heap_safe(approx, approx), c)
    del approx
    u64 = u32.astype(np.float64)
    vt64 = np.ascontiguousarray(v32.T, dtype=np.float64)  # (d, m): one item coordinate per row, for gathers
    with np.errstate(invalid="ignore"):  # inf - inf where a factor is infinite: NaN, and the row takes the full pass
        vmax = float(np.sqrt((vt64 ** 2).sum(axis=0)).max())
        err = (d + 8) * (2.0 ** -23 * np.linalg.norm(u64, axis=1) * vmax + 2.0 ** -149)
        srt = -np.sort(-cval.astype(np.float64), axis=1)
        decided = (cand.min(axis=1) < 0) | (srt[:, c - 1] < srt[:, k - 1] - 2.0 * err) | (c == m)
    idx = np.full((n, k), -1, dtype=np.int64)
    val = np.full((n, k), -np.inf, dtype=np.float32)
    rows = np.flatnonzero(decided)
    for lo in range(0, len(rows), 4096):
        r = rows[lo:lo + 4096]
        ids = cand[r]
        sc = exact_dots(u64[r], vt64, np.maximum(ids, 0))
        sc[ids < 0] = -np.inf
        idx[r], val[r] = _take_best(ids, sc, k)
    rest = np.flatnonzero(~decided)
    step = max(1, (64 << 20) // (8 * m))  # full rows: about 64 MB of float64 at a time
    for lo in range(0, len(rest), step):
        r = rest[lo:lo + step]
        ids = np.broadcast_to(np.arange(m, dtype=np.int64), (len(r), m))
        sc = exact_dots(u64[r], vt64, ids)
        if exclude is not None:
            exclude_inplace(sc, exclude[r])
        idx[r], val[r] = _take_best(ids, sc, k)
    return idx, val


def exact_dots(u: np.ndarray, vt: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """float32 of sum_l u[r, l] * vt[l, ids[r, j]], summed left to right in float64: (r, d) x (d, m) -> (r, j).

    numpy's elementwise multiply and add round each operation once (no FMA, no reordering), so the result is a
    fixed function of the inputs: the same on every machine, batch and thread count."""
    acc = np.zeros(ids.shape, dtype=np.float64)
    for col in range(u.shape[1]):
        acc += u[:, col, None] * vt[col][ids]
    return acc.astype(np.float32)


def _take_best(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best of each row by (score desc, index asc); -inf and NaN never chosen (padding -1, -inf)."""
    ok = ~np.isnan(scores) & (scores != -np.inf)
    key_val = np.where(ok, scores, -np.inf)
    order = np.lexsort((np.where(ok, ids, np.iinfo(np.int64).max), -key_val), axis=1)[:, :k]
    best_ids = np.take_along_axis(np.where(ok, ids, -1), order, axis=1)
    best = np.take_along_axis(key_val, order, axis=1).astype(np.float32)
    return best_ids, best


def static_order(values: np.ndarray) -> np.ndarray:
    """Item indices by (value desc, index asc): the one ranking a non-personalised model gives everybody."""
    values = np.asarray(values)
    return np.lexsort((np.arange(len(values)), -values)).astype(np.int64)


def topk_static(order: np.ndarray, values: np.ndarray, k: int,
                exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of one shared ranking `order` for each row of `exclude`, its items removed: O(n*k + nnz), no
    dense (n, m) scores. Same answer as `topk` over `values` repeated per row (ties by lower index).

    The j-th item a user keeps sits at position q_j = j + #{seen positions p_i with p_i - i <= j} of `order`
    (p sorted: p_i - i is how many kept items precede the i-th seen one), so one searchsorted answers every slot.
    """
    m = len(order)
    n = exclude.shape[0] if exclude is not None else 1
    k = min(k, m)
    slots = np.arange(k, dtype=np.int64)
    if exclude is None or exclude.nnz == 0:
        q = np.broadcast_to(slots, (n, k)).copy()
    else:
        exclude = sp.csr_matrix(exclude)
        if not exclude.has_canonical_format:
            exclude = exclude.copy()
            exclude.sum_duplicates()
        rank_of = np.empty(m, dtype=np.int64)
        rank_of[order] = np.arange(m)
        counts = np.diff(exclude.indptr)
        stride = m + 1
        rows = np.repeat(np.arange(n, dtype=np.int64), counts)
        key = rows * stride + rank_of[exclude.indices]
        key.sort()  # rows ascending, positions ascending within a row
        within = np.arange(len(key)) - exclude.indptr[rows]
        gaps = key - within  # row * stride + (p_i - i): sorted, since p_i - i never decreases within a row
        queries = (np.arange(n, dtype=np.int64)[:, None] * stride + slots[None, :])
        q = slots[None, :] + (np.searchsorted(gaps, queries, side="right") - exclude.indptr[:-1, None])
    valid = q < m
    idx = np.where(valid, order[np.minimum(q, m - 1)], -1)
    val = np.where(valid, np.asarray(values)[np.maximum(idx, 0)], -np.inf)
    return idx.astype(np.int64), val


_GOLDEN, _MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic): a counter-based hash, the same everywhere."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        return x ^ (x >> np.uint64(31))


def _draws(key: np.ndarray, start: int, stop: int, m: int) -> np.ndarray:
    """Items drawn uniformly with replacement, draws start..stop-1 of each row's stream `key` (n,) -> (n, T)."""
    t = np.arange(start, stop, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = _splitmix(key[:, None] * _MIX1 + t[None, :])
    return ((x >> np.uint64(32)) * np.uint64(m) >> np.uint64(32)).astype(np.int64)


def random_ranking(seed: int, users: np.ndarray, k: int, m: int,
                   exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A seeded uniformly random ranking per user, in O(users x k): no dense (users, m) scores.

    User u's ranking is the order in which items first appear in u's stream of uniform draws (a counter-based
    hash of (seed, u, t), so it does not depend on the batch); its excluded items are skipped; the rare items
    not drawn within 8 m draws follow in index order. Sampling with replacement and skipping repeats gives a
    uniformly random order of the remaining items. Score of an item = 1 / (1 + index of its first draw), 0 for
    the never-drawn ones: descending along the list, and `topk` over these scores gives the same lists.
    """
    users = np.asarray(users, dtype=np.int64)
    n, k = len(users), min(k, m)
    idx = np.full((n, k), -1, dtype=np.int64)
    val = np.full((n, k), -np.inf)
    if n == 0 or k == 0:
        return idx, val
    with np.errstate(over="ignore"):
        keys = _splitmix(np.uint64(seed % 2**64) ^ _splitmix(users.astype(np.uint64)))
    if exclude is None:
        exclude = sp.csr_matrix((n, m))
    exclude = sp.csr_matrix(exclude)
    if not exclude.has_canonical_format:
        exclude = exclude.copy()
        exclude.sum_duplicates()
    n_seen = np.diff(exclude.indptr)
    wanted = np.minimum(k, m - n_seen)  # a user who had every item gets an empty list
    seen_keys = np.repeat(np.arange(n, dtype=np.int64), n_seen) * m + exclude.indices
    cap = 8 * m
    pending = np.flatnonzero(wanted > 0)
    t_stop = min(cap, k + k // 2 + 8)  # enough for most users; the others draw 4x more, from the start
    while len(pending):
        d = _draws(keys[pending], 0, t_stop, m)
        rows = np.arange(len(pending))[:, None]
        order = np.argsort(d, axis=1, kind="stable")
        sd = np.take_along_axis(d, order, axis=1)
        new = np.ones_like(sd, dtype=bool)
        new[:, 1:] = sd[:, 1:] != sd[:, :-1]
        first = np.empty_like(new)
        first[rows, order] = new
        is_seen = np.zeros_like(first)
        if len(seen_keys):
            key = (pending[:, None] * m + sd).ravel()  # globally sorted: a cache-friendly search
            pos = np.minimum(np.searchsorted(seen_keys, key), len(seen_keys) - 1)
            is_seen[rows, order] = (seen_keys[pos] == key).reshape(sd.shape)
        keep = first & ~is_seen
        count = np.cumsum(keep, axis=1)
        done = (count[:, -1] >= wanted[pending]) | (t_stop >= cap)
        r, c = np.nonzero(keep & (count <= wanted[pending][:, None]) & done[:, None])
        slot = count[r, c] - 1
        idx[pending[r], slot] = d[r, c]
        val[pending[r], slot] = 1.0 / (1.0 + c)
        if t_stop >= cap:  # never drawn in 8 m draws: in index order, score 0
            for j in np.flatnonzero(count[:, -1] < wanted[pending]):
                u = pending[j]
                banned = np.zeros(m, dtype=bool)
                banned[exclude.indices[exclude.indptr[u]:exclude.indptr[u + 1]]] = True
                banned[d[j][keep[j]]] = True
                have = int(count[j, -1])
                rest = np.flatnonzero(~banned)[: wanted[u] - have]
                idx[u, have:have + len(rest)], val[u, have:have + len(rest)] = rest, 0.0
            break
        pending = pending[~done]
        t_stop = min(cap, t_stop * 4)
    return idx, val
