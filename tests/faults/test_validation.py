"""Everything knowable is refused before a model is fitted: one line, exit 2, nothing in the store.

In-process `recsys.cli.main` on a temporary SQLite store; the store is read back with MlflowClient.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from recsys.cli import main
from recsys.errors import ConfigError, DataError

BASE = {
    "name": "preflight",
    "seed": 3,
    "data": {"source": "synthetic", "synthetic": {"n_users": 200, "n_items": 80, "n_categories": 4,
                                                  "mean_interactions": 10}},
    "split": {"method": "temporal", "test_size": 0.2},
    "metrics": {"k": [10]},
    "models": [{"name": "popularity"}],
    "registry": {"model_name": "preflight-model"},
}


@pytest.fixture(scope="module")
def _migrated_store(tmp_path_factory) -> Path:
    """An empty tracking + registry store, migrated once per module: MLflow's schema migration takes seconds
    (most of each test here), while what is tested is that nothing gets into the store."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    uri = f"sqlite:///{path}"
    client = MlflowClient(uri, registry_uri=uri)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)
    return path


@pytest.fixture
def mlflow_uri(_migrated_store, mlflow_uri) -> str:
    """conftest's fresh store under tmp_path, started as a copy of the migrated empty one."""
    shutil.copyfile(_migrated_store, mlflow_uri.removeprefix("sqlite:///"))
    return mlflow_uri


def _write(tmp: Path, **over) -> Path:
    raw = {**BASE, **over}
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _refused(capsys, argv: list[str], *words: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _nothing_logged(uri: str) -> None:
    client = MlflowClient(uri, registry_uri=uri)
    exp = client.get_experiment_by_name("preflight")
    assert exp is None or client.search_runs([exp.experiment_id]) == [], "a run was started"
    assert client.search_registered_models() == [], "a model was registered"


def test_metric_typo_is_refused_before_fitting(tmp_path, mlflow_uri, capsys) -> None:
    cfg = _write(tmp_path, metrics={"k": [10], "primary": "ndgc_at_10"})
    _refused(capsys, ["run", str(cfg)], "metrics.primary", "ndgc_at_10", "did you mean 'ndcg_at_10'")
    _nothing_logged(mlflow_uri)


def test_selection_and_tuning_metric_typos(tmp_path, mlflow_uri, capsys) -> None:
    cfg = _write(tmp_path, selection={"metric": "recal_at_10"})
    _refused(capsys, ["run", str(cfg)], "selection.metric", "recall_at_10")
    cfg = _write(tmp_path, models=[{"name": "popularity", "metric": "hitrate_at_100"}])
    _refused(capsys, ["run", str(cfg)], "models.0.metric")
    _nothing_logged(mlflow_uri)


def test_missing_policy_with_auto_promote(tmp_path, mlflow_uri, capsys) -> None:
    cfg = _write(tmp_path, experiment={"auto_promote": True},
                 registry={"model_name": "preflight-model", "policy": "configs/policies/nope.yaml"})
    _refused(capsys, ["run", str(cfg)], "nope.yaml", "does not exist")
    _nothing_logged(mlflow_uri)


def test_policy_guardrail_metric_typo_with_auto_promote(tmp_path, mlflow_uri, capsys) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"guardrails": [{"metric": "catalog_coverag_at_10", "max_drop_relative": 0.1}]}))
    cfg = _write(tmp_path, experiment={"auto_promote": True},
                 registry={"model_name": "preflight-model", "policy": str(policy)})
    _refused(capsys, ["run", str(cfg)], "guardrails.0.metric", "catalog_coverage_at_10")
    _nothing_logged(mlflow_uri)


@pytest.mark.parametrize("name", ["team/model", "a:b", " padded ", ".."])
def test_invalid_registered_model_name(tmp_path, mlflow_uri, capsys, name) -> None:
    cfg = _write(tmp_path, registry={"model_name": name})
    _refused(capsys, ["run", str(cfg)], "registry.model_name")
    _nothing_logged(mlflow_uri)


def test_negative_seed(tmp_path, mlflow_uri, capsys) -> None:
    cfg = _write(tmp_path, seed=-1)
    _refused(capsys, ["run", str(cfg)], "seed")


