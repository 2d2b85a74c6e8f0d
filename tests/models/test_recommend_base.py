"""`Recommender.recommend` (the path of every scoring model: EASE, item-KNN, ALS, ...) against a plain-Python
ranking of the model's own dense scores: each user's training items (read from the interaction table, not from
the model) removed by default, kept with `exclude_seen=False`, ties by the lower item index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.tables import TrainData
from recsys.models.catalog import create


def _train() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = [(f"u{u:02d}", f"i{j:02d}", 0, 1.0) for u in range(30)
            for j in rng.choice(12, size=int(rng.integers(2, 7)), replace=False, p=np.linspace(2, 1, 12) / 18)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "weight"]).assign(event="view")


def _by_hand(scores: np.ndarray, banned: list[set[int]], k: int) -> list[list[int]]:
    return [[j for _, j in sorted((-v, j) for j, v in enumerate(row) if j not in ban)[:k]]
            for row, ban in zip(scores.tolist(), banned)]


@pytest.mark.parametrize("name", ["ease", "item_knn", "als"])
def test_recommend_ranks_the_scores_without_the_users_training_items(name):
    train = _train()
    data = TrainData.build(train)
    model = create(name).fit(data)
    users = np.arange(data.n_users)
    scores = model.score(users)
    seen: list[set[int]] = [set() for _ in users]
    for u, i in zip(data.users.index(train["user_id"].tolist()), data.items.index(train["item_id"].tolist())):
        seen[u].add(int(i))
    for k in (1, 4):
        idx, val = model.recommend(users, k)  # exclude_seen defaults to True
        assert idx.tolist() == _by_hand(scores, seen, k), k
        np.testing.assert_array_equal(val, np.take_along_axis(scores, idx, axis=1))
        kept, _ = model.recommend(users, k, exclude_seen=False)
        assert kept.tolist() == _by_hand(scores, [set() for _ in users], k), k
        # the data make the difference visible: without exclusion some user gets a training item back
        assert any(j in s for row, s in zip(kept.tolist(), seen) for j in row)


@pytest.mark.parametrize("name", ["ease", "als"])  # the shared path, and the factor models' own recommend
@pytest.mark.parametrize("k", [0, -3])
def test_recommend_refuses_a_k_below_one_naming_it(k, name):
    model = create(name).fit(TrainData.build(_train()))
    with pytest.raises(ValueError) as err:
        model.recommend(np.arange(3), k)
    assert str(err.value) == f"k must be > 0, but got k={k}"
    items, scores = model.recommend(np.arange(3), 1)  # the smallest k is allowed
    assert items.shape == scores.shape == (3, 1) and (items >= 0).all()


@pytest.mark.parametrize("name", ["ease", "als"])
def test_user_indices_outside_the_model_or_not_integers_are_refused_naming_the_rule(name):
    data = TrainData.build(_train())
    assert data.n_users != data.n_items  # the message must name the user count, not the item count
    model = create(name).fit(data)
    for bad in ([0, data.n_users], [data.n_users + 4], [-1, 2], [-2]):
        for call in (model.score, lambda u: model.recommend(u, 2)):
            with pytest.raises(IndexError) as err:
                call(np.array(bad))
            assert str(err.value) == f"user indices must be in [0, {data.n_users}), got {min(bad)}..{max(bad)}"
    for bad in (np.array([0.0, 2.0]), np.array([True, False]), [1.5]):
        for call in (model.score, lambda u: model.recommend(u, 2)):
            with pytest.raises(TypeError) as err:
                call(bad)
            assert str(err.value) == (f"user indices must be integers, got dtype {np.asarray(bad).dtype}: map user "
                                      "ids to indices with TrainData.users.index(...)")
    assert model.score(np.array([], dtype=np.int64)).shape == (0, data.n_items)
    assert model.score([]).shape == (0, data.n_items)  # an empty list (float64 to numpy) is no user at all
    last = data.n_users - 1
    for users in ([last], [0, last], np.array([0, last], dtype=np.int32), np.array([last], dtype=np.uint64)):
        items, _ = model.recommend(users, 3)
        np.testing.assert_array_equal(items, model.recommend(np.array(users, dtype=np.int64), 3)[0])


def test_score_dtype_is_float32_for_factor_models_and_float64_otherwise():
    data = TrainData.build(_train())
    assert create("als").fit(data).score(np.arange(3)).dtype == np.float32
    assert create("ease").fit(data).score(np.arange(3)).dtype == np.float64
    pop = create("popularity").fit(data)
    pop._score = lambda users: np.ones((len(users), data.n_items), dtype=np.int64)  # an integer-scoring model
    out = pop.score(np.arange(2))
    assert out.dtype == np.float64 and out.tolist() == [[1.0] * data.n_items] * 2


def test_the_public_topk_removes_the_excluded_items():
    import scipy.sparse as sp

    from recsys.models.base import topk

    scores = np.array([[0.9, 0.8, 0.7, 0.6], [0.1, 0.2, 0.3, 0.4]])
    exclude = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 1]]))
    idx, val = topk(scores.copy(), 2, exclude=exclude)
    assert idx.tolist() == [[1, 3], [2, 1]] and val.tolist() == [[0.8, 0.6], [0.3, 0.2]]
    assert topk(scores.copy(), 2)[0].tolist() == [[0, 1], [3, 2]]


def test_kernel_edges_integer_scores_empty_lists_and_the_exclusion_shape_check():
    import scipy.sparse as sp

    from recsys.models.ranking import exclude_inplace, topk

    idx, val = topk(np.array([[1, 3, 2], [0, 0, 5]]), 2)  # integer scores are ranked as float64
    assert idx.tolist() == [[1, 2], [2, 0]] and val.dtype == np.float64 and val.tolist() == [[3, 2], [5, 0]]
    for scores, k in ((np.ones((3, 4)), 0), (np.ones((0, 4)), 2)):
        idx, val = topk(scores, k)
        assert idx.dtype == np.int64 and idx.shape == (len(scores), 0) and val.shape == (len(scores), 0)
    with pytest.raises(ValueError) as err:
        exclude_inplace(np.ones((3, 4)), sp.csr_matrix((2, 4)))
    assert str(err.value) == "exclude has 2 rows but scores has 3"


def test_float32_ties_are_repaired_in_every_row_of_a_large_batch():
    """600 rows whose K-th and (K+1)-th scores are equal in float32 but not in float64: every row (beyond the
    repair's 256-row chunks) is ordered by its float64 values, as a per-row Python sort says."""
    from recsys.models.ranking import topk

    row = [1.0, 1.0 + 1e-12, 1.0 + 3e-12, 1.0 + 2e-12, 0.5]  # one float32 value for the first four
    scores = np.tile(row, (600, 1))
    want = [j for _, j in sorted((-v, j) for j, v in enumerate(row))][:2]
    idx, val = topk(scores, 2)
    assert want == [2, 3] and idx.tolist() == [want] * 600
    assert val.tolist() == [[row[2], row[3]]] * 600
