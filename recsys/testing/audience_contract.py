"""The audience contract: every audience-task model's test subclasses `AudienceContract`.

    class TestMyAudienceModel(AudienceContract):
        model_name = "my_model"
        params = {"random_state": 0}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recsys.errors import NotFittedError
from recsys.models.base import Model
from recsys.testing.contract import ModelContract


class AudienceContract(ModelContract):
    """Subclass and set `model_name` and `params`; `learns_structure = False` for non-personalised models."""

    task = "audience"

    def test_targets_held_out_block_users_first(self, fitted, data):
        if not self.learns_structure:
            pytest.skip(f"{self.model_name} is not product-aware")
        train, test = data
        users = train.users.index(test["user_id"].to_numpy())
        items = train.items.index(test["item_id"].to_numpy())
        found = total = 0
        for item in np.unique(items):
            positives = set(users[items == item])
            # candidates: the users who held the item out, and every user of the other block
            audience, _ = fitted.audience(np.array([item]), n=len(positives))
            found += len(set(audience[0]) & positives)
            total += len(positives)
        assert found / total >= 0.9, f"only {found} of {total} held-out users ranked above the other block"

    def test_never_targets_users_who_had_the_item(self, fitted, data):
        train, _ = data
        items = np.arange(train.n_items)
        users, _ = fitted.audience(items, n=train.n_users)
        had = train.matrix.T.tocsr()[items[:, None], np.maximum(users, 0)].toarray() > 0
        assert not (had & (users >= 0)).any()
        # without exclusion every user is a candidate
        users, _ = fitted.audience(items[:3], n=train.n_users, exclude_seen=False)
        assert (users >= 0).all()

    def test_batch_equals_single(self, fitted):
        items = np.array([0, 3, 7, 11])
        batch, bscores = fitted.audience(items, n=6)
        for row, i in enumerate(items):
            single, sscores = fitted.audience(np.array([i]), n=6)
            np.testing.assert_array_equal(batch[row], single[0])
            np.testing.assert_allclose(bscores[row], sscores[0])

    def test_scores_sorted_descending(self, fitted, data):
        _, scores = fitted.audience(np.arange(data[0].n_items), n=10)
        assert (np.diff(scores, axis=1) <= 1e-12).all()

    def test_save_load_roundtrip(self, fitted, tmp_path):
        loaded: Any = Model.load(fitted.save(tmp_path / "m"))  # the same subclass as `fitted` (asserted below)
        assert type(loaded) is type(fitted) and loaded.params == fitted.params
        items = np.arange(8)
        for a, b in zip(fitted.audience(items, 5), loaded.audience(items, 5)):
            np.testing.assert_allclose(a, b)

    def test_not_fitted_raises(self):
        with pytest.raises(NotFittedError):
            self.create().audience(np.array([0]), n=3)

    def test_bad_n_raises(self, fitted):
        with pytest.raises(ValueError, match="n must be > 0"):
            fitted.audience(np.array([0]), n=0)

    def test_deterministic_refit(self, fitted, data):
        again = self.create().fit(data[0])
        items = np.arange(data[0].n_items)
        np.testing.assert_array_equal(fitted.audience(items, 7)[0], again.audience(items, 7)[0])
