"""hybrid: late fusion of a collaborative model and content; serves items nobody has interacted with."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from recsys.data.tables import TrainData
from recsys.errors import ConfigError
from recsys.models.base import Model
from recsys.models.catalog import create
from recsys.testing import RecommenderContract

HYBRID = {"components": [{"name": "ease", "params": {"regularization": 10.0}, "weight": 0.6},
                         {"name": "content", "params": {"index": "flat"}, "weight": 0.4}]}

KITCHEN = ["kettle", "teapot", "skillet", "blender", "toaster", "whisk", "saucepan", "colander"]
GARDEN = ["shovel", "rake", "hose", "planter", "seeds", "wheelbarrow", "trowel", "sprinkler"]


@pytest.fixture(scope="module", autouse=True)
def _embedding_cache(tmp_path_factory):
    """The content component's embeddings go to a temporary cache, never to ~/.cache/recsys: module-wide (set
    before the contract's class-scoped fit), restored after the module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_CACHE_DIR", str(tmp_path_factory.mktemp("embeddings")))
        yield


class TestHybrid(RecommenderContract):
    model_name = "hybrid"
    params = HYBRID


def _two_tastes(seed=0):
    """Kitchen people and garden people, each with most items of their side; returns (train, items table)."""
    rng = np.random.default_rng(seed)
    names = [(f"k{i}", f"{w} for the kitchen", "cooking pots pans kitchen utensils", "kitchen")
             for i, w in enumerate(KITCHEN)]
    names += [(f"g{i}", f"{w} for the garden", "gardening plants lawn outdoor tools", "garden")
              for i, w in enumerate(GARDEN)]
    items = pd.DataFrame(names, columns=["item_id", "title", "text", "category"])
    rows = []
    for u in range(40):
        side = "k" if u % 2 == 0 else "g"
        for j in rng.choice(8, size=6, replace=False):
            rows.append((f"u{u:02d}", f"{side}{j}", 1_700_000_000 + len(rows), "view", 1.0))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event", "weight"])
    return TrainData.build(inter, items), items


def _new_item():
    return pd.DataFrame({"item_id": ["k_new"], "title": ["Copper kettle for the kitchen"],
                         "text": ["cooking pots pans kitchen utensils"], "category": ["kitchen"]})


def test_an_item_added_after_training_is_recommended_to_the_people_it_suits(tmp_path):
    train, _ = _two_tastes()
    params = {**HYBRID, "content_weight": 0.5}
    hybrid = create("hybrid", params).fit(train)
    ease = create("ease", HYBRID["components"][0]["params"]).fit(train)
    new_idx = hybrid.add_items(_new_item())
    assert hybrid.items_.id(new_idx).tolist() == ["k_new"]
    kitchen_users, garden_users = np.arange(0, 40, 2), np.arange(1, 40, 2)
    top_k, _ = hybrid.recommend(kitchen_users, k=3)
    top_g, _ = hybrid.recommend(garden_users, k=3)
    assert (top_k == new_idx[0]).any(axis=1).mean() == 1.0  # every kitchen user gets the new kettle
    assert not (top_g == new_idx[0]).any()  # garden users do not
    assert ease.items_.index(["k_new"])[0] == -1  # the collaborative model alone cannot know it
    # the added item survives save/load and the served lists stay the same
    hybrid.save(tmp_path / "h")
    loaded = Model.load(tmp_path / "h")
    np.testing.assert_array_equal(loaded.recommend(kitchen_users, k=3)[0], top_k)


def test_a_catalog_item_without_interactions_is_recommended_only_with_content():
    train, items = _two_tastes()
    catalog = pd.concat([items, _new_item()], ignore_index=True)
    train = TrainData.build(train.interactions.drop(columns=["user_idx", "item_idx"]), catalog)
    new = train.items.index(["k_new"])[0]
    users = np.arange(0, 40, 2)
    with_content = create("hybrid", {**HYBRID, "content_weight": 0.5}).fit(train).recommend(users, k=3)[0]
    without = create("hybrid", {**HYBRID, "content_weight": 0.0}).fit(train).recommend(users, k=3)[0]
    assert (with_content == new).any(axis=1).all()
    assert not (without == new).any()


def test_content_weight_splits_the_weights_and_bad_configs_are_named():
    h = create("hybrid", {**HYBRID, "content_weight": 0.25})
    np.testing.assert_allclose(h.weights(), [0.75, 0.25])
    with pytest.raises(ValidationError, match="at least 2 components"):
        create("hybrid", {"components": [{"name": "ease"}]})
    with pytest.raises(ConfigError, match="no component is `content`"):
        create("hybrid", {"components": [{"name": "ease"}, {"name": "popularity"}], "content_weight": 0.5}).weights()
    train, _ = _two_tastes()
    with pytest.raises(ConfigError, match="not a recommend model"):
        create("hybrid", {"components": [{"name": "ease"}, {"name": "kmeans"}]}).fit(train)
