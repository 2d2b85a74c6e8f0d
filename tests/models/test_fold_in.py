"""Fold-in: a user the model never saw, given by the items they had, is scored like the model would score them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.config import config_from_dict
from recsys.data import TrainData, load_dataset
from recsys.models.als import ALS
from recsys.models.baselines import PopularityRecommender, RandomRecommender
from recsys.models.item_knn import ItemKNN


@pytest.fixture(scope="module")
def data() -> TrainData:
    cfg = config_from_dict({"name": "f", "data": {"synthetic": {"n_users": 400, "n_items": 150, "n_categories": 6,
                                                                "mean_interactions": 15}},
                            "models": [{"name": "popularity"}]})
    ds = load_dataset(cfg.data, 21)
    return TrainData.build(ds.interactions, ds.items)


def _history(data: TrainData, items: list[int], weights: list[float] | None = None) -> sp.csr_matrix:
    w = np.ones(len(items)) if weights is None else np.asarray(weights)
    return sp.csr_matrix((w, ([0] * len(items), items)), shape=(1, data.n_items), dtype=np.float32)


def _five_items(data: TrainData) -> list[int]:
    counts = np.diff(data.matrix.indptr)
    user = int(np.flatnonzero(counts >= 8)[0])
    return data.matrix[user].indices[:5].tolist()


@pytest.mark.parametrize("alpha, regularization", [(1.0, 0.01), (4.0, 0.3)])
def test_als_fold_in_equals_implicits_recalculate_user(data, alpha, regularization) -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    params = {"factors": 8, "iterations": 5, "num_threads": 1, "random_state": 3, "alpha": alpha,
              "regularization": regularization}
    model = ALS(**params).fit(data)
    items = _five_items(data)
    row = _history(data, items, [1.0, 2.0, 0.5, 3.0, 1.0])

    # oracle 1: implicit itself, fitted independently on the same matrix, recalculating the user per request
    est = AlternatingLeastSquares(factors=8, iterations=5, num_threads=1, random_state=3, alpha=alpha,
                                  regularization=regularization, calculate_training_loss=False)
    est.fit(data.matrix, show_progress=False)
    np.testing.assert_allclose(est.item_factors, model.item_factors_, rtol=1e-5, atol=1e-6)
    ids, scores = est.recommend(0, row, N=10, recalculate_user=True, filter_already_liked_items=True)
    mine_ids, mine_scores = model.recommend_history(row, 10)
    assert mine_ids[0].tolist() == ids.tolist()
    np.testing.assert_allclose(mine_scores[0], scores, rtol=1e-5, atol=1e-6)
    assert not set(mine_ids[0]) & set(items)  # the history itself is not recommended back

    # oracle 2: the weighted least-squares solution (Hu, Koren, Volinsky 2008) computed by hand
    Y = model.item_factors_.astype(np.float64)
    conf = alpha * row.toarray()[0]
    A = Y.T @ Y + regularization * np.eye(Y.shape[1])
    b = np.zeros(Y.shape[1])
    for i in np.flatnonzero(conf):
        A += (conf[i] - 1.0) * np.outer(Y[i], Y[i])
        b += conf[i] * Y[i]
    x = np.linalg.solve(A, b)
    np.testing.assert_allclose(model.fold_in_factors(row)[0], x, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(model.score_history(row)[0], Y @ x, rtol=1e-3, atol=1e-4)


def test_item_knn_fold_in_is_the_weighted_sum_of_neighbour_similarities(data) -> None:
    model = ItemKNN(k_neighbors=20, num_threads=1).fit(data)
    items = _five_items(data)
    weights = [1.0, 2.0, 0.5, 3.0, 1.0]
    got = model.score_history(_history(data, items, weights))[0]
    sim = model.similarity_.toarray()
    expected = np.zeros(data.n_items)
    for j, w in zip(items, weights):  # hand loop: score(i) = sum_j w_j sim(j, i)
        for i in range(data.n_items):
            expected[i] += w * sim[j, i]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert np.count_nonzero(got) > 0


@pytest.mark.parametrize("name", ["item_knn", "rp3beta", "ease"])
def test_folding_in_a_known_users_history_gives_their_list(data, name) -> None:
    """Item-item models score a history, not a user: a known user's own row folds in to their own list.
    (EASE and RP3beta get fold-in from their `item_weights` alone.)"""
    from recsys.models.catalog import create

    model = create(name, {"k_neighbors": 20} if name != "ease" else {}, task="recommend").fit(data)
    users = np.arange(0, data.n_users, 37)
    lists, scores = model.recommend(users, 10)
    folded, folded_scores = model.recommend_history(data.matrix[users], 10)
    np.testing.assert_array_equal(folded, lists)
    np.testing.assert_allclose(folded_scores, scores, rtol=1e-5, atol=1e-6)


def test_models_without_a_fold_in_say_so(data) -> None:
    rnd = RandomRecommender().fit(data)
    with pytest.raises(NotImplementedError, match="random"):
        rnd.recommend_history(_history(data, [0, 1]), 5)
    pop = PopularityRecommender().fit(data)
    items, _ = pop.recommend_history(_history(data, [int(np.argmax(data.item_popularity()))]), 5)
    ranking = pd.Series(data.item_popularity()).sort_values(ascending=False, kind="stable").index.tolist()
    assert items[0].tolist() == ranking[1:6]  # the popular list without the item the user had
    with pytest.raises(ValueError, match="one column per item"):
        pop.recommend_history(sp.csr_matrix((1, data.n_items + 1)), 5)


def test_content_fold_in_searches_the_profile_of_the_given_items(data) -> None:
    """A new user's profile is the weighted mean of the given items' embeddings; the exact index returns the
    items nearest to it (brute force by hand), the given items left out."""
    from recsys.models.content import ContentModel

    model = ContentModel(index="flat", num_threads=1).fit(data)
    items = _five_items(data)
    weights = np.array([1.0, 2.0, 0.5, 3.0, 1.0])
    ids, scores = model.recommend_history(_history(data, items, weights.tolist()), 10)
    vectors = model.item_vectors_.astype(np.float64)
    profile = (weights[:, None] * vectors[items]).sum(axis=0)
    profile /= np.linalg.norm(profile)
    exact = vectors @ profile
    exact[items] = -np.inf
    order = np.lexsort((np.arange(len(exact)), -exact))[:10]
    np.testing.assert_allclose(scores[0], exact[order], rtol=1e-4, atol=1e-5)
    assert set(ids[0]) == set(order) or np.allclose(np.sort(exact[ids[0]]), np.sort(exact[order]), atol=1e-5)
