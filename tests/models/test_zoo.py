"""The added recommenders (ease, bpr, rp3beta, ...): contract suites plus checks against independent computations."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.errors import DataError
from recsys.models.catalog import create
from recsys.testing import RecommenderContract, checkerboard


class TestEASE(RecommenderContract):
    model_name = "ease"
    params = {"regularization": 10.0}


class TestBPR(RecommenderContract):
    model_name = "bpr"
    params = {"factors": 8, "iterations": 60, "learning_rate": 0.05, "num_threads": 1, "random_state": 1}


class TestRP3beta(RecommenderContract):
    model_name = "rp3beta"
    params = {"k_neighbors": 25, "alpha": 0.8, "beta": 0.3}


def _random_train(n_users=30, n_items=25, density=0.25, seed=0):
    import pandas as pd

    from recsys.data.tables import TrainData

    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    dense[:, 0] = True  # no empty item
    u, i = np.nonzero(dense)
    df = pd.DataFrame({"user_id": [f"u{x:03d}" for x in u], "item_id": [f"i{x:03d}" for x in i],
                       "timestamp": np.arange(len(u)), "event": "view", "weight": 1.0})
    return TrainData.build(df)


# ease ---------------------------------------------------------------------------------------------------------------
def test_ease_equals_per_item_ridge_regressions():
    """Each column of B is the ridge regression of item j on all other items (the paper's definition, solved
    directly)."""
    train = _random_train()
    lam = 3.0
    model = create("ease", {"regularization": lam}).fit(train)
    weights = model.item_weights().toarray()
    x = train.matrix.toarray().astype(np.float64)
    n = x.shape[1]
    for j in range(n):
        others = [c for c in range(n) if c != j]
        xo = x[:, others]
        b = np.linalg.solve(xo.T @ xo + lam * np.eye(n - 1), xo.T @ x[:, j])
        np.testing.assert_allclose(weights[others, j], b, rtol=2e-3, atol=2e-5)
        assert weights[j, j] == 0
    assert model.weights_.dtype == np.float32


def test_ease_refuses_when_the_dense_matrix_exceeds_max_memory():
    train, _ = checkerboard(n_users=40, n_items=40)
    with pytest.raises(DataError, match=r"40 x 40 .*MiB.*max_memory_mb=0"):
        create("ease", {"max_memory_mb": 0.001}).fit(train)


# rp3beta ------------------------------------------------------------------------------------------------------------
def _rp3beta_by_hand(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """The random walk written as loops: W[i, j] = sum_u P(u|i)^a P(j|u)^a / pop(j)^b, zero diagonal."""
    n_users, n_items = x.shape
    xb = (x > 0).astype(float)
    w = np.zeros((n_items, n_items))
    for i in range(n_items):
        for u in range(n_users):
            if xb[u, i] == 0:
                continue
            p_ui = (xb[u, i] / xb[:, i].sum()) ** alpha
            for j in range(n_items):
                if x[u, j] > 0 and i != j:
                    w[i, j] += p_ui * (x[u, j] / x[u].sum()) ** alpha / xb[:, j].sum() ** beta
    return w


def test_rp3beta_matches_the_random_walk_by_hand():
    train = _random_train(n_users=15, n_items=10, density=0.4)
    model = create("rp3beta", {"alpha": 0.7, "beta": 0.4, "k_neighbors": 10}).fit(train)
    expected = _rp3beta_by_hand(train.matrix.toarray(), 0.7, 0.4)
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-5, atol=1e-7)


def test_rp3beta_keeps_top_k_per_item_and_never_builds_n_by_n(monkeypatch):
    import recsys.models.rp3beta as R

    train = _random_train(n_users=60, n_items=80, density=0.3)
    full = create("rp3beta", {"k_neighbors": 5}).fit(train)
    monkeypatch.setattr(R, "BLOCK_BYTES", 4 * 80 * 3)  # three rows per block
    blocked = create("rp3beta", {"k_neighbors": 5}).fit(train)
    assert sp.issparse(full.similarity_)
    assert np.diff(full.similarity_.indptr).max() <= 5
    np.testing.assert_allclose(blocked.similarity_.toarray(), full.similarity_.toarray())
    dense = create("rp3beta", {"k_neighbors": 80}).fit(train).similarity_.toarray()
    for i in range(80):  # the kept neighbours are the row's largest weights
        kept = full.similarity_[i].toarray().ravel()
        assert kept[kept > 0].min() >= np.sort(dense[i])[-5] - 1e-12


def test_rp3beta_beta_penalises_popular_items():
    train = _random_train(n_users=60, n_items=30, density=0.3)
    pop = np.diff(train.matrix.tocsc().indptr)
    plain = create("rp3beta", {"beta": 0.0, "k_neighbors": 30}).fit(train)
    penal = create("rp3beta", {"beta": 1.0, "k_neighbors": 30}).fit(train)

    def mean_pop(m):
        return pop[m.recommend(np.arange(60), k=5)[0]].mean()

    assert mean_pop(penal) < mean_pop(plain)


# bpr ----------------------------------------------------------------------------------------------------------------
def test_bpr_honours_random_state_and_reports_each_epoch():
    train, _ = checkerboard()
    epochs = []
    a = create("bpr", {"factors": 4, "iterations": 5, "random_state": 1, "num_threads": 1}).fit(
        train, callback=lambda epoch, info: epochs.append((epoch, info["partial_model"]().item_factors_.shape)))
    b = create("bpr", {"factors": 4, "iterations": 5, "random_state": 2, "num_threads": 1}).fit(train)
    assert not np.allclose(a.item_factors_, b.item_factors_)
    assert [e for e, _ in epochs] == list(range(5))
    assert epochs[0][1] == (train.n_items, 5)  # factors + implicit's bias column


@pytest.mark.parametrize("name", ["ease", "rp3beta", "bpr"])
def test_similar_excludes_the_query_and_stays_in_block(name):
    train, _ = checkerboard(n_users=40, n_items=40)
    params = {"bpr": {"factors": 8, "iterations": 60, "learning_rate": 0.05, "num_threads": 1}}.get(name, {})
    model = create(name, params).fit(train)
    q = np.arange(10)
    items, _ = model.similar(q, k=5)
    assert not (items == q[:, None]).any()
    # checkerboard: items of the same parity form a block; similar items come from the query's block
    assert ((items % 2) == (q[:, None] % 2)).mean() > 0.9


# multvae ------------------------------------------------------------------------------------------------------------
MULTVAE = {"hidden": 32, "latent": 8, "epochs": 40, "batch_size": 16, "learning_rate": 0.01,
           "total_anneal_steps": 50, "early_stopping_patience": 0, "random_state": 3, "num_threads": 1}


class TestMultVAE(RecommenderContract):
    model_name = "multvae"
    params = MULTVAE


def test_multvae_seed_matters_and_threads_are_restored():
    import torch

    train, _ = checkerboard()
    before = torch.get_num_threads()
    a = create("multvae", {**MULTVAE, "epochs": 3}).fit(train)
    assert torch.get_num_threads() == before
    b = create("multvae", {**MULTVAE, "epochs": 3, "random_state": 4}).fit(train)
    assert not np.allclose(a.score(np.arange(5)), b.score(np.arange(5)))


def test_multvae_early_stopping_keeps_the_best_epoch_and_reports_each_epoch():
    train, _ = checkerboard(n_users=80, n_items=40)
    seen = []
    model = create("multvae", {**MULTVAE, "epochs": 200, "early_stopping_patience": 3, "validation_share": 0.2}).fit(
        train, callback=lambda epoch, info: seen.append((epoch, info["val_ndcg_at_10"], info["partial_model"]())))
    info = model.fit_info_
    assert info["epochs_run"] < 200 and info["epochs_run"] == len(seen)
    vals = [v for _, v, _ in seen]
    assert info["best_epoch"] == int(np.argmax(vals)) and info["val_ndcg_at_10"] == max(vals)
    assert info["epochs_run"] - 1 - info["best_epoch"] == 3  # stopped after `patience` epochs without gain
    assert seen[0][2] is model


# sasrec -------------------------------------------------------------------------------------------------------------
SASREC = {"factors": 16, "n_blocks": 1, "max_len": 20, "epochs": 30, "batch_size": 16, "learning_rate": 0.01,
          "dropout": 0.1, "random_state": 3, "num_threads": 1}


class TestSASRec(RecommenderContract):
    model_name = "sasrec"
    params = SASREC


def test_ease_never_recommends_items_without_interactions_and_scores_like_the_closed_form():
    import pandas as pd

    from recsys.data.tables import TrainData

    train = _random_train(n_users=20, n_items=12)
    catalog = pd.DataFrame({"item_id": [f"i{x:03d}" for x in range(15)], "title": "t", "text": "", "category": "c"})
    full = TrainData.build(train.interactions.drop(columns=["user_idx", "item_idx"]), catalog)
    assert full.n_items == 15
    model = create("ease", {"regularization": 2.0}).fit(full)
    x = full.matrix.toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + 2.0 * np.eye(15))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0)
    scores = model.score(np.arange(20))
    np.testing.assert_allclose(scores[:, :12], (x @ b)[:, :12], rtol=1e-3, atol=1e-5)
    assert (scores[:, 12:] == -np.inf).all()  # never recommended: no training evidence
    assert (model.item_weights().toarray()[:, 12:] == 0).all()
    items, _ = model.recommend(np.arange(20), k=12)
    assert not np.isin(items, [12, 13, 14]).any()
