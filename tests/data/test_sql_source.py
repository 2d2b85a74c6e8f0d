"""`data.source: sql`: the same rows through a database and through `tabular` give the same experiment.

Real databases only: a SQLite file and a throwaway PostgreSQL cluster (skipped, saying why, without the binaries).
Files are loaded with `recsys data load` (the CLI), read back through SQLAlchemy in small chunks.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from recsys.cli import main
from recsys.config import config_from_dict
from recsys.data import load_dataset
from recsys.experiment import run_experiment
from recsys.tasks import get_task

COLUMNS = {"user_id": "customer", "item_id": "product", "timestamp": "ts", "event": "kind"}
ITEM_COLUMNS = {"item_id": "product", "title": "name"}
MODELS = [{"name": "item_knn", "params": {"k_neighbors": 20}},
          {"name": "als", "params": {"factors": 8, "iterations": 4, "num_threads": 1}}]


@pytest.fixture
def shop(tmp_path):
    """A marketplace export as a team would have it: its own column names, ISO timestamps, an items file."""
    cfg = config_from_dict({"name": "gen", "data": {"synthetic": {"n_users": 300, "n_items": 120, "n_categories": 5,
                                                                  "mean_interactions": 12}},
                            "models": [{"name": "popularity"}]})
    ds = load_dataset(cfg.data, 11)
    events = pd.DataFrame({"customer": ds.interactions["user_id"], "product": ds.interactions["item_id"],
                           "ts": pd.to_datetime(ds.interactions["timestamp"], unit="s")
                           .dt.strftime("%Y-%m-%dT%H:%M:%S"),
                           "kind": ds.interactions["event"]})
    items = ds.items.rename(columns={"item_id": "product", "title": "name"})
    events.to_csv(tmp_path / "events.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    return tmp_path


def _config(data: dict, **over):
    return config_from_dict({"name": "shop", "seed": 3, "data": data, "split": {"method": "temporal", "test_size": 0.2},
                             "metrics": {"k": [5, 10]}, "models": MODELS, **over})


def _tabular(folder, interactions="events.csv") -> dict:
    return {"source": "tabular", "tabular": {"interactions": str(folder / interactions),
                                             "items": str(folder / "items.csv"), "columns": COLUMNS,
                                             "item_columns": ITEM_COLUMNS}}


def _sql(url: str, **part) -> dict:
    return {"source": "sql", "sql": {"url": url, **(part or {"interactions_table": "events"}),
                                     "items_table": "items", "columns": COLUMNS, "item_columns": ITEM_COLUMNS,
                                     "chunksize": 500}}


def _metrics(cfg) -> tuple[pd.DataFrame, str]:
    """Every model's metrics (rows) on the prepared split, and the split's fingerprint."""
    task = get_task(cfg.task)
    ctx = task.prepare(cfg)
    rows = {e.run_name: task.run_model(ctx, e, Path("unused"), store=False).metrics for e in cfg.models}
    return pd.DataFrame(rows).T, ctx.split_fingerprint


def _load(shop, url: str, capsys) -> None:
    rc = main(["data", "load", str(shop / "events.csv"), str(shop / "items.csv"), "--into", url,
               "--index", "customer,product,ts"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "events: " in out.out and "ix_events_customer" in out.out


def _check_database(shop, url: str, capsys) -> None:
    """Every database-facing promise of the issue, against one URL."""
    import sqlalchemy as sa

    _load(shop, url, capsys)
    engine = sa.create_engine(url)
    try:
        insp = sa.inspect(engine)
        assert {ix["column_names"][0] for ix in insp.get_indexes("events")} == {"customer", "product", "ts"}
        assert [ix["column_names"] for ix in insp.get_indexes("items")] == [["product"]]
    finally:
        engine.dispose()

    # the same rows as a table and as files: identical split and metrics
    via_sql, split_sql = _metrics(_config(_sql(url)))
    via_file, split_file = _metrics(_config(_tabular(shop)))
    pd.testing.assert_frame_equal(via_sql, via_file)
    assert split_sql == split_file

    # a query with a WHERE clause equals the same filter applied to the file
    events = pd.read_csv(shop / "events.csv")
    keep = events[(events["kind"] != "view") & (events["customer"] != events["customer"].iloc[0])]
    keep.to_csv(shop / "filtered.csv", index=False)
    query = f"SELECT * FROM events WHERE kind <> 'view' AND customer <> '{events['customer'].iloc[0]}'"
    filtered_sql, _ = _metrics(_config(_sql(url, interactions_query=query)))
    filtered_file, _ = _metrics(_config(_tabular(shop, "filtered.csv")))
    pd.testing.assert_frame_equal(filtered_sql, filtered_file)
    assert not filtered_sql.equals(via_sql)  # the WHERE clause had an effect

    # a missing table, a missing mapped column, a query naming a missing column: one line each, exit 2
    bad = {
        "table": (_sql(url, interactions_table="evnts"), ["'evnts'", "does not exist", "events"]),
        "column": ({**_sql(url), "sql": {**_sql(url)["sql"], "columns": {**COLUMNS, "timestamp": "when"}}},
                   ["'when'", "data.sql.columns", "customer"]),
        "query": (_sql(url, interactions_query="SELECT customer, product, nosuch FROM events"),
                  ["nosuch", "interactions_query"]),
    }
    capsys.readouterr()
    for what, (data, needles) in bad.items():
        path = shop / f"bad-{what}.yaml"
        path.write_text(json.dumps({"name": "bad", "data": data, "models": [{"name": "popularity"}]}))
        assert main(["--log-level", "WARNING", "data", "describe", str(path)]) == 2, what
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("error: "), err
        for needle in needles:
            assert needle in err, (what, err)


def test_sqlite_file_gives_the_tabular_experiment(shop, capsys) -> None:
    _check_database(shop, f"sqlite:///{shop / 'shop.db'}", capsys)


@pytest.mark.slow  # a throwaway PostgreSQL cluster
def test_postgres_gives_the_tabular_experiment(shop, capsys, postgres_cluster) -> None:
    import psycopg2

    conn = psycopg2.connect(postgres_cluster.dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
    conn.close()
    _check_database(shop, f"{postgres_cluster.url}/shop", capsys)


def test_fingerprint_is_of_the_rows_read(shop, capsys) -> None:
    url = f"sqlite:///{shop / 'shop.db'}"
    _load(shop, url, capsys)
    cfg = _config(_sql(url))
    before = load_dataset(cfg.data, 3)
    assert load_dataset(cfg.data, 3).fingerprint() == before.fingerprint()
    with sqlite3.connect(shop / "shop.db") as db:  # an event type with no weight: validation drops the row
        db.execute("INSERT INTO events VALUES ('u000001', 'i00001', '2024-03-01T00:00:00', 'hover')")
    after = load_dataset(cfg.data, 3)
    pd.testing.assert_frame_equal(after.interactions, before.interactions)
    assert after.fingerprint() != before.fingerprint()


@pytest.mark.slow  # a throwaway PostgreSQL cluster
def test_password_never_reaches_logs_or_mlflow(shop, capsys, postgres_cluster, mlflow_uri, monkeypatch,
                                               caplog) -> None:
    """Trust auth accepts any password: the run really connects with one, which must appear nowhere."""
    import psycopg2
    from mlflow.tracking import MlflowClient

    from recsys.tracking import MlflowTracker

    conn = psycopg2.connect(postgres_cluster.dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
    conn.close()
    secret = "pw-d0-not-leak"
    url = f"postgresql+psycopg2://postgres:{secret}@127.0.0.1:{postgres_cluster.port}/shop"
    _load(shop, url, capsys)
    monkeypatch.setenv("SHOP_DB_PASSWORD", secret)
    monkeypatch.setattr(logging.getLogger("recsys"), "propagate", True)  # `main` configured a handler of its own
    client = MlflowClient(mlflow_uri)
    with caplog.at_level(logging.DEBUG, logger="recsys"):
        for written in (url, url.replace(secret, "${SHOP_DB_PASSWORD}")):
            cfg = _config(_sql(written), models=[{"name": "popularity"}], registry={"enabled": False})
            res = run_experiment(cfg, tracker=MlflowTracker(mlflow_uri, log_models=False))
            run = client.get_run(res.parent_run_id)
            shown = "***" if written == url else "${SHOP_DB_PASSWORD}"  # a reference is no secret: kept
            assert run.data.params["data.sql.url"] == \
                f"postgresql+psycopg2://postgres:{shown}@127.0.0.1:{postgres_cluster.port}/shop"
            config_json = client.download_artifacts(res.parent_run_id, "config.json")
            child = client.get_run(res.run_ids["popularity"])
            for text in (json.dumps(run.data.params), json.dumps(child.data.params), open(config_json).read()):
                assert secret not in text
    # the logged config of the ${VAR} form runs again as it is
    logged_cfg = config_from_dict(json.loads(open(config_json).read()))
    assert len(load_dataset(logged_cfg.data, 3).interactions) > 0
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "read " in logged and secret not in logged
    assert secret not in capsys.readouterr().out
