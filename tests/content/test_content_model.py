"""The `content` model: MiniLM item embeddings in FAISS serve recommend / similar / search, new items included."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from recsys.data.synthetic import CATEGORIES
from recsys.data.tables import TrainData
from recsys.models.base import Model, Recommender
from recsys.models.catalog import create
from recsys.testing import RecommenderContract, checkerboard

KITCHEN = dict(CATEGORIES)["kitchen"]
GARDEN = dict(CATEGORIES)["garden"]
INDEXES = [{"index": "flat"}, {"index": "hnsw", "hnsw_m": 8, "ef_search": 32},
           {"index": "ivf", "nlist": 2, "nprobe": 2}]


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("embeddings")


@pytest.fixture(scope="module", autouse=True)
def _cache_dir(embedding_cache):
    """Module-wide (set before the contract's class-scoped fit), restored after the module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_CACHE_DIR", str(embedding_cache))
        yield


def topical_checkerboard() -> tuple[TrainData, pd.DataFrame]:
    """The contract's checkerboard with readable items: block 0 is kitchenware, block 1 garden tools."""
    train, test = checkerboard(n_users=40, n_items=32, n_groups=2)
    table = train.item_table
    number = table["item_id"].str[1:].astype(int).to_numpy()
    words = np.where(number % 2 == 0, np.array(KITCHEN)[(number // 2) % 8], np.array(GARDEN)[(number // 2) % 8])
    table["title"] = [f"{w} model {n}" for w, n in zip(words, number)]
    table["category"] = np.where(number % 2 == 0, "kitchen", "garden")
    return train, test


class TestContentContract(RecommenderContract):
    model_name = "content"
    params: ClassVar[dict] = {"index": "flat"}

    @pytest.fixture(scope="class")
    def data(self):
        return topical_checkerboard()


def tiny_catalog() -> TrainData:
    """Two users with a one-topic history each; one new (never interacted) item per topic."""
    items = pd.DataFrame({
        "item_id": ["k1", "k2", "k3", "k4", "g1", "g2", "g3", "g4", "k_new", "g_new"],
        "title": ["Stainless steel kettle", "Cast iron frying pan", "Ceramic teapot", "Chef's knife",
                  "Garden hose", "Leaf rake", "Vegetable seeds", "Lawn mower",
                  "Electric toaster for breakfast bread", "Garden shovel for digging soil"],
        "text": ["", "", "", "", "", "", "", "", "", ""],
        "category": ["kitchen"] * 4 + ["garden"] * 4 + ["kitchen", "garden"],
    })
    rows = [("cook", "k1"), ("cook", "k2"), ("cook", "k3"), ("gardener", "g1"), ("gardener", "g2"),
            ("gardener", "g3"), ("other", "k4"), ("other", "g4"), ("other", "k1"), ("other", "g1")]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(
        timestamp=np.arange(len(rows), dtype=np.int64) + 1_700_000_000, event="view", weight=1.0)
    return TrainData.build(inter, items)


@pytest.mark.parametrize("params", INDEXES, ids=lambda p: p["index"])
def test_new_item_is_recommended_to_a_user_of_its_topic(params):
    data = tiny_catalog()
    model = create("content", params, task="recommend").fit(data)
    pop = data.item_popularity()
    k_new, g_new = data.items.index(["k_new", "g_new"])
    assert pop[k_new] == 0 and pop[g_new] == 0, "the new items have no interactions"
    users = data.users.index(["cook", "gardener"])
    items, _ = model.recommend(users, k=2)
    kitchen = set(data.items.index(["k1", "k2", "k3", "k4", "k_new"]))
    garden = set(data.items.index(["g1", "g2", "g3", "g4", "g_new"]))
    assert k_new in items[0] and set(items[0]) <= kitchen, data.items.id(items[0])
    assert g_new in items[1] and set(items[1]) <= garden, data.items.id(items[1])
    # a popularity model cannot surface them: they score zero
    popular = create("popularity").fit(data).recommend(users, k=2)[0]
    assert k_new not in popular[0] and g_new not in popular[1]


def test_recommend_removes_seen_and_matches_exact_ranking():
    data = tiny_catalog()
    model = create("content", {"index": "flat"}).fit(data)
    users = np.arange(data.n_users)
    items, scores = model.recommend(users, k=data.n_items)
    seen = data.matrix.toarray() > 0
    for row, u in enumerate(users):
        valid = items[row][items[row] >= 0]
        assert not seen[u, valid].any()
        assert len(valid) == (~seen[u]).sum(), "every unseen item is reachable"
    _, exact_scores = Recommender.recommend(model, users, k=data.n_items)  # dense brute force
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
    profile = model.profiles(users)
    np.testing.assert_allclose(np.linalg.norm(profile, axis=1), 1.0, rtol=1e-5)


def test_profile_weights_follow_interaction_weight():
    data = tiny_catalog()
    inter = data.interactions[["user_id", "item_id", "timestamp", "event", "weight"]].copy()
    inter.loc[(inter["user_id"] == "other") & inter["item_id"].str.startswith("k"), "weight"] = 50.0
    heavy = TrainData.build(inter, data.item_table)
    u = heavy.users.index(["other"])
    kitchen = heavy.items.index(["k_new"])[0]
    garden = heavy.items.index(["g_new"])[0]
    weighted = create("content", {"profile": "weighted"}).fit(heavy)
    scores = weighted.score(u)[0]
    assert scores[kitchen] > scores[garden]
    uniform = create("content", {"profile": "uniform"}).fit(heavy)
    # the uniform profile ignores the weights: the kitchen margin shrinks
    s2 = uniform.score(u)[0]
    assert scores[kitchen] - scores[garden] > s2[kitchen] - s2[garden]


def test_similar_and_search():
    data = tiny_catalog()
    model = create("content", {"index": "hnsw", "hnsw_m": 8}).fit(data)
    kettle = data.items.index(["k1"])
    items, scores = model.similar(kettle, k=3)
    assert kettle[0] not in items[0]
    assert set(items[0]) <= set(data.items.index(["k2", "k3", "k4", "k_new"]))
    assert (np.diff(scores[0]) <= 1e-6).all()
    # each title, used as a query, finds its own item first
    titles = data.item_table["title"].tolist()
    found, found_scores = model.search(titles, k=2)
    np.testing.assert_array_equal(found[:, 0], np.arange(data.n_items))
    assert (found_scores[:, 0] > found_scores[:, 1]).all()


@pytest.mark.parametrize("params", INDEXES, ids=lambda p: p["index"])
def test_save_load_keeps_index_and_answers(params, tmp_path):
    data = tiny_catalog()
    model = create("content", params).fit(data)
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "index.faiss").stat().st_size > 0
    loaded = Model.load(tmp_path / "m")
    assert loaded.params == model.params
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(loaded.recommend(users, 3)[0], model.recommend(users, 3)[0])
    np.testing.assert_array_equal(loaded.search(["tea"], 4)[0], model.search(["tea"], 4)[0])
    assert loaded.titles_.tolist() == model.titles_.tolist()


@pytest.mark.parametrize("bad", [{"index": "annoy"}, {"nprobe": 0}, {"ef_search": 0}, {"hnsw_m": 2},
                                 {"batch_size": 0}, {"profile": "max"}])
def test_bad_params_name_the_rule(bad):
    with pytest.raises(ValidationError) as err:
        create("content", bad)
    assert next(iter(bad)) in str(err.value)


def test_params_are_plain_and_bounded_for_tuning():
    from recsys.models.content import ContentModel

    fields = ContentModel.Config.model_fields
    for name in ("nprobe", "ef_search", "nlist", "hnsw_m", "ef_construction"):
        bounds = {type(m).__name__ for m in fields[name].metadata}
        assert {"Ge", "Le"} <= bounds, f"{name} needs lower and upper bounds"
    assert create("content", {"index": "ivf"}).params["index"] == "ivf"
