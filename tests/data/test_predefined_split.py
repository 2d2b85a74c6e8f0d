"""`split.method: predefined`: a frozen split read from files reproduces the platform's own split exactly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recsys.data import load_dataset
from recsys.errors import ConfigError
from recsys.experiment import experiment_config_from_dict
from recsys.tasks import get_task

MODELS = [{"name": "popularity"}, {"name": "item_knn", "params": {"k_neighbors": 20}},
          {"name": "als", "params": {"factors": 8, "iterations": 4, "num_threads": 1}}]


def _export(frame: pd.DataFrame, path: Path) -> str:
    frame[["user_id", "item_id", "timestamp", "event"]].to_csv(path, index=False)  # unix seconds
    return str(path)


@pytest.fixture
def files(tmp_path):
    cfg = experiment_config_from_dict({"name": "gen",
                                       "data": {"synthetic": {"n_users": 300, "n_items": 120, "n_categories": 5,
                                                                  "mean_interactions": 12}},
                            "models": [{"name": "popularity"}]})
    ds = load_dataset(cfg.data, 5)
    ds.items.to_csv(tmp_path / "items.csv", index=False)
    return {"all": _export(ds.interactions, tmp_path / "all.csv"), "items": str(tmp_path / "items.csv"),
            "dir": tmp_path}


def _config(tabular: dict, split: dict):
    return experiment_config_from_dict({"name": "frozen", "seed": 3, "data": {"source": "tabular",
                                                                      "tabular": {"timestamp_unit": "s", **tabular}},
                             "split": {"unknown_users": "fallback", **split}, "metrics": {"k": [5, 10]},
                             "models": MODELS})


def _run(cfg):
    task = get_task(cfg.task)
    ctx = task.prepare(cfg)
    metrics = {e.run_name: task.run_model(ctx, e, Path("unused"), store=False).metrics for e in cfg.models}
    return pd.DataFrame(metrics).T, ctx


@pytest.mark.parametrize("method", [{"method": "temporal", "test_size": 0.25},
                                    {"method": "leave_last", "test_n": 2}])
def test_exported_platform_split_read_back_gives_the_same_metrics(files, method) -> None:
    own, own_ctx = _run(_config({"interactions": files["all"], "items": files["items"]}, method))
    split = own_ctx.state["split"]
    train = _export(split.train, files["dir"] / "train.csv")
    test = _export(split.test, files["dir"] / "test.csv")
    frozen, ctx = _run(_config({"interactions": train, "test": test, "items": files["items"]},
                               {"method": "predefined"}))
    pd.testing.assert_frame_equal(frozen, own)
    assert ctx.split_fingerprint == own_ctx.split_fingerprint
    audit, own_audit = ctx.state["split"].audit, split.audit
    for key in ("leak_share", "test_users_unknown", "test_items_unknown", "test_rows", "train_rows"):
        assert audit[key] == own_audit[key], key
    if method["method"] == "leave_last":  # the audit still measures what a per-user holdout leaks
        assert audit["leak_share"] > 0
    assert ctx.params["split.method"] == "predefined"
    assert ctx.stats["interactions"] == own_ctx.stats["interactions"]  # statistics cover every part


def test_audit_counts_unknown_users_and_items_of_the_given_test_part(files) -> None:
    d = files["dir"]
    train = pd.read_csv(files["all"]).iloc[:-200]
    test = pd.read_csv(files["all"]).iloc[-200:].copy()
    test.loc[test.index[:3], "user_id"] = ["newcomer-1", "newcomer-2", "newcomer-2"]
    train.to_csv(d / "train.csv", index=False)
    test.to_csv(d / "test.csv", index=False)
    _, ctx = _run(_config({"interactions": str(d / "train.csv"), "test": str(d / "test.csv")},
                          {"method": "predefined"}))
    audit = ctx.state["split"].audit
    train_users, train_items = set(train["user_id"]), set(train["item_id"])
    assert audit["test_users_unknown"] == len(set(test["user_id"]) - train_users) >= 2
    assert audit["test_items_unknown"] == len(set(test["item_id"]) - train_items)


def test_validation_part_is_what_tuning_sees(files) -> None:
    d = files["dir"]
    rows = pd.read_csv(files["all"])
    train, valid, test = rows.iloc[:-400], rows.iloc[-400:-200], rows.iloc[-200:]
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        part.to_csv(d / f"{name}.csv", index=False)
    cfg = _config({"interactions": str(d / "train.csv"), "validation": str(d / "valid.csv"),
                   "test": str(d / "test.csv")}, {"method": "predefined"})
    task = get_task("recommend")
    ctx = task.prepare(cfg)
    vctx = task.validation_context(ctx)
    vsplit = vctx.state["split"]
    assert len(vsplit.train) == len(ctx.state["split"].train)
    got = vsplit.test[["user_id", "item_id"]].reset_index(drop=True)
    assert got.sort_values(["user_id", "item_id"]).to_numpy().tolist() == \
        valid[["user_id", "item_id"]].sort_values(["user_id", "item_id"]).to_numpy().tolist()
    assert vsplit.audit["test_rows"] == len(valid)  # audited like any split


def test_predefined_needs_a_test_part_and_parts_need_predefined(files) -> None:
    with pytest.raises(ConfigError, match=r"predefined.*data.tabular.test"):
        _config({"interactions": files["all"]}, {"method": "predefined"})
    with pytest.raises(ConfigError, match=r"split.method: predefined"):
        _config({"interactions": files["all"], "test": files["all"]}, {"method": "temporal"})
    with pytest.raises(ConfigError, match=r"synthetic"):
        experiment_config_from_dict({"name": "x", "split": {"method": "predefined"},
                                     "models": [{"name": "popularity"}]})
