"""Cross-checks of the vectorised metrics and `topk` against obviously-correct per-user Python loops, and
against ranx on the metrics whose definitions agree."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from recsys.evaluation import metrics as M
from recsys.models.base import topk

KS = [1, 5, 10, 20]
KMAX = max(KS)


@dataclass
class Case:
    """Random evaluation input: ranked lists (n, KMAX) with trailing -1 padding and relevant sets."""

    ranked: np.ndarray
    relevant: sp.csr_matrix
    rel_sets: list[set[int]]
    n_relevant: np.ndarray  # may exceed len(rel_sets[u]): relevant items unknown to training
    n_items: int
    popularity: np.ndarray
    n_train_users: int
    categories: np.ndarray


def make_case(seed: int, n_users: int = 400, n_items: int = 60, unknown_relevant: bool = False) -> Case:
    """|rel| spans 1..40 (below and above every K); about a third of the lists are shorter than
    KMAX (trailing -1), some empty."""
    rng = np.random.default_rng(seed)
    rel_sets: list[set[int]] = []
    ranked = np.full((n_users, KMAX), -1, dtype=np.int64)
    for u in range(n_users):
        n_rel = int(rng.integers(1, 41)) if u % 4 else int(rng.integers(1, 4))  # many tiny relevant sets too
        rel = rng.choice(n_items, size=n_rel, replace=False)
        rel_sets.append({int(i) for i in rel})
        length = KMAX if rng.random() < 0.65 else int(rng.integers(0, KMAX))
        # half the list drawn from the relevant set first so hits land at varied ranks
        pool = np.concatenate([rng.permutation(rel)[: length // 2], rng.permutation(n_items)])
        _, first = np.unique(pool, return_index=True)
        ranked[u, :length] = pool[np.sort(first)][rng.permutation(length)]
    rows = np.repeat(np.arange(n_users), [len(s) for s in rel_sets])
    cols = np.concatenate([sorted(s) for s in rel_sets])
    relevant = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
    n_relevant = np.array([len(s) for s in rel_sets], dtype=np.int64)
    if unknown_relevant:
        n_relevant += rng.integers(0, 4, size=n_users)
    n_train_users = 1000
    popularity = rng.integers(0, n_train_users + 1, size=n_items).astype(np.float64)
    popularity[rng.choice(n_items, 5, replace=False)] = 0.0  # items nobody trained on
    categories = rng.integers(0, 6, size=n_items).astype(np.int64)
    return Case(ranked, relevant, rel_sets, n_relevant, n_items, popularity, n_train_users, categories)


def ranked_list(case: Case, u: int, k: int) -> list[int]:
    return [int(i) for i in case.ranked[u, :k] if i >= 0]


def reference_accuracy(case: Case, k: int) -> dict[str, np.ndarray]:
    """Per-user metrics by their textbook definitions (MAP denominator min(|rel|, K))."""
    out: dict[str, list[float]] = {m: [] for m in M.ACCURACY}
    for u, rel in enumerate(case.rel_sets):
        n_rel = int(case.n_relevant[u])
        hits = [int(i) in rel for i in case.ranked[u, :k] if i >= 0]
        n_hits = sum(hits)
        out["precision"].append(n_hits / k)
        out["recall"].append(n_hits / n_rel)
        dcg = sum(1.0 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        idcg = sum(1.0 / math.log2(r + 2) for r in range(min(n_rel, k)))
        out["ndcg"].append(dcg / idcg)
        seen, ap = 0, 0.0
        for r, h in enumerate(hits):
            if h:
                seen += 1
                ap += seen / (r + 1)
        out["map"].append(ap / min(n_rel, k))
        first = next((r + 1 for r, h in enumerate(hits) if h), None)
        out["mrr"].append(1.0 / first if first else 0.0)
        out["hit_rate"].append(1.0 if n_hits else 0.0)
    return {m: np.array(v) for m, v in out.items()}


def reference_beyond(case: Case, k: int) -> dict[str, np.ndarray]:
    info = [-math.log2((p + 1) / (case.n_train_users + 1)) for p in case.popularity]
    novelty, bias, diversity = [], [], []
    for u in range(len(case.ranked)):
        items = ranked_list(case, u, k)
        novelty.append(sum(info[i] for i in items) / len(items) if items else 0.0)
        share = [case.popularity[i] / case.n_train_users for i in items]
        bias.append(sum(share) / len(items) if items else 0.0)
        pairs = [(a, b) for x, a in enumerate(items) for b in items[x + 1:]]
        differ = sum(case.categories[a] != case.categories[b] for a, b in pairs)
        diversity.append(differ / len(pairs) if pairs else 0.0)
    return {"novelty": np.array(novelty), "popularity_bias": np.array(bias), "diversity": np.array(diversity)}


def close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert_allclose(actual, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("unknown_relevant", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy_matches_reference(seed: int, unknown_relevant: bool) -> None:
    case = make_case(seed, unknown_relevant=unknown_relevant)
    sizes = case.n_relevant
    assert (sizes < 5).any() and (sizes > KMAX).any()  # fewer than K=5,10,20 and more than every K
    hits = M.hits_matrix(case.ranked, case.relevant)
    expected_hits = [[int(i) in rel for i in row] for row, rel in zip(case.ranked, case.rel_sets)]
    assert_array_equal(hits, np.array(expected_hits))
    ours = M.accuracy_metrics(hits, case.n_relevant, KS)
    for k in KS:
        ref = reference_accuracy(case, k)
        for name in M.ACCURACY:
            close(ours[f"{name}_at_{k}"], ref[name])

def test_hits_ignore_padding_and_foreign_rows() -> None:
    relevant = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float32))
    ranked = np.array([[2, 1, -1], [0, 1, 3], [-1, -1, -1]])
    expected = np.array([[True, False, False], [False, True, False], [False, False, False]])
    assert_array_equal(M.hits_matrix(ranked, relevant), expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_beyond_accuracy_and_coverage_match_reference(seed: int) -> None:
    case = make_case(seed)
    assert (case.ranked[:, 0] < 0).any()  # empty lists are covered
    ours = M.beyond_accuracy(case.ranked, KS, case.popularity, case.n_train_users, case.categories)
    for k in KS:
        ref = reference_beyond(case, k)
        for name in M.BEYOND:
            close(ours[f"{name}_at_{k}"], ref[name])
        covered = {i for u in range(len(case.ranked)) for i in ranked_list(case, u, k)}
        coverage = M.catalog_coverage(case.ranked, k, case.n_items)
        close(np.array(coverage), np.array(len(covered) / case.n_items))
    assert not any(name.startswith("diversity") for name in
                   M.beyond_accuracy(case.ranked, KS, case.popularity, case.n_train_users, None))


def reference_topk(row: np.ndarray, k: int) -> list[int]:
    order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
    return [i if np.isfinite(row[i]) else -1 for i in order]


@pytest.mark.parametrize("k", [1, 3, 7, 25, 40])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_topk_breaks_ties_by_index(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = 300, 25
    scores = rng.integers(-2, 3, size=(n, m)).astype(np.float64)  # five values: ties everywhere
    scores[rng.random((n, m)) < 0.3] = -np.inf
    scores[: n // 10] = -np.inf  # rows with no finite score
    scores[n // 10: n // 5, :] = 1.0  # rows where everything ties
    idx, val = topk(scores, k)
    kk = min(k, m)
    assert idx.shape == val.shape == (n, kk) and idx.dtype == np.int64
    for r in range(n):
        expected = reference_topk(scores[r], k)
        assert idx[r].tolist() == expected, r
        n_finite = int(np.isfinite(scores[r]).sum())
        assert (idx[r] == -1).sum() == max(0, kk - n_finite)
        valid = idx[r] >= 0
        assert_array_equal(val[r][valid], scores[r][idx[r][valid]])
        assert np.all(np.isneginf(val[r][~valid]))


def test_topk_k_zero_is_empty() -> None:
    idx, val = topk(np.zeros((3, 4)), 0)
    assert idx.shape == (3, 0) and val.shape == (3, 0)


def ranx_evaluate(case: Case, metrics: list[str], return_mean: bool) -> dict:
    """ranx on the same case. Strictly decreasing scores (KMAX - rank) so ranx's own tie-breaking never
    matters; zero-padded query ids because ranx returns per-query scores in sorted id order."""
    ranx = pytest.importorskip("ranx")
    qid = [f"q{u:05d}" for u in range(len(case.ranked))]
    qrels = ranx.Qrels({qid[u]: {f"d{i}": 1 for i in rel} for u, rel in enumerate(case.rel_sets)})
    run = ranx.Run({qid[u]: {f"d{i}": float(KMAX - r) for r, i in enumerate(row) if i >= 0}
                    for u, row in enumerate(case.ranked)})
    return ranx.evaluate(qrels, run, metrics, return_mean=return_mean)


@pytest.mark.slow  # ranx's numba typed dicts compile on first use in a process (~10 s of CPU)
@pytest.mark.filterwarnings("ignore:unsafe cast")  # numba's uint64 -> int64 note inside ranx
def test_matches_ranx() -> None:
    case = make_case(7)
    assert (case.ranked[:, 0] < 0).any()  # empty lists included
    ours = M.accuracy_metrics(M.hits_matrix(case.ranked, case.relevant), case.n_relevant, KS)
    theirs = ranx_evaluate(case, [f"{m}@{k}" for m in M.ACCURACY for k in KS], return_mean=False)
    for k in KS:
        for name in ("precision", "recall", "ndcg", "mrr", "hit_rate"):
            close(ours[f"{name}_at_{k}"], theirs[f"{name}@{k}"])
        # ranx divides AP by |rel|, we by min(|rel|, K): equal exactly where |rel| <= K
        fits = case.n_relevant <= k
        assert fits.any() and (~fits).any()
        ap, ranx_ap = ours[f"map_at_{k}"], theirs[f"map@{k}"]
        close(ap[fits], ranx_ap[fits])
        close(ap[~fits] * np.minimum(case.n_relevant[~fits], k) / case.n_relevant[~fits], ranx_ap[~fits])


@pytest.mark.slow  # ranx's numba typed dicts compile on first use in a process (~10 s of CPU)
@pytest.mark.filterwarnings("ignore:unsafe cast")
def test_map_matches_ranx_when_every_list_can_be_filled() -> None:
    case = make_case(8)
    keep = np.flatnonzero(case.n_relevant <= 5)
    case.ranked, case.relevant = case.ranked[keep], case.relevant[keep]
    case.n_relevant = case.n_relevant[keep]
    case.rel_sets = [case.rel_sets[u] for u in keep]
    ours = M.accuracy_metrics(M.hits_matrix(case.ranked, case.relevant), case.n_relevant, [5, 10, 20])
    theirs = ranx_evaluate(case, ["map@5", "map@10", "map@20"], return_mean=True)
    for k in (5, 10, 20):
        close(np.array(ours[f"map_at_{k}"].mean()), np.array(theirs[f"map@{k}"]))


def test_hits_with_no_or_one_relevant_pair_are_boolean_and_exact() -> None:
    ranked = np.array([[4, 2, -1], [3, 1, 0]])
    empty = M.hits_matrix(ranked, sp.csr_matrix((2, 5)))
    assert empty.dtype == bool and empty.shape == (2, 3) and not empty.any()
    one = M.hits_matrix(ranked, sp.csr_matrix(([1.0], ([0], [2])), shape=(2, 5)))  # only (user 0, item 2)
    assert one.dtype == bool
    assert one.tolist() == [[False, True, False], [False, False, False]]


@pytest.mark.parametrize("pairs", [50, 150, 1000])
def test_rows_without_relevant_items_score_zero_not_nan(pairs: int) -> None:
    """The evaluator never passes them, but a caller that does gets 0 (not NaN or leftover memory) for
    NDCG and MAP. Batches of 100 to 2,000 rows: an unset output below 1 KiB comes from numpy's cache (which here
    happens to hold zeros), a larger one from malloc, whose reused blocks start with pointers."""
    hits = np.array([[False, False, False], [True, False, True]] * pairs)
    n_rel = np.array([0, 2] * pairs)
    with np.errstate(divide="ignore", invalid="ignore"):  # recall of a |rel| = 0 row is 0 / 0
        out = M.accuracy_metrics(hits, n_rel, [1, 3])
    for name in ("ndcg_at_1", "ndcg_at_3", "map_at_1", "map_at_3", "precision_at_3", "mrr_at_3", "hit_rate_at_3"):
        assert out[name][0::2].tolist() == [0.0] * pairs, name
    assert out["ndcg_at_3"][1] == pytest.approx((1 + 1 / 2) / (1 + 1 / math.log2(3)))
    assert out["map_at_3"][1] == pytest.approx((1 + 2 / 3) / 2)


def test_one_training_user_one_item_catalog_and_short_lists() -> None:
    """Edge sizes: shares are out of the true user count, coverage out of the true catalog size, and a list with
    fewer than two items has diversity 0."""
    ranked = np.array([[0, -1]])
    out = M.beyond_accuracy(ranked, [2], popularity=np.array([1.0]), n_users=1, categories=np.array([0]))
    assert out["popularity_bias_at_2"].tolist() == [1.0]  # the one user had the item: share 1/1
    assert out["novelty_at_2"].tolist() == [0.0]  # -log2((1 + 1) / (1 + 1))
    assert out["diversity_at_2"].tolist() == [0.0]
    assert M.catalog_coverage(ranked, 2, 1) == 1.0
    # many rows with 0 or 1 valid item next to rows with pairs: the short ones are exactly 0
    rows = np.array([[0, -1, -1], [-1, -1, -1], [0, 1, 2], [2, -1, -1], [1, 2, -1]] * 40)
    div = M.beyond_accuracy(rows, [3], np.array([3.0, 2.0, 1.0]), 4, np.array([0, 0, 1]))["diversity_at_3"]
    assert div.reshape(40, 5)[:, [0, 1, 3]].tolist() == [[0.0, 0.0, 0.0]] * 40
    assert div.reshape(40, 5)[:, 2].tolist() == [2 / 3] * 40  # pairs (0,1) same, (0,2) and (1,2) differ
    assert div.reshape(40, 5)[:, 4].tolist() == [1.0] * 40
