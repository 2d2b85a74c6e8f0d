"""The recommend evaluator against a plain per-user loop over the model's full score vectors, over several
batches, lists shorter than K (a catalogue smaller than the largest cut-off), cold users and item categories;
how the users are cut into batches for the model; the progress bar; the stored lists; an empty evaluation."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from recsys.data.tables import TrainData
from recsys.evaluation import build_target, evaluate_recommender
from recsys.evaluation.recommend import batch_rows, score_lists
from recsys.models.catalog import create

KS = [1, 4, 15]  # 15 > the 12 items of the catalogue: every list is padded


def split(seed: int, n_users: int = 40, n_items: int = 12) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    items = [f"i{j:02d}" for j in range(n_items)]
    train, test = [], []
    for u in range(n_users):
        uid = f"u{u:02d}"
        for j in rng.choice(n_items, size=int(rng.integers(1, 6)), replace=False):
            train.append((uid, items[j], int(rng.integers(0, 100)), float(rng.integers(1, 4))))
        for j in rng.choice(n_items, size=int(rng.integers(1, 4)), replace=False):
            test.append((uid, items[j], 200))
        if u % 7 == 0:
            test.append((uid, "never-trained", 200))
    for c in range(4):
        for j in rng.choice(n_items, size=2, replace=False):
            test.append((f"cold{c}", items[j], 300))
    train_df = pd.DataFrame(train, columns=["user_id", "item_id", "timestamp", "weight"]).assign(event="view")
    test_df = pd.DataFrame(test, columns=["user_id", "item_id", "timestamp"])
    cats = pd.DataFrame({"item_id": items, "category": [f"c{j % 3}" for j in range(n_items)]})
    return train_df, test_df, cats


def oracle(model, data: TrainData, train: pd.DataFrame, test: pd.DataFrame, cats: pd.DataFrame):
    """Per user, in plain Python: the top-K of the model's full score vector (training items removed, ties by
    item index), or the most popular items (distinct training users) for a cold user; then textbook metrics."""
    kmax = max(KS)
    index = {item: j for j, item in enumerate(data.items.id(np.arange(data.n_items)))}
    items_of: dict[str, set[str]] = {}
    for user, item in zip(train["user_id"], train["item_id"]):
        items_of.setdefault(user, set()).add(item)
    users_of = {i: sum(i in s for s in items_of.values()) for i in index}
    n_users = len(items_of)
    category = dict(zip(cats["item_id"], cats["category"]))
    cold = sorted(index, key=lambda i: (-users_of[i], index[i]))[:kmax]
    lists, per = {}, {}
    for user, rows in test.groupby("user_id"):
        seen = items_of.get(user, set())
        rel_all = set(rows["item_id"]) - seen
        if not rel_all:
            continue
        if user in items_of:
            s = model.score(data.users.index(np.array([user])))[0].astype(float)
            ranked = sorted((i for i in index if i not in seen and math.isfinite(s[index[i]])),
                            key=lambda i: (-s[index[i]], index[i]))[:kmax]
            scores = [float(s[index[i]]) for i in ranked]
        else:
            ranked, scores = cold, [float(users_of[i]) for i in cold]
        lists[user] = (ranked, scores)
        relevant = rel_all & set(index)
        row = {}
        for k in KS:
            top = ranked[:k]
            hits = [1.0 if r < len(top) and top[r] in relevant else 0.0 for r in range(k)]
            idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel_all), k)))
            first = next((r + 1 for r, h in enumerate(hits) if h), None)
            row[f"precision_at_{k}"] = sum(hits) / k
            row[f"recall_at_{k}"] = sum(hits) / len(rel_all)
            row[f"ndcg_at_{k}"] = sum(h / math.log2(r + 2) for r, h in enumerate(hits)) / idcg
            row[f"map_at_{k}"] = sum(h * sum(hits[:r + 1]) / (r + 1) for r, h in enumerate(hits)) / min(len(rel_all), k)
            row[f"mrr_at_{k}"] = 1.0 / first if first else 0.0
            row[f"hit_rate_at_{k}"] = float(any(hits))
            row[f"novelty_at_{k}"] = (sum(-math.log2((users_of[i] + 1) / (n_users + 1)) for i in top) / len(top)
                                      if top else 0.0)
            row[f"popularity_bias_at_{k}"] = sum(users_of[i] / n_users for i in top) / len(top) if top else 0.0
            pairs = [(a, b) for x, a in enumerate(top) for b in top[x + 1:]]
            row[f"diversity_at_{k}"] = (sum(category[a] != category[b] for a, b in pairs) / len(pairs)
                                        if pairs else 0.0)
        per[user] = row
    coverage = {f"catalog_coverage_at_{k}": len({i for r, _ in lists.values() for i in r[:k]}) / len(index)
                for k in KS}
    return lists, per, coverage


@pytest.mark.parametrize("seed", range(3))
def test_metrics_over_batches_match_a_per_user_loop_over_full_scores(seed) -> None:
    train, test, cats = split(seed)
    data = TrainData.build(train, cats)
    model = create("item_knn", {"k_neighbors": 4}).fit(data)
    target = build_target(data, test, unknown_users="fallback", unknown_items="keep")
    lists, per, coverage = oracle(model, data, train, test, cats)
    assert len(per) > 4 * 5 and any(u.startswith("cold") for u in per)
    res = evaluate_recommender(model, data, target, KS, batch_size=5)
    got = res.per_user.set_index("user_id")
    assert sorted(got.index) == sorted(per)
    want = pd.DataFrame.from_dict(per, orient="index").loc[got.index]
    assert sorted(got.columns) == sorted(want.columns)  # diversity too: the items have categories
    np.testing.assert_allclose(got[want.columns].to_numpy(float), want.to_numpy(float), rtol=0, atol=1e-12)
    for name in want.columns:
        assert res.metrics[name] == pytest.approx(float(want[name].mean()), abs=1e-12)
    for name, value in coverage.items():
        assert res.metrics[name] == pytest.approx(value, abs=1e-12)
    # the ranked matrix: item indices (int64), -1 after the end of each list, users in target order
    assert res.ranked.dtype == np.int64 and res.ranked.shape == (len(per), max(KS))
    for row, user in enumerate(target.user_ids):
        ranked, _ = lists[user]
        assert res.ranked[row].tolist() == data.items.index(np.array(ranked, dtype=object)).tolist() + \
            [-1] * (max(KS) - len(ranked)), user
    # the stored lists: the oracle's items and the model's float64 scores, rank by rank
    recs = res.recommendations
    assert recs["score"].dtype == np.float64 and recs["rank"].dtype == np.int64
    for user, grp in recs.sort_values(["user_id", "rank"]).groupby("user_id"):
        ranked, scores = lists[user]
        assert grp["item_id"].tolist() == ranked and grp["rank"].tolist() == list(range(1, len(ranked) + 1))
        np.testing.assert_allclose(grp["score"].to_numpy(), scores, rtol=1e-6)
    assert len(recs) == sum(len(r) for r, _ in lists.values())


class Recording:
    """A model that answers like the wrapped one and records what the evaluator asked it."""

    def __init__(self, model) -> None:
        self.model = model
        self.calls: list[tuple[str, object]] = []

    def recommend(self, user_idx: np.ndarray, k: int):
        self.calls.append(("recommend", np.array(user_idx)))
        return self.model.recommend(user_idx, k)

    def fallback(self, n: int, k: int):
        self.calls.append(("fallback", n))
        return self.model.fallback(n, k)


def test_known_users_go_to_the_model_in_consecutive_batches_and_cold_users_to_the_fallback() -> None:
    n_users, n_items = 2100, 5  # more known users than the default batch of 2,048
    users = [f"u{u:04d}" for u in range(n_users)]
    train = pd.DataFrame({"user_id": users, "item_id": [f"i{u % n_items}" for u in range(n_users)],
                          "timestamp": 1, "event": "view", "weight": 1.0})
    test = pd.DataFrame({"user_id": users + ["cold-a", "cold-b"],
                         "item_id": [f"i{(u + 1) % n_items}" for u in range(n_users)] + ["i0", "i1"],
                         "timestamp": 2})
    data = TrainData.build(train)
    target = build_target(data, test, unknown_users="fallback")
    known = target.user_idx[target.user_idx >= 0]
    assert len(known) == n_users and (target.user_idx < 0).sum() == 2
    # 12 bytes per user x item: 300 users of 5 items = 18,000 bytes
    for kwargs, sizes in (({}, [2048, 52]), ({"batch_size": 1000}, [1000, 1000, 100]),
                          ({"max_batch_mb": 18_000 / 2**20}, [300] * 7),
                          ({"batch_size": 200, "max_batch_mb": 18_000 / 2**20}, [200] * 10 + [100])):
        model = Recording(create("popularity").fit(data))
        evaluate_recommender(model, data, target, [2], **kwargs)
        batches = [arg for name, arg in model.calls if name == "recommend"]
        assert [len(b) for b in batches] == sizes, kwargs
        np.testing.assert_array_equal(np.concatenate(batches), known)  # each user once, in target order
        assert [arg for name, arg in model.calls if name == "fallback"] == [2]


def test_batch_rows_is_the_most_users_whose_scores_fit_the_cap() -> None:
    """Exact arithmetic as the oracle: floor(MiB * 2^20 / (12 bytes * items)), within [1, batch_size]."""
    cases = [(2048, 1000, 1.0), (2048, 1, 0.01), (2048, 0, 0.01), (10, 1, 0.01), (2048, 10**9, 1.0),
             (2048, 7, 3 * 84 / 2**20), (2048, 7, math.nextafter(3 * 84 / 2**20, 0)),
             # 5.1e15 users: a float quotient (true division) rounds up to one user more than the cap holds
             (2**62, 1, 58235209947.67244)]
    for batch, n_items, mb in cases:
        cap = Fraction(mb) * 2**20 / (12 * max(n_items, 1))
        rows = batch_rows(batch, n_items, mb)
        assert rows == max(1, min(batch, math.floor(cap))), (batch, n_items, mb)
        assert rows == 1 or rows * 12 * max(n_items, 1) <= Fraction(mb) * 2**20
    assert batch_rows(2048, 1, 0.01) == 873  # 10,485.76 bytes / 12
    assert batch_rows(2048, 7, 3 * 84 / 2**20) == 3 and batch_rows(2048, 7, math.nextafter(3 * 84 / 2**20, 0)) == 2
    assert batch_rows(2**62, 1, 58235209947.67244) == 5088670292174214
    assert batch_rows(300, 5, None) == 300


def small() -> tuple[TrainData, object, object]:
    train, test, cats = split(0, n_users=12)
    data = TrainData.build(train, cats)
    return data, create("popularity").fit(data), build_target(data, test, unknown_users="fallback")


def test_progress_bar_is_labelled_shown_only_when_enabled_and_erased_when_done(monkeypatch, capsys) -> None:
    data, model, target = small()
    monkeypatch.setenv("RECSYS_PROGRESS", "0")
    evaluate_recommender(model, data, target, [2], batch_size=3)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RECSYS_PROGRESS", "1")  # on, even though stderr is not a terminal here
    evaluate_recommender(model, data, target, [2], batch_size=3, desc="re-evaluate v3")
    err = capsys.readouterr().err
    assert "\rre-evaluate v3:   0%|" in err
    assert err.endswith("\r") and "\n" not in err  # leave=False: the finished bar is erased, no line left behind
    evaluate_recommender(model, data, target, [2], batch_size=3)
    assert "\revaluate:   0%|" in capsys.readouterr().err


def test_store_lists_false_keeps_every_metric_and_an_empty_table() -> None:
    data, model, target = small()
    full = evaluate_recommender(model, data, target, [1, 3])
    bare = evaluate_recommender(model, data, target, [1, 3], store_lists=False)
    assert len(full.recommendations) > 0
    assert isinstance(bare.recommendations, pd.DataFrame) and bare.recommendations.empty
    assert bare.metrics == full.metrics
    pd.testing.assert_frame_equal(bare.per_user, full.per_user)


def test_score_lists_on_hand_written_lists() -> None:
    """Two users' padded lists scored directly; by default the lists are kept as the recommendation table."""
    train = pd.DataFrame({"user_id": ["a", "b", "b"], "item_id": ["x", "y", "z"], "timestamp": 1,
                          "event": "view", "weight": 1.0})
    data = TrainData.build(train)  # items x, y, z = 0, 1, 2
    test = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["y", "z", "x"], "timestamp": 2})
    target = build_target(data, test)
    ranked = np.array([[2, 0, -1], [1, -1, -1]])  # a: z, x; b: y
    scores = np.array([[0.5, 0.25, -np.inf], [0.75, -np.inf, -np.inf]])
    res = score_lists(ranked, scores, data, target, [1, 3])
    per = res.per_user.set_index("user_id")
    assert per.loc["a", "precision_at_1"] == 1.0 and per.loc["a", "recall_at_3"] == 0.5
    assert per.loc["b", "hit_rate_at_3"] == 0.0
    assert res.metrics["precision_at_1"] == 0.5 and res.metrics["recall_at_3"] == 0.25
    assert res.metrics["catalog_coverage_at_3"] == 1.0 and res.metrics["catalog_coverage_at_1"] == pytest.approx(2 / 3)
    assert res.recommendations.to_dict("list") == {"user_id": ["a", "a", "b"], "item_id": ["z", "x", "y"],
                                                   "rank": [1, 2, 1], "score": [0.5, 0.25, 0.75]}
    # the id columns are strings of the input's dtype, not objects, and carry no index of their own
    assert res.recommendations["user_id"].dtype == res.recommendations["item_id"].dtype == train["user_id"].dtype
    assert res.per_user["user_id"].dtype == train["user_id"].dtype
    assert res.recommendations.index.tolist() == [0, 1, 2]


def test_an_evaluation_without_users_reports_zero_for_every_metric() -> None:
    train = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "timestamp": 1, "event": "view",
                          "weight": 1.0})
    data = TrainData.build(train)
    test = pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "timestamp": 2})  # only a training item again
    target = build_target(data, test)
    assert len(target.user_ids) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the mean of nothing is not taken (no RuntimeWarning, no NaN)
        res = evaluate_recommender(create("popularity").fit(data), data, target, [1, 2])
    assert res.metrics and all(v == 0.0 for v in res.metrics.values()), res.metrics
    assert "precision_at_2" in res.metrics and res.per_user.empty
