"""The new model's one test file: the shipped contract suite."""

from typing import ClassVar

from recsys.testing import RecommenderContract


class TestCooccurrence(RecommenderContract):
    model_name = "cooccurrence"
    params: ClassVar[dict] = {"shrink": 1.0}
