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
