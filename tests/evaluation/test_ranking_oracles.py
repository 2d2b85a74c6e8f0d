"""Full-ranking evaluation against hand-written per-user loops whose answer is known from first principles.

The model is `popularity`: its ranking is "distinct training users per item, most first, ties by item id, the
user's own training items removed", which a few lines of plain Python compute without any code of the library.
Evaluation runs over several batches (a batch smaller than the user count, and the default batch of 2,048 with
more users than that), with cold-start users served by the popularity fallback and relevant items unknown to
training.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.data.tables import TrainData
from recsys.evaluation import build_target, evaluate_recommender
from recsys.models.catalog import create

KS = [1, 3, 10]


def make_split(n_users: int, n_items: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train rows with repeated (user, item) pairs and varied weights (popularity counts distinct users, not
    rows or weight); test rows with training items again, items unknown to training and cold users."""
    rng = np.random.default_rng(seed)
    items = [f"i{j:03d}" for j in range(n_items)]
    # a skewed item distribution with many equal counts, so ties matter
    p = 1.0 / np.arange(1, n_items + 1) ** 0.7
    p /= p.sum()
    train, test = [], []
    for u in range(n_users):
        uid = f"u{u:05d}"
        for j in rng.choice(n_items, size=int(rng.integers(1, 7)), p=p):
            for _ in range(int(rng.integers(1, 3))):
                train.append((uid, items[j], int(rng.integers(0, 1000)), float(rng.integers(1, 5))))
        for j in rng.choice(n_items, size=int(rng.integers(1, 5)), replace=False):
            test.append((uid, items[j], int(rng.integers(1000, 2000))))
        if u % 9 == 0:
            test.append((uid, "never-trained", 1500))
    for c in range(max(3, n_users // 50)):  # cold users
        for j in rng.choice(n_items, size=2, replace=False):
            test.append((f"cold{c:03d}", items[j], 1800))
    train_df = pd.DataFrame(train, columns=["user_id", "item_id", "timestamp", "weight"]).assign(event="view")
    test_df = pd.DataFrame(test, columns=["user_id", "item_id", "timestamp"])
    return train_df, test_df


def hand_ranking(train: pd.DataFrame, k: int) -> tuple[dict[str, list[str]], list[str]]:
    """Per known user, and for cold users, the popularity top-k by plain Python."""
    users_of: dict[str, set[str]] = {}
    items_of: dict[str, set[str]] = {}
    for user, item in zip(train["user_id"], train["item_id"]):
        users_of.setdefault(item, set()).add(user)
        items_of.setdefault(user, set()).add(item)
    order = sorted(users_of, key=lambda item: (-len(users_of[item]), item))
    per_user = {u: [i for i in order if i not in seen][:k] for u, seen in items_of.items()}
    return per_user, order[:k]


def hand_metrics(ranked: list[str], relevant: set[str], n_relevant: int, k: int) -> dict[str, float]:
    """Textbook binary-relevance metrics at k (MAP and IDCG normalised by min(|rel|, k))."""
    hits = [1.0 if (r < len(ranked) and ranked[r] in relevant) else 0.0 for r in range(k)]
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    idcg = sum(1.0 / math.log2(r + 2) for r in range(min(n_relevant, k)))
    precisions = [sum(hits[: r + 1]) / (r + 1) for r in range(k)]
    first = next((r + 1 for r, h in enumerate(hits) if h), None)
    return {f"precision_at_{k}": sum(hits) / k, f"recall_at_{k}": sum(hits) / n_relevant,
            f"ndcg_at_{k}": dcg / idcg if idcg else 0.0,
            f"map_at_{k}": sum(p * h for p, h in zip(precisions, hits)) / min(n_relevant, k),
            f"mrr_at_{k}": 1.0 / first if first else 0.0, f"hit_rate_at_{k}": 1.0 if any(hits) else 0.0}


def expected(train: pd.DataFrame, test: pd.DataFrame, unknown_users: str) -> dict[str, dict[str, float]]:
    kmax = max(KS)
    per_user, cold = hand_ranking(train, kmax)
    seen = set(zip(train["user_id"], train["item_id"]))
    trained_items = set(train["item_id"])
    out: dict[str, dict[str, float]] = {}
    for user, rows in test.groupby("user_id"):
        if user not in per_user and unknown_users == "drop":
            continue
        # relevant = test items minus the user's own training items; items unknown to training stay counted
        rel_all = {i for i in rows["item_id"] if (user, i) not in seen}
        if not rel_all:  # every test item was already a training item: nothing to evaluate
            continue
        relevant = rel_all & trained_items
        ranked = per_user.get(user, cold)
        out[user] = {}
        for k in KS:
            out[user].update(hand_metrics(ranked[:k], relevant, len(rel_all), k))
    return out


@pytest.mark.parametrize("n_users, batch_size", [(61, 7), (2300, None)], ids=["batch-7-of-61", "default-2300"])
@pytest.mark.parametrize("unknown_users", ["drop", "fallback"])
def test_evaluation_over_many_batches_matches_hand_loops(n_users, batch_size, unknown_users) -> None:
    train, test = make_split(n_users, 40, seed=n_users)
    data = TrainData.build(train)
    model = create("popularity").fit(data)
    target = build_target(data, test, unknown_users=unknown_users, unknown_items="keep")
    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    res = evaluate_recommender(model, data, target, KS, **kwargs)
    want = expected(train, test, unknown_users)
    n_known = sum(1 for u in want if not u.startswith("cold"))
    if batch_size is None:
        assert n_known > 2048  # more users than one default batch
    else:
        assert n_known > 3 * batch_size
    per = res.per_user.set_index("user_id")
    assert sorted(per.index) == sorted(want)  # nobody lost after the first batch, nobody invented
    names = list(next(iter(want.values())))
    hand = pd.DataFrame.from_dict(want, orient="index")[names].loc[per.index]
    np.testing.assert_allclose(per[names].to_numpy(dtype=float), hand.to_numpy(dtype=float), rtol=0, atol=1e-12)
    for name in names:
        assert res.metrics[name] == pytest.approx(np.mean([v[name] for v in want.values()]), abs=1e-12)
    # the stored top-K lists are the hand rankings, in rank order, for every user
    per_user, cold = hand_ranking(train, max(KS))
    lists = (res.recommendations.sort_values(["user_id", "rank"]).groupby("user_id")["item_id"].agg(list))
    assert sorted(lists.index) == sorted(want)
    for user, items in lists.items():
        assert items == per_user.get(user, cold), user


def test_batch_size_does_not_change_any_number() -> None:
    train, test = make_split(50, 30, seed=3)
    data = TrainData.build(train)
    model = create("item_knn", {"k_neighbors": 10}).fit(data)
    target = build_target(data, test, unknown_users="fallback", unknown_items="keep")
    whole = evaluate_recommender(model, data, target, KS, batch_size=10_000)
    for batch_size in (1, 4, 13):
        part = evaluate_recommender(model, data, target, KS, batch_size=batch_size)
        assert part.metrics == whole.metrics
        pd.testing.assert_frame_equal(part.per_user, whole.per_user)
        pd.testing.assert_frame_equal(part.recommendations, whole.recommendations)


def test_fallback_is_most_popular_by_distinct_users_with_ties_by_item_id() -> None:
    # distinct users: b 3 (one repeated row, heavy weights elsewhere do not count), a 2, d 2, c 1, e 1
    train = pd.DataFrame({
        "user_id": ["u1", "u1", "u2", "u3", "u1", "u4", "u2", "u5", "u5", "u6"],
        "item_id": ["b", "b", "b", "b", "d", "d", "a", "a", "e", "c"],
        "timestamp": range(10), "event": "view",
        "weight": [1.0, 1.0, 1.0, 1.0, 9.0, 9.0, 1.0, 1.0, 50.0, 1.0]})
    data = TrainData.build(train)
    model = create("popularity").fit(data)
    idx, scores = model.fallback(2, 4)
    assert [list(data.items.id(row)) for row in idx] == [["b", "a", "d", "c"]] * 2
    assert scores.tolist() == [[3.0, 2.0, 2.0, 1.0]] * 2
    # a cold user in an evaluation gets exactly that list
    test = pd.DataFrame({"user_id": ["cold"], "item_id": ["d"], "timestamp": [20]})
    res = evaluate_recommender(model, data, build_target(data, test, unknown_users="fallback"), [4])
    assert res.recommendations.sort_values("rank")["item_id"].tolist() == ["b", "a", "d", "c"]
    assert res.metrics["mrr_at_4"] == pytest.approx(1 / 3)
    # and a known user's list drops their own items, ties still by id
    items, _ = model.recommend(data.users.index(["u5"]), 3)
    assert list(data.items.id(items[0])) == ["b", "d", "c"]


@pytest.mark.parametrize("seed", range(4))
def test_popularity_lists_without_dense_scores_match_a_per_user_sort(seed) -> None:
    """The O(users x K) path (one shared order, each user's items skipped) against a per-user Python sort of
    the whole catalogue by (-distinct users, item index), heavy users included (more seen items than K)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 80, 25
    rows = [(f"u{u:02d}", f"i{j:02d}", 0, 1.0) for u in range(n_users)
            for j in rng.choice(n_items, size=int(rng.integers(1, 24 if u % 10 == 0 else 5)), replace=False)]
    train = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "weight"]).assign(event="view")
    data = TrainData.build(train)
    model = create("popularity").fit(data)
    items_of: dict[str, set[str]] = {}
    for user, item in zip(train["user_id"], train["item_id"]):
        items_of.setdefault(user, set()).add(item)
    count = {i: sum(i in s for s in items_of.values()) for i in set(train["item_id"])}
    for k in (1, 5, n_items):
        idx, scores = model.recommend(np.arange(data.n_users), k)
        for row, user in enumerate(data.users.id(np.arange(data.n_users))):
            want = sorted((i for i in count if i not in items_of[user]), key=lambda i: (-count[i], i))[:k]
            got = [data.items.id(np.array([j]))[0] for j in idx[row] if j >= 0]
            assert got == want, (user, k)
            assert scores[row, :len(want)].tolist() == [float(count[i]) for i in want]
            assert (idx[row, len(want):] == -1).all() and (scores[row, len(want):] == -np.inf).all()
        # a history given at serving time is excluded the same way
        hist_idx, _ = model.recommend_history(data.matrix[:7], k)
        np.testing.assert_array_equal(hist_idx, idx[:7])


def test_popularity_refit_on_other_data_ranks_by_the_new_counts() -> None:
    """The shared order is cached per fitted `scores_`: a model refitted on data with another popularity (and
    one whose state is loaded) ranks by the new counts, never by the order cached from the first fit."""

    def train_of(counts: dict[str, int]) -> pd.DataFrame:
        rows = [(f"u{u:02d}", item, 0, 1.0) for item, c in counts.items() for u in range(c)]
        return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "weight"]).assign(event="view")

    first = {"i0": 9, "i1": 7, "i2": 5, "i3": 3, "i4": 1}
    second = {"i0": 1, "i1": 3, "i2": 5, "i3": 7, "i4": 9}  # the same catalogue, the reverse popularity
    model = create("popularity")
    for counts in (first, second):
        data = TrainData.build(train_of(counts))
        model.fit(data)
        idx, scores = model.recommend(np.arange(data.n_users), 3, exclude_seen=False)
        want = sorted(counts, key=lambda i: (-counts[i], i))[:3]  # by hand: most users first, ties by id
        for row in range(data.n_users):
            assert data.items.id(idx[row]).tolist() == want
            assert scores[row].tolist() == [float(counts[i]) for i in want]
    # a loaded state replaces `scores_` the same way
    model._set_state({"scores": np.array([0.0, 2.0, 1.0, 4.0, 3.0])})
    idx, _ = model.recommend(np.arange(2), 5, exclude_seen=False)
    assert idx.tolist() == [[3, 4, 1, 2, 0]] * 2
