"""The `similar` task: (last train item -> first test item) pairs, next-item metrics, and its predictor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.tables import TrainData
from recsys.evaluation.similar import next_item_pairs
from recsys.experiment import experiment_config_from_dict, run_experiment
from recsys.serving.predictor import load_predictor


def test_pairs_are_last_train_item_and_first_new_test_item():
    train = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["x", "y", "y", "z"],
                          "timestamp": [1, 5, 2, 3], "event": "view", "weight": 1.0})
    test = pd.DataFrame({"user_id": ["a", "a", "a", "b", "c"], "item_id": ["y", "q", "z", "x", "x"],
                         "timestamp": [6, 9, 7, 8, 9]})
    data = TrainData.build(train, pd.DataFrame({"item_id": ["x", "y", "z", "q"]}))
    pairs = next_item_pairs(data, test)
    got = {u: (data.items.id(q), data.items.id(t)) for u, q, t in pairs.itertuples(index=False)}
    # a: last train item y; first test item that is not y is z (t=7); b: last z -> x; c unknown to training
    assert got == {"a": ("y", "z"), "b": ("z", "x")}


@pytest.mark.slow
def test_similar_experiment_metrics_match_an_independent_count(tmp_path):
    cfg = experiment_config_from_dict({
        "name": "sim", "task": "similar", "seed": 3,
        "data": {"synthetic": {"n_users": 400, "n_items": 150, "n_categories": 6, "mean_interactions": 15}},
        "metrics": {"k": [5, 10], "primary": "hit_rate_at_10"},
        "models": [{"name": "popularity"}, {"name": "item_knn", "params": {"k_neighbors": 20}},
                   {"name": "als", "params": {"factors": 8, "iterations": 5, "num_threads": 1}}],
        "registry": {"enabled": False},
    })
    result = run_experiment(cfg, workdir=tmp_path)
    pairs = result.context.state["pairs"]
    assert len(pairs) > 50 and (pairs["query"] != pairs["target"]).all()
    for res in result.results:
        items, scores = res.model.similar(pairs["query"].to_numpy(), 10)
        items = np.where(np.isfinite(scores), items, -1)
        hits = [t in set(row[:k]) for k in (5, 10) for row, t in zip(items, pairs["target"])]
        n = len(pairs)
        assert res.metrics["hit_rate_at_5"] == np.mean(hits[:n])
        assert res.metrics["hit_rate_at_10"] == np.mean(hits[n:])
        assert not (items == pairs["query"].to_numpy()[:, None]).any(), "an item is never similar to itself"
        predicted = load_predictor(res.model_dir).predict(
            pd.DataFrame({"item_id": res.model.items_.id(pairs["query"].to_numpy()[:4])}), {"k": 10})
        first = predicted[predicted["item_id"] == str(res.model.items_.id(pairs["query"].iloc[0]))]
        expected = [str(i) for i in res.model.items_.id(items[0][items[0] >= 0])]
        assert first.sort_values("rank")["similar_item_id"].tolist() == expected
    assert result.best.metrics["hit_rate_at_10"] == max(r.metrics["hit_rate_at_10"] for r in result.results)


def test_similar_rejects_a_primary_metric_it_does_not_compute():
    import pytest

    from recsys.errors import ConfigError

    with pytest.raises(ConfigError, match="similar task does not compute"):
        experiment_config_from_dict({"name": "s", "task": "similar", "models": [{"name": "item_knn"}],
                          "selection": {"metric": "recall_at_10"}})
