"""The recommender contract: every recommend-task model's test subclasses `RecommenderContract`."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import ValidationError

from recsys.errors import NotFittedError
from recsys.models.base import Model
from recsys.models.catalog import create
from recsys.testing.data import checkerboard


class ModelContract:
    """What every model's contract shares: the checkerboard data, fitting, config round trip, strict params.

    Subclasses set `task`; model tests set `model_name` (catalog name) and `params`. `data` and `fitted` are built
    once per test class (the checks only read the fitted model); a subclass that overrides `data` keeps
    `scope="class"`.
    """

    task: ClassVar[str] = ""
    model_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    learns_structure: ClassVar[bool] = True

    def create(self, params: dict[str, Any] | None = None):
        return create(self.model_name, self.params if params is None else params, task=self.task)

    @pytest.fixture(scope="class")
    def data(self):
        return checkerboard()

    @pytest.fixture(scope="class")
    def fitted(self, data):
        train, _ = data
        return self.create().fit(train)

    def test_config_roundtrip(self):
        model = self.create()
        assert self.create(model.params).params == model.params

    def test_unknown_param_raises(self):
        with pytest.raises(ValidationError):
            self.create({**self.params, "not_a_param": 1})


class RecommenderContract(ModelContract):
    """Subclass and set `model_name` (catalog name) and `params`.

    `learns_structure = False` for models that are not personalised (random, popularity).
    """

    task = "recommend"

    def test_recovers_held_out_block_item(self, fitted, data):
        if not self.learns_structure:
            pytest.skip(f"{self.model_name} is not personalised")
        train, test = data
        users = train.users.index(test["user_id"].to_numpy())
        held = train.items.index(test["item_id"].to_numpy())
        n_block = train.n_items // 2
        items, _ = fitted.recommend(users, k=n_block)
        # the held-out item of the user's own block is ranked among the block's remaining items
        hits = (items == held[:, None]).any(axis=1)
        assert hits.mean() == 1.0

    def test_never_recommends_seen_items(self, fitted, data):
        train, _ = data
        users = np.arange(train.n_users)
        items, _ = fitted.recommend(users, k=5)
        seen = train.matrix[users[:, None], np.maximum(items, 0)].toarray() > 0
        assert not (seen & (items >= 0)).any()

    def test_batch_equals_single(self, fitted, data):
        train, _ = data
        users = np.array([0, 3, 7, 11])
        batch, bscores = fitted.recommend(users, k=6)
        for row, u in enumerate(users):
            single, sscores = fitted.recommend(np.array([u]), k=6)
            np.testing.assert_array_equal(single[0], batch[row])
            np.testing.assert_allclose(sscores[0], bscores[row], rtol=1e-6)

    def test_scores_sorted_descending(self, fitted):
        _, scores = fitted.recommend(np.arange(5), k=8)
        assert (np.diff(scores, axis=1) <= 1e-12).all()

    def test_save_load_roundtrip(self, fitted, tmp_path):
        fitted.save(tmp_path / "m")
        loaded: Any = Model.load(tmp_path / "m")  # the same subclass as `fitted` (asserted below)
        assert type(loaded) is type(fitted)
        assert loaded.params == fitted.params
        users = np.arange(10)
        a, sa = fitted.recommend(users, k=7)
        b, sb = loaded.recommend(users, k=7)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(sa, sb, rtol=1e-6)
        assert not list((tmp_path / "m").glob("*.pkl")), "models are saved without pickle"

    def test_not_fitted_raises(self):
        with pytest.raises(NotFittedError):
            self.create().recommend(np.array([0]), k=3)

    def test_bad_k_raises(self, fitted):
        with pytest.raises(ValueError, match="k must be > 0"):
            fitted.recommend(np.array([0]), k=0)

    def test_deterministic_refit(self, fitted, data):
        train, _ = data
        again = self.create().fit(train)
        np.testing.assert_array_equal(fitted.recommend(np.arange(8), k=5)[0], again.recommend(np.arange(8), k=5)[0])
