"""Each recommend-task model subclasses the shipped contract suite."""

from recsys.testing import RecommenderContract


class TestRandom(RecommenderContract):
    model_name = "random"
    params = {"random_state": 3}
    learns_structure = False


class TestPopularity(RecommenderContract):
    model_name = "popularity"
    learns_structure = False


class TestItemKNNCosine(RecommenderContract):
    model_name = "item_knn"
    params = {"k_neighbors": 10}


class TestItemKNNBM25(RecommenderContract):
    model_name = "item_knn"
    params = {"k_neighbors": 10, "similarity": "bm25"}


class TestItemKNNBinary(RecommenderContract):
    model_name = "item_knn"
    params = {"k_neighbors": 10, "binary": True}


class TestALS(RecommenderContract):
    model_name = "als"
    params = {"factors": 4, "iterations": 10, "num_threads": 1, "random_state": 1}


def test_item_knn_keeps_top_k_neighbours_only():
    import numpy as np
    import scipy.sparse as sp

    from recsys.models.catalog import create
    from recsys.testing import checkerboard

    train, _ = checkerboard(n_users=60, n_items=80)
    model = create("item_knn", {"k_neighbors": 5}).fit(train)
    assert sp.issparse(model.similarity_)
    per_row = np.diff(model.similarity_.tocsr().indptr)
    assert per_row.max() <= 5 and model.similarity_.nnz <= 5 * train.n_items


def test_als_honours_random_state():
    import numpy as np

    from recsys.models.catalog import create
    from recsys.testing import checkerboard

    train, _ = checkerboard()
    a = create("als", {"factors": 4, "iterations": 3, "random_state": 1, "num_threads": 1}).fit(train)
    b = create("als", {"factors": 4, "iterations": 3, "random_state": 2, "num_threads": 1}).fit(train)
    assert not np.allclose(a.item_factors_, b.item_factors_)


def _sparse_random_weights(seed: int = 0):
    """80 users x 30 items, ~25% filled, weights 0.5..5 (summed events): weighting changes the neighbours."""
    import numpy as np
    import pandas as pd

    from recsys.data.tables import TrainData

    rng = np.random.default_rng(seed)
    mask = rng.random((80, 30)) < 0.25
    u, i = np.nonzero(mask)
    w = rng.choice([0.5, 1.0, 2.0, 3.0, 5.0], size=len(u))
    return TrainData.build(pd.DataFrame({"user_id": [f"u{x:03d}" for x in u], "item_id": [f"i{x:03d}" for x in i],
                                         "timestamp": np.arange(len(u)), "event": "view", "weight": w}))


def test_item_knn_binary_is_cosine_of_the_0_1_matrix_and_ignores_weights_when_scoring():
    import numpy as np
    import scipy.sparse as sp

    from recsys.models.catalog import create

    train = _sparse_random_weights()
    binary = create("item_knn", {"k_neighbors": 30, "binary": True, "num_threads": 1}).fit(train)
    weighted = create("item_knn", {"k_neighbors": 30, "num_threads": 1}).fit(train)
    # independent cosine over the 0/1 user x item matrix (numpy, dense)
    b = (train.matrix.toarray() > 0).astype(np.float64)
    norms = np.linalg.norm(b, axis=0)
    expected = (b.T @ b) / np.outer(norms, norms)
    got = binary.similarity_.toarray()
    off = ~np.eye(train.n_items, dtype=bool)
    np.testing.assert_allclose(got[off], expected[off], rtol=1e-5, atol=1e-6)
    assert not np.allclose(weighted.similarity_.toarray()[off], expected[off], atol=1e-3)  # weights mattered
    # scores: the user's 0/1 row times the similarities, whatever the stored weights
    users = np.arange(train.n_users)
    np.testing.assert_allclose(binary.score(users), b @ got, rtol=1e-5, atol=1e-6)
    history = sp.csr_matrix(train.matrix[:5] * 7.0)
    np.testing.assert_allclose(binary.score_history(history), b[:5] @ got, rtol=1e-5, atol=1e-6)