def test_config_path_is_a_directory_or_not_utf8(tmp_path, mlflow_uri, capsys) -> None:
    _refused(capsys, ["run", str(tmp_path)], "is a directory")
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("name: caf\xe9\nmodels: [{name: popularity}]\n".encode("latin-1"))
    _refused(capsys, ["run", str(latin)], "not UTF-8")


@pytest.mark.parametrize("argv", [["tune", "CFG", "--model", "popularity", "--n-trials", "-5"],
                                  ["tune", "CFG", "--model", "popularity", "--n-trials", "2.5"],
                                  ["serve", "--port", "99999"], ["serve", "--port", "-1"], ["serve", "--max-k", "0"]])
def test_out_of_range_flags_are_usage_errors(tmp_path, capsys, argv) -> None:
    argv = [str(_write(tmp_path)) if a == "CFG" else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "must be" in err and "Traceback" not in err


def _tabular(tmp: Path, users, items, item_table: pd.DataFrame | None = None, **over) -> Path:
    n = len(users)
    pd.DataFrame({"user_id": users, "item_id": items,
                  "timestamp": 1_700_000_000 + np.arange(n) * 3600}).to_csv(tmp / "events.csv", index=False)
    tab = {"interactions": str(tmp / "events.csv")}
    if item_table is not None:
        item_table.to_csv(tmp / "items.csv", index=False)
        tab["items"] = str(tmp / "items.csv")
    return _write(tmp, data={"source": "tabular", "tabular": tab}, **over)


def test_one_user_data_set_is_refused_before_fitting(tmp_path, mlflow_uri, capsys) -> None:
    cfg = _tabular(tmp_path, [1] * 30, list(range(30)))
    _refused(capsys, ["run", str(cfg)], "1 user")
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("preflight")
    model_runs = client.search_runs([exp.experiment_id], "tags.role = 'model'") if exp else []
    assert model_runs == [], "a model was fitted"
    assert client.search_registered_models() == []


def test_k_larger_than_the_catalogue(tmp_path, mlflow_uri, capsys) -> None:
    rng = np.random.default_rng(0)
    cfg = _tabular(tmp_path, rng.integers(0, 40, 400), rng.integers(0, 12, 400),
                   metrics={"k": [50], "primary": "ndcg_at_50"})
    _refused(capsys, ["run", str(cfg)], "metrics.k=50", "catalogue")


def test_ids_beyond_int64_are_kept_exact_as_strings(tmp_path) -> None:
    from recsys.config import load_config
    from recsys.data import load_dataset

    big = [2**63 + i for i in range(20)]  # beyond int64, within uint64
    cfg = load_config(_tabular(tmp_path, big * 3, list(range(60))))
    ds = load_dataset(cfg.data, 0)
    assert set(ds.interactions["user_id"]) == {str(v) for v in big}


def test_items_table_ids_of_another_type_are_aligned(tmp_path) -> None:
    from recsys.config import load_config
    from recsys.data import load_dataset

    items = pd.DataFrame({"item_id": [f"{i:03d}" for i in range(10)], "title": [f"t{i}" for i in range(10)]})
    cfg = load_config(_tabular(tmp_path, list(range(40)), [i % 10 for i in range(40)], item_table=items))
    ds = load_dataset(cfg.data, 0)
    assert ds.items["item_id"].dtype == ds.interactions["item_id"].dtype
    assert set(ds.items["item_id"]) == set(range(10))  # "007" is item 7


def test_items_table_ids_that_cannot_match_are_an_error(tmp_path) -> None:
    from recsys.config import load_config
    from recsys.data import load_dataset

    items = pd.DataFrame({"item_id": ["sku-a", "sku-b"], "title": ["a", "b"]})
    cfg = load_config(_tabular(tmp_path, list(range(40)), [i % 10 for i in range(40)], item_table=items))
    with pytest.raises(DataError, match="cannot be converted"):
        load_dataset(cfg.data, 0)


def test_config_error_class_is_kept() -> None:
    assert issubclass(ConfigError, ValueError)
