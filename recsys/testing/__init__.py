"""Shipped test helpers: tiny deterministic data and the model contract suite.

A model's test is a few lines:

    from recsys.testing import RecommenderContract

    class TestMyModel(RecommenderContract):
        model_name = "my_model"
        params = {"factors": 8}
"""

from recsys.testing.contract import RecommenderContract
from recsys.testing.data import checkerboard

__all__ = ["RecommenderContract", "checkerboard"]
