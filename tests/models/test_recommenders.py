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
